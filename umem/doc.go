// Package umem allocates and registers the UMEM of AF_XDP sockets — the
// packet buffer area the kernel and user space share — and accounts for
// every frame in it.
//
// A UMEM is an array of equal frames (2048 or 4096 bytes; with
// Options.Unaligned any size from 2048 to 4096) in memory mapped by this
// package, optionally on hugepages. New registers it with the kernel
// (XDP_UMEM_REG), so that a missing privilege or a low locked-memory limit
// shows at once; package afxdp binds sockets to it, the first on that
// registration, the next ones sharing it (XDP_SHARED_UMEM).
//
// # Frame ownership
//
// Each frame belongs to one [Pool] for its whole life and is, at any
// moment, in exactly one place:
//
//   - Free: on its pool's free list.
//   - Fill: in a fill ring, or in the kernel's receive path, or in an RX
//     ring not yet read by the application.
//   - App: held by the application (received, or allocated to build a
//     frame to send).
//   - TX: in a TX ring or in the kernel's transmit path, until the
//     completion ring returns it.
//
// The place of every frame is recorded, so a frame handed back twice,
// sent while the kernel has it, freed into another pool, or returned by
// the kernel from the wrong place is refused with an error wrapping
// [ErrFrameState] instead of corrupting the counts, and [UMEM.Check]
// reports it. [UMEM.Counts] reports how many frames are in each place; the
// four always add up to the frame count. When the last socket using a
// queue closes, the frames the kernel still had for it (on its fill ring,
// in transmission) return to their pool.
//
// # Concurrency
//
// Everything in this package is safe for concurrent use. A Pool has a
// lock, which the data path of every socket using the pool takes once per
// batch: give sockets that different goroutines drive pools of their own
// ([UMEM.NewPool]) so that lock is never contended. Close may be called
// at any time: the memory stays mapped until no socket uses the UMEM and
// the application holds none of its frames, so nothing can touch freed
// memory.
//
// # Lifetime of frame bytes
//
// [UMEM.Frame] and [UMEM.Bytes] return slices of the shared memory, valid
// while the application holds the frame: until it frees, releases or
// transmits it. The kernel may write a frame it has been given at any
// moment.
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
