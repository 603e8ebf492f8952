package ring

import (
	"sync/atomic"
	"unsafe"
)

// atomicAt views the 4 bytes at mem[off] as an atomic index. Safe: check
// verified off is in bounds and 4-byte aligned, and mem outlives the ring.
func atomicAt(mem []byte, off uint64) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&mem[off]))
}

// addrsAt views the entries of a fill or completion ring as []uint64. Safe:
// check verified the range fits and is 8-byte aligned.
func addrsAt(mem []byte, off uint64, size uint32) []uint64 {
	return unsafe.Slice((*uint64)(unsafe.Pointer(&mem[off])), size)
}

// descsAt views the entries of an RX or TX ring as []Desc, whose
// layout is struct xdp_desc's. Safe for the same reasons as addrsAt.
func descsAt(mem []byte, off uint64, size uint32) []Desc {
	return unsafe.Slice((*Desc)(unsafe.Pointer(&mem[off])), size)
}

// aligned8 reports whether mem starts on an 8-byte boundary.
func aligned8(mem []byte) bool {
	return len(mem) > 0 && uintptr(unsafe.Pointer(&mem[0]))%8 == 0
}
