//go:build linux

package workers_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/umem"
	"github.com/xdpkit/xdpkit/workers"
)

// reflectStage sends every frame back with its MACs swapped.
var reflectStage = pipeline.Func(func(p *pipeline.Packet) pipeline.Verdict {
	if len(p.Data) < 12 {
		return pipeline.Drop
	}
	var mac [6]byte
	copy(mac[:], p.Data[0:6])
	copy(p.Data[0:6], p.Data[6:12])
	copy(p.Data[6:12], mac[:])
	return pipeline.Transmit
})

func newReflectSet(t *testing.T, v *testutils.Veth, stopAll bool) *workers.Set {
	t.Helper()
	set, err := workers.New(workers.Config{
		Interface:   v.Host,
		Queues:      []int{0, 1},
		SharedUMEM:  true,
		UMEMOptions: &umem.Options{FrameCount: 8192, FillRingSize: 1024, CompletionRingSize: 1024},
		StopAll:     stopAll,
		Pipeline: func(int) (pipeline.Config, error) {
			return pipeline.Config{Stages: []pipeline.Stage{reflectStage}, IdleWait: 20 * time.Millisecond}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := set.Close(); err != nil {
			t.Error(err)
		}
	})
	return set
}

// sendFlows sends n frames over many flows, so both queues get some.
func sendFlows(t *testing.T, v *testutils.Veth, peer *testutils.PacketSocket, n int) {
	t.Helper()
	for i := range n {
		f := testutils.UDPFrame(v.HostMAC, v.PeerMAC, v.PeerIP.As4(), v.HostIP.As4(), uint16(20000+i%64), 9, []byte("flap"))
		if err := peer.Send(f); err != nil {
			t.Fatal(err)
		}
	}
}

func waitRX(t *testing.T, set *workers.Set, atLeast uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for set.Snapshot().Total.RXPackets < atLeast {
		if time.Now().After(deadline) {
			t.Fatalf("workers received %d frames in 10s, want %d", set.Snapshot().Total.RXPackets, atLeast)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWorkersSurviveLinkFlap: the link goes down and up under traffic;
// no worker stops, and both queues receive after.
func TestWorkersSurviveLinkFlap(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 2})
	set := newReflectSet(t, v, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { _, err := set.Run(ctx); errc <- err }()
	peer := v.OpenPeerPacketSocket(t)
	sendFlows(t, v, peer, 200)
	waitRX(t, set, 200)
	for range 3 {
		testutils.MustRun(t, "ip", "link", "set", "dev", v.Host, "down")
		time.Sleep(30 * time.Millisecond)
		testutils.MustRun(t, "ip", "link", "set", "dev", v.Host, "up")
		select {
		case err := <-errc:
			t.Fatalf("Run returned after a link flap: %v", err)
		case <-time.After(30 * time.Millisecond):
		}
	}
	before := set.Snapshot()
	deadline := time.Now().Add(10 * time.Second)
	for {
		sendFlows(t, v, peer, 64)
		time.Sleep(20 * time.Millisecond)
		now := set.Snapshot()
		if now.PerQueue[0].RXPackets > before.PerQueue[0].RXPackets && now.PerQueue[1].RXPackets > before.PerQueue[1].RXPackets {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the flaps, per queue %v -> %v: a queue receives nothing", before.PerQueue, now.PerQueue)
		}
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if err := set.UMEM().Check(); err != nil {
		t.Error(err)
	}
}

// TestWorkerFailureIsolated: one worker's socket is closed under it; that
// worker stops with ErrClosed, the other goes on; with StopAll, the set
// stops.
func TestWorkerFailureIsolated(t *testing.T) {
	for _, stopAll := range []bool{false, true} {
		v := testutils.NewVeth(t, testutils.VethOptions{Queues: 2})
		set := newReflectSet(t, v, stopAll)
		ctx, cancel := context.WithCancel(context.Background())
		type result struct {
			st  workers.Stats
			err error
		}
		done := make(chan result, 1)
		go func() { st, err := set.Run(ctx); done <- result{st, err} }()
		peer := v.OpenPeerPacketSocket(t)
		sendFlows(t, v, peer, 200)
		waitRX(t, set, 200)
		if err := set.Sockets()[1].Close(); err != nil {
			t.Fatal(err)
		}
		var res result
		if stopAll {
			select {
			case res = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("StopAll: Run still going 10s after a worker failed")
			}
		} else {
			select {
			case res = <-done:
				t.Fatalf("Run returned when one of two workers failed: %v", res.err)
			case <-time.After(200 * time.Millisecond):
			}
			before := set.Snapshot().PerQueue[0].RXPackets
			deadline := time.Now().Add(10 * time.Second)
			for set.Snapshot().PerQueue[0].RXPackets == before {
				if time.Now().After(deadline) {
					t.Fatal("the healthy worker stopped receiving")
				}
				sendFlows(t, v, peer, 64)
				time.Sleep(20 * time.Millisecond)
			}
			cancel()
			res = <-done
		}
		cancel()
		if !errors.Is(res.err, afxdp.ErrClosed) || !strings.Contains(res.err.Error(), "queue 1") {
			t.Errorf("stopAll=%v: Run error %v, want queue 1's ErrClosed", stopAll, res.err)
		}
		if _, ok := res.st.Failed[1]; !ok || len(res.st.Failed) != 1 {
			t.Errorf("stopAll=%v: Stats.Failed = %v, want queue 1 only", stopAll, res.st.Failed)
		}
		if err := set.UMEM().Check(); err != nil {
			t.Error(err)
		}
	}
}
