//go:build linux

package filter_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/xdpkit/xdpkit/internal/testframes"
)

// The corpus: Ethernet frames covering what the primitives look at, built
// with gopacket. Addresses, ports and VLAN IDs come from small pools that
// the test expressions use, so most expressions match some frames and
// not others.

var (
	corpusV4 = []string{"10.0.0.1", "10.1.2.3", "192.168.1.10", "192.168.2.10", "172.16.5.4", "8.8.8.8",
		"1.2.3.4", "0.0.0.10", "10.255.255.255", "1.2.0.9"}
	corpusV6 = []string{"2001:db8::1", "2001:db8:0:1::2", "2001:db8:ffff::5", "fe80::1", "::1", "ff02::1",
		"2001:db9::1", "::ffff:1.2.3.4", "::"}
	corpusPorts = []uint16{22, 53, 80, 443, 999, 1000, 1500, 2000, 2001, 9999, 65535, 0, 65}
	macA        = net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x00, 0x01}
	macB        = net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x00, 0x02}
)

// frame is one corpus entry.
type frame struct {
	name string
	data []byte
}

// inner is a frame from the network header on, before encapsulation.
type inner struct {
	name  string
	etype layers.EthernetType
	ls    []gopacket.SerializableLayer
	// patch, if not nil, edits the serialized network header (weird
	// IPv4 header lengths and versions that gopacket would not write).
	patch func(l3 []byte)
}

// encap is the tagging in front of the network header.
type encap struct {
	name string
	tags []struct {
		tpid layers.EthernetType
		vid  uint16
	}
}

func tags(name string, tv ...any) encap {
	e := encap{name: name}
	for i := 0; i < len(tv); i += 2 {
		e.tags = append(e.tags, struct {
			tpid layers.EthernetType
			vid  uint16
		}{layers.EthernetType(tv[i].(int)), uint16(tv[i+1].(int))})
	}
	return e
}

var encaps = []encap{
	tags("untagged"),
	tags("vlan 100", 0x8100, 100),
	tags("vlan 200", 0x8100, 200),
	tags("vlan 4095", 0x8100, 4095),
	tags("vlan 0", 0x8100, 0),
	tags("802.1ad 100 / vlan 200", 0x88a8, 100, 0x8100, 200),
	tags("vlan 100 / vlan 200", 0x8100, 100, 0x8100, 200),
	tags("0x9100 1 / vlan 100", 0x9100, 1, 0x8100, 100),
	tags("802.1ad 200 / vlan 100 / vlan 1", 0x88a8, 200, 0x8100, 100, 0x8100, 1),
}

// build encapsulates in in e.
func build(e encap, in inner) frame {
	var ls []gopacket.SerializableLayer
	eth := &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: in.etype}
	ls = append(ls, eth)
	if len(e.tags) > 0 {
		eth.EthernetType = e.tags[0].tpid
		for i, t := range e.tags {
			next := in.etype
			if i+1 < len(e.tags) {
				next = e.tags[i+1].tpid
			}
			ls = append(ls, &layers.Dot1Q{VLANIdentifier: t.vid, Type: next})
		}
	}
	ls = append(ls, in.ls...)
	data := testframes.Serialize(ls...)
	if in.patch != nil {
		in.patch(data[14+4*len(e.tags):])
	}
	return frame{name: e.name + " / " + in.name, data: data}
}

func ip4(s string) net.IP { return net.IP(netip.MustParseAddr(s).AsSlice()) }
func ip6(s string) net.IP { a := netip.MustParseAddr(s).As16(); return net.IP(a[:]) }

func payload(n int) gopacket.Payload {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + 3)
	}
	return p
}

// transport returns the layers for proto (6, 17, 132, 1, 58) from sport
// to dport (or the ICMP type in sport), checksummed over network.
func transport(proto int, sport, dport uint16, network gopacket.NetworkLayer) []gopacket.SerializableLayer {
	switch proto {
	case 6:
		tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: 1, SYN: true, Window: 1024}
		_ = tcp.SetNetworkLayerForChecksum(network)
		return []gopacket.SerializableLayer{tcp, payload(4)}
	case 17:
		udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
		_ = udp.SetNetworkLayerForChecksum(network)
		return []gopacket.SerializableLayer{udp, payload(12)}
	case 132:
		return []gopacket.SerializableLayer{&layers.SCTP{SrcPort: layers.SCTPPort(sport), DstPort: layers.SCTPPort(dport), VerificationTag: 7}, payload(16)}
	case 1:
		return []gopacket.SerializableLayer{&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(uint8(sport), 0), Id: 1, Seq: 1}, payload(8)}
	case 58:
		icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(uint8(sport), 0)}
		_ = icmp.SetNetworkLayerForChecksum(network)
		return []gopacket.SerializableLayer{icmp, payload(20)}
	}
	return []gopacket.SerializableLayer{payload(24)}
}

func v4(name string, src, dst string, proto int, sport, dport uint16, mod func(*layers.IPv4)) inner {
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocol(proto), SrcIP: ip4(src), DstIP: ip4(dst), Id: 9}
	if mod != nil {
		mod(ip)
	}
	return inner{
		name:  fmt.Sprintf("%s %s>%s proto %d %d>%d", name, src, dst, proto, sport, dport),
		etype: layers.EthernetTypeIPv4,
		ls:    append([]gopacket.SerializableLayer{ip}, transport(proto, sport, dport, ip)...),
	}
}

func v6(name string, src, dst string, proto int, sport, dport uint16) inner {
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocol(proto), SrcIP: ip6(src), DstIP: ip6(dst)}
	return inner{
		name:  fmt.Sprintf("%s %s>%s proto %d %d>%d", name, src, dst, proto, sport, dport),
		etype: layers.EthernetTypeIPv6,
		ls:    append([]gopacket.SerializableLayer{ip}, transport(proto, sport, dport, ip)...),
	}
}

// v6ext is IPv6 with one extension header (next header ext: 0 hop-by-hop,
// 44 fragment) before a transport header whose checksum is not computed.
func v6ext(src, dst string, ext, proto int, sport, dport uint16, fragOffset uint16) inner {
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocol(ext), SrcIP: ip6(src), DstIP: ip6(dst)}
	hdr := make([]byte, 8)
	hdr[0] = byte(proto)
	if ext == 44 {
		binary.BigEndian.PutUint16(hdr[2:], fragOffset<<3|1)
		binary.BigEndian.PutUint32(hdr[4:], 77)
	} else {
		hdr[2], hdr[3] = 1, 4 // PadN
	}
	l4 := make([]byte, 24)
	binary.BigEndian.PutUint16(l4[0:], sport)
	binary.BigEndian.PutUint16(l4[2:], dport)
	if proto == 58 {
		l4[0] = byte(sport)
	}
	return inner{
		name:  fmt.Sprintf("ip6 ext %d off %d %s>%s proto %d %d>%d", ext, fragOffset, src, dst, proto, sport, dport),
		etype: layers.EthernetTypeIPv6,
		ls:    []gopacket.SerializableLayer{ip, gopacket.Payload(append(hdr, l4...))},
	}
}

func arp(op uint16, spa, tpa string, etype layers.EthernetType) inner {
	return inner{
		name:  fmt.Sprintf("%s op %d %s>%s", etype, op, spa, tpa),
		etype: etype,
		ls: []gopacket.SerializableLayer{&layers.ARP{
			AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: op, SourceHwAddress: macA, SourceProtAddress: ip4(spa), DstHwAddress: make([]byte, 6), DstProtAddress: ip4(tpa),
		}},
	}
}

func raw(name string, etype layers.EthernetType, n int) inner {
	return inner{name: name, etype: etype, ls: []gopacket.SerializableLayer{payload(n)}}
}

// inners returns the network-layer variety, pseudo-randomly but
// deterministically.
func inners(rng *rand.Rand) []inner {
	pick4 := func() string { return corpusV4[rng.IntN(len(corpusV4))] }
	pick6 := func() string { return corpusV6[rng.IntN(len(corpusV6))] }
	port := func() uint16 { return corpusPorts[rng.IntN(len(corpusPorts))] }
	l4 := []int{6, 17, 132}

	var in []inner
	// Hand-picked IPv4.
	in = append(in,
		v4("dns query", "10.0.0.1", "8.8.8.8", 17, 40000, 53, nil),
		v4("dns answer", "8.8.8.8", "10.0.0.1", 17, 53, 40000, nil),
		v4("ssh", "192.168.1.10", "10.1.2.3", 6, 50000, 22, nil),
		v4("ssh reply", "10.1.2.3", "192.168.1.10", 6, 22, 50000, nil),
		v4("dns tcp", "172.16.5.4", "1.2.3.4", 6, 53, 53, nil),
		v4("xdp test", "10.0.0.1", "10.1.2.3", 17, 1234, 9999, nil),
		v4("icmp echo", "10.0.0.1", "192.168.2.10", 1, 8, 0, nil),
		v4("icmp reply", "192.168.2.10", "10.0.0.1", 1, 0, 0, nil),
		v4("gre", "10.0.0.1", "1.2.3.4", 47, 0, 0, nil),
		v4("proto 0", "0.0.0.10", "1.2.0.9", 0, 0, 0, nil),
		v4("sctp", "10.0.0.1", "10.1.2.3", 132, 9999, 53, nil),
		v4("options 1 word", "192.168.1.10", "8.8.8.8", 17, 53, 999, func(ip *layers.IPv4) {
			ip.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}
		}),
		v4("options 5 words", "10.0.0.1", "8.8.8.8", 6, 2000, 22, func(ip *layers.IPv4) {
			ip.Options = []layers.IPv4Option{{OptionType: 7, OptionLength: 19, OptionData: append([]byte{4}, make([]byte, 16)...)}, {OptionType: 1}}
		}),
		v4("options 10 words", "10.0.0.1", "8.8.8.8", 17, 1000, 53, func(ip *layers.IPv4) {
			ip.Options = []layers.IPv4Option{{OptionType: 7, OptionLength: 39, OptionData: append([]byte{4}, make([]byte, 36)...)}, {OptionType: 1}}
		}),
		v4("first fragment", "10.0.0.1", "8.8.8.8", 17, 1500, 53, func(ip *layers.IPv4) { ip.Flags = layers.IPv4MoreFragments }),
		v4("dont fragment", "10.0.0.1", "8.8.8.8", 6, 22, 2001, func(ip *layers.IPv4) { ip.Flags = layers.IPv4DontFragment }),
		v4("later fragment", "10.0.0.1", "8.8.8.8", 17, 53, 53, func(ip *layers.IPv4) { ip.FragOffset = 185 }),
		v4("last fragment", "8.8.8.8", "10.0.0.1", 6, 22, 22, func(ip *layers.IPv4) { ip.FragOffset = 1 }),
		v4("middle fragment", "8.8.8.8", "10.0.0.1", 132, 53, 9999, func(ip *layers.IPv4) {
			ip.FragOffset, ip.Flags = 8191, layers.IPv4MoreFragments
		}),
	)
	for _, ihl := range []byte{0, 1, 4, 15} {
		i := v4(fmt.Sprintf("ihl %d", ihl), "10.0.0.1", "10.1.2.3", 17, 53, 80, nil)
		i.patch = func(l3 []byte) { l3[0] = 0x40 | ihl }
		in = append(in, i)
	}
	notV4 := v4("version 6 in 0x0800", "10.0.0.1", "10.1.2.3", 6, 22, 53, nil)
	notV4.patch = func(l3 []byte) { l3[0] = 0x65 }
	in = append(in, notV4)
	// Random IPv4.
	for range 70 {
		in = append(in, v4("ip", pick4(), pick4(), l4[rng.IntN(len(l4))], port(), port(), nil))
	}
	for range 6 {
		in = append(in, v4("icmp", pick4(), pick4(), 1, uint16(rng.IntN(20)), 0, nil))
	}

	// IPv6.
	in = append(in,
		v6("dns6", "2001:db8::1", "2001:db8:0:1::2", 17, 40000, 53),
		v6("ssh6", "fe80::1", "2001:db8::1", 6, 22, 50000),
		v6("sctp6", "::1", "2001:db9::1", 132, 53, 22),
		v6("echo6", "2001:db8::1", "ff02::1", 58, 128, 0),
		v6("echo reply6", "ff02::1", "2001:db8::1", 58, 129, 0),
		v6("unreachable6", "2001:db8::1", "::1", 58, 1, 0),
		v6("no next header", "2001:db8::1", "::1", 59, 0, 0),
	)
	for typ := uint16(132); typ <= 138; typ++ {
		in = append(in, v6("nd", "fe80::1", "ff02::1", 58, typ, 0))
	}
	for range 45 {
		in = append(in, v6("ip6", pick6(), pick6(), l4[rng.IntN(len(l4))], port(), port()))
	}
	in = append(in,
		v6ext("2001:db8::1", "2001:db8:ffff::5", 44, 17, 53, 999, 0),
		v6ext("2001:db8::1", "2001:db8:ffff::5", 44, 6, 1000, 22, 0),
		v6ext("2001:db8::1", "2001:db8:ffff::5", 44, 6, 22, 80, 100),
		v6ext("fe80::1", "ff02::1", 44, 58, 135, 0, 0),
		v6ext("fe80::1", "2001:db8::1", 0, 6, 22, 22, 0),
		v6ext("fe80::1", "ff02::1", 0, 58, 135, 0, 0),
		v6ext("::1", "::1", 44, 132, 9999, 9999, 0),
		v6ext("::1", "::1", 44, 44, 53, 53, 0),
	)

	// ARP, RARP and other EtherTypes.
	for range 10 {
		in = append(in, arp(uint16(1+rng.IntN(2)), pick4(), pick4(), layers.EthernetTypeARP))
	}
	in = append(in,
		arp(1, "10.0.0.1", "10.1.2.3", layers.EthernetTypeARP),
		arp(3, "192.168.1.10", "0.0.0.10", layers.EthernetType(0x8035)),
		arp(4, "1.2.3.4", "10.0.0.1", layers.EthernetType(0x8035)),
		raw("lldp", 0x88cc, 40),
		raw("mpls", 0x8847, 40),
		raw("ethertype 0x0800 empty", layers.EthernetTypeIPv4, 0),
		raw("ethertype 0x86dd short", layers.EthernetTypeIPv6, 10),
	)
	return in
}

// corpus returns the test frames.
func corpus() []frame {
	rng := rand.New(rand.NewPCG(20240611, 1))
	var frames []frame
	var truncatable []frame
	for i, in := range inners(rng) {
		frames = append(frames, build(encaps[0], in))
		// Two more tagged variants of each, and all of them for a few.
		picks := []int{1 + rng.IntN(len(encaps)-1), 1 + rng.IntN(len(encaps)-1)}
		if i%17 == 0 {
			picks = picks[:0]
			for j := 1; j < len(encaps); j++ {
				picks = append(picks, j)
			}
		}
		for _, j := range picks {
			frames = append(frames, build(encaps[j], in))
		}
		if i%9 == 0 {
			truncatable = append(truncatable, frames[len(frames)-1])
		}
	}
	// Truncated frames: every short prefix of some frames, cut inside
	// every header a primitive looks at.
	cuts := []int{14, 15, 16, 17, 18, 20, 22, 23, 24, 26, 28, 30, 33, 34, 35, 36, 37, 38, 40, 41, 42, 44, 46, 50, 54, 55, 56, 57, 58, 60, 62, 66, 70}
	for _, f := range truncatable {
		for _, n := range cuts {
			if n < len(f.data) {
				frames = append(frames, frame{name: fmt.Sprintf("%s cut to %d", f.name, n), data: f.data[:n]})
			}
		}
	}
	// An 802.3 frame with a length field instead of an EtherType.
	llc := make([]byte, 60)
	copy(llc, macB)
	copy(llc[6:], macA)
	binary.BigEndian.PutUint16(llc[12:], 46)
	copy(llc[14:], []byte{0x42, 0x42, 0x03})
	frames = append(frames, frame{name: "802.3 LLC", data: llc})
	return frames
}
