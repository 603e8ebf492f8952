package packet_test

import "github.com/xdpkit/xdpkit/internal/testframes"

// The test frames of this package; it shares more with other packages'
// tests in testframes (UDP4, ICMP4, UDP6, TCP6, ICMP6, UDP4VLAN,
// Frag4Rest). They go from a client, 02:00:00:00:00:01 at 192.0.2.1 or
// 2001:db8::1, to us, 02:00:00:00:00:02 at 198.51.100.2 or 2001:db8::2.
// Their checksums are right (gopacket computed them) but where a comment
// says otherwise. They end where the IP packet ends, but the padded ones.
var (
	// tcp4 is a TCP SYN over IPv4 with options (MSS, SACK permitted,
	// timestamps, NOP, window scale), DF set.
	tcp4 = testframes.Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 08 00 # ethernet
		45 00 00 3c 12 34 40 00 40 06 3c 51 # ipv4
		c0 00 02 01 c6 33 64 02 # source, destination
		9c 41 00 50 01 02 03 04 00 00 00 00 a0 02 fa f0 c0 3f 00 00 # tcp: data offset 10, SYN
		02 04 05 b4 04 02 08 0a 00 00 00 01 00 00 00 00 01 03 03 07 # options
	`)
	// qinq is testframes.TCP6 in an 802.1ad tag (VLAN 200) and an 802.1Q tag (VLAN 100).
	qinq = testframes.Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 88 a8 00 c8 81 00 00 64 86 dd # ethernet + 2 VLAN tag(s)
		60 00 00 00 00 18 06 40 # ipv6
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 # source
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02 # destination
		9c 41 01 bb 01 02 03 04 0a 0b 0c 0d 50 18 01 f6 c1 80 00 00 # tcp
		64 61 74 61 # payload
	`)
	// arp is an ARP request for 198.51.100.2, broadcast, padded to 60 bytes.
	arp = testframes.Hex(`
		ff ff ff ff ff ff 02 00 00 00 00 01 08 06 # ethernet
		00 01 08 00 06 04 00 01 # arp: ethernet, ipv4, request
		02 00 00 00 00 01 c0 00 02 01 00 00 00 00 00 00 c6 33 64 02 # addresses
		00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 # padding
	`)
	// udp4Padded is UDP over IPv4 with a zero (absent) UDP checksum,
	// "hi", padded to the 60-byte Ethernet minimum.
	udp4Padded = testframes.Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 08 00 # ethernet
		45 00 00 1e 12 34 00 00 40 11 7c 64 # ipv4
		c0 00 02 01 c6 33 64 02 # source, destination
		9c 40 00 35 00 0a 00 00 # udp
		68 69 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 # payload
	`)
	// ip4Options is testframes.UDP4 with a 4-byte IPv4 option (router alert).
	ip4Options = testframes.Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 08 00 # ethernet
		46 00 00 25 12 34 00 00 40 11 e7 58 # ipv4
		c0 00 02 01 c6 33 64 02 # source, destination
		94 04 00 00 # options
		9c 40 00 35 00 0d 33 55 # udp
		68 65 6c 6c 6f # payload
	`)
	// frag4First is the first fragment (MF set, offset 0) of a TCP
	// segment over IPv4.
	frag4First = testframes.Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 08 00 # ethernet
		45 00 00 30 12 34 20 00 40 06 5c 5d # ipv4
		c0 00 02 01 c6 33 64 02 # source, destination
		9c 41 00 50 00 00 00 01 00 00 00 00 50 10 01 f6 54 38 00 00 # tcp
		31 32 33 34 35 36 37 38 # payload
	`)
	// frag4FirstUDP is the first fragment (MF set, offset 0) of a 32-byte UDP
	// datagram over IPv4, without UDP checksum: the UDP length covers bytes
	// the fragment does not hold.
	frag4FirstUDP = testframes.Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 08 00 # ethernet
		45 00 00 24 12 34 20 00 40 11 5c 5e # ipv4
		c0 00 02 01 c6 33 64 02 # source, destination
		9c 40 00 35 00 20 00 00 # udp
		30 31 32 33 34 35 36 37 # payload
	`)
	// udp6HopByHop is testframes.UDP6 behind a hop-by-hop options header (PadN).
	udp6HopByHop = testframes.Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 86 dd # ethernet
		60 00 00 00 00 15 00 40 # ipv6
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 # source
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02 # destination
		11 00 01 04 00 00 00 00 # hop-by-hop: next UDP, PadN
		9c 40 00 35 00 0d c4 17 # udp
		68 65 6c 6c 6f # payload
	`)
	// tcp6ExtChain is testframes.TCP6 behind hop-by-hop, destination options,
	// routing (type 0, segments left 0) and atomic fragment headers.
	tcp6ExtChain = testframes.Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 86 dd # ethernet
		60 00 00 00 00 38 00 40 # ipv6
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 # source
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02 # destination
		3c 00 01 04 00 00 00 00 # hop-by-hop: next destination options, PadN
		2b 00 01 04 00 00 00 00 # destination options: next routing, PadN
		2c 00 00 00 00 00 00 00 # routing: next fragment, type 0, segments left 0
		06 00 00 00 de ad be ef # fragment: next TCP, offset 0, M clear
		9c 41 01 bb 01 02 03 04 0a 0b 0c 0d 50 18 01 f6 c1 80 00 00 # tcp
		64 61 74 61 # payload
	`)
	// frag6FirstTCP is the first fragment (offset 0, M set) of a TCP segment over IPv6;
	// its checksum, which covers the whole datagram, is left 0.
	frag6FirstTCP = testframes.Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 86 dd # ethernet
		60 00 00 00 00 24 2c 40 # ipv6
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 # source
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02 # destination
		06 00 00 01 de ad be ef # fragment: next TCP, offset 0, M set
		9c 41 01 bb 01 02 03 04 0a 0b 0c 0d 50 10 01 f6 00 00 00 00 # tcp
		31 32 33 34 35 36 37 38 # payload
	`)
	// frag6Rest is a non-first IPv6 fragment (offset 185*8) of a UDP datagram.
	frag6Rest = testframes.Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 86 dd # ethernet
		60 00 00 00 00 18 2c 40 # ipv6
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 # source
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02 # destination
		11 00 05 c8 de ad be ef # fragment: next UDP, offset 185, M clear
		30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66 # payload
	`)
	// frag6FirstUDP is the first fragment (offset 0, M set) of a 32-byte UDP datagram over
	// IPv6; its checksum is left 0.
	frag6FirstUDP = testframes.Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 86 dd # ethernet
		60 00 00 00 00 18 2c 40 # ipv6
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 # source
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02 # destination
		11 00 00 01 de ad be ef # fragment: next UDP, offset 0, M set
		9c 40 00 35 00 20 00 00 # udp
		30 31 32 33 34 35 36 37 # payload
	`)
)
