//go:build linux

package pipeline_test

import (
	"testing"
	"time"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/umem"
)

// fuzzRig is one socket on a veth pair, shared by every input of
// FuzzRunner in this process.
type fuzzRig struct {
	v    *testutils.Veth
	u    *umem.UMEM
	s    *afxdp.Socket
	peer *testutils.PacketSocket
	heap []byte
}

// FuzzRunner drives batches of real frames through a Runner whose stage
// does what the input says with each packet: a verdict (continue, drop,
// transmit, forward to a valid or a missing target, malformed) and a
// change of Data (none, empty, shorter, start moved within the frame, up
// to the frame's end, a heap slice, another frame of the UMEM). Whatever
// the stage does, the Runner must not panic, must count every frame once
// (received = transmitted + forwarded + dropped), must count exactly the
// frames to send whose Data left their frame as BadData, and must give
// every frame back.
func FuzzRunner(f *testing.F) {
	f.Add([]byte{0})
	f.Add([]byte{2, 2, 2, 2})
	f.Add([]byte{3, 0x0b, 0x13, 0x1b, 0x23, 0x2b, 0x33})
	f.Add([]byte{4, 0x32, 0x3a, 0x42, 0x4a, 0x52})
	f.Add([]byte{8, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{5, 0xff, 0xfe, 0x7f, 0x80, 0x10})
	rig := newFuzzRig(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		n := int(in[0])%8 + 1
		acts := in[1:]
		if len(acts) == 0 {
			acts = []byte{0}
		}
		u := rig.u
		other, ok := u.Alloc()
		if !ok {
			t.Fatal("no frame free")
		}
		defer func() { _ = u.Free(other) }()
		var i, wantBad int
		stage := pipeline.Func(func(p *pipeline.Packet) pipeline.Verdict {
			a := acts[i%len(acts)]
			i++
			v := [...]pipeline.Verdict{pipeline.Continue, pipeline.Drop, pipeline.Transmit, pipeline.Forward, pipeline.Malformed}[a%5]
			if v == pipeline.Forward {
				p.Out = int(a>>7) * 5 // 0: the socket itself; 5: no such target
			}
			valid := true
			switch (a >> 3) % 7 {
			case 1:
				p.Data, valid = p.Data[:0], false
			case 2:
				p.Data = p.Data[:len(p.Data)/2+1]
			case 3:
				p.Data = p.Data[len(p.Data)/3:]
			case 4:
				p.Data = p.Data[:cap(p.Data)]
			case 5:
				p.Data, valid = rig.heap, false
			case 6:
				p.Data, valid = u.Frame(other)[:60], false
			}
			if !valid && (v == pipeline.Transmit || v == pipeline.Forward) {
				wantBad++
			}
			return v
		})
		r, err := pipeline.New(pipeline.Config{Socket: rig.s, Stages: []pipeline.Stage{stage}, Targets: []*afxdp.Socket{rig.s}})
		if err != nil {
			t.Fatal(err)
		}
		for k := range n {
			if err := rig.peer.Send(frame(rig.v, uint32(k))); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(2 * time.Second)
		for r.Stats().RXPackets < uint64(n) && time.Now().Before(deadline) {
			if _, err := r.Poll(); err != nil {
				t.Fatal(err)
			}
			_ = rig.s.Wait(10 * time.Millisecond)
		}
		st := r.Stats()
		if st.RXPackets < uint64(n) {
			t.Fatalf("received %d of %d frames", st.RXPackets, n)
		}
		if st.TXPackets+st.Forwarded+st.Dropped != st.RXPackets {
			t.Fatalf("counts do not add up: %+v", st)
		}
		if st.BadData != uint64(wantBad) {
			t.Fatalf("BadData %d, want %d: %+v", st.BadData, wantBad, st)
		}
		if err := rig.s.Flush(2 * time.Second); err != nil {
			t.Fatal(err)
		}
		if c := u.Counts(); c.App != 1 || c.TX != 0 {
			t.Fatalf("frames held after the batch: %+v (want only the stage's spare one)", c)
		}
		if err := u.Check(); err != nil {
			t.Fatal(err)
		}
	})
}

// newFuzzRig makes the rig for all inputs; f's cleanup removes it.
func newFuzzRig(t *testing.F) *fuzzRig {
	testutils.RequirePrivileged(t)
	v := testutils.NewVeth(t, testutils.VethOptions{})
	u, err := umem.New(&umem.Options{FrameCount: 2048, FillRingSize: 1024, CompletionRingSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	s, err := afxdp.OpenIndex(v.HostIndex, 0, &afxdp.Config{UMEM: u})
	if err != nil {
		t.Fatal(err)
	}
	r := &fuzzRig{v: v, u: u, s: s, peer: v.OpenPeerPacketSocket(t), heap: make([]byte, 64)}
	t.Cleanup(func() {
		_ = s.Close()
		_ = u.Close()
	})
	return r
}
