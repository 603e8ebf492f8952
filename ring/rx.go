package ring

// RX is the receive ring: the kernel describes frames it wrote into the
// UMEM.
type RX struct {
	consumer
	descs []Desc // entries: written by the kernel, read by us between Peek and Release
}

// NewRX builds an RX ring over mem, which the caller keeps alive and owns.
func NewRX(mem []byte, off Offsets, size uint32) (*RX, error) {
	if err := check(mem, off, size, descSize); err != nil {
		return nil, err
	}
	r := &RX{descs: descsAt(mem, off.Desc, size)}
	r.init(mem, off, size)
	r.mapping = mapping{mem: mem}
	return r, nil
}

// MapRX maps the RX ring of socket fd; its size must already be set with
// XDP_RX_RING.
func MapRX(fd int, off Offsets, size uint32) (*RX, error) {
	mem, err := mapRing(fd, pgoffRX, off, size, descSize)
	if err != nil {
		return nil, err
	}
	r, _ := NewRX(mem, off, size)
	r.owned = true
	return r, nil
}

// Peek claims up to n received descriptors; it returns the first one's
// index and how many it got (0 when the ring is empty).
func (r *RX) Peek(n uint32) (idx, got uint32) { return r.peek(n) }

// Desc returns the descriptor at peeked index idx. It points into the ring
// and is valid until Release.
func (r *RX) Desc(idx uint32) *Desc { return &r.descs[idx&r.mask] }

// Descs returns the n peeked descriptors from idx as at most two
// contiguous runs of the ring (the second is empty unless the run wraps),
// for a batch copy. They point into the ring and are valid until Release.
func (r *RX) Descs(idx, n uint32) (first, second []Desc) {
	a0, a1, b1 := span(idx, n, r.mask)
	return r.descs[a0:a1:a1], r.descs[:b1:b1]
}

// Release hands the next n peeked slots back to the kernel.
func (r *RX) Release(n uint32) { r.release(n) }

// Unpeek returns the last n peeked, unreleased entries to the ring.
func (r *RX) Unpeek(n uint32) { r.unpeek(n) }

// Available returns how many received descriptors are waiting.
func (r *RX) Available() uint32 { return r.available() }

// Ready reports whether the kernel has produced descriptors that were not
// released yet. It reads only the shared indices and changes nothing, so
// it may run on another goroutine than the consumer (a poller callback).
func (r *RX) Ready() bool { return r.prod.Load() != r.cons.Load() }

// Size returns the number of slots.
func (r *RX) Size() uint32 { return r.size }

// Close unmaps the ring if it was mapped by MapRX. It is idempotent.
func (r *RX) Close() error { return r.close() }
