package testframes

import "net"

// The frames go from a client, ClientMAC at 192.0.2.1 or 2001:db8::1, to
// us, ServerMAC at 198.51.100.2 or 2001:db8::2. gopacket built them, with
// its checksums, so every checksum in them is right. They end where the IP
// packet ends (no Ethernet padding).
//
// They are shared: a test that edits one edits a copy of it.
var (
	// ClientMAC is the source MAC address of the frames, 02:00:00:00:00:01.
	ClientMAC = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	// ServerMAC is the destination MAC address of the frames (us),
	// 02:00:00:00:00:02.
	ServerMAC = net.HardwareAddr{2, 0, 0, 0, 0, 2}
)

var (
	// UDP4 is UDP over IPv4, 192.0.2.1:40000 -> 198.51.100.2:53, "hello".
	UDP4 = Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 08 00 # ethernet
		45 00 00 21 12 34 00 00 40 11 7c 61 # ipv4
		c0 00 02 01 c6 33 64 02 # source, destination
		9c 40 00 35 00 0d 33 55 # udp
		68 65 6c 6c 6f # payload
	`)
	// ICMP4 is an ICMP echo request, 192.0.2.1 -> 198.51.100.2, id 0x4242
	// seq 1, "ping".
	ICMP4 = Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 08 00 # ethernet
		45 00 00 20 12 34 00 00 40 01 7c 72 # ipv4
		c0 00 02 01 c6 33 64 02 # source, destination
		08 00 d6 eb # icmp
		42 42 00 01 70 69 6e 67 # payload
	`)
	// UDP6 is UDP over IPv6, [2001:db8::1]:40000 -> [2001:db8::2]:53, "hello".
	UDP6 = Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 86 dd # ethernet
		60 00 00 00 00 0d 11 40 # ipv6
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 # source
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02 # destination
		9c 40 00 35 00 0d c4 17 # udp
		68 65 6c 6c 6f # payload
	`)
	// TCP6 is TCP over IPv6, [2001:db8::1]:40001 -> [2001:db8::2]:443,
	// PSH+ACK, "data".
	TCP6 = Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 86 dd # ethernet
		60 00 00 00 00 18 06 40 # ipv6
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 # source
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02 # destination
		9c 41 01 bb 01 02 03 04 0a 0b 0c 0d 50 18 01 f6 c1 80 00 00 # tcp
		64 61 74 61 # payload
	`)
	// ICMP6 is an ICMPv6 echo request, 2001:db8::1 -> 2001:db8::2, id
	// 0x4242 seq 1, "ping".
	ICMP6 = Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 86 dd # ethernet
		60 00 00 00 00 0c 3a 40 # ipv6
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 # source
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02 # destination
		80 00 03 30 # icmpv6
		42 42 00 01 70 69 6e 67 # payload
	`)
	// UDP4VLAN is UDP4 in an 802.1Q tag, VLAN 100, priority 3.
	UDP4VLAN = Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 81 00 60 64 08 00 # ethernet + 1 VLAN tag(s)
		45 00 00 21 12 34 00 00 40 11 7c 61 # ipv4
		c0 00 02 01 c6 33 64 02 # source, destination
		9c 40 00 35 00 0d 33 55 # udp
		68 65 6c 6c 6f # payload
	`)
	// Frag4Rest is a non-first IPv4 fragment (offset 185*8) of a UDP
	// datagram, 192.0.2.1 -> 198.51.100.2: no UDP header, so no ports and
	// no L4 checksum.
	Frag4Rest = Hex(`
		02 00 00 00 00 02 02 00 00 00 00 01 08 00 # ethernet
		45 00 00 24 12 34 00 b9 40 11 7b a5 # ipv4
		c0 00 02 01 c6 33 64 02 # source, destination
		30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66 # payload
	`)
)
