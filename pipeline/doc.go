// Package pipeline runs per-packet handlers over an AF_XDP socket in
// batches.
//
// A [Stage] sees one [Packet] at a time — its bytes in the UMEM, writable
// in place, and its parsed headers — and returns a [Verdict]: drop it,
// transmit it out of the same socket, forward it to another socket that
// shares the UMEM, or continue to the next stage. A [Runner] drives a
// socket: it keeps the fill ring stocked, receives a batch, runs the chain
// on every packet, transmits, forwards or recycles each by its verdict,
// reaps completions, and waits in the poller only when there is nothing
// to do. It stops when its context is cancelled and returns its counters,
// per stage too.
//
// The per-packet path allocates nothing: headers are parsed by package
// packet into a reused struct, descriptors are batched in slices made once.
// Stages that read only the frame's bytes say so by implementing [Raw]
// (or by being a [RawFunc]); a Runner whose stages all do parses nothing,
// and one without stages that drops every frame does not even look at
// them: it hands each batch straight back to the fill ring
// (afxdp.Socket.Discard). A Raw stage that also implements [FrameStage]
// (or is a [FramesFunc]) takes the whole batch's frames in one call: when every
// stage does, the Runner makes one call per stage and batch instead of
// one per packet and stage, fills no Packet, and sends or recycles a
// batch whose frames all got the same verdict as it is
// (stages.MACSwap and stages.FlowCounter are; stages.LoadBalancer is in
// the configurations that allow it, which a [ConditionalFrameStage]
// says). FrameStages that never move a frame, only rewrite its bytes,
// say so with [InPlace], and the Runner then does not look for moved
// frames. When idle, Run sleeps in poll(2) on its thread
// (afxdp.Socket.WaitPoll), keeping its P for the first 10 ms of each sleep
// unless the socket has afxdp.Config.PollYields; a socket with
// afxdp.Config.Coalesce makes it sleep that long first after a burst,
// which under load saves most of the wake-ups for that much latency.
//
// BenchmarkRunnerMemory measures the Runner alone, over a memory socket
// (afxdp.NewMemory) whose kernel side costs next to nothing: the
// user-space ceiling per core of each kind of pipeline.
//
//	r, err := pipeline.New(pipeline.Config{
//		Socket: sock,
//		Stages: []pipeline.Stage{stages.NewMACSwap()},
//	})
//	if err != nil {
//		return err
//	}
//	stats, err := r.Run(ctx) // until ctx is cancelled
//
// # Concurrency
//
// A Runner is driven by one goroutine (Run or Poll); [Runner.Snapshot] may
// be called from any goroutine, and the socket may be closed from any
// goroutine, which ends Run with afxdp.ErrClosed. Stages are called on
// the Runner's goroutine only, so they need no locks — and must not be
// shared between Runners. The sockets are safe to use meanwhile from
// other goroutines, but their pool's lock then serializes with the
// Runner: give other goroutines sockets on pools of their own.
//
// # Errors
//
// A closed socket or a vanished device ends Run. A failed transmit (the
// link is down, the TX ring stalled) does not, unless
// Config.StopOnTXError is set: its frames are dropped and counted
// (Stats.TXErrors) and the Runner backs off while it lasts.
package pipeline
