package stages_test

import (
	"net"
	"net/netip"
	"strings"

	"github.com/xdpkit/xdpkit/internal/testframes"
	"github.com/xdpkit/xdpkit/packet"
)

// The test frames go from a client, 02:00:00:00:00:01 at 192.0.2.1 or
// 2001:db8::1, to us, 02:00:00:00:00:02 at 198.51.100.2 or 2001:db8::2:
// those below, and testframes' UDP4, TCP6, UDP6, ICMP4, ICMP6, UDP4VLAN and
// Frag4Rest, which other packages' tests share.
// The backend is 02:00:00:00:01:01 at 10.0.0.1 or 2001:db8:1::a. gopacket
// built them all, with its checksums; the expected outputs were built
// from scratch, not by editing the inputs.
var (
	// udp4NoCsum is testframes.UDP4 without UDP checksum.
	udp4NoCsum = testframes.Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 08 00 # ethernet
		45 00 00 21 12 34 00 00 40 11 7c 61 # ipv4
		c0 00 02 01 c6 33 64 02 # source, destination
		9c 40 00 35 00 0d 00 00 # udp
		68 65 6c 6c 6f # payload
	`)
	// tcp4 is TCP over IPv4, 192.0.2.1:40001 -> 198.51.100.2:80, PSH+ACK, "data".
	tcp4 = testframes.Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 08 00 # ethernet
		45 00 00 2c 12 34 00 00 40 06 7c 61 # ipv4
		c0 00 02 01 c6 33 64 02 # source, destination
		9c 41 00 50 01 02 03 04 0a 0b 0c 0d 50 18 01 f6 32 29 00 00 # tcp
		64 61 74 61 # payload
	`)
	// AddrSwap replies, built by gopacket from scratch.
	// udp4Reply is the reply AddrSwap makes of testframes.UDP4.
	udp4Reply = testframes.Hex(`
		02 00 00 00 00 01 02 00 00 00 00 02 08 00 # ethernet
		45 00 00 21 12 34 00 00 40 11 7c 61 # ipv4
		c6 33 64 02 c0 00 02 01 # source, destination
		00 35 9c 40 00 0d 33 55 # udp
		68 65 6c 6c 6f # payload
	`)
	// udp4NoCsumReply is the reply AddrSwap makes of udp4NoCsum.
	udp4NoCsumReply = testframes.Hex(`
		02 00 00 00 00 01 02 00 00 00 00 02 08 00 # ethernet
		45 00 00 21 12 34 00 00 40 11 7c 61 # ipv4
		c6 33 64 02 c0 00 02 01 # source, destination
		00 35 9c 40 00 0d 00 00 # udp
		68 65 6c 6c 6f # payload
	`)
	// tcp4Reply is the reply AddrSwap makes of tcp4.
	tcp4Reply = testframes.Hex(`
		02 00 00 00 00 01 02 00 00 00 00 02 08 00 # ethernet
		45 00 00 2c 12 34 00 00 40 06 7c 61 # ipv4
		c6 33 64 02 c0 00 02 01 # source, destination
		00 50 9c 41 01 02 03 04 0a 0b 0c 0d 50 18 01 f6 32 29 00 00 # tcp
		64 61 74 61 # payload
	`)
	// udp6Reply is the reply AddrSwap makes of testframes.UDP6.
	udp6Reply = testframes.Hex(`
		02 00 00 00 00 01 02 00 00 00 00 02 86 dd # ethernet
		60 00 00 00 00 0d 11 40 # ipv6
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02 # source
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 # destination
		00 35 9c 40 00 0d c4 17 # udp
		68 65 6c 6c 6f # payload
	`)
	// tcp6Reply is the reply AddrSwap makes of testframes.TCP6.
	tcp6Reply = testframes.Hex(`
		02 00 00 00 00 01 02 00 00 00 00 02 86 dd # ethernet
		60 00 00 00 00 18 06 40 # ipv6
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02 # source
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 # destination
		01 bb 9c 41 01 02 03 04 0a 0b 0c 0d 50 18 01 f6 c1 80 00 00 # tcp
		64 61 74 61 # payload
	`)
	// icmp4Reply is the reply AddrSwap makes of testframes.ICMP4.
	icmp4Reply = testframes.Hex(`
		02 00 00 00 00 01 02 00 00 00 00 02 08 00 # ethernet
		45 00 00 20 12 34 00 00 40 01 7c 72 # ipv4
		c6 33 64 02 c0 00 02 01 # source, destination
		00 00 de eb # icmp
		42 42 00 01 70 69 6e 67 # payload
	`)
	// icmp6Reply is the reply AddrSwap makes of testframes.ICMP6.
	icmp6Reply = testframes.Hex(`
		02 00 00 00 00 01 02 00 00 00 00 02 86 dd # ethernet
		60 00 00 00 00 0c 3a 40 # ipv6
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02 # source
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 # destination
		81 00 02 30 # icmpv6
		42 42 00 01 70 69 6e 67 # payload
	`)
	// vlanReply is the reply AddrSwap makes of testframes.UDP4VLAN.
	vlanReply = testframes.Hex(`
		02 00 00 00 00 01 02 00 00 00 00 02 81 00 60 64 08 00 # ethernet, VLAN 100
		45 00 00 21 12 34 00 00 40 11 7c 61 # ipv4
		c6 33 64 02 c0 00 02 01 # source, destination
		00 35 9c 40 00 0d 33 55 # udp
		68 65 6c 6c 6f # payload
	`)
	// frag4RestReply is the reply AddrSwap makes of testframes.Frag4Rest.
	frag4RestReply = testframes.Hex(`
		02 00 00 00 00 01 02 00 00 00 00 02 08 00 # ethernet
		45 00 00 24 12 34 00 b9 40 11 7b a5 # ipv4
		c6 33 64 02 c0 00 02 01 # source, destination
		30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66 # payload
	`)
	// LoadBalancer output for one backend, built by gopacket from scratch.
	// udp4ToBackend is testframes.UDP4 sent to the backend.
	udp4ToBackend = testframes.Hex(`
		02 00 00 00 01 01 02 00 00 00 00 02 08 00 # ethernet
		45 00 00 21 12 34 00 00 40 11 9c 96 # ipv4
		c0 00 02 01 0a 00 00 01 # source, destination
		9c 40 00 35 00 0d 53 8a # udp
		68 65 6c 6c 6f # payload
	`)
	// udp4NoCsumToBackend is udp4NoCsum sent to the backend.
	udp4NoCsumToBackend = testframes.Hex(`
		02 00 00 00 01 01 02 00 00 00 00 02 08 00 # ethernet
		45 00 00 21 12 34 00 00 40 11 9c 96 # ipv4
		c0 00 02 01 0a 00 00 01 # source, destination
		9c 40 00 35 00 0d 00 00 # udp
		68 65 6c 6c 6f # payload
	`)
	// tcp4ToBackend is tcp4 sent to the backend.
	tcp4ToBackend = testframes.Hex(`
		02 00 00 00 01 01 02 00 00 00 00 02 08 00 # ethernet
		45 00 00 2c 12 34 00 00 40 06 9c 96 # ipv4
		c0 00 02 01 0a 00 00 01 # source, destination
		9c 41 00 50 01 02 03 04 0a 0b 0c 0d 50 18 01 f6 52 5e 00 00 # tcp
		64 61 74 61 # payload
	`)
	// udp6ToBackend is testframes.UDP6 sent to the backend.
	udp6ToBackend = testframes.Hex(`
		02 00 00 00 01 01 02 00 00 00 00 02 86 dd # ethernet
		60 00 00 00 00 0d 11 40 # ipv6
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 # source
		20 01 0d b8 00 01 00 00 00 00 00 00 00 00 00 0a # destination
		9c 40 00 35 00 0d c4 0e # udp
		68 65 6c 6c 6f # payload
	`)
	// tcp6ToBackend is testframes.TCP6 sent to the backend.
	tcp6ToBackend = testframes.Hex(`
		02 00 00 00 01 01 02 00 00 00 00 02 86 dd # ethernet
		60 00 00 00 00 18 06 40 # ipv6
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 # source
		20 01 0d b8 00 01 00 00 00 00 00 00 00 00 00 0a # destination
		9c 41 01 bb 01 02 03 04 0a 0b 0c 0d 50 18 01 f6 c1 77 00 00 # tcp
		64 61 74 61 # payload
	`)
)

// backendMAC is the backend's MAC address.
var backendMAC = net.HardwareAddr{2, 0, 0, 0, 1, 1}

// noReply are frames AddrSwap passes on untouched.
var noReply = map[string][]byte{
	"arp": testframes.Hex(`
		ff ff ff ff ff ff 02 00 00 00 00 01 08 06 # ethernet
		00 01 08 00 06 04 00 01 02 00 00 00 00 01 c0 00 02 01 00 00 00 00 00 00 c6 33 64 02 # arp request
	`),
	"broadcast mac":  fix(modify(testframes.UDP4, func(b []byte) { copy(b, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) })),
	"multicast mac":  fix(modify(testframes.UDP6, func(b []byte) { copy(b, []byte{0x33, 0x33, 0, 0, 0, 1}) })),
	"multicast ipv4": fix(modify(testframes.UDP4, func(b []byte) { copy(b[30:34], []byte{224, 0, 0, 251}) })),
	"broadcast ipv4": fix(modify(testframes.UDP4, func(b []byte) { copy(b[30:34], []byte{255, 255, 255, 255}) })),
	"multicast ipv6": fix(modify(testframes.UDP6, func(b []byte) { copy(b[38:54], netip.MustParseAddr("ff02::fb").AsSlice()) })),
	"from 0.0.0.0":   fix(modify(testframes.UDP4, func(b []byte) { copy(b[26:30], []byte{0, 0, 0, 0}) })),
	"from ::":        fix(modify(testframes.UDP6, func(b []byte) { clear(b[22:38]) })),
	"echo reply":     icmp4Reply,
	"icmpv6 reply":   icmp6Reply,
	"icmp in ipv6":   fix(modify(testframes.ICMP6, func(b []byte) { b[20], b[54] = packet.ProtoICMP, 8 })),
	"gre": fix(modify(testframes.Frag4Rest, func(b []byte) {
		b[20], b[21], b[23] = 0, 0, 47 // not a fragment; protocol GRE
	})),
}

// seeds are the frames FuzzMACSwap, FuzzAddrSwap and FuzzLoadBalancer
// start from.
func seeds() map[string][]byte {
	m := map[string][]byte{
		"udp4": testframes.UDP4, "udp4-no-checksum": udp4NoCsum, "tcp4": tcp4, "udp6": testframes.UDP6, "tcp6": testframes.TCP6,
		"icmp4": testframes.ICMP4, "icmp6": testframes.ICMP6, "vlan": testframes.UDP4VLAN, "frag4-rest": testframes.Frag4Rest,
		"udp4-partial": partial(testframes.UDP4), "tcp6-partial": partial(testframes.TCP6),
		"truncated": testframes.UDP4[:40], "runt": testframes.UDP4[:13],
	}
	for name, f := range noReply {
		m[strings.ReplaceAll(name, " ", "-")] = f
	}
	return m
}

// edgeFrames are the frames FuzzFlowCounter, FuzzRateLimiter and
// FuzzPcapWriter start from, besides flow_test.go's synth frames: edge
// cases of the parser, from 02:00:00:00:00:01 at 10.0.0.1 or 2001:db8::1
// to 02:00:00:00:00:02 at 10.0.0.2 or 2001:db8::2, checksums left 0.
var edgeFrames = [][]byte{
	// An IPv4 non-first fragment (MF set, offset 8) of a UDP datagram.
	testframes.Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 08 00 # ethernet
		45 00 00 1c 00 00 20 01 40 11 00 00 0a 00 00 01 0a 00 00 02 # ipv4: MF, offset 8, udp
		61 62 63 64 65 66 67 68 # payload
	`),
	// TCP SYN 8080 -> 50000 over IPv4 with 4 bytes of options, and a byte
	// of Ethernet padding.
	testframes.Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 08 00 # ethernet
		46 00 00 2c 00 00 40 00 40 06 00 00 0a 00 00 01 0a 00 00 02 # ipv4: 6-word header, tcp
		01 01 01 01 # options: 4 NOPs
		1f 90 c3 50 00 00 00 00 00 00 00 00 50 02 00 00 00 00 00 00 # tcp: SYN
		00 # padding
	`),
	// IPv6 from :: to :: with ten hop-by-hop headers, each followed by
	// another: more extension headers than Parse reads (ErrMalformed).
	testframes.Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 86 dd # ethernet
		60 00 00 00 00 50 00 40 # ipv6: payload 80, hop-by-hop
		00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 # source ::
		00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 # destination ::
		00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 # hop-by-hop headers
		00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
		00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
		00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
		00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
	`),
	// An IPv6 non-first fragment (offset 8) of a UDP datagram.
	testframes.Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 86 dd # ethernet
		60 00 00 00 00 0c 2c 40 # ipv6: payload 12, fragment
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 # source
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02 # destination
		11 00 00 08 12 34 56 78 # fragment: udp, offset 8
		61 62 63 64 # payload
	`),
	// UDP 1234 -> 53 over IPv6 after a hop-by-hop header (a PadN option).
	testframes.Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 86 dd # ethernet
		60 00 00 00 00 14 00 40 # ipv6: payload 20, hop-by-hop
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 # source
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02 # destination
		11 00 01 04 00 00 00 00 # hop-by-hop: udp, PadN
		04 d2 00 35 00 0c 00 00 # udp
		61 62 63 64 # payload
	`),
	// UDP 1234 -> 53 over IPv4 in an 802.1ad tag (VLAN 1) and an 802.1Q
	// tag (VLAN 2).
	testframes.Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 88 a8 00 01 81 00 00 02 08 00 # ethernet + 2 VLAN tags
		45 00 00 20 00 00 40 00 40 11 00 00 0a 00 00 01 0a 00 00 02 # ipv4
		04 d2 00 35 00 0c 00 00 # udp
		61 62 63 64 # payload
	`),
	// 5 bytes, less than a MAC address (ErrTruncated).
	testframes.Hex(`02 00 00 00 00`),
	// The same in three 802.1Q tags, one more than Parse reads
	// (ErrMalformed).
	testframes.Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 81 00 00 01 81 00 00 02 81 00 00 03 08 00 # ethernet + 3 VLAN tags
		45 00 00 20 00 00 40 00 40 11 00 00 0a 00 00 01 0a 00 00 02 # ipv4
		04 d2 00 35 00 0c 00 00 # udp
		61 62 63 64 # payload
	`),
	// UDP over IPv4 whose length, 65535, runs past the packet
	// (ErrMalformed).
	testframes.Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 08 00 # ethernet
		45 00 00 20 00 00 40 00 40 11 00 00 0a 00 00 01 0a 00 00 02 # ipv4
		04 d2 00 35 ff ff 00 00 # udp: length 65535
		61 62 63 64 # payload
	`),
	// UDP 1234 -> 53 over IPv4 in VLAN 100.
	testframes.Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 81 00 00 64 08 00 # ethernet + VLAN tag
		45 00 00 20 00 00 40 00 40 11 00 00 0a 00 00 01 0a 00 00 02 # ipv4
		04 d2 00 35 00 0c 00 00 # udp
		61 62 63 64 # payload
	`),
}
