//go:build linux

package xsk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// The operations FuzzPool draws from its input, opBytes bytes each: the
// operation, then a seed for its arguments.
const (
	opAlloc = iota
	opAllocInto
	opFreeHeld
	opFreeAny
	opRelease
	opRefill
	opKernelTake
	opKernelReceive
	opKernelDrain // descriptors drained from the RX ring of a closing socket: ReclaimLocked
	opStageTX
	opKernelComplete
	opReap
	opDropPair
	opAddPair
	opNewPool
	opTakeFrame
	opClose
	opRecycle
	numOps
)

var opNames = [numOps]string{"Alloc", "AllocInto", "Free(held)", "Free(any)", "ReleaseLocked", "RefillLocked",
	"kernel takes fill", "kernel receives", "kernel drains", "StageTX", "kernel completes", "ReapLocked",
	"drop pair", "add pair", "NewPool", "TakeFrame", "Close", "RecycleLocked"}

// mFrame is the model of one frame.
type mFrame struct {
	state State
	pool  int
	pair  *mPair // while Fill or TX: the pair it went through
}

// mPair is the model of a ring pair and of the kernel behind it.
type mPair struct {
	tp     *testPair
	pool   int
	ring   []uint64 // on the fill ring, oldest first
	kernel []uint64 // taken off the fill ring, not delivered yet
	flight []uint64 // TX descriptor addresses committed, not completed yet
	comp   []uint64 // on the completion ring, oldest first
}

// poolModel is one pool's share of the model.
type poolModel struct {
	p     *Pool
	total int
	viol  int      // ownership errors it must have recorded
	slots []*mPair // its ring pair table; nil where a pair was dropped
}

// poolFuzzer drives a UMEM and an obvious model of it side by side.
type poolFuzzer struct {
	t      *testing.T
	u      *UMEM
	fs     uint64 // frame size
	size   uint64
	unal   bool
	fillSz uint32
	compSz uint32

	frames []mFrame
	pools  []*poolModel
	pairs  []*mPair // live ones
	closed bool

	in   []byte
	rng  *rand.Rand // the arguments of the current operation
	arg  byte       // its first argument byte, for choices the seeds make
	step int
	op   string
}

// opBytes is how many input bytes one operation takes: its code, then a
// seed for its arguments, so that every operation has as many as it needs
// and a mutation of one leaves the others alone.
const opBytes = 8

func (f *poolFuzzer) byte() byte { return byte(f.rng.Uint32()) }

// intn returns an input-chosen number in [0, n); 0 for n <= 0.
func (f *poolFuzzer) intn(n int) int {
	if n <= 0 {
		return 0
	}
	return f.rng.IntN(n)
}

func (f *poolFuzzer) fatalf(format string, args ...any) {
	f.t.Helper()
	f.t.Fatalf("step %d (%s): %s", f.step, f.op, fmt.Sprintf(format, args...))
}

// frameOf is the reference for UMEM.index: the frame a descriptor address
// points into.
func (f *poolFuzzer) frameOf(addr uint64) (int, bool) {
	data := f.dataOf(addr)
	if data >= f.size {
		return 0, false
	}
	return int(data / f.fs), true
}

// dataOf is the reference for UMEM.DataAddr.
func (f *poolFuzzer) dataOf(addr uint64) uint64 {
	if f.unal {
		return addr&(1<<48-1) + addr>>48
	}
	return addr
}

func (f *poolFuzzer) start(i int) uint64 { return uint64(i) * f.fs }

// inFrame returns a descriptor address inside frame i, off bytes in,
// encoded as the kernel does in unaligned mode when enc is set.
func (f *poolFuzzer) inFrame(i int, off uint64, enc bool) uint64 {
	if f.unal && enc {
		return f.start(i) | off<<48
	}
	return f.start(i) + off
}

// anyAddr returns an address of any kind: a frame start, inside a frame,
// encoded, past the UMEM, near 2^64.
func (f *poolFuzzer) anyAddr() uint64 {
	i := f.intn(len(f.frames) + 2)
	off := uint64(f.intn(int(f.fs)))
	switch f.intn(6) {
	case 0:
		return f.start(i)
	case 1:
		return f.start(i) + off
	case 2:
		return f.start(i) | off<<48
	case 3:
		return f.size + uint64(f.intn(1<<16))
	case 4:
		return ^uint64(f.intn(1 << 16))
	}
	return uint64(f.intn(1 << 16))
}

// pick returns an input-chosen frame of pool p in state s, or -1.
func (f *poolFuzzer) pick(p int, s State) int {
	var c []int
	for i, m := range f.frames {
		if m.pool == p && m.state == s {
			c = append(c, i)
		}
	}
	if len(c) == 0 {
		return -1
	}
	return c[f.intn(len(c))]
}

func (f *poolFuzzer) held(p, i int) bool {
	return i >= 0 && f.frames[i].pool == p && f.frames[i].state == StateApp
}

func (f *poolFuzzer) count(p int, s State) int {
	n := 0
	for _, m := range f.frames {
		if m.pool == p && m.state == s {
			n++
		}
	}
	return n
}

// claim checks that the pool handed out addr as a frame of pool p that
// was free, then records it in state s: no frame is handed out twice.
func (f *poolFuzzer) claim(p int, addr uint64, s State, pr *mPair) {
	f.t.Helper()
	i, ok := f.frameOf(addr)
	if !ok || addr != f.start(i) {
		f.fatalf("handed out %#x: not a frame start", addr)
	}
	if m := f.frames[i]; m.pool != p || m.state != StateFree {
		f.fatalf("handed out frame %d (%#x) of pool %d, which is %s in pool %d", i, addr, p, m.state, m.pool)
	}
	f.frames[i] = mFrame{state: s, pool: p, pair: pr}
}

// misuse records a refused operation in pool p.
func (f *poolFuzzer) misuse(p int) { f.pools[p].viol++ }

func (f *poolFuzzer) pickPair() *mPair {
	if len(f.pairs) == 0 {
		return nil
	}
	return f.pairs[f.intn(len(f.pairs))]
}

// removeFlight removes frame i's address from the flight list of the pair
// that holds it, if any.
func (f *poolFuzzer) removeFlight(i int) {
	found := 0
	for _, pr := range f.pairs {
		for k := 0; k < len(pr.flight); k++ {
			if j, _ := f.frameOf(pr.flight[k]); j == i {
				pr.flight = slices.Delete(pr.flight, k, k+1)
				k--
				found++
			}
		}
	}
	if found > 1 {
		f.fatalf("model: frame %d in flight %d times", i, found)
	}
}

func (f *poolFuzzer) run() {
	for f.step = 0; len(f.in) > 0; f.step++ {
		var chunk [opBytes]byte
		f.in = f.in[copy(chunk[:], f.in):]
		op := int(chunk[0]) % numOps
		f.arg = chunk[1]
		f.rng = rand.New(rand.NewPCG(binary.LittleEndian.Uint64(chunk[:]), 0))
		f.op = opNames[op]
		f.do(op)
		f.verify()
	}
}

func (f *poolFuzzer) do(op int) {
	pi := f.intn(len(f.pools))
	pm := f.pools[pi]
	p := pm.p
	switch op {
	case opAlloc:
		addr, ok := p.Alloc()
		if want := !f.closed && f.count(pi, StateFree) > 0; ok != want {
			f.fatalf("Alloc = %v, want %v", ok, want)
		}
		if ok {
			f.claim(pi, addr, StateApp, nil)
		}

	case opAllocInto:
		addrs := make([]uint64, f.intn(len(f.frames)+3))
		n := p.AllocInto(addrs)
		want := min(len(addrs), f.count(pi, StateFree))
		if f.closed {
			want = 0
		}
		if n != want {
			f.fatalf("AllocInto(%d) = %d, want %d", len(addrs), n, want)
		}
		for _, a := range addrs[:n] {
			f.claim(pi, a, StateApp, nil)
		}

	case opFreeHeld, opFreeAny:
		var addr uint64
		if i := f.pick(pi, StateApp); op == opFreeHeld && i >= 0 {
			addr = f.inFrame(i, uint64(f.intn(int(f.fs))), f.byte()&1 != 0)
		} else {
			addr = f.anyAddr()
		}
		i, in := f.frameOf(addr)
		err := p.Free(addr)
		if ok := in && f.held(pi, i); ok {
			if err != nil {
				f.fatalf("Free(%#x) of a held frame: %v", addr, err)
			}
			f.frames[i] = mFrame{state: StateFree, pool: pi}
		} else {
			if !errors.Is(err, ErrFrameState) {
				f.fatalf("Free(%#x), not held: %v, want ErrFrameState", addr, err)
			}
			f.misuse(pi)
		}

	case opRelease:
		descs := make([]unix.XDPDesc, f.intn(6))
		for k := range descs {
			if i := f.pick(pi, StateApp); i >= 0 && f.byte()&3 != 0 {
				descs[k].Addr = f.inFrame(i, uint64(f.intn(int(f.fs))), true)
			} else {
				descs[k].Addr = f.anyAddr()
			}
		}
		wantBad := 0
		for _, d := range descs {
			if i, in := f.frameOf(d.Addr); in && f.held(pi, i) {
				f.frames[i] = mFrame{state: StateFree, pool: pi}
			} else {
				wantBad++
				f.misuse(pi)
			}
		}
		if bad := p.release(descs...); bad != wantBad {
			f.fatalf("ReleaseLocked(%+v) = %d bad, want %d", descs, bad, wantBad)
		}

	case opRecycle:
		// Frames handed straight back to a pair's fill ring: the valid
		// ones in order while it has room, the rest to the free list;
		// unaligned frames and a closed UMEM take ReleaseLocked's path.
		pr := f.pickPair()
		if pr == nil {
			return
		}
		pi, p = pr.pool, pr.tp.pool
		descs := make([]unix.XDPDesc, f.intn(int(f.fillSz)+4))
		for k := range descs {
			switch i := f.pick(pi, StateApp); {
			case i >= 0 && f.byte()&7 != 0:
				descs[k].Addr = f.inFrame(i, uint64(f.intn(int(f.fs))), true)
			case k > 0 && f.byte()&1 != 0: // the same frame twice
				descs[k] = descs[f.intn(k)]
			default:
				descs[k].Addr = f.anyAddr()
			}
		}
		room := int(f.fillSz) - len(pr.ring)
		if f.unal || f.closed {
			room = 0
		}
		wantBad, onRing := 0, len(pr.ring)
		for _, d := range descs {
			i, in := f.frameOf(d.Addr)
			switch {
			case !in || !f.held(pi, i):
				wantBad++
				f.misuse(pi)
			case room > 0:
				f.frames[i] = mFrame{state: StateFill, pool: pi, pair: pr}
				pr.ring = append(pr.ring, f.start(i))
				room--
			default:
				f.frames[i] = mFrame{state: StateFree, pool: pi}
			}
		}
		if bad := p.recycle(pr.tp, descs...); bad != wantBad {
			f.fatalf("RecycleLocked(%+v) = %d bad, want %d", descs, bad, wantBad)
		}
		if on := pr.tp.onFill(); !slices.Equal(on, pr.ring) {
			f.fatalf("fill ring holds %#x, want %#x (%d before)", on, pr.ring, onRing)
		}

	case opRefill:
		pr := f.pickPair()
		if pr == nil {
			return
		}
		pi, p = pr.pool, pr.tp.pool
		max := uint32(f.intn(int(f.fillSz) + 3))
		got := p.refill(pr.tp, max)
		want := min(max, uint32(f.count(pi, StateFree)), f.fillSz-uint32(len(pr.ring)))
		if got != want {
			f.fatalf("RefillLocked(%d) = %d, want %d (%d free, %d of %d on the ring)", max, got, want, f.count(pi, StateFree), len(pr.ring), f.fillSz)
		}
		on := pr.tp.onFill()
		if len(on) != len(pr.ring)+int(got) || !slices.Equal(on[:len(pr.ring)], pr.ring) {
			f.fatalf("fill ring holds %#x, want %#x and %d more", on, pr.ring, got)
		}
		for _, a := range on[len(pr.ring):] {
			f.claim(pi, a, StateFill, pr)
		}
		pr.ring = on

	case opKernelTake:
		pr := f.pickPair()
		if pr == nil {
			return
		}
		k := uint32(f.intn(int(f.fillSz) + 2))
		got := pr.tp.take(k)
		n := min(int(k), len(pr.ring))
		if !slices.Equal(got, pr.ring[:n]) {
			f.fatalf("kernel took %#x off the fill ring, want %#x", got, pr.ring[:n])
		}
		pr.kernel = append(pr.kernel, got...)
		pr.ring = slices.Delete(pr.ring, 0, n)

	case opKernelReceive, opKernelDrain:
		pr := f.pickPair()
		if pr == nil {
			return
		}
		pi, p = pr.pool, pr.tp.pool
		descs := make([]unix.XDPDesc, f.intn(8))
		var valid []unix.XDPDesc
		for k := range descs {
			d := unix.XDPDesc{Len: uint32(1 + f.intn(int(f.fs))), Options: uint32(f.byte() & 1)}
			switch c := f.intn(8); {
			case c < 6 && len(pr.kernel) > 0: // a frame the kernel has
				j := f.intn(len(pr.kernel))
				i, _ := f.frameOf(pr.kernel[j])
				pr.kernel = slices.Delete(pr.kernel, j, j+1)
				d.Addr = f.inFrame(i, uint64(f.intn(int(f.fs))), true)
				valid = append(valid, d)
			case c == 6 && len(valid) > 0: // one delivered already in this batch
				i, _ := f.frameOf(valid[f.intn(len(valid))].Addr)
				d.Addr = f.inFrame(i, 0, true)
			default:
				// Any address but a frame of this pool on a fill ring or in
				// the kernel, which the pool cannot tell from a good one.
				d.Addr = f.anyAddr()
				if i, in := f.frameOf(d.Addr); in && f.frames[i].pool == pi && f.frames[i].state == StateFill {
					d.Addr = f.size
				}
			}
			descs[k] = d
		}
		for _, d := range descs {
			i, in := f.frameOf(d.Addr)
			if in && f.frames[i].pool == pi && f.frames[i].state == StateFill {
				s := StateApp
				if op == opKernelDrain {
					s = StateFree
				}
				f.frames[i] = mFrame{state: s, pool: pi}
			} else {
				f.misuse(pi)
			}
		}
		in := slices.Clone(descs)
		if op == opKernelDrain {
			p.Lock()
			p.ReclaimLocked(descs)
			p.Unlock()
			if !slices.Equal(descs, in) {
				f.fatalf("ReclaimLocked changed its descriptors")
			}
			return
		}
		how := f.intn(3)
		if how == 0 {
			if n := p.received(descs); n != len(valid) || !slices.Equal(descs[:n], valid) {
				f.fatalf("ReceivedLocked(%+v) kept %+v, want %+v", in, descs[:n], valid)
			}
			return
		}
		// ReceiveLocked or DiscardLocked, from the ring's two runs split
		// where the input says.
		cut := f.intn(len(descs) + 1)
		var wantBytes uint64
		for _, d := range valid {
			wantBytes += uint64(d.Len)
		}
		if how == 2 {
			// Discarded: the valid frames, in order, back onto the pair's
			// fill ring while it has room, the rest to the free list;
			// unaligned frames and a closed UMEM go to the free list, as
			// RecycleLocked sends them.
			room := int(f.fillSz) - len(pr.ring)
			if f.unal || f.closed {
				room = 0
			}
			for _, d := range valid {
				i, _ := f.frameOf(d.Addr)
				if room > 0 {
					f.frames[i] = mFrame{state: StateFill, pool: pi, pair: pr}
					pr.ring = append(pr.ring, f.start(i))
					room--
				} else {
					f.frames[i] = mFrame{state: StateFree, pool: pi}
				}
			}
			n, bytes := p.discard(pr.tp, descs[:cut], descs[cut:])
			if n != len(valid) || bytes != wantBytes {
				f.fatalf("DiscardLocked(%+v | %+v) took %d (%d bytes), want %d (%d)", in[:cut], in[cut:], n, bytes, len(valid), wantBytes)
			}
			if on := pr.tp.onFill(); !slices.Equal(on, pr.ring) {
				f.fatalf("fill ring holds %#x after DiscardLocked, want %#x", on, pr.ring)
			}
			return
		}
		dst := make([]unix.XDPDesc, len(descs))
		n, bytes := p.receive(descs[:cut], descs[cut:], dst)
		if n != len(valid) || !slices.Equal(dst[:n], valid) || bytes != wantBytes {
			f.fatalf("ReceiveLocked(%+v | %+v) kept %+v (%d bytes), want %+v (%d)", in[:cut], in[cut:], dst[:n], bytes, valid, wantBytes)
		}

	case opStageTX:
		pr := f.pickPair()
		if pr == nil {
			return
		}
		pi, p = pr.pool, pr.tp.pool
		allowed := []uint32{0, unix.XDP_PKT_CONTD, unix.XDP_PKT_CONTD | 1<<1}[f.intn(3)]
		descs := make([]unix.XDPDesc, f.intn(8))
		for k := range descs {
			d := &descs[k]
			d.Options = []uint32{0, 0, 0, 0, 0, unix.XDP_PKT_CONTD, 1 << 1, 1 << 7}[f.intn(8)]
			i := f.pick(pi, StateApp)
			off := uint64(f.intn(int(f.fs)))
			switch c := f.intn(8); {
			case c < 4 && i >= 0: // valid
				d.Addr, d.Len = f.inFrame(i, off, f.byte()&1 != 0), uint32(1+f.intn(int(f.fs-off)))
			case c == 4 && i >= 0:
				d.Addr, d.Len = f.inFrame(i, off, true), 0
			case c == 5 && i >= 0: // past the frame's end
				d.Addr, d.Len = f.inFrame(i, off, true), uint32(f.fs-off+1+uint64(f.intn(1<<16)))
			case c == 6 && k > 0: // a frame twice
				d.Addr, d.Len = descs[f.intn(k)].Addr, 1
			default:
				d.Addr, d.Len = f.anyAddr(), uint32(f.intn(int(f.fs)+2))
			}
		}
		// The reference: check in order, stop at the first refused.
		wantK, wantR := len(descs), OK
		staged := map[int]bool{}
		for k, d := range descs {
			i, in := f.frameOf(d.Addr)
			var r Reason
			switch {
			case d.Len == 0:
				r = ZeroLength
			case !in:
				r = OutsideUMEM
			case f.dataOf(d.Addr)%f.fs+uint64(d.Len) > f.fs:
				r = CrossesFrame
			case d.Options&^allowed != 0:
				r = BadOptions
			case !f.held(pi, i) || staged[i]:
				r = NotHeld
				f.misuse(pi)
			}
			if r != OK {
				wantK, wantR = k, r
				break
			}
			staged[i] = true
		}
		p.Lock()
		k, bytes, r := p.StageTXLocked(pr.tp.Pair, descs, allowed)
		if k != wantK || r != wantR || bytes != descBytes(descs[:k]) {
			p.Unlock()
			f.fatalf("StageTXLocked(%+v, allowed %#x) = %d, %d bytes, %d; want %d, %d bytes, %d", descs, allowed, k, bytes, r, wantK, descBytes(descs[:wantK]), wantR)
		}
		for _, d := range descs[:k] {
			if s := f.u.state(d.Addr); s != StateTX {
				p.Unlock()
				f.fatalf("staged %#x is %s", d.Addr, s)
			}
		}
		c := f.intn(k + 1)
		p.CommitTXLocked(pr.tp.Pair, c)
		p.UnstageTXLocked(descs[c:k])
		p.Unlock()
		for _, d := range descs[:c] {
			i, _ := f.frameOf(d.Addr)
			f.frames[i] = mFrame{state: StateTX, pool: pi, pair: pr}
			pr.flight = append(pr.flight, d.Addr)
		}

	case opKernelComplete:
		pr := f.pickPair()
		if pr == nil {
			return
		}
		var addrs []uint64
		for range min(f.intn(8), int(f.compSz)-len(pr.comp)) {
			switch c := f.intn(8); {
			case c < 5 && len(pr.flight) > 0:
				j := f.intn(len(pr.flight))
				addrs = append(addrs, pr.flight[j])
				pr.flight = slices.Delete(pr.flight, j, j+1)
			case c == 5 && len(addrs) > 0: // completed twice
				addrs = append(addrs, addrs[f.intn(len(addrs))])
			default: // any address, even a frame in flight on another pair
				addrs = append(addrs, f.anyAddr())
			}
		}
		if n := pr.tp.complete(addrs...); n != len(addrs) {
			f.fatalf("completion ring took %d of %d with %d of %d slots used", n, len(addrs), len(pr.comp), f.compSz)
		}
		pr.comp = append(pr.comp, addrs...)

	case opReap:
		pr := f.pickPair()
		if pr == nil {
			return
		}
		pi, p = pr.pool, pr.tp.pool
		max := uint32(f.intn(int(f.compSz) + 2))
		want := min(int(max), len(pr.comp))
		// Aligned frames sent through pr go back onto its fill ring while
		// it is due a refill (a quarter or more of it consumed, by the
		// pool's count), as many as it lacks and has room for.
		room := 0
		if size, on := int(f.fillSz), pr.tp.Pair.onFill; !f.unal && !f.closed && on <= size-size/4 {
			room = min(want, size-on, size-len(pr.ring))
		}
		for _, a := range pr.comp[:want] {
			if i, in := f.frameOf(a); in && f.frames[i].pool == pi && f.frames[i].state == StateTX {
				f.removeFlight(i)
				if f.frames[i].pair == pr && room > 0 {
					f.frames[i] = mFrame{state: StateFill, pool: pi, pair: pr}
					pr.ring = append(pr.ring, f.start(i))
					room--
					continue
				}
				f.frames[i] = mFrame{state: StateFree, pool: pi}
			} else {
				f.misuse(pi)
			}
		}
		pr.comp = slices.Delete(pr.comp, 0, want)
		if got := p.reap(pr.tp, max); got != uint32(want) {
			f.fatalf("ReapLocked(%d) = %d, want %d", max, got, want)
		}

	case opDropPair:
		pr := f.pickPair()
		if pr == nil {
			return
		}
		for i, m := range f.frames {
			if m.pair == pr && (m.state == StateFill || m.state == StateTX) {
				f.frames[i] = mFrame{state: StateFree, pool: m.pool}
			}
		}
		pr.tp.drop()
		f.pairs = slices.DeleteFunc(f.pairs, func(x *mPair) bool { return x == pr })
		slots := f.pools[pr.pool].slots
		slots[slices.Index(slots, pr)] = nil

	case opAddPair:
		if f.closed || len(f.pairs) >= 3 {
			return
		}
		want := slices.Index(pm.slots, nil)
		if want < 0 {
			want = len(pm.slots)
			pm.slots = append(pm.slots, nil)
		}
		pr := &mPair{tp: addTestPair(f.t, p, f.fillSz, f.compSz), pool: pi}
		if int(pr.tp.local) != want {
			f.fatalf("new pair got index %d, want the lowest free one, %d", pr.tp.local, want)
		}
		pm.slots[want] = pr
		f.pairs = append(f.pairs, pr)

	case opNewPool:
		if len(f.pools) >= 6 {
			return
		}
		n := f.intn(f.count(0, StateFree)+3) - 1
		np, err := f.u.NewPool(n)
		switch {
		case f.closed:
			if !errors.Is(err, ErrClosed) {
				f.fatalf("NewPool(%d) after Close = %v, want ErrClosed", n, err)
			}
		case n <= 0 || n > f.count(0, StateFree):
			if !errors.Is(err, ErrTooSmall) {
				f.fatalf("NewPool(%d) with %d free = %v, want ErrTooSmall", n, f.count(0, StateFree), err)
			}
		case err != nil:
			f.fatalf("NewPool(%d) with %d free: %v", n, f.count(0, StateFree), err)
		default:
			if len(np.free) != n {
				f.fatalf("NewPool(%d) has %d free frames", n, len(np.free))
			}
			id := len(f.pools)
			for _, a := range np.free {
				i, _ := f.frameOf(a)
				if m := f.frames[i]; m.pool != 0 || m.state != StateFree || a != f.start(i) {
					f.fatalf("NewPool took frame %#x, %s in pool %d", a, m.state, m.pool)
				}
				f.frames[i].pool = id
			}
			f.pools[0].total -= n
			f.pools = append(f.pools, &poolModel{p: np, total: n})
		}

	case opTakeFrame:
		addr := f.anyAddr()
		if i := f.pick(pi, StateFree); i >= 0 && f.byte()&1 != 0 {
			addr = f.inFrame(i, uint64(f.intn(int(f.fs))), true)
		}
		i, in := f.frameOf(addr)
		want := !f.closed && in && f.frames[i].pool == pi && f.frames[i].state == StateFree
		if got := p.TakeFrame(addr); got != want {
			f.fatalf("TakeFrame(%#x) = %v, want %v", addr, got, want)
		}
		if want {
			f.frames[i].state = StateApp
		}

	case opClose:
		if f.arg < 0xf0 { // rarely: it ends most of the fun
			return
		}
		if err := f.u.Close(); err != nil {
			f.fatalf("Close: %v", err)
		}
		f.closed = true
	}
}

// verify compares everything observable with the model.
func (f *poolFuzzer) verify() {
	f.t.Helper()
	var sum, usum Counts
	viol := 0
	app := 0
	for pi, pm := range f.pools {
		want := Counts{Total: pm.total, Free: f.count(pi, StateFree), Fill: f.count(pi, StateFill), App: f.count(pi, StateApp), TX: f.count(pi, StateTX)}
		if got := pm.p.Counts(); got != want {
			f.fatalf("pool %d counts %+v, want %+v", pi, got, want)
		}
		if want.Free+want.Fill+want.App+want.TX != want.Total {
			f.fatalf("model: pool %d counts %+v do not add up", pi, want)
		}
		if got := pm.p.FreeFrames(); got != want.Free {
			f.fatalf("pool %d FreeFrames() = %d, want %d", pi, got, want.Free)
		}
		if got := pm.p.Violations(); got != pm.viol {
			f.fatalf("pool %d recorded %d violations, want %d", pi, got, pm.viol)
		}
		sum.Total += want.Total
		sum.Free += want.Free
		sum.Fill += want.Fill
		sum.App += want.App
		sum.TX += want.TX
		viol += pm.viol
		app += want.App
	}
	if usum = f.u.Counts(); usum != sum || sum.Total != len(f.frames) {
		f.fatalf("UMEM counts %+v, want %+v of %d frames", usum, sum, len(f.frames))
	}
	for i, m := range f.frames {
		got := f.u.meta[i]
		if got.state != m.state || int(got.pool) != m.pool {
			f.fatalf("frame %d is %s in pool %d, want %s in pool %d", i, got.state, got.pool, m.state, m.pool)
		}
		if (m.state == StateFill || m.state == StateTX) && got.pair != m.pair.tp.local {
			f.fatalf("frame %d (%s) records pair %d, want %d", i, m.state, got.pair, m.pair.tp.local)
		}
		if s, ok := f.pools[m.pool].p.StateOf(f.start(i)); !ok || s != m.state {
			f.fatalf("StateOf(frame %d) = %s, %v; want %s", i, s, ok, m.state)
		}
	}
	for _, pr := range f.pairs {
		want := 0
		for _, m := range f.frames {
			if m.state == StateTX && m.pair == pr {
				want++
			}
		}
		if got := pr.tp.TXFramesLocked(); got != want {
			f.fatalf("pair %d has %d frames in transmission, want %d", pr.tp.local, got, want)
		}
	}
	err := f.u.Check()
	switch {
	case viol == 0 && err != nil:
		f.fatalf("Check: %v", err)
	case viol > 0 && !errors.Is(err, ErrFrameState):
		f.fatalf("Check after %d misuses = %v, want ErrFrameState", viol, err)
	case viol > 0:
		if err := f.u.checkIgnoringViolations(); err != nil {
			f.fatalf("Check, misuses aside: %v", err)
		}
	}
	if want := f.closed && len(f.pairs) == 0 && app == 0; f.u.unmapped != want || (f.u.area == nil) != want {
		f.fatalf("unmapped %v (area nil %v), want %v: closed %v, %d pairs, %d frames held", f.u.unmapped, f.u.area == nil, want, f.closed, len(f.pairs), app)
	}
}

// weightedOps is the mix of the generated seeds: mostly the data path.
var weightedOps = []int{opAlloc, opAllocInto, opFreeHeld, opFreeHeld, opFreeHeld, opFreeAny, opRelease,
	opRefill, opRefill, opRefill, opKernelTake, opKernelTake, opKernelTake, opKernelReceive, opKernelReceive,
	opKernelReceive, opKernelDrain, opStageTX, opStageTX, opStageTX, opKernelComplete, opKernelComplete,
	opKernelComplete, opReap, opReap, opReap, opDropPair, opAddPair, opNewPool, opTakeFrame, opRecycle, opRecycle}

// seedOps encodes operations as FuzzPool reads them, with argument seeds
// from rng (zero if nil).
func seedOps(rng *rand.Rand, ops ...int) []byte {
	var b []byte
	for _, op := range ops {
		var chunk [opBytes]byte
		if rng != nil {
			binary.LittleEndian.PutUint64(chunk[:], rng.Uint64())
		}
		chunk[0] = byte(op)
		b = append(b, chunk[:]...)
	}
	return b
}

// FuzzPool drives a UMEM's pools, ring pairs and a simulated kernel with
// random operations, deliberate misuses included, and compares every
// count, frame state and result with an obvious model. It never lets a
// frame be handed out twice, and Check passes unless a misuse was
// recorded, when it must report ErrFrameState and nothing else.
func FuzzPool(f *testing.F) {
	// A full cycle on one pair, the same on two, a close and a drop
	// under traffic, then streams drawn mostly from the data path.
	f.Add(false, uint16(0), uint8(15), uint8(0x0a), seedOps(nil, opAddPair, opRefill, opKernelTake, opKernelReceive,
		opStageTX, opStageTX, opKernelComplete, opReap, opFreeHeld, opRefill))
	f.Add(true, uint16(952), uint8(20), uint8(0x05), seedOps(nil, opAddPair, opAddPair, opRefill, opRefill, opKernelTake,
		opKernelTake, opKernelReceive, opKernelReceive, opNewPool, opAddPair, opStageTX, opDropPair)) // unaligned, 3000-byte frames
	closing := seedOps(nil, opAddPair, opRefill, opAlloc, opAlloc, opStageTX, opClose,
		opKernelDrain, opFreeHeld, opDropPair, opFreeHeld, opFreeHeld, opFreeHeld)
	closing[5*opBytes+1] = 0xff                               // do close
	f.Add(true, uint16(1953), uint8(7), uint8(0xff), closing) // 4001-byte frames
	rng := rand.New(rand.NewPCG(1, 2))
	for seed := range 24 {
		var ops []int
		if seed%2 == 0 { // the RX/TX cycle on one pair, with noise
			ops = []int{opAddPair}
			for range 10 {
				ops = append(ops, opRefill, opKernelTake, opKernelReceive, opStageTX, opKernelComplete, opReap,
					weightedOps[rng.IntN(len(weightedOps))])
			}
		}
		for range 64 - len(ops) {
			ops = append(ops, weightedOps[rng.IntN(len(weightedOps))])
		}
		f.Add(rng.IntN(2) == 0, uint16(rng.Uint32()), uint8(rng.Uint32()), uint8(rng.Uint32()), seedOps(rng, ops...))
	}

	f.Fuzz(func(t *testing.T, unaligned bool, frameSize uint16, frames, rings uint8, ops []byte) {
		ops = ops[:min(len(ops), 1024*opBytes)] // long enough for any state; bounds the time of one run
		fs := uint32(2048)
		switch {
		case unaligned:
			fs = 2048 + uint32(frameSize)%2049
		case frameSize&1 != 0:
			fs = 4096
		}
		c := Config{FrameCount: 1 + uint32(frames)%48, FrameSize: fs, Unaligned: unaligned}
		pf := &poolFuzzer{
			t: t, u: newTestUMEM(t, c), fs: uint64(fs), size: uint64(c.FrameCount) * uint64(fs), unal: unaligned,
			fillSz: 1 << (rings & 3), compSz: 1 << (rings >> 2 & 3),
			frames: make([]mFrame, c.FrameCount), in: ops,
		}
		pf.pools = []*poolModel{{p: pf.u.Main(), total: int(c.FrameCount)}}
		pf.verify()
		pf.run()
	})
}
