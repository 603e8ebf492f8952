package packet_test

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"testing"

	"github.com/xdpkit/xdpkit/internal/testframes"
	"github.com/xdpkit/xdpkit/packet"
)

var (
	client4 = netip.MustParseAddr("192.0.2.1")
	us4     = netip.MustParseAddr("198.51.100.2")
	client6 = netip.MustParseAddr("2001:db8::1")
	us6     = netip.MustParseAddr("2001:db8::2")
)

// parseCase is a frame and everything Parse should find in it.
type parseCase struct {
	name  string
	frame []byte
	err   error
	want  packet.Headers
}

// validCases are the frames Parse accepts, with every field spelled out.
var validCases = []parseCase{
	{name: "udp4", frame: testframes.UDP4, want: packet.Headers{
		EtherType: 0x0800,
		L3Off:     14, IPv4: true, IPHdrLen: 20, IPLen: 33, SrcIP: client4, DstIP: us4, TTL: 64,
		IPProto: packet.ProtoUDP, L4Off: 34, SrcPort: 40000, DstPort: 53, PayloadOff: 42,
	}},
	{name: "tcp4 with options", frame: tcp4, want: packet.Headers{
		EtherType: 0x0800,
		L3Off:     14, IPv4: true, IPHdrLen: 20, IPLen: 60, SrcIP: client4, DstIP: us4, TTL: 64,
		IPProto: packet.ProtoTCP, L4Off: 34, SrcPort: 40001, DstPort: 80, TCPFlags: 0x02, PayloadOff: 74,
	}},
	{name: "icmp4 echo", frame: testframes.ICMP4, want: packet.Headers{
		EtherType: 0x0800,
		L3Off:     14, IPv4: true, IPHdrLen: 20, IPLen: 32, SrcIP: client4, DstIP: us4, TTL: 64,
		IPProto: packet.ProtoICMP, L4Off: 34, ICMPType: 8, PayloadOff: 38,
	}},
	{name: "udp6", frame: testframes.UDP6, want: packet.Headers{
		EtherType: 0x86dd,
		L3Off:     14, IPv6: true, IPHdrLen: 40, IPLen: 53, SrcIP: client6, DstIP: us6, TTL: 64,
		IPProto: packet.ProtoUDP, L4Off: 54, SrcPort: 40000, DstPort: 53, PayloadOff: 62,
	}},
	{name: "tcp6", frame: testframes.TCP6, want: packet.Headers{
		EtherType: 0x86dd,
		L3Off:     14, IPv6: true, IPHdrLen: 40, IPLen: 64, SrcIP: client6, DstIP: us6, TTL: 64,
		IPProto: packet.ProtoTCP, L4Off: 54, SrcPort: 40001, DstPort: 443, TCPFlags: 0x18, PayloadOff: 74,
	}},
	{name: "icmp6 echo", frame: testframes.ICMP6, want: packet.Headers{
		EtherType: 0x86dd,
		L3Off:     14, IPv6: true, IPHdrLen: 40, IPLen: 52, SrcIP: client6, DstIP: us6, TTL: 64,
		IPProto: packet.ProtoICMPv6, L4Off: 54, ICMPType: 128, PayloadOff: 58,
	}},
	{name: "vlan", frame: testframes.UDP4VLAN, want: packet.Headers{
		VLANs: 1, VLANID: 100, EtherType: 0x0800,
		L3Off: 18, IPv4: true, IPHdrLen: 20, IPLen: 33, SrcIP: client4, DstIP: us4, TTL: 64,
		IPProto: packet.ProtoUDP, L4Off: 38, SrcPort: 40000, DstPort: 53, PayloadOff: 46,
	}},
	{name: "qinq", frame: qinq, want: packet.Headers{
		VLANs: 2, VLANID: 200, EtherType: 0x86dd,
		L3Off: 22, IPv6: true, IPHdrLen: 40, IPLen: 64, SrcIP: client6, DstIP: us6, TTL: 64,
		IPProto: packet.ProtoTCP, L4Off: 62, SrcPort: 40001, DstPort: 443, TCPFlags: 0x18, PayloadOff: 82,
	}},
	{name: "arp", frame: arp, want: packet.Headers{
		EtherType: 0x0806, PayloadOff: 14,
	}},
	{name: "udp4 padded", frame: udp4Padded, want: packet.Headers{
		EtherType: 0x0800,
		L3Off:     14, IPv4: true, IPHdrLen: 20, IPLen: 30, SrcIP: client4, DstIP: us4, TTL: 64,
		IPProto: packet.ProtoUDP, L4Off: 34, SrcPort: 40000, DstPort: 53, PayloadOff: 42,
	}},
	{name: "ipv4 options", frame: ip4Options, want: packet.Headers{
		EtherType: 0x0800,
		L3Off:     14, IPv4: true, IPHdrLen: 24, IPLen: 37, SrcIP: client4, DstIP: us4, TTL: 64,
		IPProto: packet.ProtoUDP, L4Off: 38, SrcPort: 40000, DstPort: 53, PayloadOff: 46,
	}},
	{name: "ipv4 first fragment", frame: frag4First, want: packet.Headers{
		EtherType: 0x0800,
		L3Off:     14, IPv4: true, IPHdrLen: 20, IPLen: 48, SrcIP: client4, DstIP: us4, TTL: 64,
		IPProto: packet.ProtoTCP, L4Off: 34, SrcPort: 40001, DstPort: 80, TCPFlags: 0x10, PayloadOff: 54,
	}},
	{name: "ipv4 non-first fragment", frame: testframes.Frag4Rest, want: packet.Headers{
		EtherType: 0x0800,
		L3Off:     14, IPv4: true, IPHdrLen: 20, IPLen: 36, SrcIP: client4, DstIP: us4, TTL: 64,
		Fragment: true, IPProto: packet.ProtoUDP, PayloadOff: 34,
	}},
	{name: "ipv6 hop-by-hop", frame: udp6HopByHop, want: packet.Headers{
		EtherType: 0x86dd,
		L3Off:     14, IPv6: true, IPHdrLen: 48, IPLen: 61, SrcIP: client6, DstIP: us6, TTL: 64,
		IPProto: packet.ProtoUDP, L4Off: 62, SrcPort: 40000, DstPort: 53, PayloadOff: 70,
	}},
	{name: "ipv6 extension chain", frame: tcp6ExtChain, want: packet.Headers{
		EtherType: 0x86dd,
		L3Off:     14, IPv6: true, IPHdrLen: 72, IPLen: 96, SrcIP: client6, DstIP: us6, TTL: 64,
		IPProto: packet.ProtoTCP, L4Off: 86, SrcPort: 40001, DstPort: 443, TCPFlags: 0x18, PayloadOff: 106,
	}},
	{name: "ipv6 first fragment", frame: frag6FirstTCP, want: packet.Headers{
		EtherType: 0x86dd,
		L3Off:     14, IPv6: true, IPHdrLen: 48, IPLen: 76, SrcIP: client6, DstIP: us6, TTL: 64,
		IPProto: packet.ProtoTCP, L4Off: 62, SrcPort: 40001, DstPort: 443, TCPFlags: 0x10, PayloadOff: 82,
	}},
	{name: "ipv6 non-first fragment", frame: frag6Rest, want: packet.Headers{
		EtherType: 0x86dd,
		L3Off:     14, IPv6: true, IPHdrLen: 48, IPLen: 64, SrcIP: client6, DstIP: us6, TTL: 64,
		Fragment: true, IPProto: packet.ProtoUDP, PayloadOff: 62,
	}},
}

func TestParse(t *testing.T) {
	t.Parallel()
	for _, c := range validCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var h packet.Headers
			err := packet.Parse(c.frame, &h)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if h != c.want {
				t.Errorf("Parse:\n got %+v\nwant %+v", h, c.want)
			}
			checkInvariants(t, c.frame, &h, err)
		})
	}
}

// TestParseReuse checks that Parse clears what an earlier frame left in h.
func TestParseReuse(t *testing.T) {
	t.Parallel()
	var h packet.Headers
	for _, c := range validCases {
		for _, other := range validCases {
			_ = packet.Parse(other.frame, &h)
			if err := packet.Parse(c.frame, &h); err != nil || h != c.want {
				t.Fatalf("%s after %s: got %+v, %v; want %+v", c.name, other.name, h, err, c.want)
			}
		}
	}
}

// TestParseTruncated cuts every valid frame at every length: an IP frame
// cut before the end of its IP packet is ErrTruncated, a cut into the
// padding or past a header Parse does not look into changes nothing, and
// what Parse reports before giving up agrees with the whole frame.
func TestParseTruncated(t *testing.T) {
	t.Parallel()
	for _, c := range validCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			end := 14 // where the parsed headers end
			if c.want.L3Off != 0 {
				end = c.want.L3Off + c.want.IPLen
			}
			for n := range len(c.frame) {
				// A fresh copy: a read past n would be caught by the race
				// detector's bounds, and it keeps cap == len.
				frame := append([]byte(nil), c.frame[:n]...)
				var h packet.Headers
				err := packet.Parse(frame, &h)
				checkInvariants(t, frame, &h, err)
				if n < end {
					if !errors.Is(err, packet.ErrTruncated) {
						t.Errorf("%d of %d bytes: err %v, want %v", n, len(c.frame), err, packet.ErrTruncated)
					}
					if got := agreeing(h, c.want); got != h {
						t.Errorf("%d bytes: partial headers disagree with the whole frame's:\n got %+v\nwant %+v", n, h, got)
					}
					continue
				}
				if err != nil || h != c.want {
					t.Errorf("%d of %d bytes (past the headers): got %+v, %v; want %+v", n, len(c.frame), h, err, c.want)
				}
			}
		})
	}
}

// agreeing returns full with every field that is zero in partial zeroed:
// the headers a parse that stopped early may report. VLANs counts the tags
// read so far, which may be fewer.
func agreeing(partial, full packet.Headers) packet.Headers {
	if partial.VLANs > 0 && partial.VLANs < full.VLANs {
		full.VLANs = partial.VLANs
	}
	p, f := reflect.ValueOf(&partial).Elem(), reflect.ValueOf(&full).Elem()
	for i := range p.NumField() {
		if p.Field(i).IsZero() {
			f.Field(i).SetZero()
		}
	}
	return full
}

// modify returns a copy of frame with fn applied.
func modify(frame []byte, fn func(b []byte)) []byte {
	b := append([]byte(nil), frame...)
	fn(b)
	return b
}

// upTo returns h with everything from level on cleared, as a parse that
// stopped there leaves it: "l4" keeps the IP layer (PayloadOff at the end
// of the IP header), "l3" keeps only what the Ethernet header said.
func upTo(h packet.Headers, level string) packet.Headers {
	if level == "l3" {
		return packet.Headers{VLANs: h.VLANs, VLANID: h.VLANID, EtherType: h.EtherType}
	}
	h.L4Off, h.SrcPort, h.DstPort, h.TCPFlags, h.ICMPType, h.ICMPCode = 0, 0, 0, 0, 0, 0
	h.PayloadOff = h.L3Off + h.IPHdrLen
	return h
}

// extChain returns an IPv6 frame with n hop-by-hop/destination options
// headers of 8 bytes each before a UDP header.
func extChain(n int) []byte {
	f := append([]byte(nil), testframes.UDP6[:54]...) // ethernet and ipv6 headers
	f[20] = 0                                         // next header: hop-by-hop
	for i := range n {
		next := byte(60)
		if i == n-1 {
			next = packet.ProtoUDP
		}
		f = append(f, next, 0, 1, 4, 0, 0, 0, 0)
	}
	f = append(f, testframes.UDP6[54:]...)
	f[18], f[19] = 0, byte(len(f)-54)
	return f
}

func TestParseMalformed(t *testing.T) {
	t.Parallel()
	udp4Want, tcp4Want, udp6Want := validCases[0].want, validCases[1].want, validCases[3].want
	cases := []parseCase{
		{name: "short ethernet", frame: testframes.UDP4[:13], err: packet.ErrTruncated},
		{name: "empty", frame: nil, err: packet.ErrTruncated},
		{name: "three vlan tags", err: packet.ErrMalformed,
			frame: append(append(append([]byte(nil), qinq[:20]...), 0x81, 0x00, 0x00, 0x05), qinq[20:]...),
			want:  packet.Headers{VLANs: 2, VLANID: 200}},
		{name: "vlan tag cut short", frame: testframes.UDP4VLAN[:17], err: packet.ErrTruncated,
			want: packet.Headers{}},
		{name: "ipv4 version 6", err: packet.ErrMalformed,
			frame: modify(testframes.UDP4, func(b []byte) { b[14] = 0x65 }),
			want:  upTo(udp4Want, "l3")},
		{name: "ipv4 header length 16", err: packet.ErrMalformed,
			frame: modify(testframes.UDP4, func(b []byte) { b[14] = 0x44 }),
			want:  upTo(udp4Want, "l3")},
		{name: "ipv4 total length below header length", err: packet.ErrMalformed,
			frame: modify(ip4Options, func(b []byte) { b[16], b[17] = 0, 23 }),
			want:  upTo(udp4Want, "l3")},
		{name: "ipv4 total length 0", err: packet.ErrMalformed,
			frame: modify(testframes.UDP4, func(b []byte) { b[16], b[17] = 0, 0 }),
			want:  upTo(udp4Want, "l3")},
		{name: "ipv4 total length past the frame", err: packet.ErrTruncated,
			frame: modify(testframes.UDP4, func(b []byte) { b[17]++ }),
			want:  upTo(udp4Want, "l3")},
		{name: "ipv4 options past the frame", err: packet.ErrTruncated,
			frame: modify(testframes.UDP4[:34], func(b []byte) { b[14], b[17] = 0x46, 24 }),
			want:  upTo(udp4Want, "l3")},
		{name: "udp length 7", err: packet.ErrMalformed,
			frame: modify(testframes.UDP4, func(b []byte) { b[38], b[39] = 0, 7 }),
			want:  upTo(udp4Want, "l4")},
		{name: "udp length past the ip packet", err: packet.ErrMalformed,
			frame: modify(udp4Padded, func(b []byte) { b[39]++ }),
			want:  upTo(validCases[9].want, "l4")},
		{name: "udp header cut by the ip length", err: packet.ErrTruncated,
			frame: modify(testframes.UDP4, func(b []byte) { b[16], b[17] = 0, 27 }),
			want: func() packet.Headers {
				h := upTo(udp4Want, "l4")
				h.IPLen = 27
				return h
			}()},
		{name: "tcp data offset 4", err: packet.ErrMalformed,
			frame: modify(tcp4, func(b []byte) { b[46] = 0x40 }),
			want:  upTo(tcp4Want, "l4")},
		{name: "tcp data offset past the ip packet", err: packet.ErrTruncated,
			frame: modify(tcp4, func(b []byte) { b[46] = 0xf0 }),
			want:  upTo(tcp4Want, "l4")},
		{name: "icmp cut by the ip length", err: packet.ErrTruncated,
			frame: modify(testframes.ICMP4, func(b []byte) { b[16], b[17] = 0, 23 }),
			want: func() packet.Headers {
				h := upTo(validCases[2].want, "l4")
				h.IPLen = 23
				return h
			}()},
		{name: "ipv6 version 4", err: packet.ErrMalformed,
			frame: modify(testframes.UDP6, func(b []byte) { b[14] = 0x40 }),
			want:  upTo(udp6Want, "l3")},
		{name: "ipv6 payload length past the frame", err: packet.ErrTruncated,
			frame: modify(testframes.UDP6, func(b []byte) { b[19]++ }),
			want:  upTo(udp6Want, "l3")},
		{name: "ipv6 extension header past the payload", err: packet.ErrTruncated,
			frame: modify(udp6HopByHop, func(b []byte) { b[55] = 3 }),
			want: func() packet.Headers {
				h := upTo(validCases[13].want, "l4")
				h.IPHdrLen, h.IPProto, h.PayloadOff = 0, 0, 0
				return h
			}()},
		{name: "ipv6 fragment header past the payload", err: packet.ErrTruncated,
			frame: modify(frag6Rest[:58], func(b []byte) { b[19] = 4 }),
			want: func() packet.Headers {
				h := upTo(validCases[16].want, "l4")
				h.IPLen, h.IPHdrLen, h.IPProto, h.PayloadOff, h.Fragment = 44, 0, 0, 0, false
				return h
			}()},
		{name: "nine ipv6 extension headers", err: packet.ErrMalformed, frame: extChain(9),
			want: func() packet.Headers {
				h := upTo(udp6Want, "l4")
				h.IPLen += 9 * 8
				h.IPHdrLen, h.IPProto, h.PayloadOff = 0, 0, 0
				return h
			}()},
		{name: "udp in ipv6 length past the payload", err: packet.ErrMalformed,
			frame: modify(testframes.UDP6, func(b []byte) { b[59]++ }),
			want:  upTo(udp6Want, "l4")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var h packet.Headers
			err := packet.Parse(c.frame, &h)
			if err != c.err {
				t.Errorf("Parse: err %v, want %v", err, c.err)
			}
			if h != c.want {
				t.Errorf("Parse:\n got %+v\nwant %+v", h, c.want)
			}
			checkInvariants(t, c.frame, &h, err)
		})
	}
}

// TestParseExtensionHeaderLimit: seven extension headers parse.
func TestParseExtensionHeaderLimit(t *testing.T) {
	t.Parallel()
	f := extChain(7)
	var h packet.Headers
	if err := packet.Parse(f, &h); err != nil || h.L4Off != 54+7*8 || h.IPHdrLen != 40+7*8 || h.DstPort != 53 {
		t.Fatalf("7 extension headers: %+v, %v", h, err)
	}
}

// TestParseEightExtensionHeaders shows an off-by-one in Parse: the loop
// over IPv6 extension headers runs maxIPv6ExtHdrs (8) times, and the last
// round is needed to reach the L4 header, so 8 extension headers are
// rejected as "more than any sane packet has". Proposed fix: loop
// maxIPv6ExtHdrs+1 times.
func TestParseEightExtensionHeaders(t *testing.T) {
	t.Parallel()
	f := extChain(8)
	var h packet.Headers
	if err := packet.Parse(f, &h); err != nil || h.L4Off != 54+8*8 || h.DstPort != 53 {
		t.Errorf("8 extension headers: %+v, %v; want the UDP header at %d", h, err, 54+8*8)
	}
}

// TestParseFirstFragmentUDP shows a bug in Parse: the first fragment of a
// fragmented UDP datagram carries the UDP header, whose length field
// counts the whole datagram, so it is longer than the fragment. Parse
// checks the UDP length against the IP packet and calls such fragments
// ErrMalformed, though nothing about them is impossible: every large UDP
// datagram (DNS over EDNS, QUIC with a big MTU, NFS) starts with one.
// Proposed fix: in parseL4, skip the "off+l > len(frame)" check when the
// packet is a first fragment (IPv4 MF set; IPv6 fragment header with the
// M flag), as TCP's checks do not depend on a length field.
func TestParseFirstFragmentUDP(t *testing.T) {
	t.Parallel()
	for _, c := range []parseCase{
		{name: "ipv4", frame: frag4FirstUDP, want: packet.Headers{
			EtherType: 0x0800,
			L3Off:     14, IPv4: true, IPHdrLen: 20, IPLen: 36, SrcIP: client4, DstIP: us4, TTL: 64,
			IPProto: packet.ProtoUDP, L4Off: 34, SrcPort: 40000, DstPort: 53, PayloadOff: 42,
		}},
		{name: "ipv6", frame: frag6FirstUDP, want: packet.Headers{
			EtherType: 0x86dd,
			L3Off:     14, IPv6: true, IPHdrLen: 48, IPLen: 64, SrcIP: client6, DstIP: us6, TTL: 64,
			IPProto: packet.ProtoUDP, L4Off: 62, SrcPort: 40000, DstPort: 53, PayloadOff: 70,
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var h packet.Headers
			err := packet.Parse(c.frame, &h)
			if err != nil || h != c.want {
				t.Errorf("Parse:\n got %+v, %v\nwant %+v, <nil>", h, err, c.want)
			}
			checkInvariants(t, c.frame, &h, err)
		})
	}
}

// checkInvariants checks what must hold for any input: a known error, and
// offsets that are ordered and inside the frame.
func checkInvariants(t testing.TB, frame []byte, h *packet.Headers, err error) {
	t.Helper()
	if err != nil && err != packet.ErrTruncated && err != packet.ErrMalformed {
		t.Fatalf("unexpected error %v", err)
	}
	n := len(frame)
	for _, o := range []struct {
		name string
		off  int
	}{{"L3Off", h.L3Off}, {"L4Off", h.L4Off}, {"PayloadOff", h.PayloadOff}, {"L3Off+IPLen", h.L3Off + h.IPLen}, {"L3Off+IPHdrLen", h.L3Off + h.IPHdrLen}} {
		if o.off < 0 || o.off > n {
			t.Fatalf("%s = %d outside the %d-byte frame (%+v)", o.name, o.off, n, h)
		}
	}
	if h.VLANs < 0 || h.VLANs > 2 {
		t.Fatalf("VLANs = %d", h.VLANs)
	}
	if h.IPv4 && h.IPv6 {
		t.Fatalf("both IPv4 and IPv6: %+v", h)
	}
	if (h.L3Off != 0) != (h.IPv4 || h.IPv6) {
		t.Fatalf("L3Off %d with IPv4 %v, IPv6 %v", h.L3Off, h.IPv4, h.IPv6)
	}
	if h.L3Off != 0 && h.L3Off != 14+4*h.VLANs {
		t.Fatalf("L3Off %d after %d VLAN tags", h.L3Off, h.VLANs)
	}
	if h.L4Off != 0 {
		if h.L4Off < h.L3Off+20 || h.L4Off != h.L3Off+h.IPHdrLen || h.PayloadOff <= h.L4Off || h.PayloadOff > h.L3Off+h.IPLen {
			t.Fatalf("L4 offsets out of order: %+v", *h)
		}
		if h.Fragment {
			t.Fatalf("an L4 header in a non-first fragment: %+v", *h)
		}
	}
	if err == nil && h.L3Off != 0 && (h.IPHdrLen == 0 || h.PayloadOff < h.L3Off+h.IPHdrLen) {
		t.Fatalf("IP header without length or payload: %+v", *h)
	}
	if err == nil && h.L3Off == 0 && h.PayloadOff != 14+4*h.VLANs {
		t.Fatalf("non-IP payload at %d after %d VLAN tags", h.PayloadOff, h.VLANs)
	}
}

func TestParseAllocs(t *testing.T) {
	frames := [][]byte{testframes.UDP4, tcp6ExtChain, qinq, testframes.Frag4Rest, testframes.UDP4[:20], modify(testframes.UDP4, func(b []byte) { b[14] = 0x65 })}
	var h packet.Headers
	allocs := testing.AllocsPerRun(1000, func() {
		for _, f := range frames {
			_ = packet.Parse(f, &h)
		}
	})
	if allocs != 0 {
		t.Errorf("Parse allocates %v times per run", allocs)
	}
}

func BenchmarkParse(b *testing.B) {
	for _, c := range []struct {
		name  string
		frame []byte
	}{{"udp4", testframes.UDP4}, {"tcp6", testframes.TCP6}, {"qinq-tcp6", qinq}, {"ipv6-ext-chain", tcp6ExtChain}} {
		b.Run(c.name, func(b *testing.B) {
			var h packet.Headers
			b.ReportAllocs()
			b.SetBytes(int64(len(c.frame)))
			for b.Loop() {
				if err := packet.Parse(c.frame, &h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func ExampleParse() {
	var h packet.Headers
	if err := packet.Parse(testframes.UDP4, &h); err != nil {
		fmt.Println("malformed:", err)
		return
	}
	fmt.Printf("%v:%d -> %v:%d proto %d, payload %q\n",
		h.SrcIP, h.SrcPort, h.DstIP, h.DstPort, h.IPProto, testframes.UDP4[h.PayloadOff:h.L3Off+h.IPLen])
	// Output: 192.0.2.1:40000 -> 198.51.100.2:53 proto 17, payload "hello"
}
