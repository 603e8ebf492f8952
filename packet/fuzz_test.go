package packet_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/xdpkit/xdpkit/internal/testframes"
	"github.com/xdpkit/xdpkit/packet"
)

// seeds are the frames the fuzz targets start from: the table frames,
// the bug reproductions and a few malformed ones.
func seeds() map[string][]byte {
	m := map[string][]byte{
		"frag4-first-udp": frag4FirstUDP,
		"frag6-first-udp": frag6FirstUDP,
		"ext-chain-8":     extChain(8),
		"ext-chain-9":     extChain(9),
		"qinq-3-tags":     append(append(append([]byte(nil), qinq[:20]...), 0x81, 0x00, 0x00, 0x05), qinq[20:]...),
		"ipv4-len-0":      modify(testframes.UDP4, func(b []byte) { b[16], b[17] = 0, 0 }),
		"udp-len-0":       modify(testframes.UDP4, func(b []byte) { b[38], b[39] = 0, 0 }),
		"ipv4-version-6":  modify(testframes.UDP4, func(b []byte) { b[14] = 0x65 }),
		"ipip": modify(append(append([]byte(nil), testframes.UDP4[:34]...), testframes.UDP4[14:]...), func(b []byte) {
			b[17], b[23] = 53, 4 // total length 53, protocol 4 (IP in IP)
		}),
		"llc": testframes.Hex(`02 00 00 00 00 02 02 00 00 00 00 01 00 04 aa aa 03 00`),
	}
	for _, c := range validCases {
		m[strings.ReplaceAll(c.name, " ", "-")] = c.frame
	}
	return m
}

// FuzzParse checks, on any input, that Parse neither panics nor reports
// offsets outside the frame, and, for frames it accepts, that gopacket
// (decoding the same bytes with NewPacket) finds the same VLAN tags,
// addresses, TTL, protocol, ports, TCP flags and ICMP type.
//
// Where the two differ on purpose, see compareGopacket.
//
// The seeds are added here; testdata/fuzz/FuzzParse holds only inputs the
// fuzzer found. Each made the comparison fail on a difference it did not
// allow for yet, and is named after it (Parse was right each time):
//
//   - gopacket-stops-at-atomic-fragment: IPv6 with an atomic fragment
//     header (offset 0, no more fragments) before a non-first fragment's
//     header; gopacket stops at the first one, Parse at the second (3).
//   - gopacket-reads-ipv6-header-after-ipv4-protocol-0: IPv4 with protocol
//     0, which gopacket decodes on as an IPv6 hop-by-hop header (6).
//   - gopacket-rejects-routing-type-48: IPv6 with a routing header of type
//     48, on which gopacket gives up; Parse skips it and finds a fragment
//     header after it (4).
func FuzzParse(f *testing.F) {
	for _, frame := range seeds() {
		f.Add(frame)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		// A copy with cap == len, so reading past the end panics.
		frame = append([]byte(nil), frame...)
		var h packet.Headers
		err := packet.Parse(frame, &h)
		checkInvariants(t, frame, &h, err)
		if err == nil {
			compareGopacket(t, frame, &h)
		}
	})
}

// compareGopacket checks that gopacket agrees with h, which Parse found in
// frame without error. Parse and gopacket v1.1.19 differ on purpose in
// these ways, and the comparison allows for each:
//
//  1. Parse reads at most two VLAN tags (ErrMalformed for a third);
//     gopacket reads any number.
//  2. Parse rejects what gopacket accepts and flags as truncated (an IP or
//     UDP length past the frame), an IPv4 or IPv6 version field that
//     disagrees with the EtherType (gopacket does not look), an IPv4 total
//     length of 0 (gopacket takes it as "TSO, use the frame length"), a UDP
//     length of 0 (gopacket: a jumbogram) and IPv6 jumbograms. Such frames
//     are never compared.
//  3. Parse reads the L4 header of a first fragment (IPv4 MF set, or an
//     IPv6 fragment header with offset 0, atomic fragments included);
//     gopacket decodes nothing after any fragment header.
//  4. Parse skips IPv4 options, IPv6 option TLVs and routing headers by
//     their length; gopacket parses them and gives up on the rest of the
//     frame when they are malformed, when a routing header has a type
//     other than 0, or when an IPv6 hop-by-hop header is present with a
//     payload length that disagrees with its jumbogram option.
//  5. Parse needs 4 bytes of ICMPv4 header (type, code, checksum);
//     gopacket needs 8.
//  6. Parse stops at protocols it does not know: an 802.3 length field in
//     place of the EtherType (gopacket: LLC), IPsec AH, IP-in-IP, GRE, and
//     so on. gopacket goes on into them; only the layers up to Parse's L4
//     are compared.
func compareGopacket(t *testing.T, frame []byte, h *packet.Headers) {
	t.Helper()
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.NoCopy)
	ls := pkt.Layers()
	if len(ls) == 0 {
		t.Fatalf("gopacket decoded no layer of a frame Parse accepted: %v", pkt.ErrorLayer())
	}
	eth, ok := ls[0].(*layers.Ethernet)
	if !ok {
		t.Fatalf("gopacket's first layer is %v", ls[0].LayerType())
	}
	etherType := eth.EthernetType
	i := 1
	for ; i < len(ls) && ls[i].LayerType() == layers.LayerTypeDot1Q; i++ {
		tag := ls[i].(*layers.Dot1Q)
		if i == 1 && tag.VLANIdentifier != h.VLANID {
			t.Errorf("VLAN id: Parse %d, gopacket %d", h.VLANID, tag.VLANIdentifier)
		}
		etherType = tag.Type
	}
	if i-1 != h.VLANs {
		t.Errorf("VLAN tags: Parse %d, gopacket %d", h.VLANs, i-1)
	}
	if h.EtherType >= 0x600 && uint16(etherType) != h.EtherType {
		t.Errorf("EtherType: Parse %#04x, gopacket %#04x", h.EtherType, uint16(etherType))
	}
	if h.L3Off == 0 {
		return
	}
	if i == len(ls) {
		t.Fatalf("gopacket has no IP layer: %v", pkt)
	}
	var (
		src, dst netip.Addr
		ttl      uint8
		proto    layers.IPProtocol
		moreFrag bool // an IPv4 first fragment
	)
	switch ip := ls[i].(type) {
	case *layers.IPv4:
		if !h.IPv4 {
			t.Fatalf("gopacket found IPv4 where Parse found %+v", *h)
		}
		src, _ = netip.AddrFromSlice(ip.SrcIP)
		dst, _ = netip.AddrFromSlice(ip.DstIP)
		ttl, proto = ip.TTL, ip.Protocol
		moreFrag = ip.Flags&layers.IPv4MoreFragments != 0
		if int(ip.IHL)*4 != h.IPHdrLen || int(ip.Length) != h.IPLen {
			t.Errorf("IPv4 lengths: Parse %d/%d, gopacket %d/%d", h.IPHdrLen, h.IPLen, ip.IHL*4, ip.Length)
		}
	case *layers.IPv6:
		if !h.IPv6 {
			t.Fatalf("gopacket found IPv6 where Parse found %+v", *h)
		}
		src, _ = netip.AddrFromSlice(ip.SrcIP)
		dst, _ = netip.AddrFromSlice(ip.DstIP)
		ttl, proto = ip.HopLimit, ip.NextHeader
		if 40+int(ip.Length) != h.IPLen {
			t.Errorf("IPv6 length: Parse %d, gopacket %d", h.IPLen, 40+int(ip.Length))
		}
	default:
		t.Fatalf("gopacket found %v where Parse found IP: %v", ls[i].LayerType(), pkt)
	}
	if src != h.SrcIP || dst != h.DstIP || ttl != h.TTL {
		t.Errorf("IP: Parse %v -> %v ttl %d, gopacket %v -> %v ttl %d", h.SrcIP, h.DstIP, h.TTL, src, dst, ttl)
	}
	// Skip the IPv6 extension headers gopacket decoded, keeping the last
	// next-header field
	fragment, fragOff := false, uint16(0) // gopacket stops at the first fragment header
	// (gopacket goes on to extension headers after IPv4 too, as for
	// protocol 0; Parse does not, and stops.)
	for i++; h.IPv6 && i < len(ls); i++ {
		switch ext := ls[i].(type) {
		case *layers.IPv6HopByHop:
			proto = ext.NextHeader
			continue
		case *layers.IPv6Destination:
			proto = ext.NextHeader
			continue
		case *layers.IPv6Routing:
			proto = ext.NextHeader
			continue
		case *layers.IPv6Fragment:
			proto, fragment, fragOff = ext.NextHeader, true, ext.FragmentOffset
			continue
		}
		break
	}
	var l4 gopacket.Layer
	if i < len(ls) {
		l4 = ls[i]
	}
	var failure error
	if l, ok := l4.(*gopacket.DecodeFailure); ok {
		failure = l.Error()
	}
	if h.Fragment {
		// A non-first fragment: gopacket stops at it too, unless it
		// stopped earlier, at an atomic fragment header or one it gave up on.
		switch {
		case fragment && fragOff == 0:
		case h.IPv4 || fragment:
			if uint8(proto) != h.IPProto {
				t.Errorf("protocol of a fragment: Parse %d, gopacket %d", h.IPProto, proto)
			}
		case failure == nil || !gopacketRejects(failure, h):
			t.Errorf("Parse found a fragment (%+v); gopacket did not: %v", *h, pkt)
		}
		return
	}
	switch l := l4.(type) {
	case *layers.UDP:
		checkL4(t, h, proto, packet.ProtoUDP, uint16(l.SrcPort), uint16(l.DstPort))
		return
	case *layers.TCP:
		checkL4(t, h, proto, packet.ProtoTCP, uint16(l.SrcPort), uint16(l.DstPort))
		if flags := tcpFlags(l); flags != h.TCPFlags {
			t.Errorf("TCP flags: Parse %#02x, gopacket %#02x", h.TCPFlags, flags)
		}
		return
	case *layers.ICMPv4:
		checkL4(t, h, proto, packet.ProtoICMP, 0, 0)
		if l.TypeCode.Type() != h.ICMPType || l.TypeCode.Code() != h.ICMPCode {
			t.Errorf("ICMP: Parse %d/%d, gopacket %v", h.ICMPType, h.ICMPCode, l.TypeCode)
		}
		return
	case *layers.ICMPv6:
		checkL4(t, h, proto, packet.ProtoICMPv6, 0, 0)
		if l.TypeCode.Type() != h.ICMPType || l.TypeCode.Code() != h.ICMPCode {
			t.Errorf("ICMPv6: Parse %d/%d, gopacket %v", h.ICMPType, h.ICMPCode, l.TypeCode)
		}
		return
	}
	// gopacket has no L4 header here. Parse may, for the reasons above.
	if h.L4Off == 0 {
		return
	}
	switch {
	case moreFrag || fragment: // 3
	case failure != nil && gopacketRejects(failure, h): // 4, 5
	default:
		t.Errorf("Parse found protocol %d at %d (%+v); gopacket did not: %v", h.IPProto, h.L4Off, *h, pkt)
	}
}

// gopacketRejects reports whether err is gopacket giving up on something
// Parse does not check (see compareGopacket, 4 and 5).
func gopacketRejects(err error, h *packet.Headers) bool {
	msg := err.Error()
	for _, known := range []string{
		"IP option", "ip4 option", // IPv4 options
		"IPv6 header option", "IPv6 header TLV option", // IPv6 option TLVs
		"Jumbo length", "jumbo length", // hop-by-hop jumbogram rules
		"Unknown IPv6 routing header type", "Invalid IPv6 source routing",
	} {
		if strings.Contains(msg, known) {
			return true
		}
	}
	return h.IPProto == packet.ProtoICMP && strings.Contains(msg, "less then 8 bytes")
}

func checkL4(t *testing.T, h *packet.Headers, gopacketProto layers.IPProtocol, proto uint8, sport, dport uint16) {
	t.Helper()
	if h.IPProto != uint8(gopacketProto) {
		t.Errorf("protocol: Parse %d, gopacket %d", h.IPProto, gopacketProto)
	}
	if h.L4Off == 0 || h.SrcPort != sport || h.DstPort != dport {
		t.Errorf("L4 %d: Parse %+v; gopacket ports %d -> %d", proto, *h, sport, dport)
	}
}

func tcpFlags(l *layers.TCP) uint8 {
	var f uint8
	for i, set := range []bool{l.FIN, l.SYN, l.RST, l.PSH, l.ACK, l.URG, l.ECE, l.CWR} {
		if set {
			f |= 1 << i
		}
	}
	return f
}

// TestParseAgreesWithGopacket runs the comparison over the seeds, a
// subtest for each, named.
func TestParseAgreesWithGopacket(t *testing.T) {
	t.Parallel()
	for name, frame := range seeds() {
		var h packet.Headers
		err := packet.Parse(frame, &h)
		if errors.Is(err, packet.ErrTruncated) || errors.Is(err, packet.ErrMalformed) {
			continue
		}
		t.Run(name, func(t *testing.T) { compareGopacket(t, frame, &h) })
	}
}
