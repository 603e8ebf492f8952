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
// A Runner is driven by one goroutine, which must be the only one using
// its sockets and UMEM; [Runner.Snapshot] may be called from any goroutine.
package pipeline
