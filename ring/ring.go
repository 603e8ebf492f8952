package ring

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// mapping is a ring's memory and whether we must unmap it.
type mapping struct {
	mem   []byte
	owned bool
}

func (m *mapping) close() error {
	if !m.owned || m.mem == nil {
		m.mem = nil
		return nil
	}
	err := unmap(m.mem)
	m.mem = nil
	return err
}

// producer is the user-space side of a ring user space writes into.
type producer struct {
	prod  *atomic.Uint32 // written only by us, in submit; the kernel reads it
	cons  *atomic.Uint32 // written only by the kernel; we read it when short of room
	flags *atomic.Uint32 // written only by the kernel (XDP_RING_NEED_WAKEUP)

	mask       uint32
	size       uint32
	cachedProd uint32 // next slot to hand out; ahead of published by what is reserved
	cachedCons uint32 // kernel consumer index + size, as last read
	published  uint32 // the value last stored to *prod
	mapping
}

func (p *producer) init(mem []byte, off Offsets, size uint32) {
	p.prod = atomicAt(mem, off.Producer)
	p.cons = atomicAt(mem, off.Consumer)
	p.flags = atomicAt(mem, off.Flags)
	p.mask, p.size = size-1, size
	p.published = p.prod.Load()
	p.cachedProd = p.published
	p.cachedCons = p.cons.Load() + size
}

// reserve claims up to n free slots and returns the first one's index.
func (p *producer) reserve(n uint32) (idx, got uint32) {
	free := p.cachedCons - p.cachedProd
	if free < n {
		p.cachedCons = p.cons.Load() + p.size
		free = p.cachedCons - p.cachedProd
	}
	got = min(n, free)
	idx = p.cachedProd
	p.cachedProd += got
	return idx, got
}

// submit publishes the next n reserved slots to the kernel.
func (p *producer) submit(n uint32) {
	p.published += n
	storeRelease(p.prod, p.published)
}

// cancel gives back the last n slots reserved and not submitted.
func (p *producer) cancel(n uint32) { p.cachedProd -= n }

// needWakeup reports whether the kernel asked for a syscall to notice new
// entries (only set when the socket was bound with XDP_USE_NEED_WAKEUP).
func (p *producer) needWakeup() bool { return p.flags.Load()&ringNeedWakeup != 0 }

// pending returns how many submitted entries the kernel has not consumed.
func (p *producer) pending() uint32 { return p.published - p.cons.Load() }

// consumer is the user-space side of a ring the kernel writes into.
type consumer struct {
	prod  *atomic.Uint32 // written only by the kernel; we read it when our view is short
	cons  *atomic.Uint32 // written only by us, in release; the kernel reads it
	flags *atomic.Uint32 // written only by the kernel

	mask       uint32
	size       uint32
	cachedProd uint32 // kernel producer index, as last read
	cachedCons uint32 // next entry to hand out; ahead of released by what is peeked
	released   uint32 // the value last stored to *cons
	mapping
}

func (c *consumer) init(mem []byte, off Offsets, size uint32) {
	c.prod = atomicAt(mem, off.Producer)
	c.cons = atomicAt(mem, off.Consumer)
	c.flags = atomicAt(mem, off.Flags)
	c.mask, c.size = size-1, size
	c.released = c.cons.Load()
	c.cachedCons = c.released
	c.cachedProd = c.prod.Load()
}

// peek claims up to n filled entries and returns the first one's index.
func (c *consumer) peek(n uint32) (idx, got uint32) {
	avail := c.cachedProd - c.cachedCons
	if avail < n {
		c.cachedProd = c.prod.Load()
		avail = c.cachedProd - c.cachedCons
	}
	got = min(n, avail)
	idx = c.cachedCons
	c.cachedCons += got
	return idx, got
}

// release hands the next n peeked entries back to the kernel.
func (c *consumer) release(n uint32) {
	c.released += n
	storeRelease(c.cons, c.released)
}

// unpeek returns the last n peeked, unreleased entries to the ring.
func (c *consumer) unpeek(n uint32) { c.cachedCons -= n }

// available returns how many entries the kernel has produced that are not
// yet peeked, reading the kernel's index.
func (c *consumer) available() uint32 {
	c.cachedProd = c.prod.Load()
	return c.cachedProd - c.cachedCons
}

// check validates a ring's memory against its offsets and size.
func check(mem []byte, off Offsets, size uint32, entry uint64) error {
	if !ValidSize(size) {
		return fmt.Errorf("invalid ring size %d: %w", size, ErrInvalidSize)
	}
	n := uint64(len(mem))
	// Compare by subtraction: offsets come from the kernel or the caller
	// and must not overflow into range.
	for _, o := range []uint64{off.Producer, off.Consumer, off.Flags} {
		if o%4 != 0 || n < 4 || o > n-4 {
			return fmt.Errorf("ring index offset %d out of %d bytes or not 4-byte aligned", o, len(mem))
		}
	}
	if off.Desc%8 != 0 || off.Desc > n || uint64(size)*entry > n-off.Desc {
		return fmt.Errorf("ring of %d entries at offset %d does not fit in %d bytes", size, off.Desc, len(mem))
	}
	if !aligned8(mem) {
		return errors.New("ring memory is not 8-byte aligned")
	}
	return nil
}

// span returns the ring slots idx..idx+n (masked) as at most two
// contiguous index ranges of the entry array: [a0,a1) and [0,b1).
func span(idx, n, mask uint32) (a0, a1, b1 uint32) {
	a0 = idx & mask
	if a0+n <= mask+1 {
		return a0, a0 + n, 0
	}
	return a0, mask + 1, a0 + n - (mask + 1)
}
