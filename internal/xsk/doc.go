// Package xsk is the machinery package umem and package afxdp share: the
// UMEM's memory and registration with the kernel, its frame pools, the
// fill/completion ring pairs, and the ownership state of every frame.
//
// It exists so that the handshake between a UMEM and the sockets bound to
// it is not public API: umem wraps [UMEM] and [Pool] for users, afxdp
// reaches them through [UMEMOf] and [PoolOf].
//
// # Frames
//
// Every frame belongs to one [Pool] for its whole life and is, at any
// moment, in one [State]: Free (on its pool's free list), Fill (on a fill
// ring, in the kernel's receive path, or on an RX ring not yet read), App
// (held by the application) or TX (on a TX ring or in the kernel's
// transmit path until the completion ring returns it). The state is kept
// per frame, so a descriptor for a frame that is not where the caller
// says it is gets refused instead of corrupting the counts.
//
// Frames in Fill or TX state also record their ring pair: when the last
// socket using a ring pair is gone, the kernel has forgotten those frames,
// and [Member.Leave] returns them to their pool.
//
// # Locking
//
// A Pool's mutex guards its free list and counters, the state of its
// frames, and the rings of the sockets that use it: the fill and
// completion rings of their ring pairs and, by afxdp's convention, their
// RX and TX rings. The UMEM's mutex guards its set of sockets and ring
// pairs; it is taken before a pool's, never after. A Pool's mutex is its
// own (mutex.go): its Unlock is a plain store on x86, not a fence, and a
// waiter spins, yields and sleeps rather than parks, since a pool is
// normally driven by one goroutine.
package xsk
