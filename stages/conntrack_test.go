package stages_test

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/xdpkit/xdpkit/internal/testframes"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/stages"
)

// flowFrames are one UDP frame per flow to the VIP 198.51.100.2:53, from
// source ports first to first+n-1.
func flowFrames(first, n int) [][]byte {
	fs := make([][]byte, n)
	for i := range fs {
		fs[i] = testframes.Build(testframes.Spec{
			Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("198.51.100.2"),
			Proto: 17, TTL: 64, SrcPort: uint16(first + i), DstPort: 53, Payload: []byte("q"),
		})
	}
	return fs
}

// backendsOf sends each frame through lb and returns the backend MAC
// address (in DSR mode, the one sign of the backend) each went to. Runs
// of 50 frames go through Handle and through HandleFrames (in batches of
// 1 to 64) in turn, so that the tests of the connection table test both.
func backendsOf(t *testing.T, lb *stages.LoadBalancer, frames [][]byte) []string {
	t.Helper()
	out := make([]string, len(frames))
	for start := 0; start < len(frames); start += 50 {
		run := frames[start:min(start+50, len(frames))]
		if start/50%2 == 0 {
			for i, f := range run {
				v, got := handle(t, lb, f)
				if v != pipeline.Transmit {
					t.Fatalf("frame %d: %v", start+i, v)
				}
				out[start+i] = fmt.Sprintf("%x", got[0:6])
			}
			continue
		}
		for off := 0; off < len(run); {
			n := min(len(run)-off, 1+(start+off)%64)
			b := &pipeline.FrameBatch{Frames: make([][]byte, n), Verdicts: make([]pipeline.Verdict, n), Out: make([]int, n)}
			for i := range n {
				b.Frames[i] = bytes.Clone(run[off+i])
			}
			lb.HandleFrames(b)
			for i := range n {
				if b.Verdicts[i] != pipeline.Transmit {
					t.Fatalf("frame %d (HandleFrames): %v", start+off+i, b.Verdicts[i])
				}
				out[start+off+i] = fmt.Sprintf("%x", b.Frames[i][0:6])
			}
			off += n
		}
	}
	return out
}

// TestLoadBalancerConnectionTable: flows the LoadBalancer has seen keep
// their backend when one is added, and when another is removed; only the
// removed backend's flows move. New flows use the new backend. Without
// the table, adding a backend moves the flows it takes over.
func TestLoadBalancerConnectionTable(t *testing.T) {
	bs := makeBackends(4, false)
	old, fresh := flowFrames(10000, 400), flowFrames(20000, 400)
	for _, table := range []bool{true, false} {
		t.Run(map[bool]string{true: "table", false: "no table"}[table], func(t *testing.T) {
			opts := &stages.LoadBalancerOptions{}
			if !table {
				opts.Connections = -1
			}
			lb := newLB(t, "198.51.100.2:53", bs[:3], opts)
			before := backendsOf(t, lb, old)
			if err := lb.AddBackend(bs[3]); err != nil {
				t.Fatal(err)
			}
			after := backendsOf(t, lb, old)
			moved := 0
			for i := range old {
				if after[i] != before[i] {
					moved++
				}
			}
			newMAC := fmt.Sprintf("%x", []byte(bs[3].MAC))
			onNew := 0
			for _, b := range backendsOf(t, lb, fresh) {
				if b == newMAC {
					onNew++
				}
			}
			t.Logf("moved %d of %d established flows; %d of %d new flows on the new backend", moved, len(old), onNew, len(fresh))
			if onNew < len(fresh)/8 {
				t.Errorf("only %d of %d new flows on the added backend", onNew, len(fresh))
			}
			if !table {
				if moved < len(old)/8 {
					t.Errorf("without a table only %d flows moved: the test does not tell the table's work", moved)
				}
				return
			}
			if moved != 0 {
				t.Fatalf("%d established flows moved when a backend was added", moved)
			}
			// Remove one of the first backends: its flows move, no other.
			gone := fmt.Sprintf("%x", []byte(bs[0].MAC))
			if err := lb.RemoveBackend(bs[0].IP); err != nil {
				t.Fatal(err)
			}
			third := backendsOf(t, lb, old)
			movedGone := 0
			for i := range old {
				switch {
				case third[i] == gone:
					t.Fatalf("flow %d still goes to the removed backend", i)
				case before[i] == gone:
					movedGone++
				case third[i] != before[i]:
					t.Fatalf("flow %d moved from %s to %s though its backend stayed", i, before[i], third[i])
				}
			}
			st := lb.ConnStats()
			if st.New != uint64(len(old)+len(fresh)) || st.Moved != uint64(movedGone) || st.Evicted != 0 || st.Connections != len(old)+len(fresh) {
				t.Fatalf("ConnStats %+v: want %d new, %d moved", st, len(old)+len(fresh), movedGone)
			}
		})
	}
}

// TestLoadBalancerConnIdle: a flow idle for longer than ConnIdle follows
// the hash again.
func TestLoadBalancerConnIdle(t *testing.T) {
	bs := makeBackends(4, false)
	lb := newLB(t, "198.51.100.2:53", bs[:3], &stages.LoadBalancerOptions{ConnIdle: time.Second})
	t0 := time.Now()
	lb.SetNow(t0)
	flows := flowFrames(30000, 300)
	before := backendsOf(t, lb, flows)
	if err := lb.AddBackend(bs[3]); err != nil {
		t.Fatal(err)
	}
	lb.SetNow(t0.Add(500 * time.Millisecond))
	for i, b := range backendsOf(t, lb, flows) {
		if b != before[i] {
			t.Fatalf("flow %d moved within ConnIdle", i)
		}
	}
	lb.SetNow(t0.Add(2 * time.Second)) // 1.5 s after the last packets
	after := backendsOf(t, lb, flows)
	moved := 0
	for i := range flows {
		if after[i] != before[i] {
			moved++
		}
	}
	st := lb.ConnStats()
	if moved == 0 || st.Expired != uint64(len(flows)) {
		t.Fatalf("after ConnIdle: %d flows moved, ConnStats %+v; want the hash's moves and %d expired", moved, st, len(flows))
	}
}

// TestLoadBalancerConnTableBounded: more flows than slots evict the least
// recently seen, and the table never grows.
func TestLoadBalancerConnTableBounded(t *testing.T) {
	lb := newLB(t, "198.51.100.2:53", makeBackends(3, false), &stages.LoadBalancerOptions{Connections: 1000})
	backendsOf(t, lb, flowFrames(1000, 5000))
	st := lb.ConnStats()
	if st.Capacity != 1024 || st.Connections > st.Capacity || st.Evicted == 0 || st.New != 5000 {
		t.Fatalf("ConnStats %+v: want capacity 1024, at most that many connections, evictions", st)
	}
}

// TestLoadBalancerUpdateBackends: a new set given from another goroutine
// takes effect at the next Tick; kept backends keep their flows, also
// with a new MAC address, and an invalid set is refused at once.
func TestLoadBalancerUpdateBackends(t *testing.T) {
	bs := makeBackends(4, false)
	lb := newLB(t, "198.51.100.2:53", bs[:3], nil)
	flows := flowFrames(40000, 300)
	before := backendsOf(t, lb, flows)

	moved := bs[1]
	moved.MAC = net.HardwareAddr{2, 0, 0, 0, 9, 9}
	next := []stages.Backend{bs[0], moved, bs[3]} // bs[2] leaves, bs[3] joins, bs[1] has a new MAC
	done := make(chan error, 1)
	go func() { done <- lb.UpdateBackends(next) }()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := backendsOf(t, lb, flows); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatal("the update took effect before Tick")
	}
	lb.Tick(time.Now())
	if got := lb.Backends(); len(got) != 3 || got[2].IP != bs[3].IP {
		t.Fatalf("backends after Tick: %v", got)
	}
	mac := func(b stages.Backend) string { return fmt.Sprintf("%x", []byte(b.MAC)) }
	for i, b := range backendsOf(t, lb, flows) {
		switch before[i] {
		case mac(bs[0]):
			if b != mac(bs[0]) {
				t.Fatalf("flow %d left backend 0", i)
			}
		case mac(bs[1]):
			if b != mac(moved) {
				t.Fatalf("flow %d of backend 1 went to %s, want its new MAC %s", i, b, mac(moved))
			}
		case mac(bs[2]):
			if b == mac(bs[2]) {
				t.Fatalf("flow %d still on the removed backend", i)
			}
		}
	}
	if err := lb.UpdateBackends([]stages.Backend{bs[0], bs[0]}); err == nil {
		t.Fatal("duplicate backends accepted")
	}
	if err := lb.UpdateBackends([]stages.Backend{{IP: netip.MustParseAddr("2001:db8::1"), MAC: bs[0].MAC}}); err == nil {
		t.Fatal("an IPv6 backend for an IPv4 VIP accepted")
	}
}

// TestLoadBalancerUpdateRace: UpdateBackends and Stats on other
// goroutines while the pipeline's goroutine handles frames and ticks (run
// with -race).
func TestLoadBalancerUpdateRace(t *testing.T) {
	bs := makeBackends(4, false)
	lb := newLB(t, "198.51.100.2:53", bs, nil)
	flows := flowFrames(50000, 64)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_ = lb.UpdateBackends(bs[:2+i%3])
			_ = lb.Stats()
			_ = lb.Backends()
		}
	}()
	for i := range 2000 {
		backendsOf(t, lb, flows[i%len(flows):i%len(flows)+1])
		if i%50 == 0 {
			lb.Tick(time.Now())
		}
	}
	close(stop)
	<-done
}

// TestLoadBalancerIPIP: ipip mode wraps the IP packet, untouched, in an
// outer IPv4 header to the backend and a new Ethernet header, in the
// frame's headroom; gopacket builds the same frame.
func TestLoadBalancerIPIP(t *testing.T) {
	tunSrc := netip.MustParseAddr("198.51.100.1")
	for _, c := range []struct {
		name  string
		vip   string
		frame []byte
	}{{"udp4", "198.51.100.2:53", testframes.UDP4}, {"tcp4", "198.51.100.2:80", tcp4}} {
		t.Run(c.name, func(t *testing.T) {
			bs := makeBackends(3, false)
			lb := newLB(t, c.vip, bs, &stages.LoadBalancerOptions{Mode: stages.LBModeIPIP, TunnelSrc: tunSrc, SrcMAC: testframes.ServerMAC})
			buf := make([]byte, 256+len(c.frame)+64)
			copy(buf[256:], c.frame)
			p := &pipeline.Packet{Data: buf[256 : 256+len(c.frame)]}
			p.SetFrame(buf, 256)
			p.Reparse()
			tuple := stages.Tuple{Proto: p.Headers.IPProto, Src: netip.AddrPortFrom(p.Headers.SrcIP, p.Headers.SrcPort), Dst: netip.AddrPortFrom(p.Headers.DstIP, p.Headers.DstPort)}
			if v := lb.Handle(p); v != pipeline.Transmit {
				t.Fatalf("Handle = %v, want Transmit", v)
			}
			b := bs[lb.Backend(tuple)]
			want := testframes.Serialize(
				&layers.Ethernet{DstMAC: b.MAC, SrcMAC: testframes.ServerMAC, EthernetType: layers.EthernetTypeIPv4},
				&layers.IPv4{Version: 4, IHL: 5, TTL: 64, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolIPv4, SrcIP: tunSrc.AsSlice(), DstIP: b.IP.AsSlice()},
				gopacket.Payload(c.frame[14:]),
			)
			if !bytes.Equal(p.Data, want) {
				t.Fatalf("got\n%x\nwant\n%x", p.Data, want)
			}
			if !p.Headers.IPv4 || p.Headers.DstIP != b.IP || p.Headers.IPProto != 4 {
				t.Errorf("Headers not reparsed: %+v", p.Headers)
			}
		})
	}
	// No headroom: dropped and counted.
	lb := newLB(t, "198.51.100.2:53", makeBackends(2, false), &stages.LoadBalancerOptions{Mode: stages.LBModeIPIP, TunnelSrc: tunSrc})
	p := &pipeline.Packet{Data: bytes.Clone(testframes.UDP4)}
	p.SetFrame(p.Data, 0)
	p.Reparse()
	if v := lb.Handle(p); v != pipeline.Drop || lb.EncapErrors() != 1 {
		t.Fatalf("without headroom: %v, %d encapsulation errors", v, lb.EncapErrors())
	}
	for _, o := range []*stages.LoadBalancerOptions{
		{Mode: stages.LBModeIPIP},
		{Mode: stages.LBModeIPIP, TunnelSrc: netip.MustParseAddr("2001:db8::1")},
		{Mode: stages.LBModeIPIP, TunnelSrc: tunSrc, RecomputeL4Checksum: true},
	} {
		if _, err := stages.NewLoadBalancer(netip.MustParseAddrPort("198.51.100.2:53"), makeBackends(1, false), o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	if _, err := stages.NewLoadBalancer(netip.MustParseAddrPort("[2001:db8::2]:53"), makeBackends(1, true), &stages.LoadBalancerOptions{Mode: stages.LBModeIPIP, TunnelSrc: tunSrc}); err == nil {
		t.Error("ipip with an IPv6 VIP and backends without TunnelIP: no error")
	}

	// An IPv6 VIP: 6in4 to each backend's IPv4 tunnel address.
	bs6 := makeBackends(2, true)
	for i := range bs6 {
		bs6[i].TunnelIP = netip.AddrFrom4([4]byte{10, 0, 6, byte(1 + i)})
	}
	lb6 := newLB(t, "[2001:db8::2]:53", bs6, &stages.LoadBalancerOptions{Mode: stages.LBModeIPIP, TunnelSrc: tunSrc, SrcMAC: testframes.ServerMAC})
	buf := make([]byte, 256+len(testframes.UDP6))
	copy(buf[256:], testframes.UDP6)
	p6 := &pipeline.Packet{Data: buf[256:]}
	p6.SetFrame(buf, 256)
	p6.Reparse()
	tuple := stages.Tuple{Proto: 17, Src: netip.AddrPortFrom(p6.Headers.SrcIP, p6.Headers.SrcPort), Dst: netip.AddrPortFrom(p6.Headers.DstIP, p6.Headers.DstPort)}
	if v := lb6.Handle(p6); v != pipeline.Transmit {
		t.Fatalf("IPv6 VIP: Handle = %v", v)
	}
	b := bs6[lb6.Backend(tuple)]
	want := testframes.Serialize(
		&layers.Ethernet{DstMAC: b.MAC, SrcMAC: testframes.ServerMAC, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, IHL: 5, TTL: 64, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolIPv6, SrcIP: tunSrc.AsSlice(), DstIP: b.TunnelIP.AsSlice()},
		gopacket.Payload(testframes.UDP6[14:]),
	)
	if !bytes.Equal(p6.Data, want) {
		t.Fatalf("6in4: got\n%x\nwant\n%x", p6.Data, want)
	}
}
