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
// (package redirect; [Open] attaches one unless told otherwise) redirects
// that queue's frames to the socket through an XSKMAP; frames of queues
// without a socket go on to the kernel stack.
//
// Receiving: the application gives the kernel empty frames of its UMEM on
// the fill ring; the kernel writes received packets into them and describes
// them on the RX ring. [Socket.Receive] restocks the fill ring from the
// UMEM's free frames and takes a batch of descriptors off the RX ring.
// [Socket.Frame] gives a descriptor's bytes, in place. [Socket.Release]
// returns the frames to the free list.
//
// Transmitting: the application writes packets into frames it holds (a
// received one, or one from UMEM().Alloc()), and [Socket.Transmit] puts
// their descriptors on the TX ring and, if the kernel asks for it
// (need_wakeup), kicks it with one sendto. When the kernel has sent a
// frame it returns it on the completion ring; Transmit and
// [Socket.Complete] move those back to the free list.
//
// [Socket.Wait] blocks in Go's runtime poller until frames arrive, a
// timeout passes or the socket is closed; it makes no syscall when frames
// are already waiting.
//
//	sock, err := afxdp.Open("eth0", 0, nil)
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer sock.Close()
//	descs := make([]unix.XDPDesc, 64)
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
// until Release, Transmit, or Close. A Socket owns its file descriptor, its
// ring mappings and, unless they were passed in Config, its UMEM and its
// XDP program; Close releases them all and removes the socket from the
// XSKMAP first. Close is idempotent. One goroutine receives and one
// transmits per socket; Close may come from any goroutine. The program is
// attached through a BPF link, so it is detached even when the process
// dies without closing it.
//
// # Requirements
//
// Linux only. Linux 5.9 or later (BPF links for XDP, the full
// XDP_STATISTICS); need_wakeup needs 5.4 and busy-poll options 5.11. The
// process needs CAP_NET_RAW for the socket, CAP_BPF and CAP_NET_ADMIN for
// the XDP program, and enough locked memory for the UMEM (CAP_IPC_LOCK or
// RLIMIT_MEMLOCK; github.com/cilium/ebpf/rlimit.RemoveMemlock raises it).
// Root has all of these. Zero-copy needs driver support; veth and every
// other driver work in copy mode.
package afxdp
