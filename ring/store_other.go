//go:build !((amd64 || 386) && !race)

package ring

import "sync/atomic"

// storeRelease publishes v at x with release ordering: atomic.Store
// (STLR on arm64); under the race detector too, which must see it.
func storeRelease(x *atomic.Uint32, v uint32) { x.Store(v) }
