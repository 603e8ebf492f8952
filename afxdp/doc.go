// Package afxdp opens AF_XDP sockets: user-space packet I/O at
// kernel-bypass speed, in Go, with the Linux kernel's own driver.
//
// It is for programs that process every packet of a NIC queue themselves —
// DDoS scrubbers, L4 load balancers, traffic generators, packet capture,
// UDP services — and want to do it in batches, without copying and without
// allocating per packet.
//
// # How frames flow
//
// A socket is bound to one queue of one interface. An XDP program
// (package redirect) redirects that queue's frames to the socket through
// an XSKMAP; frames of queues without a socket go on to the kernel stack.
// [Open] attaches a private program (Config.Redirect configures it), or
// registers the socket in a program shared by several sockets
// (Config.Steering, a [Registrar] such as *redirect.Program), or nowhere
// ([NoSteering]).
//
// Receiving: the application gives the kernel empty frames of its UMEM on
// the fill ring; the kernel writes received packets into them and describes
// them on the RX ring. [Socket.Receive] restocks the fill ring from the
// pool's free frames and takes a batch of descriptors off the RX ring.
// [Socket.Frame] gives a descriptor's bytes, in place ([Socket.Frames]
// a batch's). [Socket.Release] returns the frames to the free list,
// [Socket.Recycle] straight to the fill ring; [Socket.Discard] drops a
// batch unread.
//
// Transmitting: the application writes packets into frames it holds (a
// received one, or one from Pool().Alloc()), and [Socket.Transmit] puts
// their descriptors on the TX ring and, if the kernel asks for it
// (need_wakeup), kicks it with one sendto. When the kernel has sent a
// frame it returns it on the completion ring; Transmit and
// [Socket.Complete] move those back to the free list.
//
// [Socket.Wait] blocks in Go's runtime poller until frames arrive, a
// timeout passes or the socket is closed; it makes no syscall when frames
// are already waiting. [Socket.WaitPoll] does the same in poll(2) on the
// calling thread: cheaper per wake-up, and the one for a goroutine locked
// to its thread. For its first 10 ms it keeps the goroutine's P, as a
// busy-polling loop does, so that a wake-up costs no scheduler hand-off;
// [Config].PollYields gives the P back at once instead.
//
// Under load a loop that waits when idle is woken once per burst the
// kernel delivers, and each wake-up costs more CPU than the frames it
// brings (in the bench's poll-mode rx-drop on veth, most of the CPU per
// frame went to them). [Config].Coalesce is interrupt moderation for such
// a loop: a wait that follows [CoalesceBurst] or more frames received since
// the last one first sleeps that long without a wake-up, so that the
// bursts of that time come as one; light traffic is not delayed.
//
//	sock, err := afxdp.Open("eth0", 0, &afxdp.Config{Coalesce: 50 * time.Microsecond})
//
// # Memory sockets
//
// [NewMemory] opens a socket whose rings are in ordinary memory, with a
// [MemoryKernel] that plays the kernel's side: it delivers frames onto the
// RX ring and takes transmitted ones off the TX ring. Everything above the
// rings is the same Socket, so code written against a Socket (a pipeline,
// a stage, a protocol) can be tested without a NIC, an XDP program or
// privileges, and benchmarked without the kernel in the way.
//
//	sock, err := afxdp.Open("eth0", 0, nil)
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer sock.Close()
//	descs := make([]afxdp.Desc, 64)
//	for {
//		if err := sock.Wait(time.Second); errors.Is(err, afxdp.ErrTimeout) {
//			continue
//		} else if err != nil {
//			break
//		}
//		n, _ := sock.Receive(descs)
//		for _, d := range descs[:n] {
//			fmt.Printf("% x\n", sock.Frame(d)[:14])
//		}
//		sock.Release(descs[:n])
//	}
//
// # Ownership and lifetime
//
// A received frame's bytes stay valid while the application holds it:
// until Release or Transmit. Every frame belongs to one pool of the UMEM
// (umem.Pool); a socket receives into, transmits and releases frames of
// its own pool only, and Transmit refuses, with [ErrInvalidDescriptor], a
// descriptor the kernel would drop without completing it (zero length,
// past its frame's end, outside the UMEM, unknown Options bits) or one for
// a frame the application does not hold — the frame stays the caller's.
// [Socket.WaitTX] waits for room on a full TX ring.
//
// A Socket owns its file descriptor, its ring mappings and, unless they
// were passed in Config, its UMEM and its XDP program. Close removes the
// socket from the XSKMAP first, gives the frames on its RX ring back to
// the pool, unmaps its rings and closes it; when it was the last socket
// of the UMEM on its queue, the frames the kernel still had for the queue
// (fill ring, transmission) return to the pool too. Frames the
// application holds stay its own: Release takes them back even after
// Close. A failed Open leaves nothing behind, so "try zero-copy, else
// copy" on one UMEM works. The program is attached through a BPF link, so
// it is detached even when the process dies without closing it.
//
// # Concurrency
//
// Every method of a Socket is safe for concurrent use, and Close is safe
// against every call in flight: it wakes a blocked Wait, WaitTX or
// WaitAny, waits for the data-path call in progress to return before it
// unmaps anything, and every call after it returns [ErrClosed] (Release
// excepted, see above). The data path of all sockets on one pool is
// serialized by the pool's lock, taken once per call: for speed, drive
// each pool from one goroutine and give sockets on other goroutines pools
// of their own (umem.UMEM.NewPool). Sockets bound to the same queue share
// its fill and completion rings and so must share a pool.
//
// # Requirements
//
// Linux 5.10 or later (XDP_SHARED_UMEM with a fill and completion ring
// per queue, BPF links for XDP, the full XDP_STATISTICS); on older kernels
// Open fails with [ErrNotSupported], and so it does on other systems,
// where the package compiles so that code using it builds anywhere. Busy-poll
// options need 5.11 and multi-buffer 6.6. The process needs CAP_NET_RAW
// for the socket, CAP_BPF and CAP_NET_ADMIN for the XDP program, and
// enough locked memory for the UMEM (CAP_IPC_LOCK or RLIMIT_MEMLOCK;
// github.com/cilium/ebpf/rlimit.RemoveMemlock raises it). Root has all of
// these. Zero-copy needs driver support; veth and every other driver work
// in copy mode. Busy polling on a real NIC also wants the device's
// interrupts deferred: that is a setting of the whole device, made
// explicitly with package napi.
//
// # Splitting privileges
//
// The privileges belong to different steps, which different processes
// can take. The XDP program (CAP_BPF, CAP_NET_ADMIN) can be another
// process's: Config.Steering takes the XSKMAP it attached
// (redirect.OpenXSKMap for a pin from `xdpkit attach`, XSKMapFromFD for
// an fd received, package deviceplugin for Kubernetes' AF_XDP device
// plugin); registering a socket in it is a map update, which needs no
// capability from Linux 5.19. The socket itself (CAP_NET_RAW) can be
// made by a helper too: NewSocketFD makes one, SendSocket sends it over
// a unix socket, ReceiveSocket receives it, and Config.SocketFD (or an
// inherited fd) lets Open set it up without making a socket of its own.
// What is left for the worker is locked memory for its UMEM.
//
//	// the helper, with CAP_NET_RAW:
//	fd, _ := afxdp.NewSocketFD()
//	_ = afxdp.SendSocket(conn, fd)
//	// the worker, with neither:
//	fd, _ := afxdp.ReceiveSocket(conn, 5*time.Second)
//	xsks, _ := redirect.OpenXSKMap("/sys/fs/bpf/xdpkit/NAME/xsks")
//	sock, _ := afxdp.Open("eth0", 0, &afxdp.Config{SocketFD: fd, Steering: xsks})
//
// # Multi-buffer packets
//
// With Config.MultiBuffer (bind flag XDP_USE_SG, Linux 6.6+) a packet
// larger than one UMEM frame, such as a 9000-byte jumbo frame with
// 4096-byte frames, is received as several descriptors, one per frame, one
// after the other on the RX ring. Every descriptor of a packet but the last
// has XDP_PKT_CONTD set in its Options; a packet of one descriptor has no
// flag, as without MultiBuffer. In copy mode the kernel fills each frame up
// to its size less 256 bytes of headroom and Options.Headroom: 3840 bytes
// of a 4096-byte frame, 1792 of a 2048-byte one, so a 9014-byte frame
// takes 3 or 6 descriptors.
//
// The rules, from the kernel's side (Documentation/networking/af_xdp.rst)
// and from this package's:
//
//   - The kernel puts all descriptors of a packet on the RX ring at once,
//     or none: when the RX ring or the fill ring lacks room for all of
//     them it drops the packet (Stats.RXRingFull, Stats.RXDropped).
//   - [Socket.ReceivePackets] takes whole packets only. When the caller's
//     slice ends in the middle of a packet, that packet stays on the ring
//     for the next call; a packet too long for the whole slice is dropped
//     and reported with [ErrPacketTooLong] (and Stats.RXTooLong), so the
//     queue never sticks. [Socket.Receive] counts descriptors, not
//     packets, and may end a batch in the middle of a packet, whose rest
//     then opens the next batch; use ReceivePackets on multi-buffer
//     sockets.
//   - [NextPacket], [Packets], [PacketLen] and [Socket.CopyPacket] find
//     packets in a batch and gather their bytes; none of them allocates.
//   - A packet's frames are ordinary UMEM frames: Release, Frame and the
//     frame accounting work per descriptor, as always.
//   - To send, [Socket.WritePacket] spreads bytes over frames from the
//     socket's pool and chains their descriptors; [Socket.TransmitPacket]
//     puts one packet's descriptors on the TX ring all together or not at
//     all, and [Socket.TransmitPackets] sends the whole packets at the
//     front of an already chained batch (a received one, to reflect it).
//     On a MultiBuffer socket [Socket.Transmit] is TransmitPackets: it
//     never puts part of a packet on the ring, which the kernel would
//     hold without completing its frames and glue the next descriptors
//     onto, whatever packet they belong to.
//   - The kernel drops a packet with an invalid descriptor (zero length,
//     crossing its frame's end, outside the UMEM, unknown Options bits) or
//     with more descriptors than it supports (CONFIG_MAX_SKB_FRAGS+1 in
//     copy mode, 18 with the smallest configuration; the driver's
//     NETDEV_A_DEV_XDP_ZC_MAX_SEGS in zero-copy mode), and counts its
//     descriptors in Stats.TXInvalidDescs. af_xdp.rst says their frames
//     are not completed; Linux 6.18 does return them through the
//     completion ring. Transmit checks for all of that first and refuses
//     such a packet ([ErrInvalidPacket], [ErrPacketTooLong]) instead of
//     having it silently dropped.
//   - In driver mode the XDP program must declare fragment support
//     (BPF_F_XDP_HAS_FRAGS) to see jumbo frames at all: veth, for one,
//     refuses to attach a program without it above an MTU of about 3500.
//     The private program does when MultiBuffer is set
//     (redirect.Options.MultiBuffer). In generic mode the kernel
//     linearizes a jumbo frame for a program without it; a MultiBuffer
//     socket still gets the frame in several descriptors, a socket without
//     MultiBuffer drops it (Stats.RXDropped).
//   - Sockets that share a UMEM inherit the first socket's XDP_USE_SG:
//     give them all the same MultiBuffer setting.
//
// # TX metadata
//
// A packet can ask the kernel or the device for work when it is sent:
// its L4 checksum, a TX timestamp, a launch time. The request is a struct
// xsk_tx_metadata in the UMEM frame right in front of the packet, and the
// XDP_TX_METADATA bit (ring.TXMetadata) in the descriptor's Options
// (Documentation/networking/xsk-tx-metadata.rst). It takes a UMEM made
// with umem.Options.TXMetadata (Linux 6.8+), which reserves
// umem.TXMetadataLen bytes in front of every transmitted packet: every TX
// descriptor's data must then start at least that far into its frame, or
// the kernel drops it, so Transmit refuses it ([ErrInvalidDescriptor]).
// Received frames qualify as they are; [Socket.TransmitBytes] and
// [Socket.WritePacket] place packets there; a packet built in a frame
// from Pool().Alloc() goes at Alloc's address plus
// UMEM().TXMetadataLen().
//
//	u, err := umem.New(&umem.Options{TXMetadata: true})
//	...
//	addr, _ := sock.Pool().Alloc()
//	d := afxdp.Desc{Addr: addr + uint64(u.TXMetadataLen())}
//	d.Len = uint32(copy(u.Frame(d.Addr), frame))
//	if err := sock.RequestL4Checksum(&d); err != nil { ... }
//	if err := sock.RequestTXTimestamp(&d); err != nil { ... }
//	sock.Transmit([]afxdp.Desc{d})
//	...
//	n := sock.TXTimestamps(ts) // ts[:n], once the frames completed
//
// [Socket.RequestTXChecksum] asks for the checksum of the bytes from an
// offset to the packet's end, stored at another offset, as for any
// CHECKSUM_PARTIAL packet of the kernel's: the checksum field must hold
// the pseudo-header sum first, which [PrepareL4Checksum] writes for UDP
// and TCP over IPv4 and IPv6 ([Socket.RequestL4Checksum] does both).
// [Socket.RequestTXTimestamp] asks for a timestamp at completion:
// [Socket.TXTimestamps] returns it, copied out of the frame's metadata
// when the frame completes, before it can be reused.
// [Socket.RequestLaunchTime] (Linux 6.15+) asks the device to send the
// packet at a time of its clock. The requests allocate nothing and make
// no syscall. Transmit checks a descriptor's metadata as the kernel will
// (known flags, a checksum field inside the packet, metadata on a
// packet's first descriptor only) and refuses what the kernel would
// not take: in copy mode, Linux fails every sendto on such a descriptor
// with EINVAL and leaves it at the head of the TX ring, which would stall
// the socket.
//
// What happens to a request depends on the mode:
//
//   - Copy mode, on any device, veth included: the kernel builds an skb.
//     A checksum request makes it CHECKSUM_PARTIAL, finished by the
//     device's ordinary checksum offload or by the stack in software if
//     the device has none; with umem.Options.TXSoftwareChecksum the kernel
//     computes it at once (a veth passes a CHECKSUM_PARTIAL packet on to
//     its peer unfinished, which the peer's stack accepts, but a packet
//     socket there sees the partial sum). A TX timestamp is a software
//     one, CLOCK_TAI when the skb is freed. A launch time is put in the
//     skb for the driver; the packet skips the qdiscs, so a driver
//     without launch-time offload sends it at once.
//   - Zero-copy mode: the driver does the work, if it can:
//     [TXMetadataFeatures] says what the device offers (netdev netlink
//     xsk-features, Linux 6.8+), and a zero-copy socket refuses requests
//     its driver cannot honour with [ErrNotSupported] (Open asks the
//     kernel; if it cannot tell, requests go through unchecked), rather
//     than have the driver ignore them. The timestamp is the device's, on
//     its PTP hardware clock. umem.Options.TXSoftwareChecksum has no
//     effect.
package afxdp
