//go:build linux

package ring_test

import (
	"errors"
	"testing"

	"github.com/xdpkit/xdpkit/ring"
)

// fits reports whether n bytes at offset o fit in l bytes, without
// overflowing.
func fits(o, n, l uint64) bool { return o <= l && l-o >= n }

// disjoint reports whether the byte ranges [a, a+an) and [b, b+bn) do not
// overlap; both are known to fit in memory, so the sums do not overflow.
func disjoint(a, an, b, bn uint64) bool { return a+an <= b || b+bn <= a }

// FuzzNew builds rings over arbitrary memory lengths, offsets and sizes.
// A constructor must either return an error or a ring whose every index
// word and entry lies inside the memory; it must never panic. When it
// accepts a layout with no overlaps, a producer/consumer pair over it is
// driven by ops and must deliver every entry in order.
func FuzzNew(f *testing.F) {
	f.Add(uint16(4096), int32(0), int32(64), int32(128), int32(192), uint32(8), false, []byte{3, 5, 2, 9})
	f.Add(uint16(4096), int32(0), int32(64), int32(128), int32(192), uint32(16), true, []byte{0xff, 0x10})
	f.Add(uint16(320+32*8), int32(0), int32(128), int32(196), int32(320), uint32(32), false, []byte{1})   // the kernel's layout
	f.Add(uint16(3*4+64*16), int32(1024), int32(1028), int32(1032), int32(0), uint32(64), true, []byte{}) // packed at the end
	f.Add(uint16(100), int32(0), int32(64), int32(128), int32(192), uint32(8), false, []byte{7})          // too short
	f.Add(uint16(4096), int32(2), int32(64), int32(128), int32(192), uint32(3), true, []byte{7})          // misaligned, bad size

	page := mmapMem(f, 1<<16)
	f.Fuzz(func(t *testing.T, memLen uint16, prod32, cons32, flags32, desc32 int32, size uint32, descs bool, ops []byte) {
		// Offsets come in as signed 32-bit values and are sign-extended, so
		// the fuzzer explores both offsets near 0, where the memory is, and
		// offsets just below 2^64, where offset+length wraps around. Every
		// offset in between is plainly out of range, like 2^40 or 2^63.
		prod, cons, flags, desc := uint64(int64(prod32)), uint64(int64(cons32)), uint64(int64(flags32)), uint64(int64(desc32))
		clear(page)
		mem := page[:memLen]
		off := ring.Offsets{Producer: prod, Consumer: cons, Flags: flags, Desc: desc}
		k := pairKinds[0]
		newProd := func() error { _, err := ring.NewFill(mem, off, size); return err }
		if descs {
			k = pairKinds[1]
			newProd = func() error { _, err := ring.NewTX(mem, off, size); return err }
		}
		l := uint64(len(mem))
		inside := ring.ValidSize(size) && len(mem) > 0 &&
			prod%4 == 0 && cons%4 == 0 && flags%4 == 0 && desc%8 == 0 &&
			fits(prod, 4, l) && fits(cons, 4, l) && fits(flags, 4, l) && fits(desc, uint64(size)*k.entry, l)

		err, panicked := func() (err error, panicked any) {
			defer func() { panicked = recover() }()
			return newProd(), nil
		}()
		switch {
		case panicked != nil:
			// Reported rather than left to crash the test binary, so a
			// panicking corpus entry does not hide the tests after it.
			t.Fatalf("len %d, %+v, size %d: constructor panicked: %v", len(mem), off, size, panicked)
		case !ring.ValidSize(size) && !errors.Is(err, ring.ErrInvalidSize):
			t.Fatalf("size %d: error %v, want ErrInvalidSize", size, err)
		case ring.ValidSize(size) && errors.Is(err, ring.ErrInvalidSize):
			t.Fatalf("valid size %d: error %v matches ErrInvalidSize", size, err)
		case err == nil && !inside:
			t.Fatalf("len %d, %+v, size %d: accepted a layout that does not fit", len(mem), off, size)
		case err != nil && inside:
			t.Fatalf("len %d, %+v, size %d: rejected a layout that fits: %v", len(mem), off, size, err)
		case err != nil:
			return
		}

		entries := uint64(size) * k.entry
		if !disjoint(prod, 4, cons, 4) || !disjoint(prod, 4, flags, 4) || !disjoint(cons, 4, flags, 4) ||
			!disjoint(prod, 4, desc, entries) || !disjoint(cons, 4, desc, entries) || !disjoint(flags, 4, desc, entries) {
			return // accepted, but a pair over overlapping words cannot keep its invariants
		}
		p := k.make(t, mem, off, size)
		var produced, consumed uint64
		for _, op := range ops {
			n := uint32(op >> 1)
			if op&1 == 0 {
				_, got := p.produce(t, n, produced)
				if want := uint32(min(uint64(n), uint64(size)-(produced-consumed))); got != want {
					t.Fatalf("Reserve(%d) got %d, want %d", n, got, want)
				}
				produced += uint64(got)
			} else {
				_, got := p.consume(t, n, consumed)
				if want := uint32(min(uint64(n), produced-consumed)); got != want {
					t.Fatalf("Peek(%d) got %d, want %d", n, got, want)
				}
				consumed += uint64(got)
			}
		}
	})
}
