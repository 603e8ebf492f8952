package ring

// Fill is the fill ring: user space gives the kernel UMEM frame addresses
// to receive into.
type Fill struct {
	producer
	addrs []uint64 // entries: written by us between Reserve and Submit, then read by the kernel
}

// NewFill builds a fill ring over mem, which the caller keeps alive and
// owns; Close does not unmap it.
func NewFill(mem []byte, off Offsets, size uint32) (*Fill, error) {
	if err := check(mem, off, size, addrSize); err != nil {
		return nil, err
	}
	f := &Fill{addrs: addrsAt(mem, off.Desc, size)}
	f.init(mem, off, size)
	f.mapping = mapping{mem: mem}
	return f, nil
}

// MapFill maps the fill ring of the UMEM registered on socket fd; its size
// must already be set with XDP_UMEM_FILL_RING.
func MapFill(fd int, off Offsets, size uint32) (*Fill, error) {
	mem, err := mapRing(fd, pgoffFill, off, size, addrSize)
	if err != nil {
		return nil, err
	}
	f, _ := NewFill(mem, off, size)
	f.owned = true
	return f, nil
}

// Reserve claims up to n free slots; it returns the first slot's index and
// how many it got (0 when the ring is full).
func (f *Fill) Reserve(n uint32) (idx, got uint32) { return f.reserve(n) }

// Set writes a frame address into reserved slot idx.
func (f *Fill) Set(idx uint32, addr uint64) { f.addrs[idx&f.mask] = addr }

// Slots returns the n reserved slots from idx as at most two contiguous
// runs of the ring's entries (the second is empty unless the run wraps):
// batch code writes frame addresses through them without an index mask
// per entry. They are valid until Submit or Cancel.
func (f *Fill) Slots(idx, n uint32) (first, second []uint64) {
	a0, a1, b1 := span(idx, n, f.mask)
	return f.addrs[a0:a1:a1], f.addrs[:b1:b1]
}

// Submit makes the next n reserved slots visible to the kernel.
func (f *Fill) Submit(n uint32) { f.submit(n) }

// Cancel gives back the last n reserved, unsubmitted slots.
func (f *Fill) Cancel(n uint32) { f.cancel(n) }

// NeedWakeup reports whether the kernel wants a syscall (poll or recvfrom)
// before it looks at the ring again.
func (f *Fill) NeedWakeup() bool { return f.needWakeup() }

// Pending returns how many submitted addresses the kernel has not taken yet.
func (f *Fill) Pending() uint32 { return f.pending() }

// Size returns the number of slots.
func (f *Fill) Size() uint32 { return f.size }

// Close unmaps the ring if it was mapped by MapFill. It is idempotent.
func (f *Fill) Close() error { return f.close() }
