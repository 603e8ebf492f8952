//go:build linux

package umem

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/ring"
)

// Pool is a set of a UMEM's frames with its own free list and counters.
// Every UMEM has a main pool holding all frames at first (its methods are
// promoted to UMEM: u.Alloc() is u.Pool.Alloc()); NewPool moves frames
// into further pools, so that sockets driven by different goroutines can
// share one UMEM without sharing a free list or taking a lock. A pool is
// used by one goroutine at a time.
//
// Frames may move between pools only when one goroutine drives both
// (forwarding between sockets on different pools): the per-pool counts
// then drift apart, while their sums and the checked-mode states stay
// right.
type Pool struct {
	u     *UMEM
	total int      // frames given to this pool
	free  []uint64 // free frame start addresses, used as a stack
	inFill,
	inApp,
	inTX int

	violation error // checked mode: the first ownership error seen
	nViol     int
}

// UMEM returns the UMEM the pool's frames belong to.
func (p *Pool) UMEM() *UMEM { return p.u }

// Counts returns how many frames are in each place.
func (p *Pool) Counts() Counts {
	return Counts{Total: p.total, Free: len(p.free), Fill: p.inFill, App: p.inApp, TX: p.inTX}
}

// FreeFrames returns how many frames are on the free list.
func (p *Pool) FreeFrames() int { return len(p.free) }

// Alloc takes a free frame for the application (Free → App) and returns
// its start address; ok is false when no frame is free.
func (p *Pool) Alloc() (addr uint64, ok bool) {
	n := len(p.free)
	if n == 0 {
		return 0, false
	}
	addr = p.free[n-1]
	p.free = p.free[:n-1]
	p.inApp++
	if p.u.owner != nil {
		p.move(addr, StateFree, StateApp)
	}
	return addr, true
}

// Free gives a frame the application holds back to the free list
// (App → Free). In checked mode a frame not held by the application is
// refused with an error wrapping ErrFrameState; unchecked, the caller must
// not free a frame twice.
func (p *Pool) Free(addr uint64) error {
	addr &= p.u.base
	if p.u.owner != nil && !p.move(addr, StateApp, StateFree) {
		return p.violation
	}
	p.free = append(p.free, addr) // never grows: capacity is FrameCount
	p.inApp--
	return nil
}

// Refill moves up to max free frames into fill ring f (Free → Fill) and
// returns how many it moved.
func (p *Pool) Refill(f *ring.Fill, max uint32) uint32 {
	n := min(max, uint32(len(p.free)))
	if n == 0 {
		return 0
	}
	idx, got := f.Reserve(n)
	if got == 0 {
		return 0
	}
	top := len(p.free)
	for i := uint32(0); i < got; i++ {
		addr := p.free[top-1-int(i)]
		if p.u.owner != nil {
			p.move(addr, StateFree, StateFill)
		}
		f.Set(idx+i, addr)
	}
	p.free = p.free[:top-int(got)]
	p.inFill += int(got)
	f.Submit(got)
	return got
}

// Reap moves up to max completed frames from completion ring c back to the
// free list (TX → Free) and returns how many.
func (p *Pool) Reap(c *ring.Completion, max uint32) uint32 {
	idx, got := c.Peek(max)
	if got == 0 {
		return 0
	}
	for i := uint32(0); i < got; i++ {
		addr := c.Addr(idx+i) & p.u.base
		if p.u.owner != nil && !p.move(addr, StateTX, StateFree) {
			continue // recorded; never put a frame on the free list twice
		}
		p.free = append(p.free, addr)
		p.inTX--
	}
	c.Release(got)
	return got
}

// MarkReceived records that the frames of descs came out of an RX ring and
// are now the application's (Fill → App).
func (p *Pool) MarkReceived(descs []unix.XDPDesc) {
	if p.u.owner != nil {
		for i := range descs {
			p.move(descs[i].Addr&p.u.base, StateFill, StateApp)
		}
	}
	p.inFill -= len(descs)
	p.inApp += len(descs)
}

// MarkTransmit records that the frames of descs were put on a TX ring
// (App → TX).
func (p *Pool) MarkTransmit(descs []unix.XDPDesc) {
	if p.u.owner != nil {
		for i := range descs {
			p.move(descs[i].Addr&p.u.base, StateApp, StateTX)
		}
	}
	p.inApp -= len(descs)
	p.inTX += len(descs)
}

// ReleaseDescs frees the frames of descs, which the application holds
// (App → Free). In checked mode it returns the first ownership error.
func (p *Pool) ReleaseDescs(descs []unix.XDPDesc) error {
	if p.u.owner == nil {
		// Unchecked: one loop and one count update for the batch. The free
		// list never grows past its capacity, the pool's frame count.
		for i := range descs {
			p.free = append(p.free, descs[i].Addr&p.u.base)
		}
		p.inApp -= len(descs)
		return nil
	}
	var first error
	for i := range descs {
		if err := p.Free(descs[i].Addr); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// move changes frame addr from state from to state to, in checked mode. On
// a mismatch it records the violation, leaves the state alone and returns
// false.
func (p *Pool) move(addr uint64, from, to State) bool {
	i := addr >> p.u.shift
	if i >= uint64(len(p.u.owner)) {
		p.violate(fmt.Errorf("umem: frame address %#x is outside the UMEM: %w", addr, ErrFrameState))
		return false
	}
	if p.u.owner[i] != from {
		p.violate(fmt.Errorf("umem: frame %d (%#x) moved %s→%s but it is %s: %w", i, addr, from, to, p.u.owner[i], ErrFrameState))
		return false
	}
	p.u.owner[i] = to
	return true
}

func (p *Pool) violate(err error) {
	p.nViol++
	if p.violation == nil {
		p.violation = err
	}
}

// Check verifies this pool's counts add up and, in checked mode, that no
// ownership error was seen in it. UMEM.Check checks all pools together.
func (p *Pool) Check() error {
	c := p.Counts()
	if c.Free+c.Fill+c.App+c.TX != c.Total {
		return fmt.Errorf("umem: pool counts do not add up: %+v: %w", c, ErrFrameState)
	}
	if p.violation != nil {
		return fmt.Errorf("%w (%d violations in all)", p.violation, p.nViol)
	}
	return nil
}

// StateOf returns where the frame addr points into is, in checked mode;
// ok is false otherwise.
func (p *Pool) StateOf(addr uint64) (s State, ok bool) {
	if p.u.owner == nil || addr>>p.u.shift >= uint64(len(p.u.owner)) {
		return 0, false
	}
	return p.u.owner[addr>>p.u.shift], true
}
