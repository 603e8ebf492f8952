//go:build linux

package ring_test

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/ring"
)

// newPair maps memory for a pair of kind k with size entries, presets both
// indices to start and builds the pair over it.
func newPair(t *testing.T, k pairKind, size, start uint32) (*pair, []byte) {
	t.Helper()
	mem := mmapMem(t, ringBytes(size, k.entry))
	presetIndices(mem, testOff, start)
	return k.make(t, mem, testOff, size), mem
}

// starts are the preset indices the tests run from: zero, just before the
// 32-bit wrap, and just before the signed boundary.
var starts = []uint32{0, 0xffffffff, 0xfffffffd, 0x7ffffffe}

func TestEmpty(t *testing.T) {
	forEachPair(t, func(t *testing.T, k pairKind) {
		for _, size := range []uint32{1, 8, 256} {
			for _, start := range starts {
				p, _ := newPair(t, k, size, start)
				for _, n := range []uint32{0, 1, size, size + 1, ^uint32(0)} {
					if idx, got := p.peek(n); got != 0 || idx != start {
						t.Errorf("size %d start %#x: empty Peek(%d) = %#x, %d; want %#x, 0", size, start, n, idx, got, start)
					}
				}
				if n := p.available(); n != 0 {
					t.Errorf("size %d start %#x: empty Available() = %d", size, start, n)
				}
				if n := p.pending(); n != 0 {
					t.Errorf("size %d start %#x: empty Pending() = %d", size, start, n)
				}
				if idx, got := p.reserve(0); got != 0 || idx != start {
					t.Errorf("size %d start %#x: Reserve(0) = %#x, %d; want %#x, 0", size, start, idx, got, start)
				}
			}
		}
	})
}

func TestFull(t *testing.T) {
	forEachPair(t, func(t *testing.T, k pairKind) {
		for _, size := range []uint32{1, 2, 8, 256} {
			for _, start := range starts {
				p, mem := newPair(t, k, size, start)
				if idx, got := p.produce(t, size, 0); got != size || idx != start {
					t.Fatalf("size %d start %#x: Reserve(%d) on an empty ring = %#x, %d", size, start, size, idx, got)
				}
				for _, n := range []uint32{1, size, ^uint32(0)} {
					if _, got := p.reserve(n); got != 0 {
						t.Errorf("size %d start %#x: Reserve(%d) on a full ring got %d", size, start, n, got)
					}
				}
				if n := p.pending(); n != size {
					t.Errorf("size %d: Pending() on a full ring = %d", size, n)
				}
				if n := p.available(); n != size {
					t.Errorf("size %d: Available() on a full ring = %d", size, n)
				}
				if got := word(mem, testOff.Producer); got != start+size {
					t.Errorf("size %d: producer index = %#x, want %#x", size, got, start+size)
				}
				// One slot back frees exactly one slot.
				if _, got := p.consume(t, 1, 0); got != 1 {
					t.Fatalf("size %d: Peek(1) on a full ring got %d", size, got)
				}
				if idx, got := p.produce(t, 2, uint64(size)); got != 1 || idx != start+size {
					t.Errorf("size %d: Reserve(2) with one free slot = %#x, %d; want %#x, 1", size, idx, got, start+size)
				}
				if _, got := p.reserve(1); got != 0 {
					t.Errorf("size %d: Reserve(1) on a refilled ring got %d", size, got)
				}
				// Drain: everything comes out in order.
				if idx, got := p.consume(t, ^uint32(0), 1); got != size || idx != start+1 {
					t.Errorf("size %d: draining Peek = %#x, %d; want %#x, %d", size, idx, got, start+1, size)
				}
				if n := p.pending(); n != 0 {
					t.Errorf("size %d: Pending() after draining = %d", size, n)
				}
			}
		}
	})
}

func TestPartialReserve(t *testing.T) {
	forEachPair(t, func(t *testing.T, k pairKind) {
		const size = 8
		for _, start := range starts {
			p, _ := newPair(t, k, size, start)
			if _, got := p.produce(t, 5, 0); got != 5 {
				t.Fatalf("Reserve(5) got %d", got)
			}
			idx, got := p.reserve(size)
			if got != 3 || idx != start+5 {
				t.Fatalf("start %#x: Reserve(8) with 3 free = %#x, %d; want %#x, 3", start, idx, got, start+5)
			}
			// The three are reserved, not free.
			if _, n := p.reserve(1); n != 0 {
				t.Errorf("Reserve(1) after reserving the rest got %d", n)
			}
			// Reserved but unsubmitted slots are neither pending nor visible.
			if n := p.pending(); n != 5 {
				t.Errorf("Pending() with 3 reserved = %d, want 5", n)
			}
			if n := p.available(); n != 5 {
				t.Errorf("Available() with 3 reserved = %d, want 5", n)
			}
			for i := range got {
				p.set(idx+i, val(5+uint64(i)))
			}
			p.submit(got)
			// Partial peek and a partial reserve after it.
			if idx, n := p.consume(t, 2, 0); n != 2 || idx != start {
				t.Errorf("Peek(2) = %#x, %d", idx, n)
			}
			if idx, n := p.produce(t, size, 8); n != 2 || idx != start+8 {
				t.Errorf("Reserve(8) with 2 free = %#x, %d; want %#x, 2", idx, n, start+8)
			}
			if idx, n := p.consume(t, 100, 2); n != size || idx != start+2 {
				t.Errorf("Peek(100) with 8 filled = %#x, %d; want %#x, 8", idx, n, start+2)
			}
		}
	})
}

func TestCancel(t *testing.T) {
	forEachPair(t, func(t *testing.T, k pairKind) {
		const size = 8
		for _, start := range starts {
			p, mem := newPair(t, k, size, start)

			// Cancel everything: nothing is published, the slots come back.
			idx, got := p.reserve(4)
			for i := range got {
				p.set(idx+i, 0xdead)
			}
			p.cancel(got)
			if n := p.pending(); n != 0 {
				t.Errorf("Pending() after cancelling all = %d", n)
			}
			if w := word(mem, testOff.Producer); w != start {
				t.Errorf("producer index after cancelling all = %#x, want %#x", w, start)
			}
			if idx, n := p.peek(size); n != 0 {
				t.Errorf("Peek after cancelling all = %#x, %d", idx, n)
			}

			// The same slots are handed out again; cancel the tail only.
			idx, got = p.reserve(size)
			if idx != start || got != size {
				t.Fatalf("Reserve(%d) after Cancel = %#x, %d; want %#x, %d", size, idx, got, start, size)
			}
			for i := range got {
				p.set(idx+i, val(uint64(i)))
			}
			p.cancel(3)
			p.submit(5)
			if w := word(mem, testOff.Producer); w != start+5 {
				t.Errorf("producer index = %#x, want %#x", w, start+5)
			}
			if n := p.pending(); n != 5 {
				t.Errorf("Pending() = %d, want 5", n)
			}
			// The cancelled slots are free again, and next after the submitted ones.
			if idx, n := p.produce(t, size, 5); idx != start+5 || n != 3 {
				t.Errorf("Reserve after a partial cancel = %#x, %d; want %#x, 3", idx, n, start+5)
			}
			if _, n := p.consume(t, size, 0); n != size {
				t.Errorf("Peek = %d, want %d", n, size)
			}

			// Cancel in the middle of a multi-step reservation.
			idx1, n1 := p.reserve(2)
			_, n2 := p.reserve(3)
			p.cancel(n2)
			idx3, n3 := p.reserve(1)
			if n1 != 2 || n2 != 3 || n3 != 1 || idx3 != idx1+2 {
				t.Errorf("Reserve(2), Reserve(3), Cancel(3), Reserve(1) = (%#x,%d) (_,%d) (%#x,%d)", idx1, n1, n2, idx3, n3)
			}
			for i := range uint32(3) {
				p.set(idx1+i, val(size+uint64(i)))
			}
			p.submit(3)
			if _, n := p.consume(t, size, size); n != 3 {
				t.Errorf("Peek = %d, want 3", n)
			}
		}
	})
}

func TestUnpeek(t *testing.T) {
	forEachPair(t, func(t *testing.T, k pairKind) {
		const size = 8
		for _, start := range starts {
			p, mem := newPair(t, k, size, start)
			p.produce(t, 6, 0)

			// Unpeek everything: the same entries come back at the same index.
			idx, n := p.peek(4)
			if idx != start || n != 4 {
				t.Fatalf("Peek(4) = %#x, %d", idx, n)
			}
			p.unpeek(4)
			if a := p.available(); a != 6 {
				t.Errorf("Available() after Unpeek(4) = %d, want 6", a)
			}
			if w := word(mem, testOff.Consumer); w != start {
				t.Errorf("consumer index after Peek+Unpeek = %#x, want %#x (Peek must not publish)", w, start)
			}

			// Unpeek the tail, release the head.
			idx, n = p.peek(4)
			if idx != start || n != 4 {
				t.Fatalf("Peek(4) after Unpeek = %#x, %d; want %#x, 4", idx, n, start)
			}
			p.unpeek(2)
			if a := p.available(); a != 4 {
				t.Errorf("Available() after Peek(4), Unpeek(2) = %d, want 4", a)
			}
			for i := range uint32(2) {
				if d, want := p.get(idx+i), p.entry(val(uint64(i))); d != want {
					t.Errorf("entry %d = %+v, want %+v", i, d, want)
				}
			}
			p.release(2)
			if w := word(mem, testOff.Consumer); w != start+2 {
				t.Errorf("consumer index after Release(2) = %#x, want %#x", w, start+2)
			}
			if n := p.pending(); n != 4 {
				t.Errorf("Pending() after Release(2) = %d, want 4", n)
			}
			// The unpeeked entries are next, with their values intact.
			if idx, n := p.consume(t, size, 2); idx != start+2 || n != 4 {
				t.Errorf("Peek after Unpeek(2) = %#x, %d; want %#x, 4", idx, n, start+2)
			}
			if n := p.pending(); n != 0 {
				t.Errorf("Pending() after draining = %d", n)
			}
		}
	})
}

func TestNeedWakeup(t *testing.T) {
	forEachPair(t, func(t *testing.T, k pairKind) {
		p, mem := newPair(t, k, 8, 0)
		for _, tc := range []struct {
			flags uint32
			want  bool
		}{
			{0, false},
			{unix.XDP_RING_NEED_WAKEUP, true},
			{0, false},
			{^uint32(unix.XDP_RING_NEED_WAKEUP), false},
			{^uint32(0), true},
			{unix.XDP_RING_NEED_WAKEUP | 0x80000000, true},
		} {
			putWord(mem, testOff.Flags, tc.flags)
			if got := p.needWakeup(); got != tc.want {
				t.Errorf("flags %#x: NeedWakeup() = %v, want %v", tc.flags, got, tc.want)
			}
			// The flags word belongs to the kernel: ring traffic leaves it alone.
			p.produce(t, 3, 0)
			p.consume(t, 3, 0)
			if got := word(mem, testOff.Flags); got != tc.flags {
				t.Errorf("flags word = %#x after traffic, want %#x", got, tc.flags)
			}
			if got := p.needWakeup(); got != tc.want {
				t.Errorf("flags %#x: NeedWakeup() after traffic = %v, want %v", tc.flags, got, tc.want)
			}
		}
	})
}

func TestPendingAvailable(t *testing.T) {
	forEachPair(t, func(t *testing.T, k pairKind) {
		p, mem := newPair(t, k, 16, 0xfffffff0)
		check := func(step string, pending, available uint32) {
			t.Helper()
			if n := p.pending(); n != pending {
				t.Errorf("%s: Pending() = %d, want %d", step, n, pending)
			}
			if n := p.available(); n != available {
				t.Errorf("%s: Available() = %d, want %d", step, n, available)
			}
		}
		check("empty", 0, 0)
		p.produce(t, 3, 0)
		check("3 submitted", 3, 3)
		idx, _ := p.peek(2)
		check("2 peeked", 3, 1)
		p.release(2)
		check("2 released", 1, 1)
		_, n := p.reserve(4)
		check("4 reserved", 1, 1)
		p.submit(n)
		check("4 submitted", 5, 5)
		p.peek(5)
		check("5 peeked", 5, 0)
		p.unpeek(5)
		check("5 unpeeked", 5, 5)
		// The kernel consuming behind our back shows in Pending right away,
		// since it reads the consumer index.
		putWord(mem, testOff.Consumer, idx+2+5)
		if n := p.pending(); n != 0 {
			t.Errorf("Pending() after the consumer index moved = %d, want 0", n)
		}
	})
}

// TestLayout checks the ring against the kernel's memory layout: the index
// words at their offsets, entries at Desc + (index & mask) * entry size in
// native byte order, struct xdp_desc as addr, len, options. The other side
// is driven through raw memory here, the way the kernel sees it.
func TestLayout(t *testing.T) {
	t.Parallel()
	const size = 4
	ne := binary.NativeEndian
	start := uint32(0xfffffffe)

	t.Run("Fill", func(t *testing.T) {
		t.Parallel()
		mem := mmapMem(t, ringBytes(size, addrEntry))
		presetIndices(mem, testOff, start)
		f, err := ring.NewFill(mem, testOff, size)
		if err != nil {
			t.Fatal(err)
		}
		idx, n := f.Reserve(3)
		for i := range n {
			f.Set(idx+i, 0x1000*uint64(i+1)+0x11)
		}
		if w := word(mem, testOff.Producer); w != start {
			t.Errorf("producer index before Submit = %#x, want %#x", w, start)
		}
		f.Submit(n)
		if w := word(mem, testOff.Producer); w != start+3 {
			t.Errorf("producer index after Submit = %#x, want %#x", w, start+3)
		}
		for i := range n {
			slot := uint64((start + i) & (size - 1))
			if got, want := ne.Uint64(mem[testOff.Desc+slot*8:]), 0x1000*uint64(i+1)+0x11; got != want {
				t.Errorf("slot %d = %#x, want %#x", slot, got, want)
			}
		}
		// The kernel takes two.
		putWord(mem, testOff.Consumer, start+2)
		if p := f.Pending(); p != 1 {
			t.Errorf("Pending() = %d, want 1", p)
		}
		if _, n := f.Reserve(size); n != 3 {
			t.Errorf("Reserve(%d) after the kernel took 2 of 3 got %d, want 3", size, n)
		}
	})

	t.Run("TX", func(t *testing.T) {
		t.Parallel()
		mem := mmapMem(t, ringBytes(size, descEntry))
		presetIndices(mem, testOff, start)
		tx, err := ring.NewTX(mem, testOff, size)
		if err != nil {
			t.Fatal(err)
		}
		idx, n := tx.Reserve(3)
		for i := range n {
			d := unix.XDPDesc{Addr: 0x2000 * uint64(i+1), Len: 60 + i, Options: 0x100 + i}
			if i%2 == 0 {
				tx.Set(idx+i, d)
			} else {
				*tx.Desc(idx + i) = d
			}
		}
		tx.Submit(n)
		if w := word(mem, testOff.Producer); w != start+3 {
			t.Errorf("producer index after Submit = %#x, want %#x", w, start+3)
		}
		for i := range n {
			slot := uint64((start + i) & (size - 1))
			b := mem[testOff.Desc+slot*16:]
			if a, l, o := ne.Uint64(b), ne.Uint32(b[8:]), ne.Uint32(b[12:]); a != 0x2000*uint64(i+1) || l != 60+i || o != 0x100+i {
				t.Errorf("slot %d = {%#x %d %#x}, want {%#x %d %#x}", slot, a, l, o, 0x2000*uint64(i+1), 60+i, 0x100+i)
			}
		}
	})

	t.Run("Completion", func(t *testing.T) {
		t.Parallel()
		mem := mmapMem(t, ringBytes(size, addrEntry))
		presetIndices(mem, testOff, start)
		c, err := ring.NewCompletion(mem, testOff, size)
		if err != nil {
			t.Fatal(err)
		}
		for i := range uint32(3) {
			slot := uint64((start + i) & (size - 1))
			ne.PutUint64(mem[testOff.Desc+slot*8:], 0x3000+uint64(i))
		}
		if _, n := c.Peek(size); n != 0 {
			t.Errorf("Peek before the producer index moved got %d", n)
		}
		putWord(mem, testOff.Producer, start+3)
		idx, n := c.Peek(size)
		if idx != start || n != 3 {
			t.Fatalf("Peek = %#x, %d; want %#x, 3", idx, n, start)
		}
		for i := range n {
			if a := c.Addr(idx + i); a != 0x3000+uint64(i) {
				t.Errorf("Addr(%#x) = %#x, want %#x", idx+i, a, 0x3000+uint64(i))
			}
		}
		if w := word(mem, testOff.Consumer); w != start {
			t.Errorf("consumer index before Release = %#x, want %#x", w, start)
		}
		c.Release(n)
		if w := word(mem, testOff.Consumer); w != start+3 {
			t.Errorf("consumer index after Release = %#x, want %#x", w, start+3)
		}
	})

	t.Run("RX", func(t *testing.T) {
		t.Parallel()
		mem := mmapMem(t, ringBytes(size, descEntry))
		presetIndices(mem, testOff, start)
		rx, err := ring.NewRX(mem, testOff, size)
		if err != nil {
			t.Fatal(err)
		}
		for i := range uint32(3) {
			b := mem[testOff.Desc+uint64((start+i)&(size-1))*16:]
			ne.PutUint64(b, 0x4000+uint64(i))
			ne.PutUint32(b[8:], 64+i)
			ne.PutUint32(b[12:], unix.XDP_PKT_CONTD*(i%2))
		}
		putWord(mem, testOff.Producer, start+3)
		if a := rx.Available(); a != 3 {
			t.Errorf("Available() = %d, want 3", a)
		}
		idx, n := rx.Peek(size)
		if idx != start || n != 3 {
			t.Fatalf("Peek = %#x, %d; want %#x, 3", idx, n, start)
		}
		for i := range n {
			want := unix.XDPDesc{Addr: 0x4000 + uint64(i), Len: 64 + i, Options: unix.XDP_PKT_CONTD * (i % 2)}
			if d := *rx.Desc(idx + i); d != want {
				t.Errorf("Desc(%#x) = %+v, want %+v", idx+i, d, want)
			}
		}
		rx.Release(n)
		if w := word(mem, testOff.Consumer); w != start+3 {
			t.Errorf("consumer index after Release = %#x, want %#x", w, start+3)
		}
	})
}

// canary marks every byte of mem outside the ring's words and entries, so
// checkCanary can tell the ring wrote nowhere else.
const canary = 0xa5

func fillCanary(mem []byte, size uint32, entry uint64) {
	for i := range mem {
		if !inRing(uint64(i), size, entry) {
			mem[i] = canary
		}
	}
}

func checkCanary(t *testing.T, mem []byte, size uint32, entry uint64) {
	t.Helper()
	for i := range mem {
		if !inRing(uint64(i), size, entry) && mem[i] != canary {
			t.Errorf("byte %d outside the ring changed to %#x", i, mem[i])
			return
		}
	}
}

func inRing(i uint64, size uint32, entry uint64) bool {
	for _, o := range []uint64{testOff.Producer, testOff.Consumer, testOff.Flags} {
		if i >= o && i < o+4 {
			return true
		}
	}
	return i >= testOff.Desc && i < testOff.Desc+uint64(size)*entry
}

// drive runs total entries through p, the producer reserving up to pb and
// the consumer peeking up to cb at a time, and checks every index, count
// and entry against what a ring of size slots must do. With fillFirst the
// producer fills the ring before the consumer drains it; otherwise they
// take turns, one batch each.
func drive(t *testing.T, p *pair, size, start, pb, cb uint32, total uint64, fillFirst bool) {
	t.Helper()
	var produced, consumed uint64
	produceOnce := func() uint32 {
		want := uint32(min(uint64(pb), total-produced, uint64(size)-(produced-consumed)))
		idx, got := p.produce(t, uint32(min(uint64(pb), total-produced)), produced)
		if got != want || (got > 0 && idx != start+uint32(produced)) {
			t.Fatalf("size %d pb %d cb %d: reserve at %d/%d produced, %d consumed = %#x, %d; want %#x, %d",
				size, pb, cb, produced, total, consumed, idx, got, start+uint32(produced), want)
		}
		produced += uint64(got)
		return got
	}
	consumeOnce := func() uint32 {
		want := uint32(min(uint64(cb), produced-consumed))
		idx, got := p.consume(t, cb, consumed)
		if got != want || (got > 0 && idx != start+uint32(consumed)) {
			t.Fatalf("size %d pb %d cb %d: peek at %d produced, %d consumed = %#x, %d; want %#x, %d",
				size, pb, cb, produced, consumed, idx, got, start+uint32(consumed), want)
		}
		consumed += uint64(got)
		return got
	}
	for consumed < total {
		if fillFirst {
			for produceOnce() > 0 {
			}
			for consumeOnce() > 0 {
			}
		} else {
			produceOnce()
			consumeOnce()
		}
		if n := p.pending(); uint64(n) != produced-consumed {
			t.Fatalf("size %d pb %d cb %d: Pending() = %d, want %d", size, pb, cb, n, produced-consumed)
		}
	}
}

// TestWrapAround runs several laps across the 2^32 wrap of both indices.
func TestWrapAround(t *testing.T) {
	forEachPair(t, func(t *testing.T, k pairKind) {
		for _, size := range []uint32{1, 2, 8, 64, 256} {
			for _, start := range []uint32{0xffffffff, -size, -size / 2, -size*3 - 1, 0x7fffffff} {
				for _, fillFirst := range []bool{false, true} {
					mem := mmapMem(t, ringBytes(size, k.entry)+256)
					fillCanary(mem, size, k.entry)
					presetIndices(mem, testOff, start)
					putWord(mem, testOff.Flags, 0)
					p := k.make(t, mem, testOff, size)
					total := uint64(size)*7 + 3
					drive(t, p, size, start, size/2+1, max(1, size/3), total, fillFirst)
					if w := word(mem, testOff.Producer); w != start+uint32(total) {
						t.Errorf("size %d start %#x: producer index %#x, want %#x", size, start, w, start+uint32(total))
					}
					if w := word(mem, testOff.Consumer); w != start+uint32(total) {
						t.Errorf("size %d start %#x: consumer index %#x, want %#x", size, start, w, start+uint32(total))
					}
					checkCanary(t, mem, size, k.entry)
				}
			}
		}
	})
}

// TestBatchSizes runs every batch size 1..size through rings of every size
// 1..256, across the index wrap, with the producer and consumer in step,
// with the ring filled before it is drained, and with mismatched batches.
func TestBatchSizes(t *testing.T) {
	forEachPair(t, func(t *testing.T, k pairKind) {
		for shift := range 9 {
			size := uint32(1) << shift
			t.Run(fmt.Sprint(size), func(t *testing.T) {
				t.Parallel()
				mem := mmapMem(t, ringBytes(size, k.entry)+256)
				fillCanary(mem, size, k.entry)
				for b := uint32(1); b <= size; b++ {
					total := uint64(size)*3 + uint64(b)
					for mode, batches := range [][2]uint32{{b, b}, {b, b}, {b, size + 1 - b}} {
						start := -uint32(total / 2) // the indices wrap half way
						presetIndices(mem, testOff, start)
						putWord(mem, testOff.Flags, 0)
						p := k.make(t, mem, testOff, size)
						drive(t, p, size, start, batches[0], batches[1], total, mode == 1)
						if w := word(mem, testOff.Consumer); w != start+uint32(total) {
							t.Fatalf("batch %d: consumer index %#x, want %#x", b, w, start+uint32(total))
						}
					}
				}
				checkCanary(t, mem, size, k.entry)
			})
		}
	})
}

// TestConcurrent runs a producer goroutine against a consumer goroutine, as
// user space and the kernel do, and checks every entry arrives in order.
func TestConcurrent(t *testing.T) {
	total := uint64(1 << 20)
	if testing.Short() {
		total = 1 << 14
	}
	forEachPair(t, func(t *testing.T, k pairKind) {
		for _, size := range []uint32{1, 64} {
			p, _ := newPair(t, k, size, 0xffffff00)
			done := make(chan struct{})
			go func() {
				defer close(done)
				var next uint64
				for next < total {
					idx, n := p.reserve(uint32(min(16, total-next)))
					if n == 0 {
						runtime.Gosched()
						continue
					}
					for i := range n {
						p.set(idx+i, val(next+uint64(i)))
					}
					p.submit(n)
					next += uint64(n)
				}
			}()
			var next uint64
			for next < total {
				idx, n := p.peek(13)
				if n == 0 {
					runtime.Gosched()
					continue
				}
				for i := range n {
					if d, want := p.get(idx+i), p.entry(val(next+uint64(i))); d != want {
						t.Errorf("size %d: entry %d = %+v, want %+v", size, next+uint64(i), d, want)
						next = total // stop; the producer still finishes since the ring drains below
						break
					}
				}
				p.release(n)
				next += uint64(n)
			}
			for {
				// Drain whatever the producer still has to put in after a failure.
				select {
				case <-done:
				default:
					_, n := p.peek(^uint32(0))
					p.release(n)
					runtime.Gosched()
					continue
				}
				break
			}
		}
	})
}
