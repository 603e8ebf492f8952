//go:build linux && (amd64 || 386) && !race

package xsk

import (
	"sync/atomic"
	"unsafe"
)

// unlockStore gives back a poolMutex with a plain store: on x86 (TSO) a
// store is ordered after every load and store before it, and the Go
// compiler keeps memory operations in program order around it, so the
// critical section's effects are seen before the lock is (as
// ring.storeRelease publishes ring indices).
// Safe: x is a poolMutex's state word, 4-byte aligned.
func unlockStore(x *atomic.Uint32) { *(*uint32)(unsafe.Pointer(x)) = 0 }
