// Package fastpath puts per-source policies and a flow table into the XDP
// program in front of the AF_XDP sockets, and lets Go control them while
// the program runs: a frame user space has decided about once need not
// make the trip to user space again, and some frames never should.
//
// For every frame the program, built in Go (no C toolchain), does in
// order:
//
//  1. Source policies. Block and allow lists of IPv4 and IPv6 prefixes
//     ([FastPath.SetPolicy], an LPM trie, updated live): the longest
//     matching prefix of the source address decides; Block drops the
//     frame, Allow exempts it from the policer.
//  2. A per-source policer ([FastPath.SetRate]): a token bucket per source
//     address, with the rate and burst set from Go and the time from
//     bpf_ktime_get_ns, in a least-recently-used table of a fixed size so
//     that a flood of spoofed sources cannot grow it. Frames over the
//     rate are dropped.
//  3. The flow table ([FastPath.Install], an LRU hash on the TCP or UDP
//     5-tuple, IPv4 and IPv6): an entry drops the flow's frames, passes
//     them to the kernel stack, redirects them to the socket, rewrites
//     them (MAC addresses; destination address and port with incremental
//     IPv4 and TCP/UDP checksum updates) and transmits them, or
//     encapsulates them in IPIP and transmits them. Each entry counts its
//     packets and bytes and records when it was last used (to the
//     kernel tick: bpf_ktime_get_coarse_ns); entries idle
//     for longer than Config.IdleTimeout are ignored and removed by
//     [FastPath.Expire].
//  4. Everything else gets Config.Default: on to the queue's socket (the
//     default), to the kernel stack or dropped.
//
// Each verdict is counted per CPU ([FastPath.Counters]).
//
// The fast path goes into the program of package redirect, behind its
// filter if there is one (the fast path sees the frames the filter
// redirects):
//
//	fp, err := fastpath.New(&fastpath.Config{Default: fastpath.Pass})
//	...
//	prog, err := redirect.Attach(ifindex, &redirect.Options{FastPath: fp})
//	...
//	err = fp.SetRate(fastpath.Rate{PerSecond: 100, Burst: 20}) // police each source
//
// Stages of package pipeline offload a flow with Packet.Offload: a stage
// sees the flow's first packet, decides, and installs the action for the
// rest of it. [FastPath.Instructions] gives the eBPF for programs of
// your own.
//
// # What the program parses
//
// Ethernet, then IPv4 or IPv6. The policies apply to every IPv4 and IPv6
// frame (the source address is at a fixed offset). The flow table only
// to frames whose 5-tuple the program can read without guessing: IPv4
// without options and not fragmented, IPv6 whose next header is TCP or
// UDP directly; anything else (VLAN-tagged frames, ARP, truncated
// headers, IPv4 options, fragments, IPv6 extension headers) goes on to
// the default, unchanged, and is never rewritten. A hit whose frame is
// too short for its rewrite, or lacks the headroom for an encapsulation,
// is counted (Counters.FlowErrors) and gets the default, unchanged.
//
// Checksum updates are incremental (RFC 1624), so a frame with a complete
// checksum keeps a correct one. A UDP checksum of 0 over IPv4 means none
// and stays 0; over IPv6, where UDP always has one, it is 0xffff's other
// form and is updated; a UDP result of 0 is written as 0xffff. Frames whose sender left the checksum to
// the NIC (CHECKSUM_PARTIAL, as from a veth peer with TX offload on)
// carry only the pseudo-header sum, and a rewritten one is then dropped
// by its receiver: turn TX checksum offload off on such senders.
//
// # Concurrency
//
// Every method of FastPath is safe for concurrent use, also while the
// program runs on any number of CPUs. The policer's buckets and the
// entries' last-seen times are updated by the CPUs without a lock: a
// source whose frames arrive on several queues at once may pass slightly
// over its rate. Packet and byte counters are atomic.
//
// # Requirements
//
// Linux 5.18+ (bpf_xdp_get_buff_len) and what loading XDP programs needs:
// CAP_BPF and CAP_NET_ADMIN (root). The package compiles on every
// platform; New fails with an error from cilium/ebpf where BPF is not
// available.
package fastpath
