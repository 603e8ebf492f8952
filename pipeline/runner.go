package pipeline

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/fastpath"
	"github.com/xdpkit/xdpkit/packet"
)

// ErrInvalidConfig is matched by the error of New for a Config it cannot
// use.
var ErrInvalidConfig = errors.New("invalid configuration")

// Config configures a Runner.
type Config struct {
	// Socket is the socket the Runner receives from and transmits to.
	// Required.
	Socket *afxdp.Socket
	// Stages run in order on every packet. Empty means every packet gets
	// Final.
	Stages []Stage
	// Targets are the sockets Forward sends to (Packet.Out indexes them).
	// They must share Socket's UMEM. Nil: Forward drops.
	Targets []*afxdp.Socket
	// Final is the verdict for a packet every stage passed on (Continue).
	// Zero value (Continue) means Drop.
	Final Verdict
	// BatchSize is how many frames are received at once. Zero means 256:
	// on copy-mode sockets larger batches mean fewer transmit syscalls per
	// frame (the bench measured +20% reflect rate over 64).
	BatchSize int
	// IdleWait bounds one wait in the poller when there is nothing to do,
	// so the loop looks at its context and publishes its counters at
	// least that often. Zero means 100ms.
	IdleWait time.Duration
	// Tick, if set, is called on the Runner's goroutine about every
	// TickInterval with the current time, e.g. to let a rate limiter read
	// the clock once per batch instead of per packet. Zero: never.
	Tick func(now time.Time)
	// TickInterval is how often Tick and the snapshot run. Zero means
	// 100ms.
	TickInterval time.Duration
	// StopOnTXError makes Poll (and so Run) return the first error of a
	// transmit: the link went down (ENETDOWN), transmission stalled
	// (afxdp.ErrTXStalled). Zero value: such errors are counted
	// (Stats.TXErrors), the frames not sent are dropped, and the Runner
	// carries on, backing off while they last, so a link flap or a stalled
	// driver does not stop it. A closed socket or a vanished device
	// (ENXIO) always ends the Runner.
	StopOnTXError bool
	// FastPath, if set, is the fast path of the XDP program that feeds
	// Socket (redirect.Options.FastPath): stages offload a flow's
	// decision to it with Packet.Offload. Nil: Offload fails with
	// ErrNoFastPath.
	FastPath *fastpath.FastPath
	// BusyPoll makes the loop poll-driven: when the RX ring is empty it
	// spins, instead of sleeping in the poller, and the receive that
	// found it empty ran the device's NAPI on this CPU (a socket with
	// busy-poll options makes a recvfrom then; Socket.BusyPollOnce for a
	// socket without). It keeps a CPU busy; pair it with
	// afxdp.Config.BusyPoll and pin the goroutine's thread. Zero value:
	// wake-up-driven (Wait when idle).
	BusyPoll bool
	// LockOSThread makes Run lock its goroutine to its OS thread
	// (runtime.LockOSThread) while it runs, e.g. to pin that thread to a
	// CPU. Run waits in poll(2) on its thread either way
	// (afxdp.Socket.WaitPoll), so a locked Runner pays no thread
	// hand-off per wake-up, as it would through Go's runtime poller.
	// Package workers sets it.
	LockOSThread bool
}

// Stats are a Runner's counters.
type Stats struct {
	RXPackets   uint64 `json:"rx_packets"`
	RXBytes     uint64 `json:"rx_bytes"`
	TXPackets   uint64 `json:"tx_packets"`
	TXBytes     uint64 `json:"tx_bytes"`
	Forwarded   uint64 `json:"forwarded"`
	Dropped     uint64 `json:"dropped"`   // by verdict, Final, Malformed, or a full TX ring
	Malformed   uint64 `json:"malformed"` // frames a stage called malformed
	TXRingFull  uint64 `json:"tx_ring_full"`
	ParseErrors uint64 `json:"parse_errors"` // frames packet.Parse could not parse (stages still saw them)
	TXErrors    uint64 `json:"tx_errors"`    // transmits that failed (link down, stalled); their frames are dropped
	BadData     uint64 `json:"bad_data"`     // frames to send whose Data a stage left empty or pointing outside their frame, or whose checksum LeaveL4Checksum could not request (dropped)
	// Offloaded counts the flows and sources stages handed to the fast
	// path (Packet.Offload, BlockSource), OffloadErrors the offloads that
	// failed. The
	// frames the kernel then handled are in fastpath.Counters.
	Offloaded     uint64        `json:"offloaded"`
	OffloadErrors uint64        `json:"offload_errors"`
	Duration      time.Duration `json:"-"`
	Stages        []StageStats  `json:"stages"`
}

// Add adds o's packet counters to s (Duration becomes the longer of the
// two; Stages are left alone), to total several Runners.
func (s *Stats) Add(o Stats) {
	s.RXPackets += o.RXPackets
	s.RXBytes += o.RXBytes
	s.TXPackets += o.TXPackets
	s.TXBytes += o.TXBytes
	s.Forwarded += o.Forwarded
	s.Dropped += o.Dropped
	s.Malformed += o.Malformed
	s.TXRingFull += o.TXRingFull
	s.ParseErrors += o.ParseErrors
	s.BadData += o.BadData
	s.TXErrors += o.TXErrors
	s.Offloaded += o.Offloaded
	s.OffloadErrors += o.OffloadErrors
	s.Duration = max(s.Duration, o.Duration)
}

// StageStats are one stage's counters.
type StageStats struct {
	Name        string `json:"name"`
	Seen        uint64 `json:"seen"`
	Dropped     uint64 `json:"dropped"`
	Transmitted uint64 `json:"transmitted"`
	Forwarded   uint64 `json:"forwarded"`
	Malformed   uint64 `json:"malformed"`
	Offloaded   uint64 `json:"offloaded"` // flows and sources the stage offloaded to the fast path
}

// Runner drives a socket through a chain of stages.
type Runner struct {
	cfg    Config
	pkt    Packet
	rx     []afxdp.Desc   // received batch
	frames [][]byte       // their bytes (Socket.Frames)
	sink   byte           // what the batch's first touch read, kept so it is not optimized away
	tx     []afxdp.Desc   // to transmit out of Socket
	fwd    [][]afxdp.Desc // per target
	drop   []afxdp.Desc   // to recycle
	stats  Stats
	start  time.Time
	nextAt time.Duration // since start: when Tick is due

	parse          bool                    // some stage is not Raw: parse every frame
	fns            []func(*Packet) Verdict // per stage: a Func's or RawFunc's function, called without the interface
	verdicts       []Verdict               // the batch's, by frame
	outs           []int                   // the batch's Packet.Out, by frame, for Forward
	frameStages    []FrameStage            // per stage: the stage as a FrameStage, or nil
	allFrames      bool                    // every stage is a FrameStage: handleFrames runs the batch
	inPlace        bool                    // allFrames, and every stage is InPlace: no moved-frame checks
	oneFn          func(*Packet) Verdict   // the one stage is a Func or RawFunc: handleOneFn runs the batch
	discard        bool                    // no stage and Final Drop: Socket.Discard, the frames unread
	orig           [][]byte                // handleFrames: the frames as received
	full           FrameBatch              // handleFrames: the batch the first stage gets
	sub            FrameBatch              // handleFrames: the frames a stage after the first gets
	subIdx         []int                   // their indices in the batch
	one            FrameBatch              // a batch of one, for a FrameStage among other stages
	pollsSinceTick int                     // busy polls since the clock was last read
	batchBytes     uint64                  // the batch's bytes as received
	repointed      bool                    // some descriptor of the batch was repointed: its bytes changed
	txErrStreak    int                     // consecutive polls whose transmit failed

	mu       sync.Mutex // guards snapshot
	snapshot Stats
}

// New checks cfg and makes a Runner; all the memory the loop uses is
// allocated here.
func New(cfg Config) (*Runner, error) {
	if cfg.Socket == nil {
		return nil, fmt.Errorf("pipeline: Config.Socket is nil: %w", ErrInvalidConfig)
	}
	if cfg.Socket.MultiBuffer() {
		// A stage sees one descriptor as one packet: jumbo packets would be cut.
		return nil, fmt.Errorf("pipeline: the Runner does not handle multi-buffer sockets yet; receive with Socket.ReceivePackets instead: %w", ErrInvalidConfig)
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 256
	}
	if cfg.BatchSize < 0 || cfg.BatchSize > 4096 {
		return nil, fmt.Errorf("pipeline: invalid batch size %d: must be 1-4096: %w", cfg.BatchSize, ErrInvalidConfig)
	}
	if cfg.IdleWait <= 0 {
		cfg.IdleWait = 100 * time.Millisecond
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = 100 * time.Millisecond
	}
	if cfg.Final == Continue {
		cfg.Final = Drop
	}
	if cfg.Final == Forward && len(cfg.Targets) == 0 {
		return nil, fmt.Errorf("pipeline: Final is Forward but there are no Targets: %w", ErrInvalidConfig)
	}
	for i, t := range cfg.Targets {
		if t == nil || t.Pool() != cfg.Socket.Pool() {
			return nil, fmt.Errorf("pipeline: target %d does not share the socket's UMEM pool: a frame can only be sent by sockets of its pool: %w", i, ErrInvalidConfig)
		}
	}
	r := &Runner{
		cfg:    cfg,
		rx:     make([]afxdp.Desc, cfg.BatchSize),
		frames: make([][]byte, cfg.BatchSize),
		tx:     make([]afxdp.Desc, 0, cfg.BatchSize),
		drop:   make([]afxdp.Desc, 0, cfg.BatchSize),
		fwd:    make([][]afxdp.Desc, len(cfg.Targets)),
	}
	for i := range r.fwd {
		r.fwd[i] = make([]afxdp.Desc, 0, cfg.BatchSize)
	}
	r.stats.Stages = make([]StageStats, len(cfg.Stages))
	r.fns = make([]func(*Packet) Verdict, len(cfg.Stages))
	r.frameStages = make([]FrameStage, len(cfg.Stages))
	r.verdicts = make([]Verdict, cfg.BatchSize)
	r.outs = make([]int, cfg.BatchSize)
	for i, s := range cfg.Stages {
		r.stats.Stages[i].Name = stageName(s, i)
		_, raw := s.(Raw)
		fs, frames := s.(FrameStage)
		if c, ok := s.(ConditionalFrameStage); ok && !c.TakesFrames() {
			raw, frames = false, false
		}
		if !raw {
			r.parse = true
		}
		switch f := s.(type) {
		case Func:
			r.fns[i] = f
		case RawFunc:
			r.fns[i] = f
		}
		if frames {
			r.frameStages[i] = fs
		}
	}
	r.allFrames = len(cfg.Stages) > 0 && !slices.Contains(r.frameStages, nil)
	r.inPlace = r.allFrames && !slices.ContainsFunc(r.frameStages, func(fs FrameStage) bool {
		_, ok := fs.(InPlace)
		return !ok
	})
	if len(cfg.Stages) == 1 && !r.allFrames {
		r.oneFn = r.fns[0]
	}
	r.discard = len(cfg.Stages) == 0 && cfg.Final == Drop
	if r.allFrames {
		r.orig = make([][]byte, cfg.BatchSize)
		r.sub = FrameBatch{Frames: make([][]byte, cfg.BatchSize), Verdicts: make([]Verdict, cfg.BatchSize), Out: make([]int, cfg.BatchSize)}
		r.subIdx = make([]int, cfg.BatchSize)
	}
	r.one = FrameBatch{Frames: make([][]byte, 1), Verdicts: make([]Verdict, 1), Out: make([]int, 1)}
	r.snapshot = r.copyStats()
	r.pkt.Queue = cfg.Socket.Queue()
	r.pkt.runner = r
	return r, nil
}

// Run processes packets until ctx is done, then returns the counters and
// nil, or an error that stopped it (the socket was closed, transmit
// stalled). When ctx is done it first gives the frames already on the RX
// ring their verdicts (a bounded drain: until a receive finds less than a
// batch, at most drainPolls batches), so that stopping a tool loses no
// frame the kernel had delivered. Frames the Runner holds are all back in
// the UMEM when it returns.
func (r *Runner) Run(ctx context.Context) (Stats, error) {
	if r.cfg.LockOSThread {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	r.start, r.nextAt = time.Now(), 0
	err := r.loop(ctx)
	r.stats.Duration = time.Since(r.start)
	r.publish()
	return r.copyStats(), err
}

func (r *Runner) loop(ctx context.Context) error {
	sock := r.cfg.Socket
	done := ctx.Done()
	for {
		select {
		case <-done:
			return r.drain()
		default:
		}
		n, err := r.Poll()
		if err != nil {
			return err
		}
		if r.txErrStreak > 0 {
			// Transmit keeps failing (link down, stalled driver): do not
			// spin on it, but keep receiving.
			r.backOff(ctx)
		}
		if n > 0 {
			if r.pollsSinceTick++; r.pollsSinceTick >= 64 {
				r.maybeTick()
			}
			continue
		}
		if r.cfg.BusyPoll {
			if !sock.BusyPolling() {
				sock.BusyPollOnce() // a busy-polling socket's Receive made this call
			}
			if r.pollsSinceTick++; r.pollsSinceTick >= 1024 {
				r.maybeTick()
			}
			continue
		}
		r.maybeTick()
		// Idle: sleep in the poller, at most IdleWait, so cancellation and
		// the counters are looked at that often.
		if err := r.wait(sock); err != nil && !errors.Is(err, afxdp.ErrTimeout) {
			if ctx.Err() != nil {
				return r.drain()
			}
			return err
		}
	}
}

// wait sleeps until sock has frames, at most IdleWait, in poll(2) on the
// Runner's thread (afxdp.Socket.WaitPoll): a locked Runner pays no thread
// hand-off per wake-up (bench rx-drop: 103-109 ns of DUT CPU per frame
// against 162-175 through the runtime poller; unlocked the two are within
// the bench's noise), and a socket never registered with the runtime's
// epoll set does not wake it for every frame it transmits. A Runner holds
// a thread while it sleeps, and for the first 10 ms of each sleep its P
// too, unless the socket has afxdp.Config.PollYields (see there).
func (r *Runner) wait(sock *afxdp.Socket) error {
	return sock.WaitPoll(r.cfg.IdleWait)
}

// drainPolls bounds the drain at cancellation, so a Runner under a
// steady flood still stops promptly (256 batches of 256 are 64 Ki frames,
// more than the largest usual RX ring).
const drainPolls = 256

// drain polls until the RX ring has less than a batch, at most drainPolls
// times. A socket closed meanwhile ends it without an error: the caller
// asked to stop.
func (r *Runner) drain() error {
	for range drainPolls {
		n, err := r.Poll()
		if errors.Is(err, afxdp.ErrClosed) {
			return nil
		}
		if err != nil || n < len(r.rx) {
			return err
		}
	}
	return nil
}

// backOff sleeps 1ms after the first failed transmit in a row, doubling
// up to IdleWait, or until ctx is done.
func (r *Runner) backOff(ctx context.Context) {
	d := min(time.Millisecond<<min(r.txErrStreak-1, 16), r.cfg.IdleWait)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	r.maybeTick()
}

// permanent reports whether a transmit error means the socket is gone for
// good: closed, or its device unregistered (ENXIO).
func permanent(err error) bool {
	return errors.Is(err, afxdp.ErrClosed) || gone(err)
}

func (r *Runner) maybeTick() {
	r.pollsSinceTick = 0
	// The monotonic clock alone, one read: it runs once per wake-up, and
	// time.Now reads the wall clock too.
	since := time.Since(r.start)
	if since < r.nextAt {
		return
	}
	r.nextAt = since + r.cfg.TickInterval
	if r.cfg.Tick != nil {
		r.cfg.Tick(time.Now())
	}
	r.stats.Duration = since
	r.publish()
}

// Poll receives one batch, runs the stages over it and acts on the
// verdicts, without waiting; it returns how many frames it received. Run
// calls it in a loop; call it yourself to drive the Runner from your own
// loop (one goroutine). Its error is the socket's being closed or its
// device gone (ENXIO), or, with Config.StopOnTXError, a failed transmit;
// other transmit errors are counted in Stats.TXErrors and their frames
// dropped. Poll does not call Config.Tick, which Run calls between
// polls: a loop of your own calls the stages' tick functions itself.
func (r *Runner) Poll() (int, error) {
	sock := r.cfg.Socket
	var n int
	var err error
	if r.discard {
		// Nothing looks at the frames: straight back to the fill ring,
		// counted, in one call (Receive's checks, no copy out).
		var bytes uint64
		if n, bytes, err = sock.Discard(r.rx); n > 0 {
			r.stats.RXPackets += uint64(n)
			r.stats.RXBytes += bytes
			r.stats.Dropped += uint64(n)
			return n, nil
		}
	} else {
		n, err = sock.Receive(r.rx)
	}
	if err != nil {
		return 0, err
	}
	if n == 0 {
		sock.Complete()
		for _, t := range r.cfg.Targets {
			t.Complete()
		}
		return 0, nil
	}
	r.stats.RXPackets += uint64(n)
	sock.Frames(r.rx[:n], r.frames)
	// Every stage reads the headers: read each frame's first byte first,
	// in a loop whose loads do not wait for one another, so that the
	// batch's cache misses (the kernel wrote the frames on another CPU)
	// overlap instead of coming one per stage call.
	var t byte
	var bytes uint64
	rx := r.rx[:n] // locals: the compiler reloads r's fields in every iteration
	for i, f := range r.frames[:n] {
		if len(f) > 0 {
			t ^= f[0]
		}
		bytes += uint64(rx[i].Len)
	}
	r.sink = t
	r.stats.RXBytes += bytes
	r.batchBytes, r.repointed = bytes, false
	if r.allFrames {
		return n, r.flushed(r.dispatch(n, r.handleFrames(n)))
	}
	if r.oneFn != nil {
		return n, r.flushed(r.dispatch(n, r.handleOneFn(n)))
	}
	p := &r.pkt
	verdicts := r.verdicts[:n]
	uniform := true
	for i := range r.rx[:n] {
		d := &r.rx[i]
		data := r.frames[i]
		p.Data, p.Out = data, 0
		p.desc, p.prepended, p.l4csum = *d, 0, false
		if p.frame != nil { // only SetFrame sets it: a load, not a store and a write barrier, per frame
			p.frame = nil
		}
		if r.parse || p.reparsed {
			r.parsePacket()
		}
		v := r.cfg.Final
		for j, st := range r.cfg.Stages {
			ss := &r.stats.Stages[j]
			ss.Seen++
			p.stage = j
			var sv Verdict
			switch {
			case r.fns[j] != nil:
				sv = r.fns[j](p)
			case r.frameStages[j] != nil:
				b := &r.one
				b.Frames[0], b.Verdicts[0], b.Out[0] = p.Data, Continue, p.Out
				r.frameStages[j].HandleFrames(b)
				p.Data, p.Out, sv = b.Frames[0], b.Out[0], b.Verdicts[0]
			default:
				sv = st.Handle(p)
			}
			if sv == Continue {
				continue
			}
			ss.count(sv)
			v = sv
			break
		}
		if (v == Transmit || v == Forward) && (p.l4csum || resliced(p.Data, data)) {
			v = r.settle(d, data, v)
		}
		verdicts[i] = v
		r.outs[i] = p.Out
		uniform = uniform && v == verdicts[0]
	}
	return n, r.flushed(r.dispatch(n, uniform))
}

// handleOneFn is Poll's per-packet loop for a Runner whose one stage is a
// Func or RawFunc: the same steps without the loop over stages, and the
// stage's counts in registers (bench poll-mode rx-drop with a RawFunc,
// and BenchmarkRunnerMemory/drop-stage). It leaves the verdicts in
// r.verdicts and the targets in r.outs, and reports whether the verdicts
// are all the same, for dispatch.
func (r *Runner) handleOneFn(n int) (uniform bool) {
	fn, final := r.oneFn, r.cfg.Final
	p := &r.pkt
	p.stage = 0
	verdicts, outs, frames, rx := r.verdicts[:n], r.outs[:n], r.frames[:n], r.rx[:n]
	var t tally
	uniform = true
	for i := range verdicts {
		d := &rx[i]
		data := frames[i]
		p.Data, p.Out = data, 0
		p.desc, p.prepended, p.l4csum = *d, 0, false
		if p.frame != nil { // only SetFrame sets it: a load, not a store and a write barrier, per frame
			p.frame = nil
		}
		if r.parse || p.reparsed {
			r.parsePacket()
		}
		v := fn(p)
		t.add(v)
		if v == Continue {
			v = final
		}
		if (v == Transmit || v == Forward) && (p.l4csum || resliced(p.Data, data)) {
			v = r.settle(d, data, v)
		}
		verdicts[i] = v
		outs[i] = p.Out
		uniform = uniform && v == verdicts[0]
	}
	r.stats.Stages[0].add(n, t)
	return uniform
}

// parsePacket parses r.pkt.Data, a frame just received, for stages that
// read the headers, or clears the headers a Raw stage had parsed for
// itself (Packet.Reparse).
func (r *Runner) parsePacket() {
	p := &r.pkt
	if r.parse {
		if p.ParseErr = packet.Parse(p.Data, &p.Headers); p.ParseErr != nil {
			r.stats.ParseErrors++
		}
	} else {
		p.Headers, p.ParseErr, p.reparsed = packet.Headers{}, nil, false
	}
}

// settle checks a frame to be sent (v is Transmit or Forward) whose data
// the stages moved, or whose checksum they left to the device: d is its
// descriptor, data its bytes as received. It points d at what r.pkt.Data
// is now and requests the checksum on the socket that sends it, and
// returns v, or Drop (counted in BadData) for a frame that cannot be sent
// so.
func (r *Runner) settle(d *afxdp.Desc, data []byte, v Verdict) Verdict {
	p := &r.pkt
	if resliced(p.Data, data) && !r.repoint(d, p.Data) {
		return Drop
	}
	if p.l4csum {
		// The stage left the checksum to the device: request it on
		// the socket that sends the frame.
		out := r.cfg.Socket
		if v == Forward && p.Out >= 0 && p.Out < len(r.cfg.Targets) {
			out = r.cfg.Targets[p.Out]
		}
		if out.RequestL4Checksum(d) != nil {
			r.stats.BadData++
			return Drop
		}
	}
	return v
}

// handleFrames runs the n frames received (in r.rx and r.frames) through
// stages that are all FrameStages, one call per stage, and leaves their
// verdicts in r.verdicts and their targets in r.outs. It reports whether
// the verdicts are all the same, for dispatch.
func (r *Runner) handleFrames(n int) (uniform bool) {
	frames, verdicts, outs := r.frames[:n], r.verdicts[:n], r.outs[:n]
	if !r.inPlace {
		copy(r.orig, frames)
	}
	clear(verdicts)
	clear(outs)
	for j, fs := range r.frameStages {
		b := &r.sub
		if j == 0 {
			b = &r.full
			b.Frames, b.Verdicts, b.Out = frames, verdicts, outs
		} else {
			k := 0
			for i, v := range verdicts {
				if v == Continue {
					r.subIdx[k], r.sub.Frames[k] = i, frames[i]
					k++
				}
			}
			if k == 0 {
				break
			}
			b.Frames, b.Verdicts, b.Out = r.sub.Frames[:k], r.sub.Verdicts[:k], r.sub.Out[:k]
			clear(b.Verdicts)
			clear(b.Out)
		}
		fs.HandleFrames(b)
		if len(r.frameStages) == 1 {
			// The usual case, one stage over the whole batch: its counts
			// and the final verdicts in one pass.
			return r.finishFrames(n, &r.stats.Stages[0])
		}
		r.stats.Stages[j].countAll(b.Verdicts)
		if j > 0 {
			for k, i := range r.subIdx[:len(b.Frames)] {
				frames[i], verdicts[i], outs[i] = b.Frames[k], b.Verdicts[k], b.Out[k]
			}
		}
	}
	return r.finishFrames(n, nil)
}

// finishFrames gives the frames every stage passed on Final, sorts out
// the frames to send that a stage moved, and reports whether the n
// verdicts are all the same. With ss, the verdicts are one stage's over
// the whole batch, and it counts them there too.
func (r *Runner) finishFrames(n int, ss *StageStats) (uniform bool) {
	verdicts := r.verdicts[:n]
	if v0 := verdicts[0]; allAre(verdicts, v0) {
		// The usual batch, every frame one way: a tight loop to see it,
		// the counts at once, and no per-frame switch.
		v := v0
		if v == Continue {
			v = r.cfg.Final
			if v == Transmit || v == Forward {
				for i := range verdicts {
					verdicts[i] = v
				}
			} else {
				verdicts[0] = v // dispatch reads only the first of a uniform batch not sent
			}
		}
		if ss != nil {
			var t tally
			t.addN(v0, uint64(n)) // Continue counts nothing
			ss.add(n, t)
		}
		if v != Transmit && v != Forward || r.inPlace {
			return true
		}
		return r.sortMoved(n)
	}
	frames := r.frames[:n]
	final := r.cfg.Final
	var t tally
	for i, v := range verdicts {
		t.add(v)
		if v == Continue {
			v = final
			verdicts[i] = v
		}
		if (v == Transmit || v == Forward) && !r.inPlace {
			if resliced(frames[i], r.orig[i]) {
				r.moved(i)
			}
		}
	}
	if ss != nil {
		ss.add(n, t)
	}
	return false
}

// allAre reports whether every verdict of vs is v.
func allAre(vs []Verdict, v Verdict) bool {
	for _, x := range vs {
		if x != v {
			return false
		}
	}
	return true
}

// sortMoved is finishFrames' moved-frame pass for a batch of n frames all
// to be sent: it reports whether they still all are.
func (r *Runner) sortMoved(n int) (uniform bool) {
	uniform = true
	orig := r.orig[:n]
	for i, f := range r.frames[:n] {
		if resliced(f, orig[i]) {
			uniform = r.moved(i) && uniform
		}
	}
	return uniform
}

// moved handles frame i of a batch handleFrames ran, which is to be sent
// and whose start or end a stage moved: what is sent is the frame as it
// is now, if that is inside its UMEM frame; else it is dropped, and moved
// reports false.
func (r *Runner) moved(i int) bool {
	if r.repoint(&r.rx[i], r.frames[i]) {
		return true
	}
	r.verdicts[i] = Drop
	return false
}

// resliced reports whether a stage left a frame's bytes, was when
// received, as other bytes now: its start or end moved, or another slice.
func resliced(now, was []byte) bool {
	return len(now) != len(was) || len(now) == 0 || &now[0] != &was[0]
}

// repoint points d at data, the bytes a stage left for its frame, so that
// they are what is sent, if they are within d's UMEM frame. If not, the
// frame cannot be sent: repoint counts it in BadData and reports false.
func (r *Runner) repoint(d *afxdp.Desc, data []byte) bool {
	addr, ok := r.cfg.Socket.UMEM().Within(d.Addr, data)
	if !ok {
		r.stats.BadData++
		return false
	}
	d.Addr, d.Len = addr, uint32(len(data))
	r.repointed = true
	return true
}

// countAll counts a stage's verdicts over a batch (Continue is not
// counted) and the frames it saw.
func (ss *StageStats) countAll(verdicts []Verdict) {
	var t tally
	for _, v := range verdicts {
		t.add(v)
	}
	ss.add(len(verdicts), t)
}

// tally counts a batch's verdicts by kind, indexed by verdict (one
// add, no switch, per frame; slots 0 and 5-7 are Continue's and those of
// values that are no verdict, which count nothing).
type tally [8]uint64

// add counts v.
func (t *tally) add(v Verdict) { t[min(v, 7)]++ }

// addN counts k verdicts v.
func (t *tally) addN(v Verdict, k uint64) { t[min(v, 7)] += k }

// add adds t, the tally of n frames the stage saw, to ss.
func (ss *StageStats) add(n int, t tally) {
	ss.Seen += uint64(n)
	ss.Dropped += t[Drop]
	ss.Transmitted += t[Transmit]
	ss.Forwarded += t[Forward]
	ss.Malformed += t[Malformed]
}

// count counts a stage's verdict v (not Continue): one increment, for
// the per-packet path.
func (ss *StageStats) count(v Verdict) {
	switch v {
	case Drop:
		ss.Dropped++
	case Transmit:
		ss.Transmitted++
	case Forward:
		ss.Forwarded++
	case Malformed:
		ss.Malformed++
	}
}

// dispatch sends, forwards and recycles the n frames of r.rx by their
// verdicts in r.verdicts, in one pass without calls. A batch whose frames
// all go the same way (uniform: the caller saw that while it wrote the
// verdicts) goes as it is, without copying its descriptors.
func (r *Runner) dispatch(n int, uniform bool) error {
	rx, verdicts := r.rx[:n], r.verdicts[:n]
	v0, same := verdicts[0], uniform
	if same && v0 == Transmit {
		sent, err := r.cfg.Socket.Transmit(rx) // nothing else is queued: no flush
		if sent == n && !r.repointed {
			// Every frame sent as received: its bytes are the batch's.
			r.stats.TXPackets += uint64(n)
			r.stats.TXBytes += r.batchBytes
			return err
		}
		r.account(rx, sent, &r.stats.TXPackets, &r.stats.TXBytes)
		return err
	}
	if same && v0 != Forward {
		r.stats.Dropped += uint64(n)
		if v0 == Malformed {
			r.stats.Malformed += uint64(n)
		}
		_ = r.cfg.Socket.Recycle(rx) // straight back to the fill ring; nothing else is queued
		return nil
	}
	tx, drop := r.tx, r.drop
	var dropped, malformed uint64
	for i, v := range verdicts {
		switch v {
		case Transmit:
			tx = append(tx, rx[i])
		case Forward:
			if out := r.outs[i]; out >= 0 && out < len(r.fwd) {
				r.fwd[out] = append(r.fwd[out], rx[i])
			} else {
				drop = append(drop, rx[i])
				dropped++
			}
		case Malformed:
			malformed++
			dropped++
			drop = append(drop, rx[i])
		default:
			dropped++
			drop = append(drop, rx[i])
		}
	}
	r.tx, r.drop = tx, drop
	r.stats.Dropped += dropped
	r.stats.Malformed += malformed
	return r.flush()
}

// flushed sorts out flush's error for Poll: the ones that end the Runner
// are returned, the others counted.
func (r *Runner) flushed(err error) error {
	switch {
	case err == nil:
		r.txErrStreak = 0
	case r.cfg.StopOnTXError || permanent(err):
		return err
	default:
		r.stats.TXErrors++
		r.txErrStreak++
	}
	return nil
}

// flush transmits, forwards and recycles the batch's frames.
func (r *Runner) flush() error {
	var firstErr error
	if len(r.tx) > 0 {
		sent, err := r.cfg.Socket.Transmit(r.tx)
		r.account(r.tx, sent, &r.stats.TXPackets, &r.stats.TXBytes)
		firstErr = err
		r.tx = r.tx[:0]
	}
	for i, batch := range r.fwd {
		if len(batch) == 0 {
			continue
		}
		sent, err := r.cfg.Targets[i].Transmit(batch)
		r.account(batch, sent, &r.stats.Forwarded, &r.stats.TXBytes)
		if firstErr == nil {
			firstErr = err
		}
		r.fwd[i] = batch[:0]
	}
	if len(r.drop) > 0 {
		_ = r.cfg.Socket.Recycle(r.drop) // straight back to the fill ring
		r.drop = r.drop[:0]
	}
	return firstErr
}

// account counts the sent frames and recycles the ones a full TX ring
// did not take.
func (r *Runner) account(batch []afxdp.Desc, sent int, packets, bytes *uint64) {
	*packets += uint64(sent)
	var n uint64
	for _, d := range batch[:sent] {
		n += uint64(d.Len)
	}
	*bytes += n
	if rest := batch[sent:]; len(rest) > 0 {
		r.stats.TXRingFull += uint64(len(rest))
		r.stats.Dropped += uint64(len(rest))
		_ = r.cfg.Socket.Release(rest)
	}
}

// offloaded counts a successful offload by stage i.
func (r *Runner) offloaded(i int) {
	r.stats.Offloaded++
	if i >= 0 && i < len(r.stats.Stages) {
		r.stats.Stages[i].Offloaded++
	}
}

// Stats returns the counters. Call it from the Runner's goroutine (or
// after Run returned); from other goroutines use Snapshot.
func (r *Runner) Stats() Stats { return r.copyStats() }

// Snapshot returns the counters as of the last publication (every
// TickInterval while running, and when Run returns). Safe from any
// goroutine.
func (r *Runner) Snapshot() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.snapshot
	s.Stages = append([]StageStats(nil), s.Stages...)
	return s
}

func (r *Runner) publish() {
	r.mu.Lock()
	s := r.snapshot.Stages
	r.snapshot = r.stats
	r.snapshot.Stages = append(s[:0], r.stats.Stages...)
	r.mu.Unlock()
}

func (r *Runner) copyStats() Stats {
	s := r.stats
	s.Stages = append([]StageStats(nil), r.stats.Stages...)
	return s
}

// RunAll runs several Runners on the calling goroutine, polling each in
// turn and waiting on all their sockets at once when none has work, until
// ctx is done or one fails. Use it when the runners share sockets or a
// UMEM pool, e.g. forwarding both ways between two interfaces, where each
// Runner's Targets is the other's Socket. It returns each Runner's counters.
// Like Run, it drains each Runner's RX ring when ctx is done.
func RunAll(ctx context.Context, runners ...*Runner) ([]Stats, error) {
	socks := make([]*afxdp.Socket, len(runners))
	for i, r := range runners {
		socks[i] = r.cfg.Socket
		r.start, r.nextAt = time.Now(), 0
	}
	err := func() error {
		for {
			select {
			case <-ctx.Done():
				for _, r := range runners {
					if err := r.drain(); err != nil {
						return err
					}
				}
				return nil
			default:
			}
			busy := false
			for _, r := range runners {
				n, err := r.Poll()
				if err != nil {
					return err
				}
				busy = busy || n > 0
			}
			if busy {
				continue
			}
			for _, r := range runners {
				r.maybeTick()
			}
			if err := afxdp.WaitAny(runners[0].cfg.IdleWait, socks...); err != nil && !errors.Is(err, afxdp.ErrTimeout) {
				return err
			}
		}
	}()
	out := make([]Stats, len(runners))
	for i, r := range runners {
		r.stats.Duration = time.Since(r.start)
		r.publish()
		out[i] = r.copyStats()
	}
	return out, err
}
