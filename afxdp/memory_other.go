//go:build !linux

package afxdp

type memKernel struct{}

func newMemory(*Config) (*Socket, *MemoryKernel, error) { return nil, nil, errUnsupported }

// Deliver does nothing outside Linux.
func (k *MemoryKernel) Deliver(frames ...[]byte) int { return 0 }

// DeliverN does nothing outside Linux.
func (k *MemoryKernel) DeliverN(n, length int) int { return 0 }

// Fill does nothing outside Linux.
func (k *MemoryKernel) Fill(frames ...[]byte) {}

// Transmitted does nothing outside Linux.
func (k *MemoryKernel) Transmitted(fn func(frame []byte)) int { return 0 }

// Stats returns nothing outside Linux.
func (k *MemoryKernel) Stats() MemoryStats { return MemoryStats{} }
