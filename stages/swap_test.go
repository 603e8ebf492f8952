package stages_test

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/xdpkit/xdpkit/internal/testframes"
	"github.com/xdpkit/xdpkit/packet"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/stages"
)

// The helpers and frames of the MACSwap, AddrSwap and LoadBalancer tests
// are prefixed sw, so they do not clash with other stages' tests in the
// package.

// The test frames go from a client, 02:00:00:00:00:01 at 192.0.2.1 or
// 2001:db8::1, to us, 02:00:00:00:00:02 at 198.51.100.2 or 2001:db8::2:
// those below, and testframes' UDP4, TCP6, UDP6, ICMP4, ICMP6, UDP4VLAN and
// Frag4Rest, which other packages' tests share.
// The backend is 02:00:00:00:01:01 at 10.0.0.1 or 2001:db8:1::a. gopacket
// built them all, with its checksums; the expected outputs were built
// from scratch, not by editing the inputs.
var (
	// swUDP4NoCsum is testframes.UDP4 without UDP checksum.
	swUDP4NoCsum = testframes.Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 08 00 # ethernet
		45 00 00 21 12 34 00 00 40 11 7c 61 # ipv4
		c0 00 02 01 c6 33 64 02 # source, destination
		9c 40 00 35 00 0d 00 00 # udp
		68 65 6c 6c 6f # payload
	`)
	// swTCP4 is TCP over IPv4, 192.0.2.1:40001 -> 198.51.100.2:80, PSH+ACK, "data".
	swTCP4 = testframes.Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 08 00 # ethernet
		45 00 00 2c 12 34 00 00 40 06 7c 61 # ipv4
		c0 00 02 01 c6 33 64 02 # source, destination
		9c 41 00 50 01 02 03 04 0a 0b 0c 0d 50 18 01 f6 32 29 00 00 # tcp
		64 61 74 61 # payload
	`)
	// AddrSwap replies, built by gopacket from scratch.
	// swUDP4Reply is the reply AddrSwap makes of testframes.UDP4.
	swUDP4Reply = testframes.Hex(`
		02 00 00 00 00 01 02 00 00 00 00 02 08 00 # ethernet
		45 00 00 21 12 34 00 00 40 11 7c 61 # ipv4
		c6 33 64 02 c0 00 02 01 # source, destination
		00 35 9c 40 00 0d 33 55 # udp
		68 65 6c 6c 6f # payload
	`)
	// swUDP4NoCsumReply is the reply AddrSwap makes of swUDP4NoCsum.
	swUDP4NoCsumReply = testframes.Hex(`
		02 00 00 00 00 01 02 00 00 00 00 02 08 00 # ethernet
		45 00 00 21 12 34 00 00 40 11 7c 61 # ipv4
		c6 33 64 02 c0 00 02 01 # source, destination
		00 35 9c 40 00 0d 00 00 # udp
		68 65 6c 6c 6f # payload
	`)
	// swTCP4Reply is the reply AddrSwap makes of swTCP4.
	swTCP4Reply = testframes.Hex(`
		02 00 00 00 00 01 02 00 00 00 00 02 08 00 # ethernet
		45 00 00 2c 12 34 00 00 40 06 7c 61 # ipv4
		c6 33 64 02 c0 00 02 01 # source, destination
		00 50 9c 41 01 02 03 04 0a 0b 0c 0d 50 18 01 f6 32 29 00 00 # tcp
		64 61 74 61 # payload
	`)
	// swUDP6Reply is the reply AddrSwap makes of testframes.UDP6.
	swUDP6Reply = testframes.Hex(`
		02 00 00 00 00 01 02 00 00 00 00 02 86 dd # ethernet
		60 00 00 00 00 0d 11 40 # ipv6
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02 # source
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 # destination
		00 35 9c 40 00 0d c4 17 # udp
		68 65 6c 6c 6f # payload
	`)
	// swTCP6Reply is the reply AddrSwap makes of testframes.TCP6.
	swTCP6Reply = testframes.Hex(`
		02 00 00 00 00 01 02 00 00 00 00 02 86 dd # ethernet
		60 00 00 00 00 18 06 40 # ipv6
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02 # source
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 # destination
		01 bb 9c 41 01 02 03 04 0a 0b 0c 0d 50 18 01 f6 c1 80 00 00 # tcp
		64 61 74 61 # payload
	`)
	// swICMP4Reply is the reply AddrSwap makes of testframes.ICMP4.
	swICMP4Reply = testframes.Hex(`
		02 00 00 00 00 01 02 00 00 00 00 02 08 00 # ethernet
		45 00 00 20 12 34 00 00 40 01 7c 72 # ipv4
		c6 33 64 02 c0 00 02 01 # source, destination
		00 00 de eb # icmp
		42 42 00 01 70 69 6e 67 # payload
	`)
	// swICMP6Reply is the reply AddrSwap makes of testframes.ICMP6.
	swICMP6Reply = testframes.Hex(`
		02 00 00 00 00 01 02 00 00 00 00 02 86 dd # ethernet
		60 00 00 00 00 0c 3a 40 # ipv6
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02 # source
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 # destination
		81 00 02 30 # icmpv6
		42 42 00 01 70 69 6e 67 # payload
	`)
	// swVLANReply is the reply AddrSwap makes of testframes.UDP4VLAN.
	swVLANReply = testframes.Hex(`
		02 00 00 00 00 01 02 00 00 00 00 02 81 00 60 64 08 00 # ethernet, VLAN 100
		45 00 00 21 12 34 00 00 40 11 7c 61 # ipv4
		c6 33 64 02 c0 00 02 01 # source, destination
		00 35 9c 40 00 0d 33 55 # udp
		68 65 6c 6c 6f # payload
	`)
	// swFrag4RestReply is the reply AddrSwap makes of testframes.Frag4Rest.
	swFrag4RestReply = testframes.Hex(`
		02 00 00 00 00 01 02 00 00 00 00 02 08 00 # ethernet
		45 00 00 24 12 34 00 b9 40 11 7b a5 # ipv4
		c6 33 64 02 c0 00 02 01 # source, destination
		30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66 # payload
	`)
	// LoadBalancer output for one backend, built by gopacket from scratch.
	// swUDP4ToBackend is testframes.UDP4 sent to the backend.
	swUDP4ToBackend = testframes.Hex(`
		02 00 00 00 01 01 02 00 00 00 00 02 08 00 # ethernet
		45 00 00 21 12 34 00 00 40 11 9c 96 # ipv4
		c0 00 02 01 0a 00 00 01 # source, destination
		9c 40 00 35 00 0d 53 8a # udp
		68 65 6c 6c 6f # payload
	`)
	// swUDP4NoCsumToBackend is swUDP4NoCsum sent to the backend.
	swUDP4NoCsumToBackend = testframes.Hex(`
		02 00 00 00 01 01 02 00 00 00 00 02 08 00 # ethernet
		45 00 00 21 12 34 00 00 40 11 9c 96 # ipv4
		c0 00 02 01 0a 00 00 01 # source, destination
		9c 40 00 35 00 0d 00 00 # udp
		68 65 6c 6c 6f # payload
	`)
	// swTCP4ToBackend is swTCP4 sent to the backend.
	swTCP4ToBackend = testframes.Hex(`
		02 00 00 00 01 01 02 00 00 00 00 02 08 00 # ethernet
		45 00 00 2c 12 34 00 00 40 06 9c 96 # ipv4
		c0 00 02 01 0a 00 00 01 # source, destination
		9c 41 00 50 01 02 03 04 0a 0b 0c 0d 50 18 01 f6 52 5e 00 00 # tcp
		64 61 74 61 # payload
	`)
	// swUDP6ToBackend is testframes.UDP6 sent to the backend.
	swUDP6ToBackend = testframes.Hex(`
		02 00 00 00 01 01 02 00 00 00 00 02 86 dd # ethernet
		60 00 00 00 00 0d 11 40 # ipv6
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 # source
		20 01 0d b8 00 01 00 00 00 00 00 00 00 00 00 0a # destination
		9c 40 00 35 00 0d c4 0e # udp
		68 65 6c 6c 6f # payload
	`)
	// swTCP6ToBackend is testframes.TCP6 sent to the backend.
	swTCP6ToBackend = testframes.Hex(`
		02 00 00 00 01 01 02 00 00 00 00 02 86 dd # ethernet
		60 00 00 00 00 18 06 40 # ipv6
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 # source
		20 01 0d b8 00 01 00 00 00 00 00 00 00 00 00 0a # destination
		9c 41 01 bb 01 02 03 04 0a 0b 0c 0d 50 18 01 f6 c1 77 00 00 # tcp
		64 61 74 61 # payload
	`)
)

// swBackendMAC is the backend's MAC address.
var swBackendMAC = net.HardwareAddr{2, 0, 0, 0, 1, 1}

// swModify returns a copy of frame with fn applied.
func swModify(frame []byte, fn func(b []byte)) []byte {
	b := bytes.Clone(frame)
	fn(b)
	return b
}

// swFix rewrites the IPv4 header checksum and the L4 checksum of frame
// (after a test edited it) by full recomputation, and returns it.
func swFix(frame []byte) []byte {
	var h packet.Headers
	if err := packet.Parse(frame, &h); err != nil {
		panic(err)
	}
	packet.SetIPv4Checksum(frame, &h)
	packet.SetL4Checksum(frame, &h)
	return frame
}

// swPartial returns a copy of frame with the L4 checksum field holding
// only the pseudo-header sum, as a sender using TX checksum offload
// leaves it (CHECKSUM_PARTIAL).
func swPartial(frame []byte) []byte {
	frame = bytes.Clone(frame)
	var h packet.Headers
	if err := packet.Parse(frame, &h); err != nil {
		panic(err)
	}
	seg := h.L3Off + h.IPLen - h.L4Off
	off := map[uint8]int{packet.ProtoUDP: 6, packet.ProtoTCP: 16}[h.IPProto]
	binary.BigEndian.PutUint16(frame[h.L4Off+off:], packet.Fold(packet.PseudoHeaderSum(h.SrcIP, h.DstIP, h.IPProto, seg)))
	return frame
}

// swGuard copies frame into a Packet whose Data has 64 bytes of canary
// after it, as a UMEM frame has the rest of its chunk, and parses it.
// check fails the test if Handle wrote past the frame or resliced it.
func swGuard(t testing.TB, frame []byte) (p *pipeline.Packet, check func()) {
	buf := make([]byte, len(frame)+64)
	for i := range buf {
		buf[i] = 0xa5
	}
	copy(buf, frame)
	p = &pipeline.Packet{Data: buf[:len(frame)]}
	p.Reparse()
	return p, func() {
		t.Helper()
		for i, c := range buf[len(frame):] {
			if c != 0xa5 {
				t.Fatalf("byte %d past the %d-byte frame changed to %#02x", i, len(frame), c)
			}
		}
		if len(p.Data) != len(frame) || &p.Data[:1][0] != &buf[0] && len(frame) > 0 {
			t.Fatalf("Data resliced to %d bytes, or moved", len(p.Data))
		}
	}
}

// swHandle runs s on a copy of frame and returns the verdict and the frame
// as s left it, checking the canary and that s kept Headers up to date.
func swHandle(t testing.TB, s pipeline.Stage, frame []byte) (pipeline.Verdict, []byte) {
	t.Helper()
	p, check := swGuard(t, frame)
	v := s.Handle(p)
	check()
	if v == pipeline.Transmit || v == pipeline.Continue {
		var h packet.Headers
		err := packet.Parse(p.Data, &h)
		if err != p.ParseErr || h != p.Headers {
			t.Fatalf("Headers after Handle:\n got %+v, %v\nwant %+v, %v (a parse of the frame)", p.Headers, p.ParseErr, h, err)
		}
	}
	return v, p.Data
}

// swChecksumsValid reports whether the IPv4 header checksum and the L4
// checksum of frame verify by full recomputation, and whether the frame
// has an L4 checksum to verify. A UDP-over-IPv4 checksum of 0 is valid.
func swChecksumsValid(frame []byte) (ipOK, l4OK, hasL4 bool) {
	var h packet.Headers
	if packet.Parse(frame, &h) != nil || h.L3Off == 0 {
		return false, false, false
	}
	ipOK = !h.IPv4 || packet.Checksum(frame[h.L3Off:h.L3Off+h.IPHdrLen], 0) == 0
	csum, ok := packet.L4Checksum(frame, &h)
	if !ok {
		return ipOK, false, false
	}
	off := map[uint8]int{packet.ProtoUDP: 6, packet.ProtoTCP: 16, packet.ProtoICMP: 2, packet.ProtoICMPv6: 2}[h.IPProto]
	field := binary.BigEndian.Uint16(frame[h.L4Off+off:])
	switch {
	case h.IPProto == packet.ProtoUDP && h.IPv4 && field == 0:
		l4OK = true
	default:
		// Valid means equal to the computed value, up to one's
		// complement's two zeros.
		l4OK = field == csum || field^csum == 0xffff && (field == 0 || csum == 0)
	}
	return ipOK, l4OK, true
}

// swGopacketChecksums decodes frame with gopacket up to the L4 header,
// serializes those layers and the rest of the frame again with
// ComputeChecksums, and checks that this reproduces frame: gopacket's
// verdict on every checksum in it. A zero UDP-over-IPv4 checksum is left
// alone.
func swGopacketChecksums(t testing.TB, frame []byte) {
	t.Helper()
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	var (
		ls      []gopacket.SerializableLayer
		network gopacket.NetworkLayer
		udpOff  = -1
		off     = 0
		l4      gopacket.Layer
	)
	for _, l := range pkt.Layers() {
		switch l := l.(type) {
		case *layers.IPv4:
			network = l
		case *layers.IPv6:
			network = l
		case *layers.UDP:
			_ = l.SetNetworkLayerForChecksum(network)
			if l.Checksum == 0 {
				udpOff = off
			}
			l4 = l
		case *layers.TCP:
			_ = l.SetNetworkLayerForChecksum(network)
			l4 = l
		case *layers.ICMPv4:
			l4 = l
		case *layers.ICMPv6:
			_ = l.SetNetworkLayerForChecksum(network)
			l4 = l
		}
		s, ok := l.(gopacket.SerializableLayer)
		if !ok {
			t.Fatalf("gopacket cannot serialize %v (%v)", l.LayerType(), pkt.ErrorLayer())
		}
		ls = append(ls, s)
		off += len(l.LayerContents())
		if l4 != nil {
			// What follows is payload, whatever gopacket makes of it
			// (DNS, for port 53).
			ls = append(ls, gopacket.Payload(l4.LayerPayload()))
			break
		}
	}
	if l4 == nil {
		t.Fatalf("gopacket found no L4 header: %v", pkt)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, ls...); err != nil {
		t.Fatalf("gopacket serialize: %v", err)
	}
	got := buf.Bytes()
	if len(got) < len(frame) {
		t.Fatalf("gopacket serialized %d of %d bytes", len(got), len(frame))
	}
	got = got[:len(frame)] // gopacket pads to 60 bytes
	if udpOff >= 0 {
		got[udpOff+6], got[udpOff+7] = 0, 0
	}
	if !bytes.Equal(got, frame) {
		t.Errorf("gopacket's checksums differ:\ngopacket %x\n   frame %x", got, frame)
	}
}

func TestMACSwap(t *testing.T) {
	t.Parallel()
	swapped := func(f []byte) []byte {
		return swModify(f, func(b []byte) {
			copy(b[0:6], f[6:12])
			copy(b[6:12], f[0:6])
		})
	}
	arp := testframes.Hex(`
		ff ff ff ff ff ff 02 00 00 00 00 01 08 06 # ethernet
		00 01 08 00 06 04 00 01 02 00 00 00 00 01 c0 00 02 01 00 00 00 00 00 00 c6 33 64 02 # arp request
	`)
	for _, c := range []struct {
		name  string
		s     *stages.MACSwap
		frame []byte
		v     pipeline.Verdict
		want  []byte
	}{
		{"udp4", stages.NewMACSwap(), testframes.UDP4, pipeline.Transmit, testframes.Hex(`
			02 00 00 00 00 01 02 00 00 00 00 02 08 00 # ethernet, swapped
			45 00 00 21 12 34 00 00 40 11 7c 61 c0 00 02 01 c6 33 64 02 # ipv4, unchanged
			9c 40 00 35 00 0d 33 55 68 65 6c 6c 6f # udp, unchanged
		`)},
		{"tcp6", stages.NewMACSwap(), testframes.TCP6, pipeline.Transmit, swapped(testframes.TCP6)},
		{"vlan", stages.NewMACSwap(), testframes.UDP4VLAN, pipeline.Transmit, swapped(testframes.UDP4VLAN)},
		{"arp", stages.NewMACSwap(), arp, pipeline.Transmit, testframes.Hex(`
			02 00 00 00 00 01 ff ff ff ff ff ff 08 06 # ethernet, swapped
			00 01 08 00 06 04 00 01 02 00 00 00 00 01 c0 00 02 01 00 00 00 00 00 00 c6 33 64 02 # arp request
		`)},
		{"chain", &stages.MACSwap{Chain: true}, testframes.UDP4, pipeline.Continue, swapped(testframes.UDP4)},
		{"truncated", stages.NewMACSwap(), testframes.UDP4[:40], pipeline.Malformed, testframes.UDP4[:40]},
		{"runt", stages.NewMACSwap(), testframes.UDP4[:12], pipeline.Malformed, testframes.UDP4[:12]},
		{"empty", stages.NewMACSwap(), nil, pipeline.Malformed, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			v, got := swHandle(t, c.s, c.frame)
			if v != c.v || !bytes.Equal(got, c.want) {
				t.Errorf("Handle = %v\n%x, want %v\n%x", v, got, c.v, c.want)
			}
		})
	}
	if n := stages.NewMACSwap().Name(); n != "macswap" {
		t.Errorf("Name() = %q", n)
	}
}

// swNoReply are frames AddrSwap passes on untouched.
var swNoReply = map[string][]byte{
	"arp": testframes.Hex(`
		ff ff ff ff ff ff 02 00 00 00 00 01 08 06 # ethernet
		00 01 08 00 06 04 00 01 02 00 00 00 00 01 c0 00 02 01 00 00 00 00 00 00 c6 33 64 02 # arp request
	`),
	"broadcast mac":  swFix(swModify(testframes.UDP4, func(b []byte) { copy(b, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) })),
	"multicast mac":  swFix(swModify(testframes.UDP6, func(b []byte) { copy(b, []byte{0x33, 0x33, 0, 0, 0, 1}) })),
	"multicast ipv4": swFix(swModify(testframes.UDP4, func(b []byte) { copy(b[30:34], []byte{224, 0, 0, 251}) })),
	"broadcast ipv4": swFix(swModify(testframes.UDP4, func(b []byte) { copy(b[30:34], []byte{255, 255, 255, 255}) })),
	"multicast ipv6": swFix(swModify(testframes.UDP6, func(b []byte) { copy(b[38:54], netip.MustParseAddr("ff02::fb").AsSlice()) })),
	"from 0.0.0.0":   swFix(swModify(testframes.UDP4, func(b []byte) { copy(b[26:30], []byte{0, 0, 0, 0}) })),
	"from ::":        swFix(swModify(testframes.UDP6, func(b []byte) { clear(b[22:38]) })),
	"echo reply":     swICMP4Reply,
	"icmpv6 reply":   swICMP6Reply,
	"icmp in ipv6":   swFix(swModify(testframes.ICMP6, func(b []byte) { b[20], b[54] = packet.ProtoICMP, 8 })),
	"gre": swFix(swModify(testframes.Frag4Rest, func(b []byte) {
		b[20], b[21], b[23] = 0, 0, 47 // not a fragment; protocol GRE
	})),
}

func TestAddrSwap(t *testing.T) {
	t.Parallel()
	replies := []struct {
		name       string
		frame      []byte
		reply      []byte
		noChecksum bool // the frame has no L4 checksum to verify
	}{
		{name: "udp4", frame: testframes.UDP4, reply: swUDP4Reply},
		{name: "udp4 without checksum", frame: swUDP4NoCsum, reply: swUDP4NoCsumReply},
		{name: "tcp4", frame: swTCP4, reply: swTCP4Reply},
		{name: "udp6", frame: testframes.UDP6, reply: swUDP6Reply},
		{name: "tcp6", frame: testframes.TCP6, reply: swTCP6Reply},
		{name: "icmp4 echo", frame: testframes.ICMP4, reply: swICMP4Reply},
		{name: "icmp6 echo", frame: testframes.ICMP6, reply: swICMP6Reply},
		{name: "vlan", frame: testframes.UDP4VLAN, reply: swVLANReply},
		{name: "non-first fragment", frame: testframes.Frag4Rest, reply: swFrag4RestReply, noChecksum: true},
	}
	for _, c := range replies {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			for _, recompute := range []bool{false, true} {
				s := stages.NewAddrSwap(&stages.AddrSwapOptions{RecomputeL4Checksum: recompute})
				v, got := swHandle(t, s, c.frame)
				if v != pipeline.Transmit || !bytes.Equal(got, c.reply) {
					t.Fatalf("recompute %v: Handle = %v\n%x, want Transmit\n%x", recompute, v, got, c.reply)
				}
				ipOK, l4OK, hasL4 := swChecksumsValid(got)
				if !ipOK || hasL4 == c.noChecksum || hasL4 && !l4OK {
					t.Errorf("checksums by recomputation: IP %v, L4 %v (has one: %v)", ipOK, l4OK, hasL4)
				}
				if !c.noChecksum {
					swGopacketChecksums(t, got)
				}
			}
		})
	}
	for name, frame := range swNoReply {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			v, got := swHandle(t, stages.NewAddrSwap(nil), frame)
			if v != pipeline.Continue || !bytes.Equal(got, frame) {
				t.Errorf("Handle = %v\n%x, want Continue, untouched", v, got)
			}
		})
	}
	for name, frame := range map[string][]byte{
		"truncated": testframes.UDP4[:40], "runt": testframes.UDP4[:13], "empty": nil,
		"bad udp length": swModify(testframes.UDP6, func(b []byte) { b[59] = 99 }),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			v, got := swHandle(t, stages.NewAddrSwap(nil), frame)
			if v != pipeline.Malformed || !bytes.Equal(got, frame) {
				t.Errorf("Handle = %v\n%x, want Malformed, untouched", v, got)
			}
		})
	}
	t.Run("chain", func(t *testing.T) {
		t.Parallel()
		v, got := swHandle(t, stages.NewAddrSwap(&stages.AddrSwapOptions{Chain: true}), testframes.UDP4)
		if v != pipeline.Continue || !bytes.Equal(got, swUDP4Reply) {
			t.Errorf("Handle = %v\n%x, want Continue\n%x", v, got, swUDP4Reply)
		}
	})
	if n := stages.NewAddrSwap(nil).Name(); n != "addrswap" {
		t.Errorf("Name() = %q", n)
	}
}

// TestAddrSwapPartialChecksum: a frame whose L4 checksum field holds only
// the pseudo-header sum (TX checksum offload on a veth peer) is reflected
// with that partial sum by default, which the receiver rejects, and with a
// right checksum with RecomputeL4Checksum.
func TestAddrSwapPartialChecksum(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name         string
		frame, reply []byte
	}{
		{"udp4", testframes.UDP4, swUDP4Reply}, {"tcp4", swTCP4, swTCP4Reply},
		{"udp6", testframes.UDP6, swUDP6Reply}, {"tcp6", testframes.TCP6, swTCP6Reply},
	} {
		partial := swPartial(c.frame)
		_, got := swHandle(t, stages.NewAddrSwap(nil), partial)
		if _, l4OK, _ := swChecksumsValid(got); l4OK {
			t.Errorf("%s: a reflected partial checksum verifies; the test frame is wrong", c.name)
		}
		_, got = swHandle(t, stages.NewAddrSwap(&stages.AddrSwapOptions{RecomputeL4Checksum: true}), partial)
		if !bytes.Equal(got, c.reply) {
			t.Errorf("%s with RecomputeL4Checksum:\n got %x\nwant %x", c.name, got, c.reply)
		}
	}
}

// swRandomFrame builds a random UDP, TCP or ICMP echo frame with gopacket.
func swRandomFrame(r *rand.Rand, v6 bool, proto uint8, src, dst netip.Addr, sport, dport uint16) []byte {
	payload := make([]byte, r.IntN(200))
	for i := range payload {
		payload[i] = byte(r.Uint32())
	}
	spec := testframes.Spec{Src: src, Dst: dst, Proto: proto, TTL: uint8(r.Uint32()), SrcPort: sport, DstPort: dport, Payload: payload}
	if !v6 {
		spec.IPID = uint16(r.Uint32())
	}
	switch proto {
	case packet.ProtoTCP:
		spec.Seq, spec.Ack, spec.Window = r.Uint32(), r.Uint32(), uint16(r.Uint32())
	case packet.ProtoICMP:
		spec.EchoID, spec.EchoSeq = uint16(r.Uint32()), uint16(r.Uint32())
	}
	f := testframes.Build(spec)
	var h packet.Headers
	if err := packet.Parse(f, &h); err != nil {
		panic(err)
	}
	f = f[:h.L3Off+h.IPLen] // no Ethernet padding
	if proto == packet.ProtoUDP && binary.BigEndian.Uint16(f[h.L4Off+6:]) == 0 {
		f[h.L4Off+6], f[h.L4Off+7] = 0xff, 0xff // gopacket sends a computed 0 as "none"
	}
	return f
}

// swRandomAddr returns a random unicast address that AddrSwap answers.
func swRandomAddr(r *rand.Rand, v6 bool) netip.Addr {
	if v6 {
		var a [16]byte
		binary.BigEndian.PutUint64(a[:], 0x2001_0db8_0000_0000|r.Uint64()&0xffff_ffff)
		binary.BigEndian.PutUint64(a[8:], r.Uint64())
		return netip.AddrFrom16(a)
	}
	return netip.AddrFrom4([4]byte{byte(1 + r.IntN(223)), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
}

// TestAddrSwapKeepsChecksums reflects random frames: their checksum fields
// come back byte for byte (the swap leaves every sum as it was), still
// right by full recomputation and by gopacket, and a second swap gives the
// original frame back.
func TestAddrSwapKeepsChecksums(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(11, 12))
	s := stages.NewAddrSwap(nil)
	for i := range 3000 {
		v6 := i%2 == 1
		proto := []uint8{packet.ProtoUDP, packet.ProtoTCP, packet.ProtoICMP}[i/2%3]
		if proto == packet.ProtoICMP && v6 {
			proto = packet.ProtoICMPv6
		}
		frame := swRandomFrame(r, v6, proto, swRandomAddr(r, v6), swRandomAddr(r, v6), uint16(r.Uint32()), uint16(r.Uint32()))
		var h packet.Headers
		_ = packet.Parse(frame, &h)
		v, got := swHandle(t, s, frame)
		if v != pipeline.Transmit {
			t.Fatalf("Handle = %v for %x", v, frame)
		}
		if ipOK, l4OK, _ := swChecksumsValid(got); !ipOK || !l4OK {
			t.Fatalf("checksums wrong after the swap (IP %v, L4 %v):\n%x\n%x", ipOK, l4OK, frame, got)
		}
		if h.IPv4 && !bytes.Equal(got[24:26], frame[24:26]) {
			t.Fatalf("IPv4 header checksum changed: %x -> %x", frame[24:26], got[24:26])
		}
		if proto == packet.ProtoUDP || proto == packet.ProtoTCP {
			off := map[uint8]int{packet.ProtoUDP: 6, packet.ProtoTCP: 16}[proto]
			if !bytes.Equal(got[h.L4Off+off:h.L4Off+off+2], frame[h.L4Off+off:h.L4Off+off+2]) {
				t.Fatalf("L4 checksum changed")
			}
			if _, back := swHandle(t, s, got); !bytes.Equal(back, frame) {
				t.Fatalf("swapping twice:\n got %x\nwant %x", back, frame)
			}
		}
		if i%10 == 0 {
			swGopacketChecksums(t, got)
		}
	}
}

func TestSwapAllocs(t *testing.T) {
	frames := [][]byte{testframes.UDP4, testframes.TCP6, testframes.ICMP4, testframes.ICMP6, testframes.Frag4Rest, testframes.UDP4[:30], swNoReply["arp"]}
	ps := make([]*pipeline.Packet, len(frames))
	for i, f := range frames {
		ps[i] = &pipeline.Packet{Data: bytes.Clone(f)}
		ps[i].Reparse()
	}
	for _, s := range []pipeline.Stage{stages.NewMACSwap(), stages.NewAddrSwap(nil), stages.NewAddrSwap(&stages.AddrSwapOptions{RecomputeL4Checksum: true})} {
		allocs := testing.AllocsPerRun(1000, func() {
			for _, p := range ps {
				s.Handle(p)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per run", s.(pipeline.Named).Name(), allocs)
		}
	}
}

var swUpdateCorpus = flag.Bool("update-swap-corpus", false, "rewrite the MACSwap, AddrSwap and LoadBalancer seed corpora in testdata/fuzz")

// swSeeds are the frames the MACSwap, AddrSwap and LoadBalancer fuzz
// targets start from.
func swSeeds() map[string][]byte {
	m := map[string][]byte{
		"udp4": testframes.UDP4, "udp4-no-checksum": swUDP4NoCsum, "tcp4": swTCP4, "udp6": testframes.UDP6, "tcp6": testframes.TCP6,
		"icmp4": testframes.ICMP4, "icmp6": testframes.ICMP6, "vlan": testframes.UDP4VLAN, "frag4-rest": testframes.Frag4Rest,
		"udp4-partial": swPartial(testframes.UDP4), "tcp6-partial": swPartial(testframes.TCP6),
		"truncated": testframes.UDP4[:40], "runt": testframes.UDP4[:13],
	}
	for name, f := range swNoReply {
		m[strings.ReplaceAll(name, " ", "-")] = f
	}
	return m
}

// TestSwapFuzzCorpus checks that testdata/fuzz holds every seed of
// FuzzMACSwap, FuzzAddrSwap and FuzzLoadBalancer; -update-swap-corpus
// rewrites them.
func TestSwapFuzzCorpus(t *testing.T) {
	for _, target := range []string{"FuzzMACSwap", "FuzzAddrSwap", "FuzzLoadBalancer"} {
		testframes.CheckCorpus(t, filepath.Join("testdata", "fuzz", target), swSeeds(), *swUpdateCorpus,
			"go test ./stages -run TestSwapFuzzCorpus -update-swap-corpus")
	}
}

// swFuzzCheck checks what holds for every stage here on any input: the
// canary (in swHandle), Malformed exactly for frames that did not parse,
// and a transmitted frame that parses, with checksums as right as they
// came in.
func swFuzzCheck(t *testing.T, s pipeline.Stage, frame []byte, allowed ...pipeline.Verdict) (pipeline.Verdict, []byte) {
	t.Helper()
	var h packet.Headers
	parseErr := packet.Parse(frame, &h)
	ipBefore, l4Before, _ := swChecksumsValid(frame)
	v, got := swHandle(t, s, frame)
	if (v == pipeline.Malformed) != (parseErr != nil) {
		t.Fatalf("verdict %v for a frame that parses with error %v", v, parseErr)
	}
	ok := false
	for _, a := range allowed {
		ok = ok || v == a
	}
	if !ok {
		t.Fatalf("verdict %v, want one of %v", v, allowed)
	}
	if v == pipeline.Malformed && !bytes.Equal(got, frame) {
		t.Fatalf("a Malformed frame was changed")
	}
	if v == pipeline.Transmit {
		var h2 packet.Headers
		if err := packet.Parse(got, &h2); err != nil {
			t.Fatalf("transmitted a frame that does not parse: %v\n%x", err, got)
		}
		ipAfter, l4After, _ := swChecksumsValid(got)
		if ipBefore && !ipAfter || l4Before && !l4After {
			t.Fatalf("checksums went bad: IP %v -> %v, L4 %v -> %v\n%x\n%x", ipBefore, ipAfter, l4Before, l4After, frame, got)
		}
	}
	return v, got
}

// FuzzMACSwap: no panic, no write past the frame, Malformed exactly for
// frames that do not parse, and otherwise the MACs swapped and nothing
// else changed.
func FuzzMACSwap(f *testing.F) {
	for _, frame := range swSeeds() {
		f.Add(frame)
	}
	s := stages.NewMACSwap()
	f.Fuzz(func(t *testing.T, frame []byte) {
		v, got := swFuzzCheck(t, s, frame, pipeline.Transmit, pipeline.Malformed)
		if v == pipeline.Transmit && (!bytes.Equal(got[:6], frame[6:12]) || !bytes.Equal(got[6:12], frame[:6]) || !bytes.Equal(got[12:], frame[12:])) {
			t.Fatalf("swapped\n%x\ninto\n%x", frame, got)
		}
	})
}

// FuzzAddrSwap: as FuzzMACSwap, and a transmitted frame is a reply to
// the sender (addresses and ports swapped), with checksums right if they
// were, and with RecomputeL4Checksum right for UDP and TCP whatever they
// were; a frame passed on is untouched. Every input runs with and without
// RecomputeL4Checksum.
func FuzzAddrSwap(f *testing.F) {
	for _, frame := range swSeeds() {
		f.Add(frame)
	}
	plain := stages.NewAddrSwap(nil)
	recompute := stages.NewAddrSwap(&stages.AddrSwapOptions{RecomputeL4Checksum: true})
	f.Fuzz(func(t *testing.T, frame []byte) {
		for _, s := range []*stages.AddrSwap{plain, recompute} {
			v, got := swFuzzCheck(t, s, frame, pipeline.Transmit, pipeline.Continue, pipeline.Malformed)
			switch v {
			case pipeline.Continue:
				if !bytes.Equal(got, frame) {
					t.Fatalf("a frame passed on was changed")
				}
			case pipeline.Transmit:
				var in, out packet.Headers
				_ = packet.Parse(frame, &in)
				_ = packet.Parse(got, &out)
				if out.SrcIP != in.DstIP || out.DstIP != in.SrcIP || out.SrcPort != in.DstPort || out.DstPort != in.SrcPort ||
					!bytes.Equal(got[:6], frame[6:12]) || !bytes.Equal(got[6:12], frame[:6]) {
					t.Fatalf("not a reply:\n in %+v\nout %+v", in, out)
				}
				if s == recompute && (out.IPProto == packet.ProtoUDP || out.IPProto == packet.ProtoTCP) {
					if _, l4OK, has := swChecksumsValid(got); has && !l4OK {
						t.Fatalf("L4 checksum wrong after recomputation: %x", got)
					}
				}
			}
		}
	})
}

func BenchmarkMACSwap(b *testing.B) {
	swBench(b, stages.NewMACSwap(), testframes.UDP4, false)
}

func BenchmarkAddrSwap(b *testing.B) {
	for _, c := range []struct {
		name  string
		opts  *stages.AddrSwapOptions
		frame []byte
		reset bool
	}{
		{"udp4", nil, testframes.UDP4, false},
		{"tcp6", nil, testframes.TCP6, false},
		{"icmp4-echo", nil, testframes.ICMP4, true},
		{"udp4-recompute", &stages.AddrSwapOptions{RecomputeL4Checksum: true}, testframes.UDP4, false},
		{"tcp6-recompute", &stages.AddrSwapOptions{RecomputeL4Checksum: true}, testframes.TCP6, false},
	} {
		b.Run(c.name, func(b *testing.B) { swBench(b, stages.NewAddrSwap(c.opts), c.frame, c.reset) })
	}
}

// swBench runs s on one parsed frame in a loop. For UDP and TCP the frame
// flips between request and reply (Handle keeps the headers up to date);
// with reset, the frame and its headers are copied back first each time
// (an echo reply would not be answered), which the time includes.
func swBench(b *testing.B, s pipeline.Stage, frame []byte, reset bool) {
	p := &pipeline.Packet{Data: bytes.Clone(frame)}
	p.Reparse()
	h := p.Headers
	b.ReportAllocs()
	for b.Loop() {
		if v := swBenchHandle(s, p, frame, &h, reset); v != pipeline.Transmit {
			b.Fatalf("verdict %v", v)
		}
	}
}

func swBenchHandle(s pipeline.Stage, p *pipeline.Packet, frame []byte, h *packet.Headers, reset bool) pipeline.Verdict {
	if reset {
		copy(p.Data, frame)
		p.Headers = *h
	}
	return s.Handle(p)
}

func ExampleAddrSwap() {
	s := stages.NewAddrSwap(nil)
	p := &pipeline.Packet{Data: bytes.Clone(testframes.UDP4)} // 192.0.2.1:40000 -> 198.51.100.2:53
	p.Reparse()
	v := s.Handle(p)
	h := &p.Headers
	fmt.Println(v, netip.AddrPortFrom(h.SrcIP, h.SrcPort), "->", netip.AddrPortFrom(h.DstIP, h.DstPort))
	// Output: transmit 198.51.100.2:53 -> 192.0.2.1:40000
}
