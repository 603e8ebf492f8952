//go:build linux

package xsk

import (
	"runtime"
	"sync/atomic"
	"time"
)

// poolMutex is the pool's lock: a compare-and-swap to take it, and a
// store to give it back that is not a fence where the CPU orders stores
// itself (unlockStore). A pool is locked twice per batch, right after
// stores to ring lines the kernel's CPU owns (the RX consumer index,
// the fill ring's entries); sync.Mutex's Unlock is a locked add, which
// waits for those stores to land, and the next lock waits again. With a
// plain store the batch pays one fence per critical section, at a point
// where the previous section's stores have had the stage's work to land.
//
// Waiters spin briefly, then yield, then sleep: the pool's critical
// sections are a batch of ring work (a transmit kick at most), so a
// waiter rarely gets past the yields.
type poolMutex struct {
	state atomic.Uint32 // 1 while held
}

func (m *poolMutex) Lock() {
	if !m.state.CompareAndSwap(0, 1) {
		m.lockSlow()
	}
}

func (m *poolMutex) lockSlow() {
	for i := 0; ; i++ {
		if m.state.Load() == 0 && m.state.CompareAndSwap(0, 1) {
			return
		}
		switch {
		case i < 64:
		case i < 1024:
			runtime.Gosched()
		default:
			time.Sleep(20 * time.Microsecond)
		}
	}
}

func (m *poolMutex) Unlock() { unlockStore(&m.state) }
