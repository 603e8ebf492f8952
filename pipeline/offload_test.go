//go:build linux

package pipeline_test

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/fastpath"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/redirect"
	"github.com/xdpkit/xdpkit/umem"
)

// reflectAndOffload reflects a packet in user space and offloads the same
// for the rest of its flow: the XDP program swaps the MACs and transmits.
type reflectAndOffload struct{ errs []error }

func (s *reflectAndOffload) Name() string { return "reflect-offload" }
func (s *reflectAndOffload) Handle(p *pipeline.Packet) pipeline.Verdict {
	if err := p.Offload(fastpath.Entry{Action: fastpath.Transmit, SwapMAC: true}); err != nil {
		s.errs = append(s.errs, err)
	}
	return macSwap{}.Handle(p)
}

// TestOffloadedFlowStaysInKernel: a stage offloads a flow's reflection on
// its first packet; the peer gets every frame back, most of them
// reflected by the XDP program without reaching the socket, and the
// counters of the pipeline and the fast path add up.
func TestOffloadedFlowStaysInKernel(t *testing.T) {
	v, fp, s := withFastPath(t)
	v.PeerNAPI(t) // XDP_TX frames reach the peer only with NAPI
	stage := &reflectAndOffload{}
	r, err := pipeline.New(pipeline.Config{Socket: s, FastPath: fp, Stages: []pipeline.Stage{stage}})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, r)
	peer := v.OpenPeerPacketSocket(t)
	const n = 200
	got := map[uint32]bool{}
	buf := make([]byte, 2048)
	recv := func(until int, d time.Duration) {
		deadline := time.Now().Add(d)
		for len(got) < until && time.Now().Before(deadline) {
			k, err := peer.Recv(buf, 100*time.Millisecond)
			if err != nil {
				continue
			}
			seq, ok := seqOf(buf[:k])
			if !ok || !bytes.Equal(buf[0:6], v.PeerMAC) {
				continue // our own frames going out, not reflected ones
			}
			got[seq] = true
		}
	}
	// The first frame goes up to the stage, which offloads the flow.
	if err := peer.Send(frame(v, 0)); err != nil {
		t.Fatal(err)
	}
	recv(1, 5*time.Second)
	waitFor(t, "the offload", func() bool { return r.Snapshot().Offloaded == 1 })
	for i := uint32(1); i < n; i++ {
		if err := peer.Send(frame(v, i)); err != nil {
			t.Fatal(err)
		}
	}
	recv(n, 10*time.Second)
	st := stop()
	if len(got) != n {
		t.Fatalf("peer got %d of %d frames back; pipeline %+v", len(got), n, st)
	}
	kernel, err := fp.Counters()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("user space: %d received, %d offloaded; kernel: %d transmitted", st.RXPackets, st.Offloaded, kernel.FlowTransmitted)
	if st.RXPackets != 1 || st.Offloaded != 1 || st.Stages[0].Offloaded != 1 || len(stage.errs) != 0 {
		t.Errorf("pipeline %+v, errors %v: want the first frame only, offloaded once", st, stage.errs)
	}
	if kernel.FlowTransmitted != n-1 {
		t.Errorf("fast path transmitted %d, want %d", kernel.FlowTransmitted, n-1)
	}
	_, es, err := fp.Lookup(flowOf(t, frame(v, 0)))
	if err != nil || es.Packets != n-1 {
		t.Errorf("entry: %+v, %v; want %d packets", es, err, n-1)
	}
}

// withFastPath makes a veth pair and a socket on it whose redirect
// program carries a fast path.
func withFastPath(t *testing.T) (*testutils.Veth, *fastpath.FastPath, *afxdp.Socket) {
	t.Helper()
	v := testutils.NewVeth(t, testutils.VethOptions{})
	fp, err := fastpath.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fp.Close() }) // after the socket's (cleanups run last first)
	s := open(t, v, 0, &afxdp.Config{UMEMOptions: &umem.Options{Checked: true}, Redirect: &redirect.Options{FastPath: fp}})
	return v, fp, s
}

func flowOf(t *testing.T, f []byte) fastpath.Flow {
	t.Helper()
	var p pipeline.Packet
	p.Data = f
	if err := p.Reparse(); err != nil {
		t.Fatal(err)
	}
	fl, ok := p.Flow()
	if !ok {
		t.Fatal("no flow")
	}
	return fl
}

// TestOffloadErrors: without a fast path, or for a packet without a
// 5-tuple, Offload fails and says why; failures are counted.
func TestOffloadErrors(t *testing.T) {
	var p pipeline.Packet
	if err := p.Offload(fastpath.Entry{Action: fastpath.Drop}); !errors.Is(err, pipeline.ErrNoFastPath) {
		t.Fatalf("Offload outside a Runner: %v, want ErrNoFastPath", err)
	}
	v, fp, s := withFastPath(t)
	var errs []error
	stage := pipeline.Func(func(p *pipeline.Packet) pipeline.Verdict {
		errs = append(errs, p.Offload(fastpath.Entry{Action: fastpath.Drop}))
		errs = append(errs, p.Offload(fastpath.Entry{Action: fastpath.Encap})) // invalid: no tunnel
		return pipeline.Drop
	})
	r, err := pipeline.New(pipeline.Config{Socket: s, FastPath: fp, Stages: []pipeline.Stage{stage}})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, r)
	peer := v.OpenPeerPacketSocket(t)
	arp := append(append(append([]byte{}, v.HostMAC...), v.PeerMAC...), 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1)
	arp = append(arp, make([]byte, 46)...)
	if err := peer.Send(arp); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the ARP frame", func() bool { return r.Snapshot().RXPackets >= 1 })
	if err := peer.Send(frame(v, 1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the UDP frame", func() bool { return r.Snapshot().RXPackets >= 2 })
	st := stop()
	if len(errs) != 4 || !errors.Is(errs[0], pipeline.ErrNoFlow) || !errors.Is(errs[1], pipeline.ErrNoFlow) ||
		errs[2] != nil || !errors.Is(errs[3], fastpath.ErrInvalid) {
		t.Fatalf("errors %v, want ErrNoFlow twice (ARP), then nil and ErrInvalid (UDP)", errs)
	}
	if st.OffloadErrors != 3 || st.Offloaded != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestBlockSource: a detector blocks the source of the first packet it
// sees; the source's later frames are dropped in XDP.
func TestBlockSource(t *testing.T) {
	v, fp, s := withFastPath(t)
	var errs []error
	detector := pipeline.Func(func(p *pipeline.Packet) pipeline.Verdict {
		if err := p.BlockSource(); err != nil {
			errs = append(errs, err)
		}
		return pipeline.Drop
	})
	r, err := pipeline.New(pipeline.Config{Socket: s, FastPath: fp, Stages: []pipeline.Stage{detector}})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, r)
	peer := v.OpenPeerPacketSocket(t)
	if err := peer.Send(frame(v, 0)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the block", func() bool { return r.Snapshot().Offloaded == 1 })
	const n = 50
	for i := uint32(1); i <= n; i++ {
		if err := peer.Send(frame(v, i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the kernel to drop the rest", func() bool {
		c, err := fp.Counters()
		return err == nil && c.Blocked == n
	})
	st := stop()
	if st.RXPackets != 1 || st.Offloaded != 1 || len(errs) != 0 {
		t.Fatalf("pipeline %+v, errors %v: want only the first frame", st, errs)
	}
	if pol := fp.Policies(); len(pol) != 1 || pol[netip.PrefixFrom(v.PeerIP, 32)] != fastpath.Block {
		t.Fatalf("policies %v, want %s/32 blocked", pol, v.PeerIP)
	}
}
