package ring

// Completion is the completion ring: the kernel returns the addresses of
// frames it has finished transmitting.
type Completion struct {
	consumer
	addrs []uint64 // entries: written by the kernel, read by us between Peek and Release
}

// NewCompletion builds a completion ring over mem, which the caller keeps
// alive and owns.
func NewCompletion(mem []byte, off Offsets, size uint32) (*Completion, error) {
	if err := check(mem, off, size, addrSize); err != nil {
		return nil, err
	}
	c := &Completion{addrs: addrsAt(mem, off.Desc, size)}
	c.init(mem, off, size)
	c.mapping = mapping{mem: mem}
	return c, nil
}

// MapCompletion maps the completion ring of the UMEM registered on socket
// fd; its size must already be set with XDP_UMEM_COMPLETION_RING.
func MapCompletion(fd int, off Offsets, size uint32) (*Completion, error) {
	mem, err := mapRing(fd, pgoffCompletion, off, size, addrSize)
	if err != nil {
		return nil, err
	}
	c, _ := NewCompletion(mem, off, size)
	c.owned = true
	return c, nil
}

// Peek claims up to n completed addresses; it returns the first one's index
// and how many it got (0 when none are ready).
func (c *Completion) Peek(n uint32) (idx, got uint32) { return c.peek(n) }

// Addr reads the address at peeked index idx.
func (c *Completion) Addr(idx uint32) uint64 { return c.addrs[idx&c.mask] }

// Addrs returns the n peeked addresses from idx as at most two contiguous
// runs of the ring (the second is empty unless the run wraps). They point
// into the ring and are valid until Release.
func (c *Completion) Addrs(idx, n uint32) (first, second []uint64) {
	a0, a1, b1 := span(idx, n, c.mask)
	return c.addrs[a0:a1:a1], c.addrs[:b1:b1]
}

// Release hands the next n peeked slots back to the kernel.
func (c *Completion) Release(n uint32) { c.release(n) }

// Unpeek returns the last n peeked, unreleased entries to the ring.
func (c *Completion) Unpeek(n uint32) { c.unpeek(n) }

// Available returns how many completed addresses are waiting.
func (c *Completion) Available() uint32 { return c.available() }

// Size returns the number of slots.
func (c *Completion) Size() uint32 { return c.size }

// Close unmaps the ring if it was mapped by MapCompletion. It is idempotent.
func (c *Completion) Close() error { return c.close() }
