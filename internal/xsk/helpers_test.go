//go:build linux

package xsk

import (
	"errors"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/ring"
)

// testOff lays a ring out as memory sockets do: each index word on its
// own cache line, the entries after them.
var testOff = MemOffsets

// alignedBytes returns n zeroed bytes of Go memory, aligned for rings.
func alignedBytes(n int) []byte { return AlignedBytes(n) }

// newTestUMEM builds a UMEM of geometry c over Go memory, as New does but
// without mapping or registering anything: no kernel, no privileges. Its
// area is borrowed, so Close and Unlock never unmap it.
func newTestUMEM(tb testing.TB, c Config) *UMEM {
	tb.Helper()
	if c.FrameCount == 0 || c.FrameSize == 0 {
		tb.Fatalf("newTestUMEM(%+v): need frames", c)
	}
	u := newUMEM(c)
	u.area = alignedBytes(int(u.size))
	u.borrowed = true
	u.start = uintptr(unsafe.Pointer(&u.area[0]))
	u.initFrames()
	return u
}

// testPair is a ring pair over Go memory plus the kernel's ends of its
// rings: a Completion view over the fill ring's memory consumes what the
// pool puts there, a Fill view over the completion ring's memory produces
// what the pool reaps.
type testPair struct {
	*Pair
	kFill *ring.Completion // the kernel's end of the fill ring
	kComp *ring.Fill       // the kernel's end of the completion ring
}

// addTestPair makes a ring pair for pool p and enters it in p's table, as
// Join does for a new queue (one socket using it).
func addTestPair(tb testing.TB, p *Pool, fillSize, compSize uint32) *testPair {
	tb.Helper()
	fm := alignedBytes(int(testOff.Desc) + int(fillSize)*8)
	cm := alignedBytes(int(testOff.Desc) + int(compSize)*8)
	tp := &testPair{Pair: &Pair{pool: p, refs: 1}}
	var errs [4]error
	tp.Fill, errs[0] = ring.NewFill(fm, testOff, fillSize)
	tp.kFill, errs[1] = ring.NewCompletion(fm, testOff, fillSize)
	tp.Comp, errs[2] = ring.NewCompletion(cm, testOff, compSize)
	tp.kComp, errs[3] = ring.NewFill(cm, testOff, compSize)
	if err := errors.Join(errs[:]...); err != nil {
		tb.Fatalf("rings of %d and %d entries: %v", fillSize, compSize, err)
	}
	if err := p.addPair(tp.Pair); err != nil {
		tb.Fatalf("addPair: %v", err)
	}
	p.u.mu.Lock()
	p.u.members++
	p.u.mu.Unlock()
	return tp
}

// take is the kernel taking up to n addresses off the fill ring.
func (tp *testPair) take(n uint32) []uint64 {
	idx, got := tp.kFill.Peek(n)
	out := make([]uint64, got)
	for i := range out {
		out[i] = tp.kFill.Addr(idx + uint32(i))
	}
	tp.kFill.Release(got)
	return out
}

// onFill returns the addresses on the fill ring the kernel has not taken,
// without taking them.
func (tp *testPair) onFill() []uint64 {
	idx, got := tp.kFill.Peek(tp.Fill.Size())
	out := make([]uint64, got)
	for i := range out {
		out[i] = tp.kFill.Addr(idx + uint32(i))
	}
	tp.kFill.Unpeek(got)
	return out
}

// complete is the kernel putting addrs on the completion ring; it returns
// how many fitted.
func (tp *testPair) complete(addrs ...uint64) int {
	idx, got := tp.kComp.Reserve(uint32(len(addrs)))
	for i := range got {
		tp.kComp.Set(idx+i, addrs[i])
	}
	tp.kComp.Submit(got)
	return int(got)
}

// drop is Member.Leave for the pair's last socket: the pair's frames
// return to the pool, its slot is freed, and a closed UMEM may unmap.
func (tp *testPair) drop() {
	u, p := tp.pool.u, tp.pool
	u.mu.Lock()
	u.members--
	p.mu.Lock()
	p.reclaimPairLocked(tp.local)
	p.pairs[tp.local] = nil
	p.mu.Unlock()
	u.mu.Unlock()
	_ = u.tryUnmap()
}

// Locked-method wrappers, taking the pool's lock as afxdp does.

func (p *Pool) refill(pr *testPair, n uint32) uint32 {
	p.Lock()
	defer p.Unlock()
	return p.RefillLocked(pr.Pair, n)
}

func (p *Pool) received(descs []unix.XDPDesc) int {
	p.Lock()
	defer p.Unlock()
	return p.ReceivedLocked(nil, descs)
}

func (p *Pool) receive(a, b, dst []unix.XDPDesc) (int, uint64) {
	p.Lock()
	defer p.Unlock()
	return p.ReceiveLocked(nil, a, b, dst)
}

func (p *Pool) discard(pr *testPair, a, b []unix.XDPDesc) (int, uint64) {
	p.Lock()
	defer p.Unlock()
	return p.DiscardLocked(pr.Pair, a, b, make([]unix.XDPDesc, len(a)+len(b)))
}

func (p *Pool) release(descs ...unix.XDPDesc) int {
	p.Lock()
	defer p.Unlock()
	return p.ReleaseLocked(descs)
}

func (p *Pool) recycle(pr *testPair, descs ...unix.XDPDesc) int {
	p.Lock()
	defer p.Unlock()
	return p.RecycleLocked(pr.Pair, descs)
}

func (p *Pool) reap(pr *testPair, n uint32) uint32 {
	p.Lock()
	defer p.Unlock()
	return p.ReapLocked(pr.Pair, n)
}

// send stages descs on pr and commits them all, failing the test if any
// is refused.
func (p *Pool) send(tb testing.TB, pr *testPair, descs ...unix.XDPDesc) {
	tb.Helper()
	p.Lock()
	defer p.Unlock()
	if k, _, r := p.StageTXLocked(pr.Pair, descs, 0); k != len(descs) {
		tb.Fatalf("StageTXLocked(%+v) = %d, %v; want all", descs, k, r)
	}
	p.CommitTXLocked(pr.Pair, len(descs))
}

// allocN allocates n frames, failing the test if it cannot.
func (p *Pool) allocN(tb testing.TB, n int) []uint64 {
	tb.Helper()
	a := make([]uint64, n)
	if got := p.AllocInto(a); got != n {
		tb.Fatalf("AllocInto(%d) = %d (counts %+v)", n, got, p.Counts())
	}
	return a
}

// state returns the recorded state of the frame at addr, white-box.
func (u *UMEM) state(addr uint64) State {
	i, ok := u.index(addr)
	if !ok {
		panic("state of an address outside the UMEM")
	}
	return u.meta[i].state
}

// checkIgnoringViolations is Check with recorded ownership errors hidden,
// so the structural checks still run after a deliberate misuse.
func (u *UMEM) checkIgnoringViolations() error {
	pools := u.Pools()
	saved := make([]error, len(pools))
	for i, p := range pools {
		p.mu.Lock()
		saved[i], p.violation = p.violation, nil
		p.mu.Unlock()
	}
	err := u.Check()
	for i, p := range pools {
		p.mu.Lock()
		p.violation = saved[i]
		p.mu.Unlock()
	}
	return err
}

func desc(addr uint64, n uint32) unix.XDPDesc { return unix.XDPDesc{Addr: addr, Len: n} }

// descBytes is the sum of the descriptors' lengths.
func descBytes(descs []ring.Desc) uint64 {
	var n uint64
	for _, d := range descs {
		n += uint64(d.Len)
	}
	return n
}
