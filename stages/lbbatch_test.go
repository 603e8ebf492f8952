package stages_test

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/xdpkit/xdpkit/internal/testframes"
	"github.com/xdpkit/xdpkit/packet"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/stages"
)

// lbConfigs are the LoadBalancer configurations the batch tests compare
// Handle and HandleFrames in: every one that takes frames.
var lbConfigs = []struct {
	name string
	vip  string
	v6   bool
	opts stages.LoadBalancerOptions
}{
	{"dsr4", "198.51.100.2:53", false, stages.LoadBalancerOptions{}},
	{"dsr6", "[2001:db8::2]:53", true, stages.LoadBalancerOptions{SrcMAC: testframes.ServerMAC}},
	{"nat4", "198.51.100.2:53", false, stages.LoadBalancerOptions{Mode: stages.LBModeNAT}},
	{"nat6-recompute", "[2001:db8::2]:53", true, stages.LoadBalancerOptions{Mode: stages.LBModeNAT, RecomputeL4Checksum: true}},
	{"dsr4-recompute-tcp", "198.51.100.2:53", false, stages.LoadBalancerOptions{RecomputeL4Checksum: true, Proto: packet.ProtoTCP}},
	{"nat4-no-conntrack-other-drop", "198.51.100.2:53", false, stages.LoadBalancerOptions{Mode: stages.LBModeNAT, Connections: -1, Other: pipeline.Drop}},
	{"dsr4-other-transmit", "198.51.100.2:53", false, stages.LoadBalancerOptions{Other: pipeline.Transmit, Connections: 1 << 14}}, // no evictions: which flow a full window evicts depends on the table's random seed
}

// lbMix returns n frames: flows to the VIP (over a few sources and
// ports, both protocols, a VLAN tag now and then), frames to another
// address or port, and the seeds' odd ones (ICMP, fragments, truncated).
func lbMix(r *rand.Rand, n int, vip netip.AddrPort, v6 bool) [][]byte {
	odd := slices.Collect(func(yield func([]byte) bool) {
		for _, f := range seeds() {
			if !yield(f) {
				return
			}
		}
	})
	slices.SortFunc(odd, bytes.Compare) // map order is random
	var out [][]byte
	for range n {
		switch r.IntN(8) {
		case 0:
			out = append(out, bytes.Clone(odd[r.IntN(len(odd))]))
			continue
		case 1:
			dst := randomAddr(r, v6)
			out = append(out, randomFrame(r, v6, packet.ProtoUDP, randomAddr(r, v6), dst, 1000, vip.Port()))
			continue
		}
		src := randomAddr(r, v6)
		if r.IntN(2) == 0 {
			src = netip.MustParseAddr("192.0.2.1")
			if v6 {
				src = netip.MustParseAddr("2001:db8::1")
			}
		}
		proto := []uint8{packet.ProtoUDP, packet.ProtoTCP}[r.IntN(2)]
		dport := vip.Port()
		if r.IntN(6) == 0 {
			dport++
		}
		f := randomFrame(r, v6, proto, src, vip.Addr(), uint16(1024+r.IntN(6)), dport)
		if r.IntN(6) == 0 { // 802.1Q tag, VLAN 7
			f = slices.Concat(f[:12], []byte{0x81, 0x00, 0x00, 0x07}, f[12:])
		}
		out = append(out, f)
	}
	return out
}

// HandleFrames sends every frame where Handle does, byte for byte, and
// counts the same, in every configuration that takes batches, over
// batches of every size up to twice the stage's chunk.
func TestLoadBalancerHandleFrames(t *testing.T) {
	t.Parallel()
	for _, c := range lbConfigs {
		t.Run(c.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			vip := netip.MustParseAddrPort(c.vip)
			opts := c.opts
			one, batched := newLB(t, c.vip, makeBackends(4, c.v6), &opts), newLB(t, c.vip, makeBackends(4, c.v6), &opts)
			if !batched.TakesFrames() {
				t.Fatal("TakesFrames() = false")
			}
			now := time.Now()
			one.SetNow(now)
			batched.SetNow(now)
			frames := lbMix(r, 3000, vip, c.v6)
			want := make([][]byte, len(frames))
			wantV := make([]pipeline.Verdict, len(frames))
			for i, f := range frames {
				wantV[i], want[i] = handle(t, one, f)
			}
			got := make([][]byte, len(frames))
			for i, f := range frames {
				got[i] = bytes.Clone(f)
			}
			gotV := make([]pipeline.Verdict, len(frames))
			for rest, off := got, 0; len(rest) > 0; {
				n := min(len(rest), 1+r.IntN(128))
				b := &pipeline.FrameBatch{Frames: rest[:n], Verdicts: gotV[off : off+n], Out: make([]int, n)}
				batched.HandleFrames(b)
				rest, off = rest[n:], off+n
			}
			balanced := 0
			for i := range frames {
				if gotV[i] != wantV[i] || !bytes.Equal(got[i], want[i]) {
					t.Fatalf("frame %d: HandleFrames %v\n%x\nHandle %v\n%x\nin\n%x", i, gotV[i], got[i], wantV[i], want[i], frames[i])
				}
				if wantV[i] == pipeline.Transmit && !bytes.Equal(want[i], frames[i]) {
					balanced++
				}
			}
			if balanced < len(frames)/4 {
				t.Errorf("%d of %d frames balanced: the mix does not test the rewrite", balanced, len(frames))
			}
			if a, b := one.Stats(), batched.Stats(); !slices.EqualFunc(a, b, func(x, y stages.BackendStats) bool { return x.Packets == y.Packets }) {
				t.Errorf("Stats: Handle %v, HandleFrames %v", a, b)
			}
			if a, b := one.ConnStats(), batched.ConnStats(); a != b {
				t.Errorf("ConnStats: Handle %+v, HandleFrames %+v", a, b)
			}
		})
	}
}

// With a FastPath or in ipip mode the LoadBalancer needs Packets: it says
// so, and a Runner then parses for it and calls Handle.
func TestLoadBalancerTakesFrames(t *testing.T) {
	t.Parallel()
	ipip := newLB(t, "198.51.100.2:53", makeBackends(2, false), &stages.LoadBalancerOptions{Mode: stages.LBModeIPIP, TunnelSrc: netip.MustParseAddr("192.0.2.254")})
	if ipip.TakesFrames() {
		t.Error("ipip: TakesFrames() = true")
	}
	if dsr := newLB(t, "198.51.100.2:53", makeBackends(2, false), nil); !dsr.TakesFrames() {
		t.Error("dsr: TakesFrames() = false")
	}
}

// HandleFrames allocates nothing, whatever the frames.
func TestLoadBalancerHandleFramesAllocs(t *testing.T) {
	lb := newLB(t, "198.51.100.2:53", makeBackends(4, false), &stages.LoadBalancerOptions{Mode: stages.LBModeNAT})
	r := rand.New(rand.NewPCG(5, 6))
	frames := lbMix(r, 200, netip.MustParseAddrPort("198.51.100.2:53"), false)
	b := &pipeline.FrameBatch{Frames: frames, Verdicts: make([]pipeline.Verdict, len(frames)), Out: make([]int, len(frames))}
	if n := testing.AllocsPerRun(100, func() { lb.HandleFrames(b) }); n != 0 {
		t.Errorf("%v allocations per batch, want 0", n)
	}
}

// Called on a LoadBalancer that does not take batches (ipip), HandleFrames
// hands each frame to Handle, with the same verdicts.
func TestLoadBalancerHandleFramesFallback(t *testing.T) {
	t.Parallel()
	opts := stages.LoadBalancerOptions{Mode: stages.LBModeIPIP, TunnelSrc: netip.MustParseAddr("192.0.2.254")}
	one, batched := newLB(t, "198.51.100.2:53", makeBackends(2, false), &opts), newLB(t, "198.51.100.2:53", makeBackends(2, false), &opts)
	r := rand.New(rand.NewPCG(7, 8))
	frames := lbMix(r, 200, netip.MustParseAddrPort("198.51.100.2:53"), false)
	b := &pipeline.FrameBatch{Frames: make([][]byte, len(frames)), Verdicts: make([]pipeline.Verdict, len(frames)), Out: make([]int, len(frames))}
	for i, f := range frames {
		b.Frames[i] = bytes.Clone(f)
	}
	batched.HandleFrames(b)
	for i, f := range frames {
		if v, _ := handle(t, one, f); v != b.Verdicts[i] {
			t.Fatalf("frame %d: HandleFrames %v, Handle %v", i, b.Verdicts[i], v)
		}
	}
}
