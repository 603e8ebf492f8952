package ring

// TX is the transmit ring: user space describes frames in the UMEM for the
// kernel to send.
type TX struct {
	producer
	descs []Desc // entries: written by us between Reserve and Submit, then read by the kernel
}

// NewTX builds a TX ring over mem, which the caller keeps alive and owns.
func NewTX(mem []byte, off Offsets, size uint32) (*TX, error) {
	if err := check(mem, off, size, descSize); err != nil {
		return nil, err
	}
	t := &TX{descs: descsAt(mem, off.Desc, size)}
	t.init(mem, off, size)
	t.mapping = mapping{mem: mem}
	return t, nil
}

// MapTX maps the TX ring of socket fd; its size must already be set with
// XDP_TX_RING.
func MapTX(fd int, off Offsets, size uint32) (*TX, error) {
	mem, err := mapRing(fd, pgoffTX, off, size, descSize)
	if err != nil {
		return nil, err
	}
	t, _ := NewTX(mem, off, size)
	t.owned = true
	return t, nil
}

// Reserve claims up to n free slots; it returns the first slot's index and
// how many it got (0 when the ring is full).
func (t *TX) Reserve(n uint32) (idx, got uint32) { return t.reserve(n) }

// Desc returns reserved slot idx for writing.
func (t *TX) Desc(idx uint32) *Desc { return &t.descs[idx&t.mask] }

// Set writes a descriptor into reserved slot idx.
func (t *TX) Set(idx uint32, d Desc) { t.descs[idx&t.mask] = d }

// Slots returns the n reserved slots from idx as at most two contiguous
// runs of the ring (the second is empty unless the run wraps), for a batch
// copy. They are valid until Submit or Cancel.
func (t *TX) Slots(idx, n uint32) (first, second []Desc) {
	a0, a1, b1 := span(idx, n, t.mask)
	return t.descs[a0:a1:a1], t.descs[:b1:b1]
}

// Submit makes the next n reserved slots visible to the kernel.
func (t *TX) Submit(n uint32) { t.submit(n) }

// Cancel gives back the last n reserved, unsubmitted slots.
func (t *TX) Cancel(n uint32) { t.cancel(n) }

// NeedWakeup reports whether the kernel wants a sendto before it sends
// what is in the ring.
func (t *TX) NeedWakeup() bool { return t.needWakeup() }

// Pending returns how many submitted descriptors the kernel has not
// consumed yet.
func (t *TX) Pending() uint32 { return t.pending() }

// Room reports whether the ring has a free slot, from the shared indices
// only: it changes nothing, so it may run on another goroutine than the
// producer (a poller callback).
func (t *TX) Room() bool { return t.prod.Load()-t.cons.Load() < t.size }

// Size returns the number of slots.
func (t *TX) Size() uint32 { return t.size }

// Close unmaps the ring if it was mapped by MapTX. It is idempotent.
func (t *TX) Close() error { return t.close() }
