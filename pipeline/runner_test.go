//go:build linux

package pipeline_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/stages"
	"github.com/xdpkit/xdpkit/umem"
)

var magic = []byte("xdpkit-pipe!")

func frame(v *testutils.Veth, seq uint32) []byte {
	payload := append(append([]byte{}, magic...), 0, 0, 0, 0)
	binary.BigEndian.PutUint32(payload[len(magic):], seq)
	return testutils.UDPFrame(v.HostMAC, v.PeerMAC, v.PeerIP.As4(), v.HostIP.As4(), 5000, 6000, payload)
}

func seqOf(f []byte) (uint32, bool) {
	i := bytes.Index(f, magic)
	if i < 0 || len(f) < i+len(magic)+4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(f[i+len(magic):]), true
}

func open(t *testing.T, v *testutils.Veth, queue int, cfg *afxdp.Config) *afxdp.Socket {
	t.Helper()
	s, err := afxdp.OpenIndex(v.HostIndex, queue, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// start runs r until the returned stop is called; stop returns Run's result.
func start(t *testing.T, r *pipeline.Runner) (stop func() pipeline.Stats) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		st  pipeline.Stats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := r.Run(ctx)
		done <- result{st, err}
	}()
	var once sync.Once
	var res result
	stop = func() pipeline.Stats {
		once.Do(func() {
			cancel()
			select {
			case res = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return within 5s of cancel")
			}
			if res.err != nil {
				t.Fatalf("Run: %v", res.err)
			}
		})
		return res.st
	}
	t.Cleanup(func() { stop() })
	return stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDropAndStageCounters: two stages, the second drops odd sequence
// numbers and the rest reach Final (drop); every counter must add up.
func TestDropAndStageCounters(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	s := open(t, v, 0, &afxdp.Config{UMEMOptions: &umem.Options{Checked: true}})
	count := pipeline.Func(func(p *pipeline.Packet) pipeline.Verdict { return pipeline.Continue })
	dropOdd := pipeline.Func(func(p *pipeline.Packet) pipeline.Verdict {
		if seq, ok := seqOf(p.Data); ok && seq%2 == 1 {
			return pipeline.Drop
		}
		return pipeline.Continue
	})
	r, err := pipeline.New(pipeline.Config{Socket: s, Stages: []pipeline.Stage{count, dropOdd}})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, r)
	peer := v.OpenPeerPacketSocket(t)
	const n = 500
	for i := range uint32(n) {
		if err := peer.Send(frame(v, i)); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			waitFor(t, "the runner to catch up", func() bool { return r.Snapshot().RXPackets >= uint64(i+1) })
		}
	}
	waitFor(t, "all frames", func() bool { return r.Snapshot().RXPackets >= n })
	st := stop()
	if st.RXPackets != n || st.Dropped != n || st.TXPackets != 0 {
		t.Errorf("stats %+v, want %d received and dropped", st, n)
	}
	if st.Stages[0].Seen != n || st.Stages[1].Seen != n || st.Stages[1].Dropped != n/2 || st.Stages[0].Dropped != 0 {
		t.Errorf("stage stats %+v", st.Stages)
	}
	if st.Stages[0].Name != "stage0" {
		t.Errorf("stage name %q", st.Stages[0].Name)
	}
	if err := s.UMEM().Check(); err != nil {
		t.Error(err)
	}
	if c := s.UMEM().Counts(); c.App != 0 || c.TX != 0 {
		t.Errorf("runner kept frames: %+v", c)
	}
}

type macSwap struct{}

func (macSwap) Name() string { return "macswap" }
func (macSwap) Handle(p *pipeline.Packet) pipeline.Verdict {
	if len(p.Data) < 14 {
		return pipeline.Malformed
	}
	var m [6]byte
	copy(m[:], p.Data[:6])
	copy(p.Data[:6], p.Data[6:12])
	copy(p.Data[6:12], m[:])
	return pipeline.Transmit
}

// TestReflect transmits every frame back with swapped MACs; the peer
// captures them.
func TestReflect(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	s := open(t, v, 0, &afxdp.Config{UMEMOptions: &umem.Options{Checked: true}})
	r, err := pipeline.New(pipeline.Config{Socket: s, Stages: []pipeline.Stage{macSwap{}}})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, r)
	peer := v.OpenPeerPacketSocket(t)
	const n = 300
	got := map[uint32]bool{}
	buf := make([]byte, 2048)
	for i := range uint32(n) {
		if err := peer.Send(frame(v, i)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		k, err := peer.Recv(buf, 200*time.Millisecond)
		if err != nil {
			continue
		}
		seq, ok := seqOf(buf[:k])
		if !ok {
			continue
		}
		if !bytes.Equal(buf[0:6], v.PeerMAC) || !bytes.Equal(buf[6:12], v.HostMAC) {
			t.Fatalf("reflected frame %d has MACs % x / % x", seq, buf[0:6], buf[6:12])
		}
		got[seq] = true
	}
	st := stop()
	if len(got) != n {
		t.Fatalf("peer got %d of %d reflected frames; stats %+v", len(got), n, st)
	}
	if st.TXPackets != n || st.Stages[0].Transmitted != n || st.Stages[0].Name != "macswap" {
		t.Errorf("stats %+v", st)
	}
	if c := s.UMEM().Counts(); c.App != 0 {
		t.Errorf("frames held after Run: %+v", c)
	}
}

// TestForward receives on one veth pair and forwards, with no copy, to a
// socket on a second pair that shares the UMEM; the second peer captures.
func TestForward(t *testing.T) {
	in := testutils.NewVeth(t, testutils.VethOptions{})
	out := testutils.NewVeth(t, testutils.VethOptions{})
	u, err := umem.New(&umem.Options{Checked: true, FrameCount: 8192})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = u.Close() })
	rx := open(t, in, 0, &afxdp.Config{UMEM: u})
	tx := open(t, out, 0, &afxdp.Config{UMEM: u, Steering: afxdp.NoSteering})
	fwd := pipeline.Func(func(p *pipeline.Packet) pipeline.Verdict {
		copy(p.Data[0:6], out.PeerMAC)
		copy(p.Data[6:12], out.HostMAC)
		p.Out = 0
		return pipeline.Forward
	})
	r, err := pipeline.New(pipeline.Config{Socket: rx, Stages: []pipeline.Stage{fwd}, Targets: []*afxdp.Socket{tx}})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, r)
	var src, dst *testutils.PacketSocket
	in.InPeer(t, func() error { src = testutils.OpenPacketSocket(t, in.PeerIndex); return nil })
	out.InPeer(t, func() error { dst = testutils.OpenPacketSocket(t, out.PeerIndex); return nil })
	const n = 200
	for i := range uint32(n) {
		if err := src.Send(frame(in, i)); err != nil {
			t.Fatal(err)
		}
	}
	got := map[uint32]bool{}
	buf := make([]byte, 2048)
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		k, err := dst.Recv(buf, 200*time.Millisecond)
		if err != nil {
			continue
		}
		if seq, ok := seqOf(buf[:k]); ok {
			if !bytes.Equal(buf[0:6], out.PeerMAC) {
				t.Fatalf("forwarded frame %d has destination % x", seq, buf[0:6])
			}
			got[seq] = true
		}
	}
	st := stop()
	if len(got) != n || st.Forwarded != n {
		t.Fatalf("second peer got %d of %d forwarded frames; stats %+v", len(got), n, st)
	}
	if err := tx.Flush(time.Second); err != nil {
		t.Error(err)
	}
	if err := u.Check(); err != nil {
		t.Error(err)
	}
}

// TestMalformed: frames that do not parse are counted, and a stage that
// rejects them makes them Malformed drops.
func TestMalformed(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	s := open(t, v, 0, nil)
	strict := pipeline.Func(func(p *pipeline.Packet) pipeline.Verdict {
		if p.ParseErr != nil {
			return pipeline.Malformed
		}
		return pipeline.Continue
	})
	r, err := pipeline.New(pipeline.Config{Socket: s, Stages: []pipeline.Stage{strict}})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, r)
	peer := v.OpenPeerPacketSocket(t)
	good := frame(v, 1)
	bad := append([]byte{}, good[:20]...) // IPv4 EtherType, 6 bytes of IP header
	for range 10 {
		if err := peer.Send(bad); err != nil {
			t.Fatal(err)
		}
		if err := peer.Send(good); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "20 frames", func() bool { return r.Snapshot().RXPackets >= 20 })
	st := stop()
	if st.Malformed != 10 || st.ParseErrors != 10 || st.Dropped != 20 || st.Stages[0].Malformed != 10 {
		t.Errorf("stats %+v", st)
	}
}

// TestPollAllocs: a batch through parse, the stages of the drop, reflect
// and count paths, transmit and recycle allocates nothing.
func TestPollAllocs(t *testing.T) {
	flows, err := stages.NewFlowCounter(1024)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		stages []pipeline.Stage
	}{
		{"drop", nil},
		{"reflect", []pipeline.Stage{stages.NewAddrSwap(nil)}},
		{"macswap", []pipeline.Stage{macSwap{}}},
		{"count", []pipeline.Stage{flows}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := testutils.NewVeth(t, testutils.VethOptions{})
			s := open(t, v, 0, nil)
			r, err := pipeline.New(pipeline.Config{Socket: s, Stages: tc.stages})
			if err != nil {
				t.Fatal(err)
			}
			peer := v.OpenPeerPacketSocket(t)
			// Queue frames up first: a sender running during the
			// measurement would have its own allocations counted.
			for i := range 1500 {
				if err := peer.Send(frame(v, uint32(i))); err != nil {
					t.Fatal(err)
				}
				if i%100 == 99 {
					time.Sleep(2 * time.Millisecond)
				}
			}
			var got int
			allocs := testing.AllocsPerRun(20, func() {
				n, _ := r.Poll()
				got += n
			})
			if got < 500 {
				t.Fatalf("only %d frames went through the measured polls", got)
			}
			if allocs != 0 {
				t.Errorf("Poll allocates %.2f times per batch, want 0", allocs)
			}
			t.Logf("%d frames through 21 polls", got)
		})
	}
}

// TestBusyPollLoop: with busy polling the Runner never sleeps in the
// poller; it drives the socket with recvfrom and still gets every frame.
func TestBusyPollLoop(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	s := open(t, v, 0, &afxdp.Config{BusyPoll: afxdp.BusyPoll{Prefer: true, Timeout: 50 * time.Microsecond, Budget: 64}})
	r, err := pipeline.New(pipeline.Config{Socket: s, BusyPoll: true})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, r)
	peer := v.OpenPeerPacketSocket(t)
	const n = 300
	for i := range uint32(n) {
		if err := peer.Send(frame(v, i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "all frames", func() bool { return r.Snapshot().RXPackets >= n })
	st := stop()
	ss, _ := s.Stats()
	if st.RXPackets != n || ss.Waits != 0 || ss.RXWakeups == 0 {
		t.Errorf("runner %+v; socket waits %d, busy polls %d: want %d frames, no waits", st, ss.Waits, ss.RXWakeups, n)
	}
}

// rawStage reads only Data; on every other frame (the good ones of the
// test) it asks for the headers.
type rawStage struct{ seen, parsed, stale *int }

func (rawStage) Raw() {}
func (s rawStage) Handle(p *pipeline.Packet) pipeline.Verdict {
	*s.seen++
	if p.Headers.IPv4 || p.ParseErr != nil {
		*s.stale++ // the Runner parsed, or left the last Reparse's headers
	}
	if *s.seen%2 == 1 {
		if p.Reparse() == nil && p.Headers.IPv4 {
			*s.parsed++
		}
	}
	return pipeline.Continue
}

// TestRawStages: a Runner whose stages are all pipeline.Raw does not parse
// (Headers zero, malformed frames not counted as parse errors), clears
// what a stage's Reparse left before the next frame, and one stage that is
// not Raw makes it parse every frame again.
func TestRawStages(t *testing.T) {
	for _, withParsing := range []bool{false, true} {
		t.Run(fmt.Sprintf("parsing=%v", withParsing), func(t *testing.T) {
			v := testutils.NewVeth(t, testutils.VethOptions{})
			s := open(t, v, 0, nil)
			var seen, parsed, stale, headers int
			st := []pipeline.Stage{rawStage{&seen, &parsed, &stale}}
			if withParsing {
				st = append(st, pipeline.Func(func(p *pipeline.Packet) pipeline.Verdict {
					if p.Headers.IPv4 {
						headers++
					}
					return pipeline.Continue
				}))
			}
			r, err := pipeline.New(pipeline.Config{Socket: s, Stages: st})
			if err != nil {
				t.Fatal(err)
			}
			stop := start(t, r)
			peer := v.OpenPeerPacketSocket(t)
			good := frame(v, 1)
			bad := append([]byte{}, good[:20]...)
			for range 10 {
				for _, f := range [][]byte{good, bad} {
					if err := peer.Send(f); err != nil {
						t.Fatal(err)
					}
				}
			}
			waitFor(t, "20 frames", func() bool { return r.Snapshot().RXPackets >= 20 })
			res := stop()
			if seen < 20 || res.Dropped != res.RXPackets {
				t.Fatalf("seen %d, stats %+v", seen, res)
			}
			if !withParsing {
				if stale != 0 || res.ParseErrors != 0 || parsed == 0 {
					t.Errorf("raw: %d frames with headers the stage did not ask for, %d parse errors, %d reparsed; want 0, 0, >0", stale, res.ParseErrors, parsed)
				}
				return
			}
			if res.ParseErrors < 10 || headers < 10 || stale < 20 {
				t.Errorf("parsing: %d parse errors, %d frames with headers, %d seen parsed by the raw stage; want >= 10, 10, 20", res.ParseErrors, headers, stale)
			}
		})
	}
}
