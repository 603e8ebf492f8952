// Package redirect attaches the XDP program that steers each RX queue's
// frames to the AF_XDP socket registered for that queue.
//
// An AF_XDP socket only receives the frames an XDP program redirects to it.
// [Attach] loads a tiny program, built in Go with no C toolchain, together
// with a BPF_MAP_TYPE_XSKMAP keyed by RX queue index, and attaches it to an
// interface through a BPF link. The program reads the frame's RX queue and
// calls bpf_redirect_map with XDP_PASS as the fallback action: frames of a
// queue that has no socket registered go to the kernel network stack
// untouched, so attaching the program alone changes nothing for normal
// traffic. [Program.Register] puts a bound AF_XDP socket in the map for its
// queue and [Program.Unregister] takes it out again.
//
// Programs that already have their own XDP program and XSKMAP can still use
// this package: [AttachProgram] attaches a caller-supplied program through a
// BPF link, and [Use] manages the XSKMAP of a program the caller attached
// itself.
//
// # Filtering
//
// By default every frame of a queue with a socket goes to the socket.
// Options.Filter takes a [filter.Program], a compiled tcpdump expression,
// that runs first for every frame and decides: to the queue's socket
// (filter.Redirect), to the kernel stack (filter.Pass), or dropped
// (filter.Drop). For example, to take only UDP port 9999 and leave the
// rest of the traffic to the kernel:
//
//	f, err := filter.Compile("udp port 9999", filter.Redirect, filter.Pass)
//	...
//	prog, err := redirect.Attach(ifindex, &redirect.Options{Filter: f})
//
// A frame the filter redirects on a queue without a socket still goes to
// the kernel. [Program.Filter] returns the filter; to change it, attach a
// new program. Programs of your own can include the filter's instructions
// themselves (see [filter.Program.Instructions]).
//
// # Fast path
//
// Options.FastPath takes a [fastpath.FastPath]: source policies, a
// per-source policer and a flow table, run after the filter and before
// the redirect, and changed from Go while the program runs. Frames it
// decides are dropped, passed, or rewritten and transmitted in XDP; the
// rest go on to the socket (or, with its Config.Default, to the stack).
//
// # RX metadata
//
// With Options.RXMetadata (Linux 6.8+), [Attach] loads a device-bound
// variant of the program that asks the driver, just before the redirect,
// for the frame's RX timestamp, RSS hash and offloaded VLAN tag through
// the XDP RX metadata kfuncs (bpf_xdp_metadata_rx_timestamp,
// bpf_xdp_metadata_rx_hash, bpf_xdp_metadata_rx_vlan_tag), and stores the
// answers in the frame's metadata area, the [RXMetadataSize] bytes in
// front of its data, which AF_XDP delivers with the frame. An AF_XDP
// socket reads them with afxdp.Socket.RXMetadata; [ParseRXMetadata]
// reads them from any buffer:
//
//	prog, err := redirect.Attach(ifindex, &redirect.Options{RXMetadata: true})
//	...
//	if m, ok := sock.RXMetadata(desc); ok && m.HashOK {
//		worker = m.Hash % nworkers // the RSS hash, as the NIC computed it
//	}
//
// Each group of fields has an ok bit. A kfunc that fails leaves it clear
// and its fields zero: ENODATA when the driver has nothing for this
// frame, EOPNOTSUPP when the driver does not implement that kfunc. A zero
// timestamp counts as none. The last word of the area is a magic number
// with the layout's version ([RXMetadataMagic]), so a frame the program
// could not store metadata for (it always writes the magic, or zeroes the
// word when there is not enough headroom for the area) is not mistaken
// for one that has. Metadata another program put in front of the frame
// is replaced.
//
// What a driver reports is its own business. veth (drivers/net/veth.c)
// reports, for frames that arrive as skbs (sent by the peer's stack or a
// packet socket), the skb's hardware timestamp, which is never set on a
// veth (so TimestampOK is false, whatever software timestamping is on),
// the skb's flow hash (with RSSL4 when it covered the ports) and the
// VLAN tag offloaded into the skb (not one still in the frame's data);
// for frames that arrive as XDP frames (XDP_TX from the peer, or
// redirected by another XDP program) nothing at all. The netdev netlink
// family says which kfuncs a driver implements (xdp-rx-metadata-features
// in ynl --family netdev --dump dev-get); [Attach] fails with an error
// matching [ErrNotSupported] for a device that implements none (a bridge,
// a tap, a macvlan) and for a kernel without the kfuncs or without BTF.
//
// The kernel binds such a program to its device when it loads it
// (prog_ifindex, BPF_F_XDP_DEV_BOUND_ONLY): it attaches it to that
// device only, in driver mode only (ModeAuto means ModeDriver;
// ModeGeneric is refused), and does not test-run it with
// BPF_PROG_TEST_RUN. Calling a kfunc needs the BPF JIT. The program
// resolves the kfuncs by their BTF IDs in the running kernel, so it is
// built when attached; AttachPinned and AttachProgram do not take the
// option.
//
// # Lifetime
//
// The program stays attached while the [Program] is open. [Program.Close]
// detaches it, and because the attachment is a BPF link it also goes away
// when the process exits or is killed: no XDP program is left behind on the
// interface. Keep the Program reachable (typically with defer p.Close()):
// if the garbage collector reclaims it, the link is closed and the program
// detached. Closing an AF_XDP socket removes it from the XSKMAP.
//
// With [AttachPinned] the attachment is pinned in bpffs instead: it
// outlives the process, so worker processes sharing it can restart one by
// one, until [Unpin] removes the pins. The kernel removes a dead worker's
// socket from the XSKMAP when the socket is released. The pins live in
// /sys/fs/bpf/xdpkit/NAME by default; if no BPF filesystem is mounted on
// /sys/fs/bpf, AttachPinned mounts one there (mode 0700), as bpftool does.
// Pin directories must be real directories owned by root or the calling
// user with mode 0700, and pins must not be symbolic links: otherwise
// AttachPinned and Unpin fail with [ErrPinUntrusted] and touch nothing.
//
// Attach never replaces a program it does not own. If the interface already
// has an XDP program, it fails with [ErrAlreadyAttached], naming the
// program's ID and mode.
//
// # Modes
//
// [ModeDriver] runs the program in the driver's receive path (native XDP)
// and is the fast path; [ModeGeneric] runs it after the kernel has built an
// skb and works on any interface. The zero value, [ModeAuto], uses driver
// mode when the driver supports it and falls back to generic mode otherwise;
// [Program.Mode] reports the result.
//
// # Requirements
//
// Linux only: on other systems every constructor returns an error wrapping
// [ErrNotSupported]. Attaching needs Linux 5.9 or later (XDP BPF links) and
// CAP_BPF plus CAP_NET_ADMIN (or root). [AttachPinned] also needs
// CAP_SYS_ADMIN when it has to mount bpffs on /sys/fs/bpf, and /proc
// mounted: it reaches the pins through /proc/self/fd, so that no path can
// be swapped under it. On kernels before 5.11, which charge BPF memory to
// RLIMIT_MEMLOCK, call rlimit.RemoveMemlock from
// github.com/cilium/ebpf/rlimit first.
//
// # Errors
//
// Errors name the interface, its index and the mode, and keep the kernel's
// errno reachable with [errors.Is] (for example unix.EBUSY or
// [os.ErrPermission]). A missing interface matches [ErrNotFound]; a kernel
// without XDP links or XSKMAP matches [ErrNotSupported]; an occupied
// interface matches [ErrAlreadyAttached].
package redirect
