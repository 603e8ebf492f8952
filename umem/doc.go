// Package umem allocates and registers the UMEM of an AF_XDP socket — the
// packet buffer area the kernel and user space share — and accounts for
// every frame in it.
//
// A UMEM is an array of equal frames (2048 or 4096 bytes) in memory mapped
// by this package, optionally on hugepages. It is registered with the
// kernel on an AF_XDP socket (XDP_UMEM_REG) together with its fill and
// completion rings. Package afxdp binds that socket, and binds further
// sockets to the same UMEM with XDP_SHARED_UMEM.
//
// # Frame ownership
//
// Each frame is, at any moment, in exactly one place:
//
//   - Free: on the UMEM's free list.
//   - Fill: in a fill ring, or in the kernel's receive path, or in an RX
//     ring not yet read by the application.
//   - App: held by the application (received, or allocated to build a
//     frame to send).
//   - TX: in a TX ring or in the kernel's transmit path, until the
//     completion ring returns it.
//
// [UMEM.Counts] reports how many frames are in each place; the four always
// add up to the frame count. With [Options.Checked], the UMEM also records
// each frame's place and reports a frame handed out twice, freed twice, or
// returned by the kernel from the wrong place ([UMEM.Check]). That costs a
// byte per frame and a branch per frame, so it is meant for tests and
// debugging.
//
// Frames move Free → Fill ([UMEM.Refill]), Fill → App
// ([UMEM.MarkReceived]), App → TX ([UMEM.MarkTransmit]), TX → Free
// ([UMEM.Reap]), Free → App ([UMEM.Alloc]) and App → Free ([UMEM.Free]),
// without allocating.
//
// # Concurrency
//
// A UMEM, and every socket that shares it, is driven by one goroutine at a
// time: the free list and counters are not locked, so that the per-packet
// path takes no locks. Close may be called from any goroutine once the
// sockets are closed.
//
// # Example
//
//	u, err := umem.New(&umem.Options{FrameCount: 8192, HugePages: true})
//	if err != nil {
//		return err // e.g. ErrNoHugePages, with the command that reserves them
//	}
//	defer u.Close()
//	sock, err := afxdp.Open("eth0", 0, &afxdp.Config{UMEM: u})
package umem
