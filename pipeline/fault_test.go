//go:build linux

package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/umem"
)

// queueFrames sends n test frames from the peer and waits until the
// socket's RX ring holds them (or 5s pass).
func queueFrames(t *testing.T, v *testutils.Veth, s *afxdp.Socket, n int) {
	t.Helper()
	peer := v.OpenPeerPacketSocket(t)
	for i := range n {
		if err := peer.Send(frame(v, uint32(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Wait(5 * time.Second); err != nil {
		t.Fatalf("wait: %v", err)
	}
	time.Sleep(20 * time.Millisecond) // the rest of the batch
}

// TestTransmitErrorIsTransient: frames that cannot be sent because the
// link went down are dropped and counted, and Poll carries on; with
// StopOnTXError, Poll returns the error. Either way no frame is lost.
func TestTransmitErrorIsTransient(t *testing.T) {
	for _, stop := range []bool{false, true} {
		v := testutils.NewVeth(t, testutils.VethOptions{})
		u, err := umem.New(&umem.Options{FrameCount: 2048, FillRingSize: 1024})
		if err != nil {
			t.Fatal(err)
		}
		defer u.Close()
		s := open(t, v, 0, &afxdp.Config{UMEM: u})
		r, err := pipeline.New(pipeline.Config{Socket: s, Stages: []pipeline.Stage{macSwap{}}, StopOnTXError: stop})
		if err != nil {
			t.Fatal(err)
		}
		queueFrames(t, v, s, 10)
		testutils.MustRun(t, "ip", "link", "set", "dev", v.Host, "down")
		n, err := r.Poll()
		st := r.Stats()
		if stop {
			if !errors.Is(err, unix.ENETDOWN) {
				t.Errorf("StopOnTXError: Poll = %d, %v; want ENETDOWN", n, err)
			}
		} else if err != nil || n == 0 || st.TXErrors != 1 {
			t.Errorf("Poll with the link down = %d, %v, TXErrors %d; want frames, no error, 1 TX error", n, err, st.TXErrors)
		}
		testutils.MustRun(t, "ip", "link", "set", "dev", v.Host, "up")
		for range 5 {
			if _, err := r.Poll(); err != nil {
				t.Fatalf("Poll after the link came back: %v", err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		checkFree(t, u)
	}
}

func checkFree(t *testing.T, u *umem.UMEM) {
	t.Helper()
	if err := u.Check(); err != nil {
		t.Error(err)
	}
	if c := u.Counts(); c.Free != c.Total {
		t.Errorf("counts %+v, want all free", c)
	}
}

// TestCloseWhileRunning: closing the socket from another goroutine ends
// Run with ErrClosed, without a fault, and the frames the Runner held are
// back in the UMEM.
func TestCloseWhileRunning(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	u, err := umem.New(&umem.Options{FrameCount: 2048, FillRingSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	peer := v.OpenPeerPacketSocket(t)
	stopFlood := make(chan struct{})
	defer close(stopFlood)
	go func() {
		for {
			select {
			case <-stopFlood:
				return
			default:
				_ = peer.Send(frame(v, 1))
			}
		}
	}()
	rounds := 50
	if testing.Short() {
		rounds = 10
	}
	for round := range rounds {
		s, err := afxdp.OpenIndex(v.HostIndex, 0, &afxdp.Config{UMEM: u})
		if err != nil {
			t.Fatal(err)
		}
		r, err := pipeline.New(pipeline.Config{Socket: s, Stages: []pipeline.Stage{macSwap{}}})
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { _, err := r.Run(context.Background()); errc <- err }()
		time.Sleep(time.Duration(1+round%5) * time.Millisecond)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errc:
			if !errors.Is(err, afxdp.ErrClosed) {
				t.Fatalf("round %d: Run = %v, want ErrClosed", round, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: Run still going 5s after Close", round)
		}
		checkFree(t, u)
	}
}

// TestStageMovesData: a stage may move a packet's start and end within
// its frame (strip a header), and the Runner sends exactly what Data is;
// Data left empty or pointing outside its frame is dropped and counted,
// never sent.
func TestStageMovesData(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	u, err := umem.New(&umem.Options{FrameCount: 2048, FillRingSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	s := open(t, v, 0, &afxdp.Config{UMEM: u})
	elsewhere, _ := u.Alloc()
	heap := make([]byte, 64)
	var mode string
	stage := pipeline.Func(func(p *pipeline.Packet) pipeline.Verdict {
		switch mode {
		case "strip":
			// Swap the MACs and drop the 4 bytes after them, as untagging a
			// VLAN frame does: the packet now starts 4 bytes into the frame.
			var mac [6]byte
			copy(mac[:], p.Data[0:6])
			copy(p.Data[0:6], p.Data[6:12])
			copy(p.Data[6:12], mac[:])
			copy(p.Data[4:16], p.Data[0:12])
			p.Data = p.Data[4:]
		case "empty":
			p.Data = p.Data[:0]
		case "heap":
			p.Data = heap
		case "other frame":
			p.Data = u.Frame(elsewhere)[:60]
		}
		return pipeline.Transmit
	})
	r, err := pipeline.New(pipeline.Config{Socket: s, Stages: []pipeline.Stage{stage}})
	if err != nil {
		t.Fatal(err)
	}
	peer := v.OpenPeerPacketSocket(t)
	for _, m := range []string{"strip", "empty", "heap", "other frame"} {
		mode = m
		before := r.Stats()
		sent := frame(v, 7)
		if err := peer.Send(sent); err != nil {
			t.Fatal(err)
		}
		if err := s.Wait(5 * time.Second); err != nil {
			t.Fatal(err)
		}
		if n, err := r.Poll(); n != 1 || err != nil {
			t.Fatalf("%s: Poll = %d, %v", m, n, err)
		}
		st := r.Stats()
		buf := make([]byte, 2048)
		k, rerr := peer.Recv(buf, 300*time.Millisecond)
		if m == "strip" {
			if rerr != nil || k != len(sent)-4 {
				t.Errorf("strip: peer got %d bytes (%v), want %d", k, rerr, len(sent)-4)
			} else if seq, ok := seqOf(buf[:k]); !ok || seq != 7 {
				t.Errorf("strip: the frame sent is not the moved packet: % x", buf[:k])
			}
			continue
		}
		if st.BadData != before.BadData+1 || st.TXPackets != before.TXPackets {
			t.Errorf("%s: stats %+v -> %+v, want one more BadData and nothing sent", m, before, st)
		}
		for rerr == nil {
			if _, ok := seqOf(buf[:k]); ok {
				t.Errorf("%s: the peer got a frame", m)
			}
			k, rerr = peer.Recv(buf, 100*time.Millisecond)
		}
	}
	if err := u.Free(elsewhere); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkFree(t, u)
}

// TestRunDrainsOnCancel: frames the kernel delivered before ctx was done
// get their verdicts. Run with a cancelled context, and RunAll too, still
// process what is on the RX ring, over several batches, so stopping a
// tool loses none of them.
func TestRunDrainsOnCancel(t *testing.T) {
	const frames, batch = 200, 64
	for _, all := range []bool{false, true} {
		v := testutils.NewVeth(t, testutils.VethOptions{})
		u, err := umem.New(&umem.Options{FrameCount: 2048, FillRingSize: 1024})
		if err != nil {
			t.Fatal(err)
		}
		defer u.Close()
		s := open(t, v, 0, &afxdp.Config{UMEM: u})
		r, err := pipeline.New(pipeline.Config{Socket: s, Final: pipeline.Drop, BatchSize: batch})
		if err != nil {
			t.Fatal(err)
		}
		peer := v.OpenPeerPacketSocket(t)
		for i := range frames {
			if err := peer.Send(frame(v, uint32(i))); err != nil {
				t.Fatal(err)
			}
		}
		// Wait until the XDP program has redirected them all to the socket.
		deadline := time.Now().Add(5 * time.Second)
		for testutils.EthtoolStats(t, v.Host).Get(t, "rx_queue_0_xdp_redirect") < frames {
			if time.Now().After(deadline) {
				t.Fatalf("%d frames redirected after 5s, want %d", testutils.EthtoolStats(t, v.Host).Get(t, "rx_queue_0_xdp_redirect"), frames)
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(10 * time.Millisecond) // the redirect flush at the end of the NAPI poll

		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var st pipeline.Stats
		if all {
			var sts []pipeline.Stats
			sts, err = pipeline.RunAll(ctx, r)
			st = sts[0]
		} else {
			st, err = r.Run(ctx)
		}
		if err != nil || st.RXPackets != frames || st.Dropped != frames {
			t.Errorf("RunAll %v with ctx done: %+v, %v; want %d frames received and dropped", all, st, err, frames)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		checkFree(t, u)
	}
}

// TestDeviceGone: the interface is deleted under a running Runner that
// only drops (so it never transmits, where a send would say ENXIO): Run
// ends with an error within a few idle waits, and every frame is back.
// The link going down before that ends nothing.
func TestDeviceGone(t *testing.T) {
	for _, st := range [][]pipeline.Stage{nil, {macSwap{}}} {
		t.Run(fmt.Sprintf("stages=%d", len(st)), func(t *testing.T) {
			v := testutils.NewVeth(t, testutils.VethOptions{})
			u, err := umem.New(&umem.Options{FrameCount: 2048, FillRingSize: 1024})
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			s, err := afxdp.OpenIndex(v.HostIndex, 0, &afxdp.Config{UMEM: u})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			r, err := pipeline.New(pipeline.Config{Socket: s, Stages: st, IdleWait: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() { _, err := r.Run(context.Background()); errc <- err }()
			time.Sleep(50 * time.Millisecond)
			// A link that is only down ends nothing.
			testutils.MustRun(t, "ip", "link", "set", v.Host, "down")
			select {
			case err := <-errc:
				t.Fatalf("Run ended with the link down: %v", err)
			case <-time.After(100 * time.Millisecond): // five idle waits
			}
			testutils.MustRun(t, "ip", "link", "set", v.Host, "up")
			testutils.MustRun(t, "ip", "link", "del", v.Host)
			select {
			case err := <-errc:
				if !errors.Is(err, unix.ENXIO) {
					t.Errorf("Run = %v, want the device's ENXIO", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Run still going 5s after the interface was deleted")
			}
			if err := s.Close(); err != nil {
				t.Logf("Close after the device went: %v", err)
			}
			checkFree(t, u)
		})
	}
}
