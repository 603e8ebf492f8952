//go:build linux

package pipeline_test

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/redirect"
	"github.com/xdpkit/xdpkit/umem"
)

var (
	soakFrames  = flag.Uint64("soak.frames", 0, "TestSoak: run until the host Runners have received this many frames (0: a few seconds, less with -short)")
	soakTimeout = flag.Duration("soak.timeout", 30*time.Minute, "TestSoak: fail a -soak.frames run that has not reached its target after this long")
	soakSeed    = flag.Uint64("soak.seed", 0, "TestSoak: seed of the verdicts and the chaos (0: from the clock); logged, to replay a run")
)

const (
	soakQueues     = 4
	soakPoolFrames = 4096 // frames per queue's pool
	soakRXRing     = 2048
	soakTXRing     = 2048
	// soakLate bounds the frames the kernel may still put on a socket's RX
	// ring after Close has drained it: those that NAPI polls already under
	// way had redirected before the socket left the XSKMAP (a poll's
	// budget, 64, per CPU, with room to spare).
	soakLate = 256
	// soakWindow is how many frames a peer queue may have sent that its
	// host queue has not received yet: less than the fill ring, so the
	// host drops only when frames in transmission starve its pool.
	soakWindow = 1536
	// soakSenders is how many goroutines drive the peer's sockets. On veth
	// the sender's CPU also runs the host's XDP and AF_XDP copy in softirq,
	// so two keep both CPUs of a small box doing that.
	soakSenders = 2
)

// soakChoice is what the stages do with one packet, drawn for each packet.
type soakChoice uint8

const (
	choiceFinal       soakChoice = iota // no stage acts: Final, which is Drop
	choiceDrop                          // Drop
	choiceMalformed                     // Malformed
	choiceEmpty                         // Data resliced to empty, Transmit: BadData
	choiceHeap                          // Data pointed at a heap buffer, Forward: BadData
	choiceOtherFrame                    // Data pointed at another UMEM frame, Transmit: BadData
	choiceMove                          // MACs swapped, start moved 4 bytes into the frame, Transmit
	choiceTransmit                      // MACs swapped, Transmit
	choiceForwardSelf                   // MACs swapped, Forward to Targets[0], the socket itself
	choiceForwardPeer                   // MACs swapped, Forward to Targets[1], the queue's second socket
	choiceForwardNone                   // Forward to Targets[2], which does not exist: dropped
	numChoices
)

// soakWeights are the choices' chances, in percent.
var soakWeights = [numChoices]int{
	choiceFinal: 14, choiceDrop: 14, choiceMalformed: 8,
	choiceEmpty: 2, choiceHeap: 2, choiceOtherFrame: 2, choiceMove: 6,
	choiceTransmit: 26, choiceForwardSelf: 10, choiceForwardPeer: 13, choiceForwardNone: 3,
}

// soakStage is the index of the stage that acts on each choice (stage 0
// draws it), and soakVerdict the verdict that stage returns.
var (
	soakStage = [numChoices]int{
		choiceFinal: -1, choiceDrop: 1, choiceMalformed: 2,
		choiceEmpty: 3, choiceHeap: 3, choiceOtherFrame: 3,
		choiceMove: 4, choiceTransmit: 5,
		choiceForwardSelf: 6, choiceForwardPeer: 6, choiceForwardNone: 6,
	}
	soakVerdict = [numChoices]pipeline.Verdict{
		choiceFinal: pipeline.Continue, choiceDrop: pipeline.Drop, choiceMalformed: pipeline.Malformed,
		choiceEmpty: pipeline.Transmit, choiceHeap: pipeline.Forward, choiceOtherFrame: pipeline.Transmit,
		choiceMove: pipeline.Transmit, choiceTransmit: pipeline.Transmit,
		choiceForwardSelf: pipeline.Forward, choiceForwardPeer: pipeline.Forward, choiceForwardNone: pipeline.Forward,
	}
)

const soakStages = 7

// soakVerdicts are the stages of one Runner incarnation: a choice per
// packet from a PRNG seeded with the run's seed, the queue and the
// incarnation, and a count of every choice made, which the Runner's
// counters must match.
type soakVerdicts struct {
	rng    *rand.Rand
	table  [100]soakChoice
	u      *umem.UMEM
	heap   []byte
	seen   *atomic.Uint64 // the queue's frames over all incarnations, which its sender paces on
	choice soakChoice
	n      [numChoices]uint64
}

func newSoakVerdicts(rng *rand.Rand, u *umem.UMEM, seen *atomic.Uint64) *soakVerdicts {
	sv := &soakVerdicts{rng: rng, u: u, heap: make([]byte, 64), seen: seen}
	i := 0
	for c, w := range soakWeights {
		for range w {
			sv.table[i] = soakChoice(c)
			i++
		}
	}
	return sv
}

func (sv *soakVerdicts) stages() []pipeline.Stage {
	st := []pipeline.Stage{pipeline.Func(sv.draw)}
	for j := 1; j < soakStages; j++ {
		st = append(st, pipeline.Func(func(p *pipeline.Packet) pipeline.Verdict {
			if soakStage[sv.choice] != j {
				return pipeline.Continue
			}
			return sv.act(p)
		}))
	}
	return st
}

func (sv *soakVerdicts) draw(p *pipeline.Packet) pipeline.Verdict {
	sv.choice = sv.table[sv.rng.IntN(len(sv.table))]
	if len(p.Data) < 16 {
		sv.choice = choiceMalformed // too short to swap MACs and move; not one of ours
	}
	sv.n[sv.choice]++
	sv.seen.Add(1)
	return pipeline.Continue
}

func (sv *soakVerdicts) act(p *pipeline.Packet) pipeline.Verdict {
	switch sv.choice {
	case choiceEmpty:
		p.Data = p.Data[:0]
	case choiceHeap:
		p.Data, p.Out = sv.heap, 1
	case choiceOtherFrame:
		// Frame 0, or frame 1 if the packet is in frame 0: never its own.
		other := sv.u.Frame(0)
		if _, in0 := sv.u.Within(0, p.Data); in0 {
			other = sv.u.Frame(uint64(sv.u.FrameSize()))
		}
		p.Data = other[:len(p.Data)]
	case choiceMove:
		swapMACs(p.Data)
		copy(p.Data[4:16], p.Data[0:12])
		p.Data = p.Data[4:]
	case choiceTransmit:
		swapMACs(p.Data)
	case choiceForwardSelf:
		swapMACs(p.Data)
		p.Out = 0
	case choiceForwardPeer:
		swapMACs(p.Data)
		p.Out = 1
	case choiceForwardNone:
		p.Out = 2
	}
	return soakVerdict[sv.choice]
}

// swapMACs makes a frame from the peer go back to it.
func swapMACs(b []byte) {
	var m [6]byte
	copy(m[:], b[0:6])
	copy(b[0:6], b[6:12])
	copy(b[6:12], m[:])
}

// check compares a Runner's counters with the choices its stages made.
func (sv *soakVerdicts) check(st pipeline.Stats) error {
	var errs []error
	want := func(what string, got, want uint64) {
		if got != want {
			errs = append(errs, fmt.Errorf("%s = %d, want %d", what, got, want))
		}
	}
	n := &sv.n
	var rx uint64
	for _, k := range n {
		rx += k
	}
	bad := n[choiceEmpty] + n[choiceHeap] + n[choiceOtherFrame]
	sendable := n[choiceMove] + n[choiceTransmit] + n[choiceForwardSelf] + n[choiceForwardPeer]
	// Every frame the Runner received went through the stages, and left
	// it one way: sent, forwarded or dropped (which includes Malformed,
	// BadData, a Forward to no target and what a full TX ring or a failed
	// transmit did not take).
	want("RXPackets (frames the stages saw)", st.RXPackets, rx)
	want("TXPackets+Forwarded+Dropped", st.TXPackets+st.Forwarded+st.Dropped, st.RXPackets)
	want("Malformed", st.Malformed, n[choiceMalformed])
	want("BadData", st.BadData, bad)
	want("TXPackets+Forwarded+TXRingFull", st.TXPackets+st.Forwarded+st.TXRingFull, sendable)
	want("Dropped", st.Dropped, n[choiceFinal]+n[choiceDrop]+n[choiceMalformed]+bad+n[choiceForwardNone]+st.TXRingFull)
	if len(st.Stages) != soakStages {
		return errors.Join(append(errs, fmt.Errorf("%d stage counters, want %d", len(st.Stages), soakStages))...)
	}
	seen := rx
	for j, got := range st.Stages {
		w := pipeline.StageStats{Name: got.Name, Seen: seen}
		for c := range numChoices {
			if soakStage[c] != j {
				continue
			}
			switch soakVerdict[c] {
			case pipeline.Drop:
				w.Dropped += n[c]
			case pipeline.Malformed:
				w.Malformed += n[c]
			case pipeline.Transmit:
				w.Transmitted += n[c]
			case pipeline.Forward:
				w.Forwarded += n[c]
			}
		}
		if got != w {
			errs = append(errs, fmt.Errorf("stage %d: %+v, want %+v", j, got, w))
		}
		seen -= w.Dropped + w.Malformed + w.Transmitted + w.Forwarded
	}
	want("frames past the last stage (Final)", seen, n[choiceFinal])
	return errors.Join(errs...)
}

// soakQueue is one host queue: its pool, and the sockets and Runner its
// supervisor keeps reopening.
type soakQueue struct {
	q    int
	pool *umem.Pool
	seen atomic.Uint64 // frames its stages saw, over all incarnations

	mu        sync.Mutex
	sock, fwd *afxdp.Socket // the running incarnation's, for the chaos to close; nil between two

	// Written by the supervisor, read once it has returned.
	runs  int            // Runner incarnations
	cut   int            // of those, the ones whose socket was closed under traffic
	total pipeline.Stats // summed over the incarnations
}

// soak is the test's host side, shared by its goroutines.
type soak struct {
	t        *testing.T
	v        *testutils.Veth
	seed     uint64
	u        *umem.UMEM
	prog     *redirect.Program
	qs       [soakQueues]*soakQueue
	restarts atomic.Int64

	// Chaos counters, for the progress log.
	closes, fwdCloses, doubles, flaps atomic.Int64
}

// supervise runs Runners on queue q until ctx is done: when the chaos
// closes a socket under one, it checks the incarnation's counters, closes
// the queue's sockets and opens new ones on the same pool.
func (s *soak) supervise(ctx context.Context, q *soakQueue) {
	for inc := 0; ctx.Err() == nil; inc++ {
		rng := rand.New(rand.NewPCG(s.seed, uint64(q.q)<<32|uint64(inc)))
		sock, fwd, err := s.open(q, rng.IntN(2) == 0)
		if err != nil {
			s.t.Errorf("queue %d, incarnation %d: %v", q.q, inc, err)
			return
		}
		sv := newSoakVerdicts(rng, s.u, &q.seen)
		r, err := pipeline.New(pipeline.Config{Socket: sock, Stages: sv.stages(), Targets: []*afxdp.Socket{sock, fwd}})
		if err != nil {
			s.t.Errorf("queue %d: %v", q.q, errors.Join(err, sock.Close(), fwd.Close()))
			return
		}
		q.mu.Lock()
		q.sock, q.fwd = sock, fwd
		q.mu.Unlock()
		st, runErr := r.Run(ctx)
		q.mu.Lock()
		q.sock, q.fwd = nil, nil
		q.mu.Unlock()

		where := fmt.Sprintf("queue %d, incarnation %d (seed %d)", q.q, inc, s.seed)
		// xdpkit checks every descriptor before it reaches a ring, so the
		// kernel must never see an invalid one (sockets the chaos closed
		// have no kernel counters left to read).
		for _, x := range []*afxdp.Socket{sock, fwd} {
			if ks, err := x.Stats(); err == nil && ks.RXInvalidDescs+ks.TXInvalidDescs != 0 {
				s.t.Errorf("%s: the kernel saw invalid descriptors: %+v", where, ks)
			}
		}
		if c := q.pool.Counts(); c.App != 0 {
			s.t.Errorf("%s: Run returned holding frames: pool %+v", where, c)
		}
		// Close waits for a Close the chaos has under way.
		if err := errors.Join(sock.Close(), fwd.Close()); err != nil {
			s.t.Errorf("%s: close: %v", where, err)
		}
		// The queue's last sockets are gone: the frames its rings had are back.
		if c := q.pool.Counts(); c.Free != c.Total {
			s.t.Errorf("%s: pool after closing the queue's sockets: %+v, want every frame free", where, c)
		}
		if err := q.pool.Check(); err != nil {
			s.t.Errorf("%s: %v", where, err)
		}
		if err := sv.check(st); err != nil {
			s.t.Errorf("%s: Runner counters do not add up:\n%v\nstats %+v\nchoices %v", where, err, st, sv.n)
		}
		q.runs++
		q.total.Add(st)
		switch {
		case runErr == nil: // ctx is done
			return
		case errors.Is(runErr, afxdp.ErrClosed):
			q.cut++
			s.restarts.Add(1)
		default:
			s.t.Errorf("%s: Run: %v", where, runErr)
			return
		}
	}
}

// open opens the queue's two sockets on its pool, in either order: the
// first makes the queue's ring pair, the other joins it. sock is
// registered in the program and receives; fwd only transmits, for
// Forward, which wants a target on the same pool.
func (s *soak) open(q *soakQueue, fwdFirst bool) (sock, fwd *afxdp.Socket, err error) {
	cfg := afxdp.Config{UMEM: s.u, Pool: q.pool, RXRingSize: soakRXRing, TXRingSize: soakTXRing, Bind: afxdp.BindCopy}
	open := func(steer afxdp.Registrar) (*afxdp.Socket, error) {
		c := cfg
		c.Steering = steer
		return afxdp.OpenIndex(s.v.HostIndex, q.q, &c)
	}
	main, second := s.prog, afxdp.NoSteering
	if fwdFirst {
		if fwd, err = open(second); err != nil {
			return nil, nil, fmt.Errorf("open the forwarding socket first: %w", err)
		}
		if sock, err = open(main); err != nil {
			return nil, nil, fmt.Errorf("open the receiving socket second: %w", errors.Join(err, fwd.Close()))
		}
		return sock, fwd, nil
	}
	if sock, err = open(main); err != nil {
		return nil, nil, fmt.Errorf("open the receiving socket first: %w", err)
	}
	if fwd, err = open(second); err != nil {
		return nil, nil, fmt.Errorf("open the forwarding socket second: %w", errors.Join(err, sock.Close()))
	}
	return sock, fwd, nil
}

// closeSocket closes queue q's receiving (or forwarding) socket, from
// the chaos goroutine, while its Runner uses it.
func (s *soak) closeSocket(q int, forwarding bool) {
	qs := s.qs[q]
	qs.mu.Lock()
	sock := qs.sock
	if forwarding {
		sock = qs.fwd
	}
	qs.mu.Unlock()
	if sock == nil {
		return // between two incarnations
	}
	if err := sock.Close(); err != nil {
		s.t.Errorf("chaos: close queue %d: %v", q, err)
	}
}

// chaos closes sockets and flaps the host link at random until stop is
// closed, and leaves the link up.
func (s *soak) chaos(stop <-chan struct{}, rng *rand.Rand) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(time.Duration(20+rng.IntN(180)) * time.Millisecond):
		}
		switch r := rng.IntN(100); {
		case r < 35:
			s.closeSocket(rng.IntN(soakQueues), false)
			s.closes.Add(1)
		case r < 50:
			s.closeSocket(rng.IntN(soakQueues), true)
			s.fwdCloses.Add(1)
		case r < 70:
			a := rng.IntN(soakQueues)
			b := (a + 1 + rng.IntN(soakQueues-1)) % soakQueues
			var wg sync.WaitGroup
			for _, q := range []int{a, b} {
				wg.Add(1)
				go func() { defer wg.Done(); s.closeSocket(q, false) }()
			}
			wg.Wait()
			s.doubles.Add(1)
		default:
			down := time.Duration(1+rng.IntN(30)) * time.Millisecond
			if _, err := testutils.Run("ip", "link", "set", "dev", s.v.Host, "down"); err != nil {
				s.t.Errorf("chaos: %v", err)
				return
			}
			time.Sleep(down)
			if _, err := testutils.Run("ip", "link", "set", "dev", s.v.Host, "up"); err != nil {
				s.t.Errorf("chaos: %v", err)
				return
			}
			s.flaps.Add(1)
		}
	}
}

// soakPeer is one of the peer's AF_XDP sockets, sending to the host
// queue of the same index: veth delivers a frame sent on peer queue q to
// host queue q.
type soakPeer struct {
	s     *afxdp.Socket
	host  *soakQueue
	frame []byte

	// Owned by its sender goroutine.
	sent     uint64
	lost     uint64 // frames given up on: the host dropped them (no socket on its queue, link down, rings full)
	lastSeen uint64
	stuck    time.Time // when the host queue was last seen taking frames
}

// room returns how many frames p may send now. It keeps soakWindow frames
// in flight; when the host has taken nothing for 10 ms, it counts what is
// in flight as lost, so a host that dropped frames does not stall it.
func (p *soakPeer) room(now time.Time) int {
	seen := p.host.seen.Load()
	if seen != p.lastSeen {
		p.lastSeen, p.stuck = seen, now
	}
	inFlight := max(int64(p.sent)-int64(p.lost)-int64(seen), 0)
	if inFlight < soakWindow {
		return int(soakWindow - inFlight)
	}
	if now.Sub(p.stuck) > 10*time.Millisecond {
		p.lost += uint64(inFlight)
		p.stuck = now
		return soakWindow
	}
	return 0
}

// send drives peers until stop is closed.
func (s *soak) send(stop <-chan struct{}, peers []*soakPeer) {
	descs := make([]unix.XDPDesc, 64)
	addrs := make([]uint64, 64)
	for {
		select {
		case <-stop:
			return
		default:
		}
		busy := false
		now := time.Now()
		for _, p := range peers {
			room := p.room(now)
			if room == 0 {
				continue
			}
			busy = true
			u := p.s.UMEM()
			n := p.s.Pool().AllocInto(addrs[:min(room, len(addrs))])
			if n == 0 {
				p.s.Complete() // every frame is in transmission: reap
				continue
			}
			for i := range n {
				f := u.Frame(addrs[i])
				copy(f, p.frame)
				// Many flows: the source port takes 256 values.
				binary.BigEndian.PutUint16(f[34:], uint16(1024+(p.sent+uint64(i))%256))
				descs[i] = unix.XDPDesc{Addr: addrs[i], Len: uint32(len(p.frame))}
			}
			k, err := p.s.Transmit(descs[:n])
			if k < n {
				_ = p.s.Release(descs[k:n])
			}
			p.sent += uint64(k)
			// While the host link is down the peer's carrier is off too.
			if err != nil && !errors.Is(err, afxdp.ErrTXStalled) && !errors.Is(err, unix.ENETDOWN) {
				s.t.Errorf("peer queue %d: transmit: %v", p.s.Queue(), err)
				return
			}
		}
		if !busy {
			time.Sleep(20 * time.Microsecond)
		}
	}
}

// redirected returns what the host's veth says its XDP program redirected
// on each queue: every such frame was put on an AF_XDP socket's RX ring.
func (s *soak) redirected() [soakQueues]uint64 {
	st := testutils.EthtoolStats(s.t, s.v.Host)
	var r [soakQueues]uint64
	for q := range r {
		r[q] = st.Get(s.t, fmt.Sprintf("rx_queue_%d_xdp_redirect", q))
	}
	return r
}

func (s *soak) seenTotal() uint64 {
	var n uint64
	for _, q := range s.qs {
		n += q.seen.Load()
	}
	return n
}

// stopper returns a function that calls stop and waits, at most timeout,
// for wg, and reports whether wg is done. It does that once, so it can be
// both called and registered with t.Cleanup.
func stopper(t *testing.T, what string, stop func(), wg *sync.WaitGroup, timeout time.Duration) func() bool {
	var once sync.Once
	var stopped bool
	return func() bool {
		once.Do(func() {
			stop()
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
				stopped = true
			case <-time.After(timeout):
				t.Errorf("%s still running %v after being told to stop", what, timeout)
			}
		})
		return stopped
	}
}

// TestSoak runs a Runner on each of four host queues, with random verdicts,
// under traffic from the peer's four queues, while sockets are closed and
// reopened under the Runners and the link flaps. Afterwards every frame of
// the shared UMEM is free, the accounting agrees, every incarnation's
// counters add up and the Runners got what the kernel redirected, but for
// frames left on the RX rings of sockets closed under traffic.
//
// It runs a few seconds (less with -short); -soak.frames=N runs until the
// Runners have received N frames (raise -timeout for large N).
func TestSoak(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: soakQueues})
	seed := *soakSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay the choices with -soak.seed=%d)", seed, seed)
	duration := 5 * time.Second
	if testing.Short() {
		duration = 1500 * time.Millisecond
	}
	target := *soakFrames
	deadline := time.Now().Add(*soakTimeout)
	if d, ok := t.Deadline(); ok && d.Add(-time.Minute).Before(deadline) {
		deadline = d.Add(-time.Minute) // leave time to stop and report
	}

	prog, err := redirect.Attach(v.HostIndex, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prog.Close() })
	u, err := umem.New(&umem.Options{FrameCount: soakQueues * soakPoolFrames})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = u.Close() })
	s := &soak{t: t, v: v, seed: seed, u: u, prog: prog}
	for q := range s.qs {
		p, err := u.NewPool(soakPoolFrames)
		if err != nil {
			t.Fatal(err)
		}
		s.qs[q] = &soakQueue{q: q, pool: p}
	}

	var peers []*soakPeer
	v.InPeer(t, func() error {
		for q := range soakQueues {
			p, err := afxdp.OpenIndex(v.PeerIndex, q, &afxdp.Config{Bind: afxdp.BindCopy, Steering: afxdp.NoSteering,
				UMEMOptions: &umem.Options{FrameCount: 2048, FillRingSize: 64, CompletionRingSize: 2048}})
			if err != nil {
				return err
			}
			t.Cleanup(func() {
				_ = p.Flush(time.Second)
				_ = p.Close()
			})
			f := testutils.UDPFrame(v.HostMAC, v.PeerMAC, v.PeerIP.As4(), v.HostIP.As4(), 1024, uint16(9000+q), []byte("xdpkit soak frame"))
			peers = append(peers, &soakPeer{s: p, host: s.qs[q], frame: f})
		}
		return nil
	})
	before := s.redirected()

	ctx, cancel := context.WithCancel(context.Background())
	var hosts sync.WaitGroup
	for _, q := range s.qs {
		hosts.Add(1)
		go func() { defer hosts.Done(); s.supervise(ctx, q) }()
	}
	stopHosts := stopper(t, "host Runners", cancel, &hosts, 20*time.Second)
	t.Cleanup(func() { stopHosts() })

	sendStop := make(chan struct{})
	var senders sync.WaitGroup
	for i := range soakSenders {
		var mine []*soakPeer
		for j := i; j < len(peers); j += soakSenders {
			mine = append(mine, peers[j])
		}
		senders.Add(1)
		go func() { defer senders.Done(); s.send(sendStop, mine) }()
	}
	stopSenders := stopper(t, "senders", func() { close(sendStop) }, &senders, 10*time.Second)
	t.Cleanup(func() { stopSenders() })

	chaosStop := make(chan struct{})
	var chaos sync.WaitGroup
	chaos.Add(1)
	go func() { defer chaos.Done(); s.chaos(chaosStop, rand.New(rand.NewPCG(seed, 0xc4a05))) }()
	stopChaos := stopper(t, "chaos", func() { close(chaosStop) }, &chaos, 10*time.Second)
	t.Cleanup(func() {
		stopChaos()
		_, _ = testutils.Run("ip", "link", "set", "dev", v.Host, "up")
	})

	start := time.Now()
	nextLog := start.Add(30 * time.Second)
	for !t.Failed() {
		n := s.seenTotal()
		if target > 0 && n >= target || target == 0 && time.Since(start) >= duration {
			break
		}
		if target > 0 && time.Now().After(deadline) {
			t.Errorf("after %v the Runners have received %d frames, not the %d asked for", time.Since(start).Round(time.Second), n, target)
			break
		}
		if now := time.Now(); now.After(nextLog) {
			t.Logf("%v: %d frames received (%.0f/s), %d restarts, %d flaps",
				now.Sub(start).Round(time.Second), n, float64(n)/now.Sub(start).Seconds(), s.restarts.Load(), s.flaps.Load())
			nextLog = now.Add(30 * time.Second)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Stop in order: traffic, chaos (the link is up after it), then, once
	// the Runners have taken everything the kernel redirected, the Runners.
	stopSenders()
	elapsed := time.Since(start)
	stopChaos()
	var last [soakQueues]uint64
	var lastSeen uint64
	stable := time.Now()
	for quiet := time.Now().Add(10 * time.Second); ; {
		r, n := s.redirected(), s.seenTotal()
		if r != last || n != lastSeen {
			last, lastSeen, stable = r, n, time.Now()
		} else if time.Since(stable) > 300*time.Millisecond {
			break
		}
		if time.Now().After(quiet) {
			t.Errorf("traffic stopped, but the host counters still move after 10s")
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !stopHosts() {
		return // the supervisors' fields are not safe to read
	}

	var sent uint64
	for _, p := range peers {
		sent += p.sent
	}
	var total pipeline.Stats
	var runs int
	var redirected uint64
	for q, qs := range s.qs {
		total.Add(qs.total)
		runs += qs.runs
		got, kernel := qs.total.RXPackets, last[q]-before[q]
		redirected += kernel
		if got != qs.seen.Load() {
			t.Errorf("queue %d: the Runners counted %d frames, their stages saw %d", q, got, qs.seen.Load())
		}
		// Frames redirected but not received are those left on the RX
		// rings of sockets closed under traffic: at most a ring's worth
		// each, and none when no socket of the queue was.
		bound := uint64(qs.cut) * (soakRXRing + soakLate)
		switch {
		case got > kernel:
			t.Errorf("queue %d: the Runners received %d frames, more than the %d the kernel redirected", q, got, kernel)
		case kernel-got > bound:
			t.Errorf("queue %d: the kernel redirected %d frames, the Runners received %d: %d missing, more than the %d the RX rings of %d sockets closed under traffic could hold",
				q, kernel, got, kernel-got, bound, qs.cut)
		case got == 0:
			t.Errorf("queue %d received nothing", q)
		}
		t.Logf("queue %d: %d incarnations (%d closed under traffic), received %d, kernel redirected %d, left on closed rings %d (bound %d)",
			q, qs.runs, qs.cut, got, kernel, kernel-got, bound)
	}
	host := testutils.EthtoolStats(t, v.Host)
	var xdpSeen, xdpDrops uint64
	for q := range soakQueues {
		xdpSeen += host.Get(t, fmt.Sprintf("rx_queue_%d_xdp_packets", q))
		xdpDrops += host.Get(t, fmt.Sprintf("rx_queue_%d_drops", q))
	}
	if err := u.Check(); err != nil {
		t.Error(err)
	}
	if c := u.Counts(); c.Free != c.Total {
		t.Errorf("UMEM counts %+v after every socket closed, want every frame free", c)
	}
	t.Logf("seed %d: %v of traffic, %d frames sent, %d received (%.0f/s); the host's XDP saw %d, redirected %d, dropped %d (fill ring empty, RX ring full)",
		seed, elapsed.Round(time.Millisecond), sent, total.RXPackets, float64(total.RXPackets)/elapsed.Seconds(), xdpSeen, redirected, xdpDrops)
	t.Logf("chaos: %d restarts of %d queues (%d runs), %d closes, %d forwarding-socket closes, %d double closes, %d link flaps",
		s.restarts.Load(), soakQueues, runs, s.closes.Load(), s.fwdCloses.Load(), s.doubles.Load(), s.flaps.Load())
	t.Logf("verdicts: %d transmitted, %d forwarded, %d dropped (%d malformed, %d bad data, %d TX ring full), %d TX errors, %d parse errors",
		total.TXPackets, total.Forwarded, total.Dropped, total.Malformed, total.BadData, total.TXRingFull, total.TXErrors, total.ParseErrors)
}
