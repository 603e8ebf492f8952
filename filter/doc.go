// Package filter compiles tcpdump filter expressions into eBPF for the XDP
// program of package redirect, so that the kernel decides per frame
// whether it goes to the AF_XDP socket, to the kernel network stack, or
// nowhere.
//
//	f, err := filter.Compile("udp port 9999", filter.Redirect, filter.Pass)
//	if err != nil {
//		log.Fatal(err)
//	}
//	prog, err := redirect.Attach(ifindex, &redirect.Options{Filter: f})
//
// Frames the expression matches get the match [Action], all others the
// nomatch Action. [CompileOptions.KeepManagement] passes ARP, IPv6
// neighbour discovery, SSH and DNS to the kernel before the filter runs,
// so that a filter that redirects or drops everything does not cut off
// the session you configured it from. [Program.Instructions] gives the
// eBPF for programs of your own.
//
// Compiling needs no privileges and works on every platform; loading the
// program needs what redirect.Attach needs.
//
// # Syntax
//
// The expressions are a subset of tcpdump's (see pcap-filter(7)), with
// the same meaning, for Ethernet frames:
//
//	ip  ip6  arp  rarp  tcp  udp  sctp  icmp  icmp6
//	vlan  vlan ID
//	[ip|ip6|arp|rarp] [src|dst|src or dst|src and dst] host ADDR
//	[ip|ip6|arp|rarp] [src|dst|src or dst|src and dst] net ADDR/LEN
//	[ip|arp|rarp] [src|dst|...] net ADDR mask MASK
//	[tcp|udp|sctp] [src|dst|...] port N
//	[tcp|udp|sctp] [src|dst|...] portrange N-M
//	[ip|ip6] proto N
//	EXPR and EXPR    EXPR && EXPR
//	EXPR or EXPR     EXPR || EXPR
//	not EXPR         ! EXPR          ( EXPR )
//
// ADDR is an IPv4 or IPv6 address, N a number (decimal, 0x hexadecimal
// or 0 octal). As in tcpdump:
//
//   - "and" and "or" have the same precedence and group from the left, so
//     "udp or tcp and port 53" is "(udp or tcp) and port 53"; "not" binds
//     tightest.
//   - An address or number after "and" or "or" repeats the qualifiers of
//     the primitive before it: "host a or b" is "host a or host b", "port
//     53 and not 22" is "port 53 and not port 22", and "host a and (b or
//     c)" works too.
//   - "tcp", "udp", "sctp", "proto N" and "icmp6" over IPv6 look at the
//     next header of the IPv6 header, or of a fragment header right after
//     it; no other extension headers are followed.
//   - "port" and "portrange" without a protocol mean TCP, UDP or SCTP. Over
//     IPv4 the transport header is found through the header length (IHL),
//     options included, and fragments other than the first have no ports;
//     over IPv6 the transport header must directly follow the IPv6 header.
//   - "host" and "net" with an IPv4 address and no protocol also match
//     ARP and RARP packets whose sender or target protocol address is
//     ADDR. "src or dst" is the default; "src and dst" needs both.
//   - "vlan" matches an 802.1Q, 802.1ad or 0x9100 tag ("vlan ID" also its
//     VLAN ID) and shifts every primitive after it in the expression by
//     the 4 bytes of the tag, whatever the operators in between: "vlan and
//     udp" is UDP inside a tag, "vlan 100 and vlan 200" a frame tagged 100
//     outside and 200 inside, and "vlan or udp" looks for UDP inside a
//     tag only. Put untagged tests before "vlan": "udp or (vlan and udp)".
//     At most [MaxVLANDepth] "vlan" keywords.
//   - Numeric forms tcpdump accepts mean the same: "host 1.2" is the net
//     1.2.0.0/16, "host 10" is 0.0.0.10, "net 10" is 10.0.0.0/8, and
//     "portrange 2000-1000" is 1000-2000.
//   - A frame too short for a field the expression reads does not match,
//     even under "not". Fields are read left to right as the operators
//     short-circuit, the order tcpdump -O (without libpcap's optimizer)
//     reads them in; tcpdump's optimizer sometimes skips a read whose
//     outcome other tests already decide, so for such truncated frames
//     plain tcpdump may differ. Words of an address that a net's mask
//     leaves out entirely are never read, as with the optimizer.
//
// # Differences from tcpdump
//
//   - Only the primitives above. There are no names (host names, port
//     and protocol names such as "domain" or "\tcp"), no "ether",
//     "less", "greater", "broadcast", "gateway", "mpls" or packet data
//     expressions such as "ip[9] = 6". Compile names an unsupported
//     keyword in its error.
//   - Protocol numbers above 255 are refused (tcpdump accepts them and
//     matches nothing).
//   - An expression tcpdump refuses because it can never match ("ip and
//     arp": "expression rejects all packets") compiles to a filter that
//     matches nothing.
//   - Filters are limited to [MaxInstructions] eBPF instructions, enough
//     for about 190 "host" or 200 "port" primitives; use a BPF map for
//     longer lists.
//   - XDP sees the frame as the driver received it. A NIC with VLAN tag
//     stripping (rx-vlan-offload, "ethtool -K DEV rxvlan off" turns it
//     off) removes the outer tag before XDP runs, so "vlan" does not see
//     it and untagged primitives match the inner packet. tcpdump on a
//     live Linux interface compensates for this with BPF extensions;
//     here, as when tcpdump reads a file, the bytes are all there is.
//
// # Programs
//
// Compile checks the expression and builds the instructions; the kernel's
// verifier accepts every program it returns (the tests load thousands).
// Every packet access is checked against data_end, and each comparison
// reloads the packet pointers from the context, so verification takes
// time linear in the size of the filter.
package filter
