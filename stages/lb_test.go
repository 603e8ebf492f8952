package stages_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpkit/xdpkit/internal/testframes"
	"github.com/xdpkit/xdpkit/packet"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/stages"
)

// makeBackends returns n backends of the given family: 10.0.0.1... or
// 2001:db8:1::a..., at 02:00:00:00:01:01...
func makeBackends(n int, v6 bool) []stages.Backend {
	bs := make([]stages.Backend, n)
	for i := range bs {
		ip := netip.AddrFrom4([4]byte{10, 0, 0, byte(1 + i)})
		if v6 {
			ip = netip.MustParseAddr(fmt.Sprintf("2001:db8:1::%x", 10+i))
		}
		bs[i] = stages.Backend{IP: ip, MAC: net.HardwareAddr{2, 0, 0, 0, 1, byte(1 + i)}}
	}
	return bs
}

// nat makes a LoadBalancer rewrite addresses, for the tests that check
// the rewrite.
var nat = &stages.LoadBalancerOptions{Mode: stages.LBModeNAT}

func newLB(tb testing.TB, vip string, backends []stages.Backend, opts *stages.LoadBalancerOptions) *stages.LoadBalancer {
	tb.Helper()
	lb, err := stages.NewLoadBalancer(netip.MustParseAddrPort(vip), backends, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return lb
}

// TestLoadBalancerRewrite sends each frame to a single backend and checks
// the result byte for byte against the frame gopacket built for the
// backend, then checks its checksums by recomputation and with gopacket.
func TestLoadBalancerRewrite(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		vip      string
		frame    []byte
		want     []byte
		recomp   bool
		partial  bool
		noSrcMAC bool
	}{
		{name: "udp4", vip: "198.51.100.2:53", frame: testframes.UDP4, want: udp4ToBackend},
		{name: "udp4 without checksum", vip: "198.51.100.2:53", frame: udp4NoCsum, want: udp4NoCsumToBackend},
		{name: "tcp4", vip: "198.51.100.2:80", frame: tcp4, want: tcp4ToBackend},
		{name: "udp6", vip: "[2001:db8::2]:53", frame: testframes.UDP6, want: udp6ToBackend},
		{name: "tcp6", vip: "[2001:db8::2]:443", frame: testframes.TCP6, want: tcp6ToBackend},
		{name: "source MAC from the frame", vip: "198.51.100.2:80", frame: tcp4, want: tcp4ToBackend, noSrcMAC: true},
		{name: "udp4 recomputed", vip: "198.51.100.2:53", frame: testframes.UDP4, want: udp4ToBackend, recomp: true},
		{name: "udp4 partial checksum recomputed", vip: "198.51.100.2:53", frame: testframes.UDP4, want: udp4ToBackend, recomp: true, partial: true},
		{name: "tcp6 partial checksum recomputed", vip: "[2001:db8::2]:443", frame: testframes.TCP6, want: tcp6ToBackend, recomp: true, partial: true},
		{name: "udp4 without checksum recomputed", vip: "198.51.100.2:53", frame: udp4NoCsum, want: udp4NoCsumToBackend, recomp: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			be := stages.Backend{IP: netip.MustParseAddr("10.0.0.1"), MAC: backendMAC}
			if c.frame[13] == 0xdd { // IPv6
				be.IP = netip.MustParseAddr("2001:db8:1::a")
			}
			opts := &stages.LoadBalancerOptions{Mode: stages.LBModeNAT, SrcMAC: testframes.ServerMAC, RecomputeL4Checksum: c.recomp}
			if c.noSrcMAC {
				opts.SrcMAC = nil
			}
			lb := newLB(t, c.vip, []stages.Backend{be}, opts)
			frame := c.frame
			if c.partial {
				frame = partial(frame)
			}
			v, got := handle(t, lb, frame)
			if v != pipeline.Transmit || !bytes.Equal(got, c.want) {
				t.Fatalf("Handle = %v\n%x, want Transmit\n%x", v, got, c.want)
			}
			if ipOK, l4OK, _ := checksumsValid(got); !ipOK || !l4OK {
				t.Errorf("checksums by recomputation: IP %v, L4 %v", ipOK, l4OK)
			}
			testframes.CheckChecksums(t, got)
			if st := lb.Stats(); len(st) != 1 || st[0].Packets != 1 || st[0].IP != be.IP {
				t.Errorf("Stats() = %+v", st)
			}
		})
	}
}

// TestLoadBalancerDSR: in the default mode only the Ethernet header
// changes: the packet goes to the backend's MAC address still addressed
// to the VIP, checksums untouched (or a partial one completed).
func TestLoadBalancerDSR(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		vip     string
		frame   []byte
		partial bool
	}{
		{"udp4", "198.51.100.2:53", testframes.UDP4, false},
		{"udp4 without checksum", "198.51.100.2:53", udp4NoCsum, false},
		{"tcp4", "198.51.100.2:80", tcp4, false},
		{"udp6", "[2001:db8::2]:53", testframes.UDP6, false},
		{"tcp6", "[2001:db8::2]:443", testframes.TCP6, false},
		{"tcp4 partial checksum completed", "198.51.100.2:80", tcp4, true},
		{"udp6 partial checksum completed", "[2001:db8::2]:53", testframes.UDP6, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			v6 := c.frame[13] == 0xdd
			bs := makeBackends(3, v6)
			lb := newLB(t, c.vip, bs, &stages.LoadBalancerOptions{SrcMAC: testframes.ServerMAC, RecomputeL4Checksum: c.partial})
			in := c.frame
			if c.partial {
				in = partial(in)
			}
			p := &pipeline.Packet{Data: bytes.Clone(in)}
			p.Reparse()
			tuple := stages.Tuple{Proto: p.Headers.IPProto, Src: netip.AddrPortFrom(p.Headers.SrcIP, p.Headers.SrcPort), Dst: netip.AddrPortFrom(p.Headers.DstIP, p.Headers.DstPort)}
			if v := lb.Handle(p); v != pipeline.Transmit {
				t.Fatalf("Handle = %v, want Transmit", v)
			}
			want := bytes.Clone(c.frame) // complete checksums, as the partial one becomes
			copy(want[0:6], bs[lb.Backend(tuple)].MAC)
			copy(want[6:12], testframes.ServerMAC)
			if !bytes.Equal(p.Data, want) {
				t.Fatalf("got\n%x\nwant\n%x", p.Data, want)
			}
			if p.Headers.DstIP != netip.MustParseAddrPort(c.vip).Addr() {
				t.Errorf("Headers.DstIP = %v, want the VIP", p.Headers.DstIP)
			}
			testframes.CheckChecksums(t, p.Data)
		})
	}
	var m stages.LBMode
	for _, name := range []string{"dsr", "nat"} {
		if err := m.UnmarshalText([]byte(name)); err != nil || m.String() != name {
			t.Errorf("UnmarshalText(%q): %v, %v", name, m, err)
		}
	}
	if err := m.UnmarshalText([]byte("tun")); err == nil {
		t.Error("UnmarshalText(tun): no error")
	}
}

// TestLoadBalancerPartialChecksum: without RecomputeL4Checksum a partial
// checksum stays partial, and the backend would drop the frame.
func TestLoadBalancerPartialChecksum(t *testing.T) {
	t.Parallel()
	lb := newLB(t, "198.51.100.2:53", makeBackends(1, false), nat)
	_, got := handle(t, lb, partial(testframes.UDP4))
	if _, l4OK, _ := checksumsValid(got); l4OK {
		t.Error("an incrementally updated partial checksum verifies; the test frame is wrong")
	}
}

func TestLoadBalancerOtherFrames(t *testing.T) {
	t.Parallel()
	tcpOnly := &stages.LoadBalancerOptions{Proto: packet.ProtoTCP}
	for _, c := range []struct {
		name  string
		vip   string
		opts  *stages.LoadBalancerOptions
		bs    []stages.Backend
		frame []byte
		want  pipeline.Verdict
	}{
		{"other port", "198.51.100.2:54", nil, makeBackends(2, false), testframes.UDP4, pipeline.Continue},
		{"other address", "198.51.100.3:53", nil, makeBackends(2, false), testframes.UDP4, pipeline.Continue},
		{"other family", "[2001:db8::2]:53", nil, makeBackends(2, true), testframes.UDP4, pipeline.Continue},
		{"other protocol", "198.51.100.2:53", tcpOnly, makeBackends(2, false), testframes.UDP4, pipeline.Continue},
		{"icmp to the vip", "198.51.100.2:53", nil, makeBackends(2, false), testframes.ICMP4, pipeline.Continue},
		{"non-first fragment", "198.51.100.2:53", nil, makeBackends(2, false), testframes.Frag4Rest, pipeline.Continue},
		{"arp", "198.51.100.2:53", nil, makeBackends(2, false), noReply["arp"], pipeline.Continue},
		{"other: drop", "198.51.100.2:54", &stages.LoadBalancerOptions{Other: pipeline.Drop}, makeBackends(2, false), testframes.UDP4, pipeline.Drop},
		{"no backends", "198.51.100.2:53", nil, nil, testframes.UDP4, pipeline.Drop},
		{"truncated", "198.51.100.2:53", nil, makeBackends(2, false), testframes.UDP4[:40], pipeline.Malformed},
		{"empty", "198.51.100.2:53", nil, makeBackends(2, false), nil, pipeline.Malformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			lb := newLB(t, c.vip, c.bs, c.opts)
			v, got := handle(t, lb, c.frame)
			if v != c.want || !bytes.Equal(got, c.frame) {
				t.Errorf("Handle = %v\n%x, want %v, untouched", v, got, c.want)
			}
		})
	}
}

func TestNewLoadBalancerErrors(t *testing.T) {
	t.Parallel()
	v4, v6 := makeBackends(2, false), makeBackends(2, true)
	for _, c := range []struct {
		name string
		vip  netip.AddrPort
		bs   []stages.Backend
		opts *stages.LoadBalancerOptions
	}{
		{"invalid vip", netip.AddrPort{}, v4, nil},
		{"port 0", netip.MustParseAddrPort("10.1.1.1:0"), v4, nil},
		{"zone", netip.AddrPortFrom(netip.MustParseAddr("fe80::1%eth0"), 80), v6, nil},
		{"mixed families", netip.MustParseAddrPort("10.1.1.1:80"), v6, nil},
		{"backend without MAC", netip.MustParseAddrPort("10.1.1.1:80"), []stages.Backend{{IP: v4[0].IP}}, nil},
		{"invalid backend IP", netip.MustParseAddrPort("10.1.1.1:80"), []stages.Backend{{MAC: v4[0].MAC}}, nil},
		{"duplicate backend", netip.MustParseAddrPort("10.1.1.1:80"), []stages.Backend{v4[0], v4[0]}, nil},
		{"protocol", netip.MustParseAddrPort("10.1.1.1:80"), v4, &stages.LoadBalancerOptions{Proto: packet.ProtoICMP}},
		{"source MAC", netip.MustParseAddrPort("10.1.1.1:80"), v4, &stages.LoadBalancerOptions{SrcMAC: net.HardwareAddr{1, 2, 3}}},
		{"table size not a power of 2", netip.MustParseAddrPort("10.1.1.1:80"), v4, &stages.LoadBalancerOptions{TableSize: 5000}},
		{"table too small", netip.MustParseAddrPort("10.1.1.1:80"), v4, &stages.LoadBalancerOptions{TableSize: 512}},
		{"table too large", netip.MustParseAddrPort("10.1.1.1:80"), v4, &stages.LoadBalancerOptions{TableSize: 1 << 23}},
		{"verdict", netip.MustParseAddrPort("10.1.1.1:80"), v4, &stages.LoadBalancerOptions{Other: 99}},
		{"mode", netip.MustParseAddrPort("10.1.1.1:80"), v4, &stages.LoadBalancerOptions{Mode: 7}},
		{"connections", netip.MustParseAddrPort("10.1.1.1:80"), v4, &stages.LoadBalancerOptions{Connections: -2}},
		{"too many connections", netip.MustParseAddrPort("10.1.1.1:80"), v4, &stages.LoadBalancerOptions{Connections: 1 << 25}},
		{"idle time", netip.MustParseAddrPort("10.1.1.1:80"), v4, &stages.LoadBalancerOptions{ConnIdle: -time.Second}},
	} {
		if _, err := stages.NewLoadBalancer(c.vip, c.bs, c.opts); err == nil {
			t.Errorf("%s: no error", c.name)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
	}
	// IPv4-mapped addresses are taken as IPv4.
	mapped := netip.AddrPortFrom(netip.MustParseAddr("::ffff:198.51.100.2"), 53)
	lb, err := stages.NewLoadBalancer(mapped, []stages.Backend{{IP: netip.MustParseAddr("::ffff:10.0.0.1"), MAC: backendMAC}}, nat)
	if err != nil {
		t.Fatal(err)
	}
	if v, got := handle(t, lb, testframes.UDP4); v != pipeline.Transmit || !bytes.Equal(got[30:34], []byte{10, 0, 0, 1}) {
		t.Errorf("mapped VIP: Handle = %v, %x", v, got)
	}
}

// randomTuples returns n random UDP and TCP flows to vip.
func randomTuples(r *rand.Rand, n int, vip netip.AddrPort) []stages.Tuple {
	ts := make([]stages.Tuple, n)
	for i := range ts {
		proto := uint8(packet.ProtoUDP)
		if r.IntN(2) == 0 {
			proto = packet.ProtoTCP
		}
		ts[i] = stages.Tuple{Proto: proto, Src: netip.AddrPortFrom(randomAddr(r, vip.Addr().Is6()), uint16(r.Uint32())), Dst: vip}
	}
	return ts
}

// TestLoadBalancerSpread: 100k random flows over 4 backends, each within
// ±15% of a quarter (the table's slots split within about ±2%).
func TestLoadBalancerSpread(t *testing.T) {
	t.Parallel()
	for _, v6 := range []bool{false, true} {
		vip := netip.MustParseAddrPort("198.51.100.2:53")
		if v6 {
			vip = netip.MustParseAddrPort("[2001:db8::2]:53")
		}
		lb := newLB(t, vip.String(), makeBackends(4, v6), nil)
		counts := make([]int, 4)
		const flows = 100_000
		for _, tu := range randomTuples(rand.New(rand.NewPCG(21, 22)), flows, vip) {
			counts[lb.Backend(tu)]++
		}
		worst := 0.0
		for _, n := range counts {
			worst = max(worst, math.Abs(float64(n)/(flows/4)-1))
		}
		t.Logf("IPv6 %v: flows per backend %v, worst %.1f%% off even", v6, counts, 100*worst)
		if worst > 0.15 {
			t.Errorf("flows per backend %v: %.1f%% off even, want at most 15%%", counts, 100*worst)
		}
	}
}

// TestLoadBalancerConsistent: removing a backend moves exactly its flows,
// spread over the others; adding it back restores every flow's backend;
// adding a new one takes flows only to itself. Flows are compared by
// backend address, since indexes shift.
func TestLoadBalancerConsistent(t *testing.T) {
	t.Parallel()
	vip := netip.MustParseAddrPort("198.51.100.2:53")
	bs := makeBackends(5, false)
	lb := newLB(t, vip.String(), bs[:4], nil)
	tuples := randomTuples(rand.New(rand.NewPCG(23, 24)), 100_000, vip)
	assign := func() []netip.Addr {
		ips := make([]netip.Addr, len(tuples))
		backends := lb.Backends()
		for i, tu := range tuples {
			ips[i] = backends[lb.Backend(tu)].IP
		}
		return ips
	}
	before := assign()

	removed := bs[1].IP
	if err := lb.RemoveBackend(removed); err != nil {
		t.Fatal(err)
	}
	after := assign()
	moved, others := 0, map[netip.Addr]int{}
	for i := range tuples {
		switch {
		case before[i] == removed:
			others[after[i]]++
		case after[i] != before[i]:
			moved++
		}
	}
	t.Logf("after removing %v: %d flows of other backends moved; its flows went to %v", removed, moved, others)
	if moved != 0 {
		t.Errorf("removing a backend moved %d flows of the others, want 0", moved)
	}
	if len(others) != 3 {
		t.Errorf("the removed backend's flows went to %v, want all 3 others", others)
	}

	if err := lb.AddBackend(bs[1]); err != nil {
		t.Fatal(err)
	}
	if again := assign(); !equalAddrs(again, before) {
		t.Error("adding the backend back did not restore every flow's backend")
	}

	if err := lb.AddBackend(bs[4]); err != nil {
		t.Fatal(err)
	}
	added, wrong := 0, 0
	for i, ip := range assign() {
		switch ip {
		case before[i]:
		case bs[4].IP:
			added++
		default:
			wrong++
		}
	}
	t.Logf("adding %v took %d flows (%.1f%%)", bs[4].IP, added, 100*float64(added)/float64(len(tuples)))
	if wrong != 0 || added == 0 {
		t.Errorf("adding a backend: %d flows moved to it, %d between the others (want 0)", added, wrong)
	}

	if err := lb.RemoveBackend(netip.MustParseAddr("10.9.9.9")); !errors.Is(err, stages.ErrNoBackend) {
		t.Errorf("RemoveBackend of a stranger: %v, want ErrNoBackend", err)
	}
	if err := lb.AddBackend(bs[0]); err == nil {
		t.Error("AddBackend of a duplicate: no error")
	}
}

func equalAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestLoadBalancerAgree: LoadBalancers with the same seed and backends,
// given in another order, send every flow to the same backend; another
// seed does not.
func TestLoadBalancerAgree(t *testing.T) {
	t.Parallel()
	vip := netip.MustParseAddrPort("[2001:db8::2]:443")
	bs := makeBackends(4, true)
	rev := []stages.Backend{bs[3], bs[2], bs[1], bs[0]}
	a := newLB(t, vip.String(), bs, &stages.LoadBalancerOptions{Seed: 7})
	b := newLB(t, vip.String(), rev, &stages.LoadBalancerOptions{Seed: 7})
	c := newLB(t, vip.String(), bs, &stages.LoadBalancerOptions{Seed: 8})
	differ := 0
	for _, tu := range randomTuples(rand.New(rand.NewPCG(25, 26)), 10_000, vip) {
		ia, ib, ic := a.Backends()[a.Backend(tu)].IP, b.Backends()[b.Backend(tu)].IP, c.Backends()[c.Backend(tu)].IP
		if ia != ib {
			t.Fatalf("%v: %v and %v", tu, ia, ib)
		}
		if ia != ic {
			differ++
		}
	}
	if differ < 5000 { // three in four, by chance
		t.Errorf("another seed changed the backend of only %d of 10000 flows", differ)
	}
}

// TestLoadBalancerFlows sends random frames through a 4-backend LB: each
// goes to the backend Backend names for its 5-tuple, every time, with
// right checksums, and the counters add up.
func TestLoadBalancerFlows(t *testing.T) {
	t.Parallel()
	for _, v6 := range []bool{false, true} {
		vip := netip.MustParseAddrPort("198.51.100.2:8080")
		if v6 {
			vip = netip.MustParseAddrPort("[2001:db8::2]:8080")
		}
		bs := makeBackends(4, v6)
		lb := newLB(t, vip.String(), bs, &stages.LoadBalancerOptions{Mode: stages.LBModeNAT, SrcMAC: testframes.ServerMAC})
		r := rand.New(rand.NewPCG(27, 28))
		want := make([]uint64, 4)
		for i, tu := range randomTuples(r, 2000, vip) {
			frame := randomFrame(r, v6, tu.Proto, tu.Src.Addr(), vip.Addr(), tu.Src.Port(), vip.Port())
			b := lb.Backend(tu)
			for range 2 { // the same flow twice: the same backend
				v, got := handle(t, lb, frame)
				var h packet.Headers
				if err := packet.Parse(got, &h); v != pipeline.Transmit || err != nil {
					t.Fatalf("Handle = %v, parse %v", v, err)
				}
				if h.DstIP != bs[b].IP || !bytes.Equal(got[:6], bs[b].MAC) || !bytes.Equal(got[6:12], testframes.ServerMAC) {
					t.Fatalf("%v went to %v at %x, want backend %d %v", tu, h.DstIP, got[:6], b, bs[b].IP)
				}
				if !bytes.Equal(maskRewrite(got, &h), maskRewrite(frame, &h)) {
					t.Fatalf("more than the addresses and checksums changed:\n%x\n%x", frame, got)
				}
				if ipOK, l4OK, _ := checksumsValid(got); !ipOK || !l4OK {
					t.Fatalf("checksums by recomputation: IP %v, L4 %v\n%x", ipOK, l4OK, got)
				}
				if i%20 == 0 {
					testframes.CheckChecksums(t, got)
				}
				want[b]++
			}
		}
		for i, st := range lb.Stats() {
			if st.Packets != want[i] || st.IP != bs[i].IP {
				t.Errorf("Stats()[%d] = %+v, want %d packets to %v", i, st, want[i], bs[i].IP)
			}
		}
	}
}

// maskRewrite returns a copy of frame with the fields a LoadBalancer
// rewrites zeroed: the MAC addresses, the destination IP address and the
// checksums.
func maskRewrite(frame []byte, h *packet.Headers) []byte {
	b := bytes.Clone(frame)
	clear(b[:12])
	if h.IPv4 {
		clear(b[h.L3Off+10 : h.L3Off+12])
		clear(b[h.L3Off+16 : h.L3Off+20])
	} else {
		clear(b[h.L3Off+24 : h.L3Off+40])
	}
	off := map[uint8]int{packet.ProtoUDP: 6, packet.ProtoTCP: 16}[h.IPProto]
	clear(b[h.L4Off+off : h.L4Off+off+2])
	return b
}

func TestLoadBalancerAllocs(t *testing.T) {
	lb := newLB(t, "198.51.100.2:53", makeBackends(4, false), nil)
	lb6 := newLB(t, "[2001:db8::2]:443", makeBackends(4, true), &stages.LoadBalancerOptions{RecomputeL4Checksum: true})
	var ps []*pipeline.Packet
	for _, f := range [][]byte{testframes.UDP4, udp4NoCsum, testframes.TCP6, testframes.ICMP4, testframes.UDP4[:30]} {
		p := &pipeline.Packet{Data: bytes.Clone(f)}
		p.Reparse()
		ps = append(ps, p)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		for _, p := range ps {
			lb.Handle(p)
			lb6.Handle(p)
		}
	})
	if allocs != 0 {
		t.Errorf("Handle allocates %v times per run", allocs)
	}
}

// FuzzLoadBalancer: no panic, no write past the frame, Malformed exactly
// for frames that do not parse; a transmitted frame went to its flow's
// backend with only the MACs and the destination address (and checksums)
// changed, checksums as right as they were; any other frame is untouched.
func FuzzLoadBalancer(f *testing.F) {
	for _, frame := range seeds() {
		f.Add(frame)
	}
	bs4, bs6 := makeBackends(3, false), makeBackends(3, true)
	lbs := []*stages.LoadBalancer{
		newLB(f, "198.51.100.2:53", bs4, &stages.LoadBalancerOptions{Mode: stages.LBModeNAT, SrcMAC: testframes.ServerMAC}),
		newLB(f, "[2001:db8::2]:53", bs6, &stages.LoadBalancerOptions{Mode: stages.LBModeNAT, TableSize: 1024}),
		newLB(f, "198.51.100.2:80", bs4, &stages.LoadBalancerOptions{Mode: stages.LBModeNAT, RecomputeL4Checksum: true, Proto: packet.ProtoTCP}),
		newLB(f, "[2001:db8::2]:443", bs6, &stages.LoadBalancerOptions{Mode: stages.LBModeNAT, RecomputeL4Checksum: true}),
	}
	// The same, taking batches (of one frame), must do the same.
	batched := []*stages.LoadBalancer{
		newLB(f, "198.51.100.2:53", bs4, &stages.LoadBalancerOptions{Mode: stages.LBModeNAT, SrcMAC: testframes.ServerMAC}),
		newLB(f, "[2001:db8::2]:53", bs6, &stages.LoadBalancerOptions{Mode: stages.LBModeNAT, TableSize: 1024}),
		newLB(f, "198.51.100.2:80", bs4, &stages.LoadBalancerOptions{Mode: stages.LBModeNAT, RecomputeL4Checksum: true, Proto: packet.ProtoTCP}),
		newLB(f, "[2001:db8::2]:443", bs6, &stages.LoadBalancerOptions{Mode: stages.LBModeNAT, RecomputeL4Checksum: true}),
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		for j, lb := range lbs {
			v, got := fuzzCheck(t, lb, frame, pipeline.Transmit, pipeline.Continue, pipeline.Malformed)
			fb := &pipeline.FrameBatch{Frames: [][]byte{bytes.Clone(frame)}, Verdicts: make([]pipeline.Verdict, 1), Out: make([]int, 1)}
			batched[j].HandleFrames(fb)
			if fb.Verdicts[0] != v || !bytes.Equal(fb.Frames[0], got) {
				t.Fatalf("HandleFrames: %v\n%x\nHandle: %v\n%x", fb.Verdicts[0], fb.Frames[0], v, got)
			}
			if v != pipeline.Transmit {
				if !bytes.Equal(got, frame) {
					t.Fatalf("a frame not balanced was changed")
				}
				continue
			}
			var in, out packet.Headers
			_ = packet.Parse(frame, &in)
			_ = packet.Parse(got, &out)
			b := lb.Backends()[lb.Backend(stages.Tuple{
				Proto: in.IPProto,
				Src:   netip.AddrPortFrom(in.SrcIP, in.SrcPort),
				Dst:   netip.AddrPortFrom(in.DstIP, in.DstPort),
			})]
			if out.DstIP != b.IP || !bytes.Equal(got[:6], b.MAC) {
				t.Fatalf("went to %v at %x, want %v at %v", out.DstIP, got[:6], b.IP, b.MAC)
			}
			want := in
			want.DstIP = b.IP
			if out != want {
				t.Fatalf("headers changed beyond the destination:\n in %+v\nout %+v", in, out)
			}
		}
	})
}

func BenchmarkLoadBalancer(b *testing.B) {
	for _, c := range []struct {
		name  string
		vip   string
		v6    bool
		opts  *stages.LoadBalancerOptions
		frame []byte
	}{
		{"udp4", "198.51.100.2:53", false, nil, testframes.UDP4},
		{"tcp6", "[2001:db8::2]:443", true, nil, testframes.TCP6},
		{"udp4-recompute", "198.51.100.2:53", false, &stages.LoadBalancerOptions{RecomputeL4Checksum: true}, testframes.UDP4},
		{"udp4-nat", "198.51.100.2:53", false, nat, testframes.UDP4},
		{"udp4-no-conntrack", "198.51.100.2:53", false, &stages.LoadBalancerOptions{Connections: -1}, testframes.UDP4},
		{"udp4-clock-per-packet", "198.51.100.2:53", false, nil, testframes.UDP4},
		{"other", "198.51.100.2:54", false, nil, testframes.UDP4},
	} {
		b.Run(c.name, func(b *testing.B) {
			lb := newLB(b, c.vip, makeBackends(4, c.v6), c.opts)
			if c.name != "udp4-clock-per-packet" {
				lb.SetNow(time.Now()) // as pipeline.Config.Tick would, once per tick
			}
			p := &pipeline.Packet{Data: bytes.Clone(c.frame)}
			p.Reparse()
			h := p.Headers
			b.ReportAllocs()
			for b.Loop() {
				// The frame is rewritten to a backend: put the VIP back
				// (headers and bytes) for the next round, which the time
				// includes.
				benchHandle(lb, p, c.frame, &h, true)
			}
		})
	}
}

func ExampleLoadBalancer() {
	backends := []stages.Backend{
		{IP: netip.MustParseAddr("10.0.0.1"), MAC: net.HardwareAddr{2, 0, 0, 0, 1, 1}},
		{IP: netip.MustParseAddr("10.0.0.2"), MAC: net.HardwareAddr{2, 0, 0, 0, 1, 2}},
	}
	lb, err := stages.NewLoadBalancer(netip.MustParseAddrPort("198.51.100.2:53"), backends,
		&stages.LoadBalancerOptions{Mode: stages.LBModeNAT, SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}})
	if err != nil {
		fmt.Println(err)
		return
	}
	p := &pipeline.Packet{Data: bytes.Clone(testframes.UDP4)} // 192.0.2.1:40000 -> 198.51.100.2:53
	p.Reparse()
	fmt.Println(lb.Handle(p), p.Headers.DstIP == backends[lb.Backend(stages.Tuple{
		Proto: packet.ProtoUDP,
		Src:   netip.MustParseAddrPort("192.0.2.1:40000"),
		Dst:   netip.MustParseAddrPort("198.51.100.2:53"),
	})].IP)
	// Output: transmit true
}
