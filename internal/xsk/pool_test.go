//go:build linux

package xsk

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// cfg16 is the geometry most tests use: 16 aligned 2048-byte frames.
var cfg16 = Config{FrameCount: 16, FrameSize: 2048, FillRingSize: 4, CompletionRingSize: 4}

// wantCounts fails the test if p's counts are not want.
func wantCounts(tb testing.TB, what string, p *Pool, want Counts) {
	tb.Helper()
	if got := p.Counts(); got != want {
		tb.Fatalf("%s: counts %+v, want %+v", what, got, want)
	}
}

// wantViolation fails the test unless Check reports an ownership error
// and nothing but recorded ones: the structure is intact.
func wantViolation(tb testing.TB, u *UMEM) {
	tb.Helper()
	if err := u.Check(); !errors.Is(err, ErrFrameState) {
		tb.Errorf("Check after a misuse = %v, want ErrFrameState", err)
	}
	if err := u.checkIgnoringViolations(); err != nil {
		tb.Errorf("Check, recorded misuses aside: %v", err)
	}
}

func wantClean(tb testing.TB, u *UMEM) {
	tb.Helper()
	if err := u.Check(); err != nil {
		tb.Errorf("Check: %v", err)
	}
}

func TestStateString(t *testing.T) {
	t.Parallel()
	for s, want := range map[State]string{StateFree: "free", StateFill: "fill", StateApp: "app", StateTX: "tx", 9: "State(9)"} {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", s, got, want)
		}
	}
}

func TestNewTestUMEM(t *testing.T) {
	t.Parallel()
	u := newTestUMEM(t, cfg16)
	p := u.Main()
	wantCounts(t, "fresh", p, Counts{Total: 16, Free: 16})
	if c := u.Counts(); c != (Counts{Total: 16, Free: 16}) {
		t.Errorf("UMEM counts %+v", c)
	}
	wantClean(t, u)
	for i := range uint64(16) {
		a, ok := p.Alloc()
		if !ok || a != i*2048 {
			t.Fatalf("Alloc #%d = %#x, %v; want %#x, true (ascending addresses)", i, a, ok, i*2048)
		}
	}
	if a, ok := p.Alloc(); ok {
		t.Fatalf("Alloc from an empty pool = %#x, true", a)
	}
	wantCounts(t, "all held", p, Counts{Total: 16, App: 16})
	wantClean(t, u)
}

func TestAllocInto(t *testing.T) {
	t.Parallel()
	u := newTestUMEM(t, cfg16)
	p := u.Main()
	a := make([]uint64, 10)
	if n := p.AllocInto(a); n != 10 {
		t.Fatalf("AllocInto(10 of 16) = %d", n)
	}
	b := make([]uint64, 10)
	if n := p.AllocInto(b); n != 6 {
		t.Fatalf("AllocInto(10 of 6) = %d", n)
	}
	seen := map[uint64]bool{}
	for _, x := range append(a, b[:6]...) {
		if seen[x] || x%2048 != 0 || x >= 16*2048 {
			t.Fatalf("AllocInto handed out %#x: twice, or not a frame start", x)
		}
		seen[x] = true
	}
	if n := p.AllocInto(b); n != 0 {
		t.Fatalf("AllocInto from an empty pool = %d", n)
	}
	wantCounts(t, "all held", p, Counts{Total: 16, App: 16})
	if err := p.Free(a[0]); err != nil {
		t.Fatal(err)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if n := p.AllocInto(b); n != 0 {
		t.Errorf("AllocInto after Close = %d", n)
	}
	if _, ok := p.Alloc(); ok {
		t.Error("Alloc after Close succeeded")
	}
	if p.TakeFrame(a[0]) {
		t.Error("TakeFrame after Close succeeded")
	}
	wantClean(t, u)
}

func TestTakeFrame(t *testing.T) {
	t.Parallel()
	u := newTestUMEM(t, cfg16)
	p := u.Main()
	other, err := u.NewPool(2)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := other.Alloc()
	if !p.TakeFrame(5*2048 + 100) {
		t.Fatal("TakeFrame of free frame 5, by an address inside it, failed")
	}
	if got := u.state(5 * 2048); got != StateApp {
		t.Fatalf("frame 5 is %s after TakeFrame", got)
	}
	for _, tc := range []struct {
		name string
		addr uint64
	}{
		{"held already", 5 * 2048},
		{"another pool's", o},
		{"another pool's free frame", other.free[0]},
		{"outside the UMEM", 16 * 2048},
	} {
		if p.TakeFrame(tc.addr) {
			t.Errorf("TakeFrame(%#x), %s: succeeded", tc.addr, tc.name)
		}
	}
	wantCounts(t, "after TakeFrame", p, Counts{Total: 14, Free: 13, App: 1})
	for range 13 {
		a, ok := p.Alloc()
		if !ok || a == 5*2048 {
			t.Fatalf("Alloc = %#x, %v: the taken frame is still on the free list, or a frame went missing", a, ok)
		}
	}
	wantClean(t, u)
}

func TestRefillStopsWhenRingFull(t *testing.T) {
	t.Parallel()
	u := newTestUMEM(t, cfg16)
	p := u.Main()
	pr := addTestPair(t, p, 4, 4)
	for i, step := range []struct {
		take      uint32 // the kernel takes this many first
		max, want uint32
		counts    Counts
	}{
		{0, 100, 4, Counts{Total: 16, Free: 12, Fill: 4}},
		{0, 100, 0, Counts{Total: 16, Free: 12, Fill: 4}}, // full
		{3, 2, 2, Counts{Total: 16, Free: 10, Fill: 6}},   // max limits
		{0, 100, 1, Counts{Total: 16, Free: 9, Fill: 7}},  // room limits
		{0, 0, 0, Counts{Total: 16, Free: 9, Fill: 7}},
		{4, 100, 4, Counts{Total: 16, Free: 5, Fill: 11}},
		{4, 100, 4, Counts{Total: 16, Free: 1, Fill: 15}},
		{4, 100, 1, Counts{Total: 16, Fill: 16}}, // free frames limit
		{1, 100, 0, Counts{Total: 16, Fill: 16}},
	} {
		if got := len(pr.take(step.take)); got != int(step.take) {
			t.Fatalf("step %d: kernel took %d, want %d", i, got, step.take)
		}
		if got := p.refill(pr, step.max); got != step.want {
			t.Fatalf("step %d: RefillLocked(%d) = %d, want %d", i, step.max, got, step.want)
		}
		wantCounts(t, "after refill", p, step.counts)
		for _, a := range pr.onFill() {
			if s := u.state(a); s != StateFill || a%2048 != 0 {
				t.Fatalf("step %d: fill ring holds %#x in state %s", i, a, s)
			}
		}
	}
	wantClean(t, u)
}

// rxFixture is a UMEM whose kernel holds 4 frames of the main pool, ready
// to deliver, with frames of every other kind around.
type rxFixture struct {
	u              *UMEM
	p, other       *Pool
	pr             *testPair
	kernel         []uint64 // taken off the fill ring
	held, tx, free uint64   // main pool frames in those states
	otherFill      uint64   // on the other pool's fill ring
}

func newRXFixture(t *testing.T) *rxFixture {
	t.Helper()
	f := &rxFixture{u: newTestUMEM(t, cfg16)}
	f.p = f.u.Main()
	var err error
	if f.other, err = f.u.NewPool(4); err != nil {
		t.Fatal(err)
	}
	f.pr = addTestPair(t, f.p, 4, 4)
	f.p.refill(f.pr, 4)
	f.kernel = f.pr.take(4)
	h := f.p.allocN(t, 2)
	f.held, f.tx = h[0], h[1]
	f.p.send(t, f.pr, desc(f.tx, 60))
	f.free = f.p.free[0] // the last to be allocated
	opr := addTestPair(t, f.other, 4, 4)
	f.other.refill(opr, 1)
	f.otherFill = opr.onFill()[0]
	return f
}

func TestReceivedLocked(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		bogus func(f *rxFixture) uint64 // a descriptor address the kernel never produces
	}{
		{"outside the UMEM", func(f *rxFixture) uint64 { return 16*2048 + 256 }},
		{"far outside", func(f *rxFixture) uint64 { return ^uint64(0) }},
		{"free frame", func(f *rxFixture) uint64 { return f.free + 256 }},
		{"held by the application", func(f *rxFixture) uint64 { return f.held + 256 }},
		{"in transmission", func(f *rxFixture) uint64 { return f.tx + 256 }},
		{"another pool's fill frame", func(f *rxFixture) uint64 { return f.otherFill + 256 }},
		{"delivered twice in one batch", func(f *rxFixture) uint64 { return f.kernel[0] + 512 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newRXFixture(t)
			bogus := tc.bogus(f)
			var before State
			if _, ok := f.u.index(bogus); ok {
				before = f.u.state(bogus)
			}
			descs := []unix.XDPDesc{desc(f.kernel[0]+256, 60), desc(bogus, 61), desc(f.kernel[1]+256, 62)}
			if got := f.p.received(descs); got != 2 {
				t.Fatalf("ReceivedLocked = %d, want 2", got)
			}
			if descs[0] != desc(f.kernel[0]+256, 60) || descs[1] != desc(f.kernel[1]+256, 62) {
				t.Fatalf("descriptors kept %+v, want the valid two in order", descs[:2])
			}
			if _, ok := f.u.index(bogus); ok && f.u.state(bogus) != before && f.u.FrameStart(bogus) != f.kernel[0] {
				t.Errorf("bogus descriptor's frame went from %s to %s", before, f.u.state(bogus))
			}
			for _, a := range f.kernel[:2] {
				if s := f.u.state(a); s != StateApp {
					t.Errorf("received frame %#x is %s, want app", a, s)
				}
			}
			wantCounts(t, "after receive", f.p, Counts{Total: 12, Free: 6, Fill: 2, App: 3, TX: 1})
			if n := f.p.Violations(); n != 1 {
				t.Errorf("%d violations recorded, want 1", n)
			}
			wantViolation(t, f.u)
		})
	}
	t.Run("clean", func(t *testing.T) {
		t.Parallel()
		f := newRXFixture(t)
		descs := make([]unix.XDPDesc, 4)
		for i, a := range f.kernel {
			descs[i] = desc(a+256, 60)
		}
		if got := f.p.received(descs); got != 4 {
			t.Fatalf("ReceivedLocked = %d, want 4", got)
		}
		wantCounts(t, "after receive", f.p, Counts{Total: 12, Free: 6, App: 5, TX: 1})
		wantClean(t, f.u)
	})
}

func TestReclaimLocked(t *testing.T) {
	t.Parallel()
	f := newRXFixture(t)
	f.p.Lock()
	f.p.ReclaimLocked([]unix.XDPDesc{desc(f.kernel[0]+256, 60), desc(f.held, 60), desc(f.kernel[0], 60), desc(1<<40, 1)})
	f.p.Unlock()
	wantCounts(t, "after reclaim", f.p, Counts{Total: 12, Free: 7, Fill: 3, App: 1, TX: 1})
	if s := f.u.state(f.kernel[0]); s != StateFree {
		t.Errorf("reclaimed frame is %s", s)
	}
	if s := f.u.state(f.held); s != StateApp {
		t.Errorf("held frame passed to ReclaimLocked is %s", s)
	}
	if n := f.p.Violations(); n != 3 {
		t.Errorf("%d violations, want 3 (a held frame, a frame twice, outside)", n)
	}
	wantViolation(t, f.u)
}

func TestFreeRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		addr func(f *rxFixture) uint64
	}{
		{"double free", func(f *rxFixture) uint64 {
			if err := f.p.Free(f.held); err != nil {
				panic(err)
			}
			return f.held
		}},
		{"never allocated", func(f *rxFixture) uint64 { return f.free }},
		{"another pool's held frame", func(f *rxFixture) uint64 { a, _ := f.other.Alloc(); return a }},
		{"another pool's fill frame", func(f *rxFixture) uint64 { return f.otherFill }},
		{"on the fill ring", func(f *rxFixture) uint64 { f.p.refill(f.pr, 1); return f.pr.onFill()[0] }},
		{"in the kernel", func(f *rxFixture) uint64 { return f.kernel[0] }},
		{"in transmission", func(f *rxFixture) uint64 { return f.tx }},
		{"outside the UMEM", func(f *rxFixture) uint64 { return 16 * 2048 }},
		{"far outside", func(f *rxFixture) uint64 { return 1 << 63 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, batch := range []bool{false, true} {
				f := newRXFixture(t)
				var h []uint64
				if batch {
					h = f.p.allocN(t, 2)
				}
				addr := tc.addr(f)
				before, otherBefore := f.p.Counts(), f.other.Counts()
				if !batch {
					if err := f.p.Free(addr); !errors.Is(err, ErrFrameState) {
						t.Fatalf("Free(%#x) = %v, want ErrFrameState", addr, err)
					}
					wantCounts(t, "after a refused Free", f.p, before)
				} else {
					if bad := f.p.release(desc(h[0], 1), desc(addr, 1), desc(h[1], 1)); bad != 1 {
						t.Fatalf("ReleaseLocked = %d bad, want 1", bad)
					}
					before.Free += 2
					before.App -= 2
					wantCounts(t, "after ReleaseLocked with one bad", f.p, before)
				}
				wantCounts(t, "the other pool", f.other, otherBefore)
				if n := f.p.Violations(); n != 1 {
					t.Errorf("%d violations, want 1", n)
				}
				wantViolation(t, f.u)
			}
		})
	}
}

// txFixture has four frames held in the main pool, a free one, one held
// in another pool and one on the fill ring.
type txFixture struct {
	u                     *UMEM
	p                     *Pool
	pr                    *testPair
	a                     []uint64
	free, other, fillAddr uint64
}

func TestStageTX(t *testing.T) {
	t.Parallel()
	const contd = unix.XDP_PKT_CONTD
	for _, tc := range []struct {
		name    string
		descs   func(f *txFixture) []unix.XDPDesc
		allowed uint32
		want    int
		reason  Reason
	}{
		{"valid", func(f *txFixture) []unix.XDPDesc { return []unix.XDPDesc{desc(f.a[0], 60), desc(f.a[1]+100, 1948)} }, 0, 2, OK},
		{"last byte of the frame", func(f *txFixture) []unix.XDPDesc { return []unix.XDPDesc{desc(f.a[0]+2047, 1)} }, 0, 1, OK},
		{"empty batch", func(f *txFixture) []unix.XDPDesc { return nil }, 0, 0, OK},
		{"zero length", func(f *txFixture) []unix.XDPDesc { return []unix.XDPDesc{desc(f.a[0], 60), desc(f.a[1], 0)} }, 0, 1, ZeroLength},
		{"outside the UMEM", func(f *txFixture) []unix.XDPDesc { return []unix.XDPDesc{desc(16*2048, 60)} }, 0, 0, OutsideUMEM},
		{"unaligned encoding in aligned mode", func(f *txFixture) []unix.XDPDesc { return []unix.XDPDesc{desc(f.a[0]|1<<48, 60)} }, 0, 0, OutsideUMEM},
		{"crosses the frame end", func(f *txFixture) []unix.XDPDesc { return []unix.XDPDesc{desc(f.a[0], 60), desc(f.a[1]+2000, 49)} }, 0, 1, CrossesFrame},
		{"longer than a frame", func(f *txFixture) []unix.XDPDesc { return []unix.XDPDesc{desc(f.a[0], 2049)} }, 0, 0, CrossesFrame},
		{"length wraps", func(f *txFixture) []unix.XDPDesc { return []unix.XDPDesc{desc(f.a[0]+10, ^uint32(0))} }, 0, 0, CrossesFrame},
		{"bad options", func(f *txFixture) []unix.XDPDesc {
			return []unix.XDPDesc{{Addr: f.a[0], Len: 60, Options: contd}}
		}, 0, 0, BadOptions},
		{"options beyond allowed", func(f *txFixture) []unix.XDPDesc {
			return []unix.XDPDesc{{Addr: f.a[0], Len: 60, Options: contd}, {Addr: f.a[1], Len: 60, Options: 1 << 1}}
		}, contd, 1, BadOptions},
		{"allowed options", func(f *txFixture) []unix.XDPDesc {
			return []unix.XDPDesc{{Addr: f.a[0], Len: 60, Options: contd}, desc(f.a[1], 60)}
		}, contd, 2, OK},
		{"a frame twice", func(f *txFixture) []unix.XDPDesc {
			return []unix.XDPDesc{desc(f.a[0], 60), desc(f.a[1], 60), desc(f.a[0]+100, 60)}
		}, 0, 2, NotHeld},
		{"free frame", func(f *txFixture) []unix.XDPDesc { return []unix.XDPDesc{desc(f.a[0], 60), desc(f.free, 60)} }, 0, 1, NotHeld},
		{"another pool's frame", func(f *txFixture) []unix.XDPDesc { return []unix.XDPDesc{desc(f.other, 60)} }, 0, 0, NotHeld},
		{"frame on the fill ring", func(f *txFixture) []unix.XDPDesc { return []unix.XDPDesc{desc(f.fillAddr, 60)} }, 0, 0, NotHeld},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for commit := range 3 { // commit none, half or all of the staged ones
				f := &txFixture{u: newTestUMEM(t, cfg16)}
				f.p = f.u.Main()
				f.pr = addTestPair(t, f.p, 4, 4)
				f.a = f.p.allocN(t, 4)
				f.p.refill(f.pr, 1)
				f.fillAddr = f.pr.onFill()[0]
				f.free = f.p.free[0]
				op, err := f.u.NewPool(2)
				if err != nil {
					t.Fatal(err)
				}
				f.other, _ = op.Alloc()
				descs := tc.descs(f)
				before := f.p.Counts()

				f.p.Lock()
				k, bytes, r := f.p.StageTXLocked(f.pr.Pair, descs, tc.allowed)
				if k != tc.want || r != tc.reason || bytes != descBytes(descs[:k]) {
					f.p.Unlock()
					t.Fatalf("StageTXLocked = %d, %d bytes, %d; want %d, %d bytes, %d", k, bytes, r, tc.want, descBytes(descs[:tc.want]), tc.reason)
				}
				for _, d := range descs[:k] {
					if s := f.u.state(d.Addr); s != StateTX {
						t.Errorf("staged frame %#x is %s", d.Addr, s)
					}
				}
				c := k * commit / 2
				f.p.CommitTXLocked(f.pr.Pair, c)
				f.p.UnstageTXLocked(descs[c:k])
				f.p.Unlock()

				for i, d := range descs[:k] {
					if want := map[bool]State{true: StateTX, false: StateApp}[i < c]; f.u.state(d.Addr) != want {
						t.Errorf("frame %#x, %d of %d staged, %d committed: %s, want %s", d.Addr, i, k, c, f.u.state(d.Addr), want)
					}
				}
				before.App -= c
				before.TX += c
				wantCounts(t, "after commit and unstage", f.p, before)
				if n := f.pr.TXFramesLocked(); n != c {
					t.Errorf("pair has %d frames in transmission, want %d", n, c)
				}
				if r == NotHeld {
					if n := f.p.Violations(); n != 1 {
						t.Errorf("%d violations, want 1", n)
					}
					wantViolation(t, f.u)
				} else {
					wantClean(t, f.u)
				}
			}
		})
	}
}

func TestReapLocked(t *testing.T) {
	t.Parallel()
	u := newTestUMEM(t, Config{FrameCount: 16, FrameSize: 2048})
	p := u.Main()
	pr := addTestPair(t, p, 4, 8)
	pr2 := addTestPair(t, p, 4, 8)
	a := p.allocN(t, 5)
	p.send(t, pr, desc(a[0], 60), desc(a[1]+100, 60), desc(a[2], 60))
	p.send(t, pr2, desc(a[4], 60))
	free := p.free[len(p.free)-1]
	wantCounts(t, "sent", p, Counts{Total: 16, Free: 11, App: 1, TX: 4})

	if got := p.reap(pr, 8); got != 0 {
		t.Fatalf("ReapLocked of an empty ring = %d", got)
	}
	if n := pr.complete(a[0], a[3], 16*2048, a[1]+100, a[0], free, a[4]); n != 7 {
		t.Fatalf("kernel completed %d, want 7", n)
	}
	if got := p.reap(pr, 4); got != 4 {
		t.Fatalf("ReapLocked(4) = %d, want 4", got)
	}
	// pr's fill ring is empty, so due a refill: a[0] and a[1], which it
	// sent, go onto it.
	wantCounts(t, "reaped a[0], a[1] and two bogus", p, Counts{Total: 16, Free: 11, Fill: 2, App: 1, TX: 2})
	if n, n2 := pr.TXFramesLocked(), pr2.TXFramesLocked(); n != 1 || n2 != 1 {
		t.Errorf("frames in transmission: %d and %d, want 1 and 1", n, n2)
	}
	if got := p.reap(pr, 8); got != 3 {
		t.Fatalf("ReapLocked(8) = %d, want the 3 left", got)
	}
	// a[4] went out through pr2 and came back through pr's ring: it is
	// pr2's count that drops, and it goes to the free list, not onto
	// pr's fill ring.
	wantCounts(t, "reaped the rest", p, Counts{Total: 16, Free: 12, Fill: 2, App: 1, TX: 1})
	if n, n2 := pr.TXFramesLocked(), pr2.TXFramesLocked(); n != 1 || n2 != 0 {
		t.Errorf("frames in transmission: %d and %d, want 1 and 0", n, n2)
	}
	for _, x := range []struct {
		addr uint64
		want State
	}{{a[0], StateFill}, {a[1], StateFill}, {a[2], StateTX}, {a[3], StateApp}, {a[4], StateFree}, {free, StateFree}} {
		if s := u.state(x.addr); s != x.want {
			t.Errorf("frame %#x is %s, want %s", x.addr, s, x.want)
		}
	}
	if n := p.Violations(); n != 4 {
		t.Errorf("%d violations, want 4 (held, outside, completed twice, free)", n)
	}
	wantViolation(t, u)
}

func TestReclaimPair(t *testing.T) {
	t.Parallel()
	u := newTestUMEM(t, Config{FrameCount: 16, FrameSize: 2048})
	p := u.Main()
	pr0 := addTestPair(t, p, 4, 4)
	pr1 := addTestPair(t, p, 4, 4)
	p.refill(pr0, 4)
	k := pr0.take(1)
	p.refill(pr1, 2)
	h := p.allocN(t, 4)
	p.send(t, pr0, desc(h[0], 60), desc(h[1], 60))
	p.send(t, pr1, desc(h[2], 60))
	kept := append(pr1.onFill(), h[2], h[3])
	wantCounts(t, "before", p, Counts{Total: 16, Free: 6, Fill: 6, App: 1, TX: 3})

	gone := append(append(pr0.onFill(), k...), h[0], h[1])
	keptStates := make([]State, len(kept))
	for i, a := range kept {
		keptStates[i] = u.state(a)
	}
	pr0.drop()
	wantCounts(t, "pair 0 dropped", p, Counts{Total: 16, Free: 12, Fill: 2, App: 1, TX: 1})
	for _, a := range gone {
		if s := u.state(a); s != StateFree {
			t.Errorf("frame %#x of the dropped pair is %s", a, s)
		}
	}
	for i, a := range kept {
		if s := u.state(a); s != keptStates[i] {
			t.Errorf("frame %#x of the other pair went from %s to %s", a, keptStates[i], s)
		}
	}
	if p.pairs[0] != nil {
		t.Error("dropped pair still in the table")
	}
	wantClean(t, u)
	if pr := addTestPair(t, p, 4, 4); pr.local != 0 {
		t.Errorf("new pair got index %d, want the free 0", pr.local)
	}
	pr1.complete(h[2])
	if got := p.reap(pr1, 4); got != 1 || pr1.TXFramesLocked() != 0 {
		t.Errorf("reap on the remaining pair = %d, %d in transmission", got, pr1.TXFramesLocked())
	}
	wantCounts(t, "after reap", p, Counts{Total: 16, Free: 12, Fill: 3, App: 1}) // h[2] onto pr1's fill ring, 2 of 4 full
	wantClean(t, u)
}

func TestNewPool(t *testing.T) {
	t.Parallel()
	u := newTestUMEM(t, cfg16)
	main := u.Main()
	main.allocN(t, 2)
	p, err := u.NewPool(4)
	if err != nil {
		t.Fatal(err)
	}
	wantCounts(t, "new pool", p, Counts{Total: 4, Free: 4})
	wantCounts(t, "main pool", main, Counts{Total: 12, Free: 10, App: 2})
	if c := u.Counts(); c != (Counts{Total: 16, Free: 14, App: 2}) {
		t.Errorf("UMEM counts %+v", c)
	}
	for _, a := range p.free {
		if i, _ := u.index(a); u.meta[i].pool != p.id || u.meta[i].state != StateFree {
			t.Errorf("frame %#x of the new pool: meta %+v", a, u.meta[i])
		}
	}
	wantClean(t, u)
	a, ok := p.Alloc()
	if !ok {
		t.Fatal("Alloc from the new pool failed")
	}
	if _, ok := main.StateOf(a); ok {
		t.Errorf("the main pool sees the new pool's frame %#x", a)
	}
	if s, ok := p.StateOf(a); !ok || s != StateApp {
		t.Errorf("StateOf(%#x) = %s, %v in its pool", a, s, ok)
	}
	if err := main.Free(a); !errors.Is(err, ErrFrameState) {
		t.Errorf("main.Free(another pool's frame) = %v", err)
	}
	wantCounts(t, "new pool, after a refused free through main", p, Counts{Total: 4, Free: 3, App: 1})
	if err := p.Free(a); err != nil {
		t.Errorf("Free through its own pool: %v", err)
	}
	wantViolation(t, u)

	for _, n := range []int{0, -1, 11} {
		if _, err := u.NewPool(n); !errors.Is(err, ErrTooSmall) {
			t.Errorf("NewPool(%d) with 10 free = %v, want ErrTooSmall", n, err)
		}
	}
	if _, err := u.NewPool(10); err != nil {
		t.Errorf("NewPool(all 10 free): %v", err)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := u.NewPool(1); !errors.Is(err, ErrClosed) {
		t.Errorf("NewPool after Close = %v, want ErrClosed", err)
	}
}

func TestNewPoolLimit(t *testing.T) {
	t.Parallel()
	u := newTestUMEM(t, Config{FrameCount: 300, FrameSize: 2048})
	for i := range 255 {
		if _, err := u.NewPool(1); err != nil {
			t.Fatalf("pool %d: %v", i+1, err)
		}
	}
	if _, err := u.NewPool(1); !errors.Is(err, ErrTooSmall) {
		t.Fatalf("pool 256 = %v, want ErrTooSmall", err)
	}
	ps := u.Pools()
	if len(ps) != 256 || ps[255].id != 255 {
		t.Fatalf("%d pools, last id %d", len(ps), ps[len(ps)-1].id)
	}
	if a, ok := ps[255].Alloc(); !ok || ps[255].Free(a) != nil {
		t.Error("the last pool does not work")
	}
	wantClean(t, u)
}

func TestCloseUnmapsLast(t *testing.T) {
	t.Parallel()
	u := newTestUMEM(t, cfg16)
	p := u.Main()
	pr := addTestPair(t, p, 4, 4)
	a, _ := p.Alloc()
	p.refill(pr, 4)
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if err := u.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if !u.Closed() || u.area == nil {
		t.Fatalf("closed %v, area unmapped %v: a socket and a held frame remain", u.Closed(), u.area == nil)
	}
	pr.drop()
	if u.area == nil {
		t.Fatal("unmapped while the application holds a frame")
	}
	if err := p.Free(a); err != nil {
		t.Fatal(err)
	}
	if u.area != nil || !u.unmapped {
		t.Fatal("not unmapped after the last frame came back")
	}
	wantCounts(t, "closed", p, Counts{Total: 16, Free: 16})
	wantClean(t, u)
}

func TestCheck(t *testing.T) {
	t.Parallel()
	type fixture struct {
		u             *UMEM
		main, other   *Pool
		held, sent    uint64
		freeA, freeB  uint64 // free in main, free in other
		fill          uint64
		mainFreeIndex int // index of freeA on main's free list
	}
	for _, tc := range []struct {
		name    string
		corrupt func(f *fixture)
		want    string // in the error; "" for none
		pool    bool   // Pool.Check catches it too
	}{
		{"clean", func(f *fixture) {}, "", false},
		{"frame of a pool that does not exist", func(f *fixture) { f.u.meta[3].pool = 9 }, "has pool 9", false},
		{"frame in an unknown state", func(f *fixture) { f.u.meta[3].state = 7 }, "state State(7)", false},
		{"counts do not add up", func(f *fixture) { f.main.app++ }, "do not add up", true},
		{"negative count", func(f *fixture) { f.main.app += f.main.fill + 1; f.main.fill = -1 }, "do not add up", true},
		{"counts disagree with states", func(f *fixture) { f.main.app--; f.main.tx++ }, "disagree", false},
		{"a state changed behind the counts", func(f *fixture) { i, _ := f.u.index(f.held); f.u.meta[i].state = StateFill }, "disagree", false},
		{"a frame moved pools behind the counts", func(f *fixture) { i, _ := f.u.index(f.held); f.u.meta[i].pool = f.other.id }, "disagree", false},
		{"pools do not hold every frame", func(f *fixture) { f.u.cfg.FrameCount++ }, "pools hold 16 frames of 17", false},
		{"frame on a free list twice", func(f *fixture) { f.main.free[0] = f.main.free[1] }, "free list twice", false},
		{"free list entry not a frame start", func(f *fixture) { f.main.free[0]++ }, "free list twice", false},
		{"free list entry outside the UMEM", func(f *fixture) { f.main.free[0] = f.u.size }, "free list twice", false},
		{"frame on another pool's free list", func(f *fixture) {
			f.main.free[f.mainFreeIndex], f.other.free[len(f.other.free)-1] = f.freeB, f.freeA
		}, "another pool's list", false},
		{"held frame on the free list", func(f *fixture) { f.main.free[f.mainFreeIndex] = f.held }, "not free", false},
		{"frame in transmission on the free list", func(f *fixture) { f.main.free[f.mainFreeIndex] = f.sent }, "not free", false},
		{"frame on the fill ring on the free list", func(f *fixture) { f.main.free[f.mainFreeIndex] = f.fill }, "not free", false},
		{"ownership error recorded", func(f *fixture) { _ = f.main.Free(f.freeA) }, "should be app but is free", true},
		{"ownership error, outside", func(f *fixture) { _ = f.main.Free(1 << 40) }, "outside the UMEM", true},
		{"ownership error, another pool's", func(f *fixture) { _ = f.main.Free(f.freeB) }, "belongs to pool 1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &fixture{u: newTestUMEM(t, cfg16)}
			f.main = f.u.Main()
			var err error
			if f.other, err = f.u.NewPool(4); err != nil {
				t.Fatal(err)
			}
			pr := addTestPair(t, f.main, 4, 4)
			h := f.main.allocN(t, 2)
			f.held, f.sent = h[0], h[1]
			f.main.send(t, pr, desc(f.sent, 60))
			f.main.refill(pr, 2)
			f.fill = pr.onFill()[0]
			f.mainFreeIndex = len(f.main.free) - 1
			f.freeA, f.freeB = f.main.free[f.mainFreeIndex], f.other.free[len(f.other.free)-1]
			wantClean(t, f.u)

			tc.corrupt(f)
			err = f.u.Check()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Check: %v", err)
			case tc.want != "" && (!errors.Is(err, ErrFrameState) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Check = %v, want ErrFrameState saying %q", err, tc.want)
			}
			if perr := f.main.Check(); tc.pool != (perr != nil) || perr != nil && !errors.Is(perr, ErrFrameState) {
				t.Errorf("Pool.Check = %v, want an ErrFrameState: %v", perr, tc.pool)
			}
		})
	}
}

// TestRecycleLocked: received frames go straight back onto the fill ring
// while it has room, the rest to the free list; frames not held are
// refused and recorded, the counts stay whole.
func TestRecycleLocked(t *testing.T) {
	t.Parallel()
	u := newTestUMEM(t, cfg16)
	p := u.Main()
	tp := addTestPair(t, p, 4, 4)
	if got := p.refill(tp, 4); got != 4 {
		t.Fatalf("refill: %d", got)
	}
	// The kernel takes the 4 frames and delivers them.
	taken := tp.take(4)
	descs := make([]unix.XDPDesc, len(taken))
	for i, a := range taken {
		descs[i] = desc(a+256, 60)
	}
	if n := p.received(descs); n != 4 {
		t.Fatalf("received %d", n)
	}
	// Two more held frames, allocated: six to recycle, room for four.
	a1, _ := p.Alloc()
	a2, _ := p.Alloc()
	all := append(descs, desc(a1, 60), desc(a2, 60))
	wantCounts(t, "before", p, Counts{Total: 16, Free: 10, App: 6})
	p.Lock()
	bad := p.RecycleLocked(tp.Pair, all)
	p.Unlock()
	if bad != 0 {
		t.Fatalf("RecycleLocked refused %d", bad)
	}
	wantCounts(t, "after", p, Counts{Total: 16, Free: 12, Fill: 4})
	onFill := tp.onFill()
	if len(onFill) != 4 {
		t.Fatalf("fill ring holds %v, want 4 frames", onFill)
	}
	for i, a := range onFill {
		if a != taken[i] || u.state(a) != StateFill {
			t.Errorf("fill entry %d: %#x (%s), want %#x, a frame start, fill", i, a, u.state(a), taken[i])
		}
	}
	for _, a := range []uint64{a1, a2} {
		if u.state(a) != StateFree {
			t.Errorf("frame %#x past the ring's room is %s, want free", a, u.state(a))
		}
	}
	wantClean(t, u)
	// Twice: the frames are not held any more.
	p.Lock()
	bad = p.RecycleLocked(tp.Pair, all[:2])
	p.Unlock()
	if bad != 2 {
		t.Errorf("recycling frames not held: %d refused, want 2", bad)
	}
	wantCounts(t, "after the misuse", p, Counts{Total: 16, Free: 12, Fill: 4})
	wantViolation(t, u)
}

// Reaped frames go straight onto the fill ring of the pair that sent
// them while it is due a refill (RefillDueLocked), as many as it lacks;
// otherwise, and for frames another pair sent, to the free list.
func TestReapToFill(t *testing.T) {
	t.Parallel()
	u := newTestUMEM(t, Config{FrameCount: 32, FrameSize: 2048})
	p := u.Main()
	pr := addTestPair(t, p, 8, 16)
	other := addTestPair(t, p, 8, 16)
	sendAndReap := func(via *testPair, n int) []uint64 {
		t.Helper()
		a := p.allocN(t, n)
		for _, x := range a {
			p.send(t, via, desc(x+256, 60))
			pr.complete(x + 256)
		}
		if got := p.reap(pr, 16); got != uint32(n) {
			t.Fatalf("reaped %d of %d", got, n)
		}
		return a
	}
	// An empty ring: all four go onto it.
	a := sendAndReap(pr, 4)
	if on := pr.onFill(); !slices.Equal(on, a) {
		t.Errorf("fill ring holds %#x, want the reaped frames %#x", on, a)
	}
	wantCounts(t, "4 onto an empty ring", p, Counts{Total: 32, Free: 28, Fill: 4})
	// 4 of 8 on it: due; it lacks 4, so 4 of 6 go onto it.
	sendAndReap(pr, 6)
	wantCounts(t, "4 of 6 onto a half-full ring", p, Counts{Total: 32, Free: 24, Fill: 8})
	// Full: not due, all to the free list.
	sendAndReap(pr, 3)
	wantCounts(t, "3 with the ring full", p, Counts{Total: 32, Free: 24, Fill: 8})
	// The kernel takes 3 (7/8 left on the ring by the pool's count, which
	// counts them until they are received): still not due.
	pr.take(3)
	sendAndReap(pr, 2)
	wantCounts(t, "2 with 5 of 8 taken", p, Counts{Total: 32, Free: 24, Fill: 8})
	// Frames sent through another pair go to the free list, even when
	// this pair's ring is due.
	pr2 := addTestPair(t, p, 8, 16)
	b := p.allocN(t, 2)
	for _, x := range b {
		p.send(t, other, desc(x, 60))
		pr2.complete(x)
	}
	if got := p.reap(pr2, 16); got != 2 {
		t.Fatalf("reaped %d of 2", got)
	}
	if on := pr2.onFill(); len(on) != 0 {
		t.Errorf("another pair's frames went onto pr2's fill ring: %#x", on)
	}
	wantCounts(t, "another pair's", p, Counts{Total: 32, Free: 24, Fill: 8})
	wantClean(t, u)
}
