//go:build linux

package xsk

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/xdpkit/xdpkit/ring"
)

// MemOffsets lays out the rings of a memory socket: each index word on its
// own cache line, as the kernel's mappings do, the entries after them.
var MemOffsets = ring.Offsets{Producer: 0, Consumer: 64, Flags: 128, Desc: 192}

// AlignedBytes returns n zeroed bytes of Go memory starting on a 64-byte
// boundary, as ring indices (atomics) and entries (uint64) need and as
// keeps the index words on separate cache lines. The slice points into a
// []uint64 allocation, which keeps it alive.
func AlignedBytes(n int) []byte {
	w := make([]uint64, (n+63)/8+8)
	b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(w))), len(w)*8) // a view of w's words as bytes
	off := int(-uintptr(unsafe.Pointer(&b[0])) & 63)
	return b[off : off+n : off+n]
}

// NewMemory maps a UMEM of geometry c (on hugepages if c asks) and
// registers it with no kernel: its sockets are memory sockets
// (JoinMemory), whose kernel side the caller plays.
func NewMemory(c Config) (*UMEM, error) {
	if c.FrameCount == 0 || c.FrameSize == 0 {
		return nil, fmt.Errorf("memory UMEM of %d x %d bytes: %w", c.FrameCount, c.FrameSize, ErrInvalidConfig)
	}
	u := newUMEM(c)
	u.memory = true
	if err := u.mapArea(); err != nil {
		return nil, err
	}
	u.initFrames()
	return u, nil
}

// Memory reports whether u was made by NewMemory.
func (u *UMEM) Memory() bool { return u.memory }

// KernelRings are the kernel's ends of a memory socket's fill and
// completion rings: a Completion view of the fill ring consumes what the
// pool puts there, a Fill view of the completion ring produces what
// transmission completed.
type KernelRings struct {
	Fill *ring.Completion
	Comp *ring.Fill
}

// JoinMemory makes a memory socket's place in u, a memory UMEM: a ring
// pair of its own over Go memory, in pool p, and the kernel's ends of it.
// The Member has no file descriptor (FD -1).
func (u *UMEM) JoinMemory(p *Pool) (*Member, KernelRings, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch {
	case !u.memory:
		return nil, KernelRings{}, fmt.Errorf("a memory socket needs a memory UMEM (umem.NewMemory): %w", ErrInvalidConfig)
	case u.closed:
		return nil, KernelRings{}, fmt.Errorf("UMEM: %w", ErrClosed)
	case p.u != u:
		return nil, KernelRings{}, fmt.Errorf("the pool belongs to another UMEM: %w", ErrInvalidConfig)
	}
	fillSize, compSize := u.cfg.FillRingSize, u.cfg.CompletionRingSize
	fm := AlignedBytes(int(MemOffsets.Desc) + int(fillSize)*8)
	cm := AlignedBytes(int(MemOffsets.Desc) + int(compSize)*8)
	pr := &Pair{ifindex: -1, queue: -1, pool: p}
	var k KernelRings
	var errs [4]error
	pr.Fill, errs[0] = ring.NewFill(fm, MemOffsets, fillSize)
	k.Fill, errs[1] = ring.NewCompletion(fm, MemOffsets, fillSize)
	pr.Comp, errs[2] = ring.NewCompletion(cm, MemOffsets, compSize)
	k.Comp, errs[3] = ring.NewFill(cm, MemOffsets, compSize)
	if err := errors.Join(errs[:]...); err != nil {
		return nil, KernelRings{}, fmt.Errorf("rings of %d and %d entries: %w", fillSize, compSize, err)
	}
	if err := p.addPair(pr); err != nil {
		return nil, KernelRings{}, err
	}
	pr.refs++
	u.members++
	m := &Member{u: u, Pool: p, Pair: pr, FD: -1, SharedFD: -1}
	pr.bound = append(pr.bound, m)
	return m, k, nil
}
