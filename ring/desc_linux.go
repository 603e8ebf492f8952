package ring

import "golang.org/x/sys/unix"

// Desc is an RX or TX ring entry, the kernel's struct xdp_desc: a frame's
// address in the UMEM, the packet's length, and option bits (PktContd,
// TXMetadata). On Linux it is unix.XDPDesc itself.
type Desc = unix.XDPDesc

// Offsets locates a ring's producer and consumer indices, flags word and
// entries in its mapped memory, as XDP_MMAP_OFFSETS reports them. On Linux
// it is unix.XDPRingOffset.
type Offsets = unix.XDPRingOffset
