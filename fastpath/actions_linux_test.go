//go:build linux

package fastpath_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/xdpkit/xdpkit/fastpath"
	"github.com/xdpkit/xdpkit/internal/testframes"
)

// A flow of each kind, from the client to the server of testframes.
var (
	client4, server4 = mustAddr("192.0.2.1"), mustAddr("198.51.100.2")
	client6, server6 = mustAddr("2001:db8::1"), mustAddr("2001:db8::2")
	backend4         = mustAddr("10.9.8.7")
	backend6         = mustAddr("2001:db8:ffff::77")
	tunSrc, tunDst   = mustAddr("172.16.0.1"), mustAddr("172.16.0.2")
	newDstMAC        = net.HardwareAddr{0x0a, 0xbb, 0xcc, 0xdd, 0xee, 0x01}
	newSrcMAC        = net.HardwareAddr{0x0a, 0xbb, 0xcc, 0xdd, 0xee, 0x02}
)

type flowCase struct {
	name  string
	flow  fastpath.Flow
	spec  testframes.Spec
	newIP netip.Addr
}

func flowCases() []flowCase {
	var cs []flowCase
	for _, fam := range []struct {
		name              string
		src, dst, backend netip.Addr
	}{{"ipv4", client4, server4, backend4}, {"ipv6", client6, server6, backend6}} {
		for _, proto := range []uint8{fastpath.UDP, fastpath.TCP} {
			f := fastpath.Flow{Src: fam.src, Dst: fam.dst, SrcPort: 40000, DstPort: 80, Proto: proto}
			cs = append(cs, flowCase{
				name: fmt.Sprintf("%s/%s", fam.name, map[uint8]string{6: "tcp", 17: "udp"}[proto]),
				flow: f,
				spec: testframes.Spec{Src: fam.src, Dst: fam.dst, Proto: proto, TTL: 64, IPID: 0x1234, SrcPort: 40000, DstPort: 80,
					Seq: 1000, Ack: 2000, Window: 512, Payload: []byte("the quick brown fox jumps")},
				newIP: fam.backend,
			})
		}
	}
	return cs
}

// frame builds s with the given MACs (nil: testframes' client to server).
func frame(s testframes.Spec) []byte { return testframes.Build(s) }

func install(t *testing.T, fp *fastpath.FastPath, f fastpath.Flow, e fastpath.Entry) {
	t.Helper()
	if err := fp.Install(f, e); err != nil {
		t.Fatal(err)
	}
}

func TestVerdictActions(t *testing.T) {
	for _, c := range flowCases() {
		t.Run(c.name, func(t *testing.T) {
			fp, prog := newFastPath(t, nil)
			in := frame(c.spec)
			// A miss goes to the socket.
			if v, out := run(t, prog, in); v != xdpRedirect {
				t.Fatalf("miss: verdict %d, want %d (redirect)", v, xdpRedirect)
			} else {
				wantFrame(t, "miss", out, in)
			}
			for _, a := range []struct {
				action  fastpath.Action
				verdict uint32
			}{{fastpath.Drop, xdpDrop}, {fastpath.Pass, xdpPass}, {fastpath.Redirect, xdpRedirect}} {
				install(t, fp, c.flow, fastpath.Entry{Action: a.action})
				v, out := run(t, prog, in)
				if v != a.verdict {
					t.Fatalf("%s: verdict %d, want %d", a.action, v, a.verdict)
				}
				wantFrame(t, a.action.String(), out, in)
			}
			// The reverse flow is another flow: a miss.
			rev := c.spec
			rev.Src, rev.Dst, rev.SrcPort, rev.DstPort = c.spec.Dst, c.spec.Src, c.spec.DstPort, c.spec.SrcPort
			if v, _ := run(t, prog, frame(rev)); v != xdpRedirect {
				t.Fatalf("reverse flow: verdict %d, want %d (miss)", v, xdpRedirect)
			}
			cnt, err := fp.Counters()
			if err != nil {
				t.Fatal(err)
			}
			want := fastpath.Counters{FlowDropped: 1, FlowPassed: 1, FlowRedirected: 1, Default: 2}
			if cnt != want {
				t.Fatalf("counters %+v, want %+v", cnt, want)
			}
			_, st, err := fp.Lookup(c.flow)
			if err != nil {
				t.Fatal(err)
			}
			if st.Packets != 1 || st.Bytes != uint64(len(in)) {
				t.Fatalf("entry stats %+v, want 1 packet of %d bytes (replacing an entry resets them)", st, len(in))
			}
		})
	}
}

func TestTransmitRewrite(t *testing.T) {
	for _, c := range flowCases() {
		t.Run(c.name, func(t *testing.T) {
			fp, prog := newFastPath(t, nil)
			in := frame(c.spec)

			// A reflector: the MAC addresses swapped, nothing else.
			install(t, fp, c.flow, fastpath.Entry{Action: fastpath.Transmit, SwapMAC: true})
			v, out := run(t, prog, in)
			if v != xdpTX {
				t.Fatalf("swap: verdict %d, want %d (XDP_TX)", v, xdpTX)
			}
			want := append([]byte(nil), in...)
			copy(want[0:6], in[6:12])
			copy(want[6:12], in[0:6])
			wantFrame(t, "swap", out, want)

			// New MAC addresses, destination address and port: gopacket
			// builds the frame we want, with checksums computed afresh.
			install(t, fp, c.flow, fastpath.Entry{Action: fastpath.Transmit, DstMAC: newDstMAC, SrcMAC: newSrcMAC, NewDst: c.newIP, NewDstPort: 8080})
			v, out = run(t, prog, in)
			if v != xdpTX {
				t.Fatalf("rewrite: verdict %d, want %d (XDP_TX)", v, xdpTX)
			}
			s := c.spec
			s.Dst, s.DstPort = c.newIP, 8080
			want = frame(s)
			copy(want[0:6], newDstMAC)
			copy(want[6:12], newSrcMAC)
			wantFrame(t, "rewrite", out, want)
			testframes.CheckChecksums(t, out)

			// Only the port, only the address.
			install(t, fp, c.flow, fastpath.Entry{Action: fastpath.Transmit, NewDstPort: 9999})
			_, out = run(t, prog, in)
			s = c.spec
			s.DstPort = 9999
			wantFrame(t, "port only", out, frame(s))
			install(t, fp, c.flow, fastpath.Entry{Action: fastpath.Transmit, NewDst: c.newIP})
			_, out = run(t, prog, in)
			s = c.spec
			s.Dst = c.newIP
			wantFrame(t, "address only", out, frame(s))

			cnt, _ := fp.Counters()
			if cnt.FlowTransmitted != 4 || cnt.FlowErrors != 0 {
				t.Fatalf("counters %+v, want 4 transmitted", cnt)
			}
		})
	}
}

// TestTransmitChecksumsMany rewrites flows to many addresses and ports and
// checks every checksum with gopacket: the incremental update must agree
// with a full computation whatever the carries.
func TestTransmitChecksumsMany(t *testing.T) {
	fp, prog := newFastPath(t, nil)
	for i := range 300 {
		c := flowCases()[i%4]
		c.spec.SrcPort = uint16(1000 + i*211)
		c.flow.SrcPort = c.spec.SrcPort
		c.spec.Payload = []byte(fmt.Sprintf("payload %d %x", i, i*i*7919))
		b := c.newIP.As16()
		binary.BigEndian.PutUint32(b[12:], uint32(i)*2654435761)
		nd := netip.AddrFrom16(b)
		if c.newIP.Is4() {
			nd = nd.Unmap()
			nd = netip.AddrFrom4([4]byte(b[12:]))
		}
		port := uint16(i*40503 + 1)
		install(t, fp, c.flow, fastpath.Entry{Action: fastpath.Transmit, NewDst: nd, NewDstPort: port})
		in := frame(c.spec)
		v, out := run(t, prog, in)
		if v != xdpTX {
			t.Fatalf("%d: verdict %d", i, v)
		}
		s := c.spec
		s.Dst, s.DstPort = nd, port
		want := frame(s)
		if c.spec.Proto == fastpath.UDP && c.newIP.Is4() && binary.BigEndian.Uint16(want[40:]) == 0 {
			continue // gopacket sends a computed 0 as 0; RFC 768 wants 0xffff
		}
		wantFrame(t, fmt.Sprintf("%d %s to %s:%d", i, c.flow, nd, port), out, want)
	}
}

// TestTransmitUDP6ChecksumZero: over IPv6 a UDP checksum is mandatory, so
// a rewrite whose updated checksum computes to 0 must write 0xffff (a 0
// would make the backend drop the datagram), and a 0 that arrives (0xffff's
// other form) is updated, not left as "none". The payload's last word is
// steered to make each case.
func TestTransmitUDP6ChecksumZero(t *testing.T) {
	fp, prog := newFastPath(t, nil)
	c := flowCases()[2]
	if c.name != "ipv6/udp" {
		t.Fatalf("flowCases()[2] is %s", c.name)
	}
	install(t, fp, c.flow, fastpath.Entry{Action: fastpath.Transmit, NewDst: c.newIP, NewDstPort: 5353})
	const csumOff = 14 + 40 + 6
	rewritten := c.spec
	rewritten.Dst, rewritten.DstPort = c.newIP, 5353
	// steer returns the input and rewritten frames for the first payload
	// word whose frame (the rewritten one if out) has a checksum of
	// 0xffff or 0 (which gopacket may write for a computed 0).
	steer := func(out bool) (in, want []byte) {
		payload := append([]byte("zero checksum.."), 0, 0, 0)
		for w := range 1 << 16 {
			binary.BigEndian.PutUint16(payload[len(payload)-2:], uint16(w))
			c.spec.Payload, rewritten.Payload = payload, payload
			in, want = frame(c.spec), frame(rewritten)
			f := in
			if out {
				f = want
			}
			if v := binary.BigEndian.Uint16(f[csumOff:]); v == 0 || v == 0xffff {
				return in, want
			}
		}
		t.Fatal("no payload word gives the checksum wanted")
		return nil, nil
	}

	in, _ := steer(true)
	v, out := run(t, prog, in)
	if v != xdpTX {
		t.Fatalf("verdict %d", v)
	}
	if got := binary.BigEndian.Uint16(out[csumOff:]); got != 0xffff {
		t.Errorf("rewrite that computes to 0: UDP6 checksum %#04x, want 0xffff", got)
	}

	in, want := steer(false)
	binary.BigEndian.PutUint16(in[csumOff:], 0) // 0xffff carried as 0
	v, out = run(t, prog, in)
	if v != xdpTX {
		t.Fatalf("verdict %d", v)
	}
	got, w := binary.BigEndian.Uint16(out[csumOff:]), binary.BigEndian.Uint16(want[csumOff:])
	if w == 0 {
		w = 0xffff
	}
	if got != w {
		t.Errorf("UDP6 checksum carried as 0: rewritten to %#04x, want %#04x", got, w)
	}
	testframes.CheckChecksums(t, out)
}

func TestTransmitUDPWithoutChecksum(t *testing.T) {
	fp, prog := newFastPath(t, nil)
	c := flowCases()[0] // ipv4/udp
	in := frame(c.spec)
	in[40], in[41] = 0, 0 // no checksum
	install(t, fp, c.flow, fastpath.Entry{Action: fastpath.Transmit, NewDst: c.newIP, NewDstPort: 5353})
	v, out := run(t, prog, in)
	if v != xdpTX {
		t.Fatalf("verdict %d", v)
	}
	if out[40] != 0 || out[41] != 0 {
		t.Fatalf("UDP checksum %#x, want 0 (none)", binary.BigEndian.Uint16(out[40:]))
	}
	testframes.CheckChecksums(t, out)
}

func TestEncap(t *testing.T) {
	for _, c := range flowCases() {
		t.Run(c.name, func(t *testing.T) {
			fp, prog := newFastPath(t, nil)
			in := frame(c.spec)
			install(t, fp, c.flow, fastpath.Entry{Action: fastpath.Encap, DstMAC: newDstMAC, SrcMAC: newSrcMAC, TunnelSrc: tunSrc, TunnelDst: tunDst})
			v, out := run(t, prog, in)
			if v != xdpTX {
				t.Fatalf("verdict %d, want %d (XDP_TX)", v, xdpTX)
			}
			proto := layers.IPProtocolIPv4
			if c.flow.Src.Is6() {
				proto = layers.IPProtocolIPv6
			}
			want := testframes.Serialize(
				&layers.Ethernet{DstMAC: newDstMAC, SrcMAC: newSrcMAC, EthernetType: layers.EthernetTypeIPv4},
				&layers.IPv4{Version: 4, IHL: 5, TTL: 64, Flags: layers.IPv4DontFragment, Protocol: proto, SrcIP: tunSrc.AsSlice(), DstIP: tunDst.AsSlice()},
				gopacket.Payload(in[14:]),
			)
			wantFrame(t, "encap", out, want)
			// The inner packet decodes too, with its checksums intact.
			pkt := gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.Default)
			if pkt.ErrorLayer() != nil {
				t.Fatalf("decode: %v", pkt.ErrorLayer().Error())
			}
			var inner4, inner6 bool
			for i, l := range pkt.Layers() {
				if i > 1 && l.LayerType() == layers.LayerTypeIPv4 {
					inner4 = true
				}
				if l.LayerType() == layers.LayerTypeIPv6 {
					inner6 = true
				}
			}
			if inner4 == c.flow.Src.Is6() || inner6 != c.flow.Src.Is6() {
				t.Fatalf("inner packet not found: layers %v", pkt.Layers())
			}
			cnt, _ := fp.Counters()
			if cnt.FlowEncapped != 1 {
				t.Fatalf("counters %+v", cnt)
			}
		})
	}
}

// TestBadInputFallsThrough: frames the program cannot match exactly to
// the flow's 5-tuple, or cannot rewrite, go to the socket unchanged.
func TestBadInputFallsThrough(t *testing.T) {
	fp, prog := newFastPath(t, nil)
	c4 := flowCases()[1] // ipv4/tcp
	c6 := flowCases()[3] // ipv6/tcp
	entry := func(c flowCase) fastpath.Entry {
		return fastpath.Entry{Action: fastpath.Transmit, NewDst: c.newIP, NewDstPort: 8080, DstMAC: newDstMAC}
	}
	install(t, fp, c4.flow, entry(c4))
	install(t, fp, c6.flow, entry(c6))
	good4, good6 := frame(c4.spec), frame(c6.spec)
	if v, _ := run(t, prog, good4); v != xdpTX {
		t.Fatalf("good IPv4 frame: verdict %d", v)
	}
	if v, _ := run(t, prog, good6); v != xdpTX {
		t.Fatalf("good IPv6 frame: verdict %d", v)
	}

	edit := func(b []byte, fn func([]byte) []byte) []byte { return fn(append([]byte(nil), b...)) }
	cases := []struct {
		name  string
		frame []byte
		count func(fastpath.Counters) uint64
	}{
		{"ipv4 truncated before the TCP checksum", good4[:45], func(c fastpath.Counters) uint64 { return c.FlowErrors }},
		{"ipv6 truncated before the TCP checksum", good6[:65], func(c fastpath.Counters) uint64 { return c.FlowErrors }},
		{"ipv4 truncated before the ports", good4[:36], nil},
		{"ipv4 truncated in the header", good4[:30], func(c fastpath.Counters) uint64 { return c.Unparsed }},
		{"ipv6 truncated in the header", good6[:50], func(c fastpath.Counters) uint64 { return c.Unparsed }},
		// (BPF_PROG_TEST_RUN refuses frames shorter than an Ethernet header.)
		{"ethernet only", good4[:14], func(c fastpath.Counters) uint64 { return c.Unparsed }},
		{"ipv4 with options", edit(good4, func(b []byte) []byte {
			// IHL 6 with a 4-byte NOP option: the ports move, no match.
			out := append(append(b[:34:34], 1, 1, 1, 1), good4[34:]...)
			out[14] = 0x46
			return out
		}), nil},
		{"ipv4 first fragment", edit(good4, func(b []byte) []byte { b[20] |= 0x20; return b }), nil},
		{"ipv4 later fragment", edit(good4, func(b []byte) []byte { b[21] = 0x10; return b }), nil},
		{"ipv4 version 5", edit(good4, func(b []byte) []byte { b[14] = 0x55; return b }), func(c fastpath.Counters) uint64 { return c.Unparsed }},
		{"ipv6 hop-by-hop header", edit(good6, func(b []byte) []byte {
			// Next header 0 with an 8-byte hop-by-hop header pointing to TCP.
			out := append(append(b[:54:54], 6, 0, 1, 4, 0, 0, 0, 0), good6[54:]...)
			out[20] = 0
			return out
		}), nil},
		{"vlan tag", edit(good4, func(b []byte) []byte {
			return append(append(b[:12:12], 0x81, 0x00, 0x00, 0x64), good4[12:]...)
		}), func(c fastpath.Counters) uint64 { return c.Unparsed }},
		{"arp", testframes.Hex(`ff ff ff ff ff ff 02 00 00 00 00 01 08 06 00 01 08 00 06 04 00 01`), func(c fastpath.Counters) uint64 { return c.Unparsed }},
	}
	for _, c := range cases {
		before, _ := fp.Counters()
		v, out := run(t, prog, c.frame)
		if v != xdpRedirect {
			t.Errorf("%s: verdict %d, want %d (to the socket)", c.name, v, xdpRedirect)
			continue
		}
		wantFrame(t, c.name, out, c.frame)
		after, _ := fp.Counters()
		if after.Default != before.Default+1 {
			t.Errorf("%s: Default %d -> %d, want +1", c.name, before.Default, after.Default)
		}
		if c.count != nil && c.count(after) != c.count(before)+1 {
			t.Errorf("%s: counters %+v -> %+v: the expected one did not grow", c.name, before, after)
		}
	}
}

func TestEntriesLookupRemove(t *testing.T) {
	fp, prog := newFastPath(t, nil)
	cs := flowCases()
	entries := []fastpath.Entry{
		{Action: fastpath.Drop},
		{Action: fastpath.Transmit, SwapMAC: true, SrcMAC: newSrcMAC, NewDst: cs[1].newIP, NewDstPort: 81},
		{Action: fastpath.Encap, DstMAC: newDstMAC, SrcMAC: newSrcMAC, TunnelSrc: tunSrc, TunnelDst: tunDst},
		{Action: fastpath.Transmit, DstMAC: newDstMAC, NewDst: cs[3].newIP},
	}
	for i, c := range cs {
		install(t, fp, c.flow, entries[i])
	}
	for range 3 {
		run(t, prog, frame(cs[0].spec))
	}
	for i, c := range cs {
		e, st, err := fp.Lookup(c.flow)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(e) != fmt.Sprint(entries[i]) {
			t.Errorf("%s: Lookup gives %+v, want %+v", c.flow, e, entries[i])
		}
		if st.LastSeen.IsZero() {
			t.Errorf("%s: no LastSeen (install time)", c.flow)
		}
		if i == 0 && (st.Packets != 3 || st.Bytes != 3*uint64(len(frame(c.spec)))) {
			t.Errorf("%s: stats %+v, want 3 packets", c.flow, st)
		}
	}
	all, err := fp.Entries()
	if err != nil || len(all) != 4 {
		t.Fatalf("Entries: %d, %v; want 4", len(all), err)
	}
	for _, fe := range all {
		if _, _, err := fp.Lookup(fe.Flow); err != nil {
			t.Errorf("Entries lists %s, which Lookup does not find: %v", fe.Flow, err)
		}
	}
	if err := fp.Remove(cs[0].flow); err != nil {
		t.Fatal(err)
	}
	if _, _, err := fp.Lookup(cs[0].flow); !errors.Is(err, fastpath.ErrNoEntry) {
		t.Fatalf("Lookup after Remove: %v, want ErrNoEntry", err)
	}
	if err := fp.Remove(cs[0].flow); !errors.Is(err, fastpath.ErrNoEntry) {
		t.Fatalf("second Remove: %v, want ErrNoEntry", err)
	}
	if v, _ := run(t, prog, frame(cs[0].spec)); v != xdpRedirect {
		t.Fatalf("after Remove: verdict %d, want redirect", v)
	}
	// IPv4-mapped addresses are the IPv4 flow.
	mapped := cs[1].flow
	mapped.Src, mapped.Dst = netip.AddrFrom16(mapped.Src.As16()), netip.AddrFrom16(mapped.Dst.As16())
	if _, _, err := fp.Lookup(mapped); err != nil {
		t.Fatalf("Lookup of the IPv4-mapped flow: %v", err)
	}
}

func TestInvalidArguments(t *testing.T) {
	fp, _ := newFastPath(t, nil)
	f := flowCases()[0].flow
	f6 := flowCases()[2].flow
	for _, c := range []struct {
		name string
		f    fastpath.Flow
		e    fastpath.Entry
	}{
		{"no action", f, fastpath.Entry{}},
		{"unknown action", f, fastpath.Entry{Action: 99}},
		{"drop with rewrite", f, fastpath.Entry{Action: fastpath.Drop, SwapMAC: true}},
		{"pass with tunnel", f, fastpath.Entry{Action: fastpath.Pass, TunnelDst: tunDst}},
		{"transmit with tunnel", f, fastpath.Entry{Action: fastpath.Transmit, TunnelSrc: tunSrc}},
		{"transmit to another family", f, fastpath.Entry{Action: fastpath.Transmit, NewDst: backend6}},
		{"transmit with a short MAC", f, fastpath.Entry{Action: fastpath.Transmit, DstMAC: net.HardwareAddr{1, 2}}},
		{"encap without MACs", f, fastpath.Entry{Action: fastpath.Encap, TunnelSrc: tunSrc, TunnelDst: tunDst}},
		{"encap over IPv6", f6, fastpath.Entry{Action: fastpath.Encap, DstMAC: newDstMAC, SrcMAC: newSrcMAC, TunnelSrc: backend6, TunnelDst: backend6}},
		{"encap with rewrite", f, fastpath.Entry{Action: fastpath.Encap, DstMAC: newDstMAC, SrcMAC: newSrcMAC, TunnelSrc: tunSrc, TunnelDst: tunDst, NewDstPort: 1}},
		{"no addresses", fastpath.Flow{Proto: fastpath.UDP}, fastpath.Entry{Action: fastpath.Drop}},
		{"mixed families", fastpath.Flow{Src: client4, Dst: server6, Proto: fastpath.UDP}, fastpath.Entry{Action: fastpath.Drop}},
		{"icmp", fastpath.Flow{Src: client4, Dst: server4, Proto: 1}, fastpath.Entry{Action: fastpath.Drop}},
	} {
		if err := fp.Install(c.f, c.e); !errors.Is(err, fastpath.ErrInvalid) {
			t.Errorf("%s: Install: %v, want ErrInvalid", c.name, err)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
	}
	for _, r := range []fastpath.Rate{{PerSecond: -1}, {PerSecond: 0.0001}, {PerSecond: 10, Burst: -1}, {PerSecond: 10, Burst: 20_000_000}, {PerSecond: 2e9}, {Burst: 5}} {
		if err := fp.SetRate(r); !errors.Is(err, fastpath.ErrInvalid) {
			t.Errorf("SetRate(%+v): %v, want ErrInvalid", r, err)
		}
	}
	if err := fp.SetPolicy(netip.Prefix{}, fastpath.Block); !errors.Is(err, fastpath.ErrInvalid) {
		t.Errorf("SetPolicy(invalid prefix): %v", err)
	}
	if err := fp.SetPolicy(netip.MustParsePrefix("10.0.0.0/8"), 7); !errors.Is(err, fastpath.ErrInvalid) {
		t.Errorf("SetPolicy(policy 7): %v", err)
	}
}

// TestEntryCounters counts matched frames run on every CPU at once. With
// Config.AtomicCounters the entry's counters are exact; without, they are
// exact for frames run one at a time, and never over-count.
func TestEntryCounters(t *testing.T) {
	for _, atomic := range []bool{false, true} {
		t.Run(fmt.Sprintf("atomic=%v", atomic), func(t *testing.T) {
			fp, prog := newFastPath(t, &fastpath.Config{AtomicCounters: atomic})
			c := flowCases()[0]
			in := frame(c.spec)
			install(t, fp, c.flow, fastpath.Entry{Action: fastpath.Drop})
			for range 5 {
				run(t, prog, in)
			}
			_, st, err := fp.Lookup(c.flow)
			if err != nil {
				t.Fatal(err)
			}
			if st.Packets != 5 || st.Bytes != 5*uint64(len(in)) {
				t.Fatalf("after 5 frames: %+v, want 5 packets, %d bytes", st, 5*len(in))
			}

			// One frame per BPF_PROG_RUN: a run of many that a signal
			// interrupts (the Go runtime's preemption signal can be pending
			// as the thread enters the syscall) is run again whole by
			// Program.Run, counting the frames it ran before twice, while a
			// run of one is never repeated.
			const workers, repeat = 4, 5000
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range repeat {
						if _, err := prog.Run(&ebpf.RunOptions{Data: in, Repeat: 1}); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			_, st, err = fp.Lookup(c.flow)
			if err != nil {
				t.Fatal(err)
			}
			want := uint64(5 + workers*repeat)
			if atomic && (st.Packets != want || st.Bytes != want*uint64(len(in))) {
				t.Errorf("atomic counters after %d frames on %d goroutines: %+v, want %d packets", workers*repeat, workers, st, want)
			}
			if !atomic && (st.Packets > want || st.Bytes > want*uint64(len(in)) || st.Packets <= 5) {
				t.Errorf("plain counters: %+v, want more than 5 and at most %d packets", st, want)
			}
			t.Logf("%d of %d frames counted", st.Packets, want)
		})
	}
}
