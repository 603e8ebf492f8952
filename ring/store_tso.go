//go:build (amd64 || 386) && !race

package ring

import (
	"sync/atomic"
	"unsafe"
)

// storeRelease publishes v at x with release ordering: the ring entries
// written (or read) before it are seen by the kernel before v. On x86
// every store has release ordering in hardware (TSO) and the Go compiler
// keeps stores, and loads ahead of a store, in program order, so a plain
// MOV does it, as libbpf's smp_store_release does; atomic.Store would
// add an XCHG, a full fence that waits for every store in flight (the
// ring entries' cache lines, owned by the kernel's CPU) on each batch.
// Safe: x points into a ring mapping that check validated, 4-byte aligned.
func storeRelease(x *atomic.Uint32, v uint32) {
	*(*uint32)(unsafe.Pointer(x)) = v
}
