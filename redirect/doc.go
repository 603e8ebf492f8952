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
