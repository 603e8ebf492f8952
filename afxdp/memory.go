package afxdp

// MemoryKernel plays the kernel's side of a memory socket (NewMemory): it
// takes frames off the socket's fill ring and describes them on its RX
// ring (Deliver, DeliverN), and takes what the socket transmitted off its
// TX ring and completes it (Transmitted). The socket is a whole Socket —
// its frame accounting, checks, waits and Close are the ones of a socket
// on a NIC — over rings in ordinary memory, with no interface, no XDP
// program and no privileges: for tests of code written against a Socket
// (a pipeline, a stage) on any Linux machine, and for benchmarks of the
// user-space side alone, as fast as the rings go.
//
// Its methods are safe to call from any goroutine, also concurrently with
// the socket's; after the socket is closed they do nothing.
type MemoryKernel struct{ *memKernel }

// MemoryStats are what a MemoryKernel did.
type MemoryStats struct {
	Delivered   uint64 // frames described on the RX ring
	Transmitted uint64 // frames taken off the TX ring and completed
	// Frames not delivered: for lack of a frame on the fill ring (the
	// kernel's rx_fill_ring_empty_descs), of room on the RX ring
	// (rx_ring_full), or empty or longer than a frame's room
	// (rx_dropped).
	FillEmpty, RXRingFull, TooLong uint64
}

// NewMemory opens a memory socket and returns it with its kernel side.
// cfg is a Config as for Open; a memory socket takes the ring sizes, the
// UMEM (made by umem.NewMemory, or one NewMemory makes from UMEMOptions)
// and Pool, and refuses what needs a kernel (Steering, Redirect,
// MultiBuffer, BusyPoll, TXBudget, Bind zero-copy). The socket is on
// interface "memory", queue 0, in copy mode; FD returns an eventfd that
// Deliver makes readable for the socket's waits.
func NewMemory(cfg *Config) (*Socket, *MemoryKernel, error) { return newMemory(cfg) }
