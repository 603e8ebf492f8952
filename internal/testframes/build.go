package testframes

import (
	"net/netip"
	"strconv"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Spec is a frame for Build to serialize: Ethernet from ClientMAC to
// ServerMAC, IPv4 or IPv6 (as Src is), and a UDP header, a TCP header
// with ACK set, an ICMP echo request or an ICMPv6 echo request, then
// Payload.
type Spec struct {
	Src, Dst netip.Addr
	// Proto is the IP protocol: 17 (UDP), 6 (TCP), 1 (ICMP) or 58
	// (ICMPv6).
	Proto uint8
	// TTL is the IPv4 TTL or the IPv6 hop limit.
	TTL uint8
	// IPID is the IPv4 identification.
	IPID uint16
	// SrcPort and DstPort are the UDP or TCP ports.
	SrcPort, DstPort uint16
	// Seq, Ack and Window are TCP's.
	Seq, Ack uint32
	Window   uint16
	// EchoID and EchoSeq are the ICMP echo request's identifier and
	// sequence number (not the ICMPv6 one's: those are 0).
	EchoID, EchoSeq uint16
	Payload         []byte
}

// Build serializes s with gopacket, which fixes the lengths and computes
// every checksum. A UDP checksum that computes to 0 is sent as 0, and a
// frame shorter than 60 bytes is padded to 60 with zeros.
func Build(s Spec) []byte {
	eth := &layers.Ethernet{SrcMAC: ClientMAC, DstMAC: ServerMAC, EthernetType: layers.EthernetTypeIPv4}
	var network gopacket.NetworkLayer
	var ip gopacket.SerializableLayer
	if s.Src.Is6() {
		eth.EthernetType = layers.EthernetTypeIPv6
		l := &layers.IPv6{Version: 6, HopLimit: s.TTL, NextHeader: layers.IPProtocol(s.Proto), SrcIP: s.Src.AsSlice(), DstIP: s.Dst.AsSlice()}
		network, ip = l, l
	} else {
		l := &layers.IPv4{Version: 4, IHL: 5, TTL: s.TTL, Id: s.IPID, Protocol: layers.IPProtocol(s.Proto), SrcIP: s.Src.AsSlice(), DstIP: s.Dst.AsSlice()}
		network, ip = l, l
	}
	var l4 gopacket.SerializableLayer
	switch layers.IPProtocol(s.Proto) {
	case layers.IPProtocolUDP:
		u := &layers.UDP{SrcPort: layers.UDPPort(s.SrcPort), DstPort: layers.UDPPort(s.DstPort)}
		_ = u.SetNetworkLayerForChecksum(network)
		l4 = u
	case layers.IPProtocolTCP:
		tc := &layers.TCP{SrcPort: layers.TCPPort(s.SrcPort), DstPort: layers.TCPPort(s.DstPort), Seq: s.Seq, Ack: s.Ack, ACK: true, Window: s.Window}
		_ = tc.SetNetworkLayerForChecksum(network)
		l4 = tc
	case layers.IPProtocolICMPv4:
		l4 = &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: s.EchoID, Seq: s.EchoSeq}
	case layers.IPProtocolICMPv6:
		ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}
		_ = ic.SetNetworkLayerForChecksum(network)
		l4 = ic
	default:
		panic("testframes.Build: no L4 header for protocol " + strconv.Itoa(int(s.Proto)))
	}
	return Serialize(eth, ip, l4, gopacket.Payload(s.Payload))
}

// Serialize serializes ls with gopacket, fixing lengths and computing
// checksums, into a new slice. It panics if gopacket fails.
func Serialize(ls ...gopacket.SerializableLayer) []byte {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		panic(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}
