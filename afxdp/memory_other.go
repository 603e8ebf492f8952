//go:build !linux

package afxdp

type memKernel struct{}

func newMemory(*Config) (*Socket, *MemoryKernel, error) { return nil, nil, errUnsupported }

// Deliver does nothing outside Linux.
func (k *MemoryKernel) Deliver(...[]byte) int { return 0 }

// DeliverN does nothing outside Linux.
func (k *MemoryKernel) DeliverN(int, int) int { return 0 }

// Fill does nothing outside Linux.
func (k *MemoryKernel) Fill(...[]byte) {}

// Transmitted does nothing outside Linux.
func (k *MemoryKernel) Transmitted(func([]byte)) int { return 0 }

// Stats returns nothing outside Linux.
func (k *MemoryKernel) Stats() MemoryStats { return MemoryStats{} }
