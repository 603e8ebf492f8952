//go:build !linux

package ring

// Desc is an RX or TX ring entry, the kernel's struct xdp_desc: a frame's
// address in the UMEM, the packet's length, and option bits (PktContd,
// TXMetadata). On Linux it is unix.XDPDesc itself.
type Desc struct {
	Addr    uint64
	Len     uint32
	Options uint32
}

// Offsets locates a ring's producer and consumer indices, flags word and
// entries in its mapped memory, as XDP_MMAP_OFFSETS reports them. On Linux
// it is unix.XDPRingOffset.
type Offsets struct {
	Producer uint64
	Consumer uint64
	Desc     uint64
	Flags    uint64
}
