//go:build linux && !((amd64 || 386) && !race)

package xsk

import "sync/atomic"

// unlockStore gives back a poolMutex: atomic.Store (STLR, a release
// store, on arm64), and under the race detector, which must see it.
func unlockStore(x *atomic.Uint32) { x.Store(0) }
