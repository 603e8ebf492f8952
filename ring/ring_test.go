//go:build linux

package ring_test

import (
	"errors"
	"io"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/ring"
)

// ctor is one of the four constructors over caller memory, with its ring
// returned as an io.Closer.
type ctor struct {
	name  string
	entry uint64
	new   func(mem []byte, off ring.Offsets, size uint32) (io.Closer, error)
}

var ctors = []ctor{
	{"Fill", addrEntry, func(m []byte, o ring.Offsets, s uint32) (io.Closer, error) {
		r, err := ring.NewFill(m, o, s)
		if err != nil {
			return nil, err
		}
		return r, nil
	}},
	{"Completion", addrEntry, func(m []byte, o ring.Offsets, s uint32) (io.Closer, error) {
		r, err := ring.NewCompletion(m, o, s)
		if err != nil {
			return nil, err
		}
		return r, nil
	}},
	{"RX", descEntry, func(m []byte, o ring.Offsets, s uint32) (io.Closer, error) {
		r, err := ring.NewRX(m, o, s)
		if err != nil {
			return nil, err
		}
		return r, nil
	}},
	{"TX", descEntry, func(m []byte, o ring.Offsets, s uint32) (io.Closer, error) {
		r, err := ring.NewTX(m, o, s)
		if err != nil {
			return nil, err
		}
		return r, nil
	}},
}

func TestValidSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		size uint32
		want bool
	}{
		{0, false},
		{1, true},
		{2, true},
		{3, false},
		{4, true},
		{6, false},
		{2048, true},
		{2047, false},
		{2049, false},
		{ring.MaxSize / 2, true},
		{ring.MaxSize, true},
		{ring.MaxSize + 1, false},
		{ring.MaxSize * 2, false},
		{1 << 31, false},
		{^uint32(0), false},
	} {
		if got := ring.ValidSize(tc.size); got != tc.want {
			t.Errorf("ValidSize(%d) = %v, want %v", tc.size, got, tc.want)
		}
	}
	for shift := range 32 {
		size := uint32(1) << shift
		if got, want := ring.ValidSize(size), size <= ring.MaxSize; got != want {
			t.Errorf("ValidSize(1<<%d) = %v, want %v", shift, got, want)
		}
	}
}

func TestNewInvalidSize(t *testing.T) {
	t.Parallel()
	// Enough memory for twice MaxSize descriptors, so that only the size
	// can be at fault. The mapping is not populated: only the page holding
	// the index words is ever touched.
	mem := mmapMem(t, ringBytes(2*ring.MaxSize, descEntry))
	for _, c := range ctors {
		for _, size := range []uint32{0, 3, 5, 6, 12, 100, 1000, ring.MaxSize - 1, ring.MaxSize + 1, ring.MaxSize * 2, 1 << 31, ^uint32(0)} {
			r, err := c.new(mem, testOff, size)
			if !errors.Is(err, ring.ErrInvalidSize) {
				t.Errorf("New%s(size %d) error = %v, want ErrInvalidSize", c.name, size, err)
			}
			if r != nil {
				t.Errorf("New%s(size %d) returned a ring with its error", c.name, size)
			}
		}
		for _, size := range []uint32{1, 2, 64, ring.MaxSize} {
			r, err := c.new(mem, testOff, size)
			if err != nil {
				t.Errorf("New%s(size %d): %v", c.name, size, err)
				continue
			}
			if err := r.Close(); err != nil {
				t.Errorf("New%s(size %d).Close: %v", c.name, size, err)
			}
		}
	}
}

func TestNewInvalidLayout(t *testing.T) {
	t.Parallel()
	const size = 8
	for _, c := range ctors {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			n := ringBytes(size, c.entry) // exactly enough at testOff
			page := mmapMem(t, n+64)
			mem := page[:n]
			entries := uint64(size) * c.entry
			with := func(f func(o *ring.Offsets)) ring.Offsets {
				o := testOff
				f(&o)
				return o
			}
			// Entries first and the three words packed after them: the
			// tightest valid layout, with the flags word in the last 4 bytes.
			packed := ring.Offsets{Desc: 0, Producer: entries, Consumer: entries + 4, Flags: entries + 8}

			for _, tc := range []struct {
				name string
				mem  []byte
				off  ring.Offsets
				ok   bool
			}{
				{"exact fit", mem, testOff, true},
				{"packed", page[:entries+12], packed, true},
				{"packed one byte short", page[:entries+11], packed, false},
				{"base offset by 8", page[8 : 8+n], testOff, true},

				{"producer misaligned", mem, with(func(o *ring.Offsets) { o.Producer = 2 }), false},
				{"consumer misaligned", mem, with(func(o *ring.Offsets) { o.Consumer = 66 }), false},
				{"flags misaligned", mem, with(func(o *ring.Offsets) { o.Flags = 129 }), false},
				{"desc 4-byte aligned only", mem, with(func(o *ring.Offsets) { o.Desc = 196 }), false},
				{"desc odd", mem, with(func(o *ring.Offsets) { o.Desc = 193 }), false},

				{"producer at end", mem, with(func(o *ring.Offsets) { o.Producer = uint64(n) }), false},
				{"consumer at end", mem, with(func(o *ring.Offsets) { o.Consumer = uint64(n) }), false},
				{"flags at end", mem, with(func(o *ring.Offsets) { o.Flags = uint64(n) }), false},
				{"producer far out", mem, with(func(o *ring.Offsets) { o.Producer = 1 << 40 }), false},
				{"entries overrun by one slot", mem, with(func(o *ring.Offsets) { o.Desc += 8 }), false},
				{"desc far out", mem, with(func(o *ring.Offsets) { o.Desc = 1 << 40 }), false},

				{"memory one byte short", mem[:n-1], testOff, false},
				{"memory one slot short", mem[:n-int(c.entry)], testOff, false},
				{"memory holds only the words", mem[:testOff.Desc], testOff, false},
				{"empty memory", mem[:0], testOff, false},
				{"nil memory", nil, testOff, false},
				{"nil memory, zero offsets", nil, ring.Offsets{}, false},
				{"base not 8-byte aligned", page[4 : 4+n], testOff, false},
			} {
				r, err := c.new(tc.mem, tc.off, size)
				switch {
				case tc.ok && err != nil:
					t.Errorf("%s: New%s(len %d, %+v): %v", tc.name, c.name, len(tc.mem), tc.off, err)
				case !tc.ok && err == nil:
					t.Errorf("%s: New%s(len %d, %+v) succeeded, want an error", tc.name, c.name, len(tc.mem), tc.off)
				case !tc.ok && errors.Is(err, ring.ErrInvalidSize):
					t.Errorf("%s: New%s error %q matches ErrInvalidSize, but the size is valid", tc.name, c.name, err)
				case !tc.ok && r != nil:
					t.Errorf("%s: New%s returned a ring with its error", tc.name, c.name)
				}
				if r != nil {
					_ = r.Close()
				}
			}
		})
	}
}

// TestNewRejectsWrappingOffsets feeds offsets so large that offset+length
// wraps around 2^64. check must reject them; a constructor must never panic
// on bad offsets (MapFill and friends pass on what the kernel reported).
func TestNewRejectsWrappingOffsets(t *testing.T) {
	t.Parallel()
	const size = 4
	mem := mmapMem(t, 4096)
	for _, c := range ctors {
		entries := uint64(size) * c.entry
		with := func(f func(o *ring.Offsets)) ring.Offsets {
			o := testOff
			f(&o)
			return o
		}
		for _, tc := range []struct {
			name string
			off  ring.Offsets
		}{
			{"producer 2^64-4", with(func(o *ring.Offsets) { o.Producer = ^uint64(3) })},
			{"consumer 2^64-4", with(func(o *ring.Offsets) { o.Consumer = ^uint64(3) })},
			{"flags 2^64-4", with(func(o *ring.Offsets) { o.Flags = ^uint64(3) })},
			{"desc 2^64-entries", with(func(o *ring.Offsets) { o.Desc = -entries })},
			{"desc 2^64-8", with(func(o *ring.Offsets) { o.Desc = ^uint64(7) })},
		} {
			r, err, panicked := tryNew(c, mem, tc.off, size)
			switch {
			case panicked != nil:
				t.Errorf("New%s(%s = %+v) panicked instead of returning an error: %v", c.name, tc.name, tc.off, panicked)
			case err == nil:
				t.Errorf("New%s(%s = %+v) succeeded, want an error", c.name, tc.name, tc.off)
				_ = r.Close()
			}
		}
	}
}

func tryNew(c ctor, mem []byte, off ring.Offsets, size uint32) (r io.Closer, err error, panicked any) {
	defer func() { panicked = recover() }()
	r, err = c.new(mem, off, size)
	return r, err, nil
}

// TestCloseKeepsCallerMemory checks that Close on a ring built over caller
// memory is idempotent and leaves the memory mapped and usable.
func TestCloseKeepsCallerMemory(t *testing.T) {
	t.Parallel()
	for _, c := range ctors {
		mem := mmapMem(t, ringBytes(16, c.entry))
		r, err := c.new(mem, testOff, 16)
		if err != nil {
			t.Fatalf("New%s: %v", c.name, err)
		}
		for i := range 3 {
			if err := r.Close(); err != nil {
				t.Errorf("%s.Close #%d: %v", c.name, i+1, err)
			}
		}
		// msync fails with ENOMEM on an unmapped range, so this tells
		// whether Close unmapped the caller's memory without faulting.
		if err := unix.Msync(mem, unix.MS_SYNC); err != nil {
			t.Fatalf("%s: memory no longer mapped after Close: msync: %v", c.name, err)
		}
		for i := range mem {
			mem[i] = byte(i)
		}
		for i := range mem {
			if mem[i] != byte(i) {
				t.Fatalf("%s: mem[%d] = %d after Close, want %d", c.name, i, mem[i], byte(i))
			}
		}
		clear(mem)
		r, err = c.new(mem, testOff, 16)
		if err != nil {
			t.Fatalf("New%s again over the same memory: %v", c.name, err)
		}
		if err := r.Close(); err != nil {
			t.Errorf("%s.Close: %v", c.name, err)
		}
	}
}

// TestSize checks Size on every ring type for every valid size tests use.
func TestSize(t *testing.T) {
	t.Parallel()
	for _, k := range pairKinds {
		for shift := range 9 {
			size := uint32(1) << shift
			mem := mmapMem(t, ringBytes(size, k.entry))
			p := k.make(t, mem, testOff, size)
			if got, got2 := p.prodSize(), p.consSize(); got != size || got2 != size {
				t.Errorf("%s: Size() = %d and %d, want %d", k.name, got, got2, size)
			}
		}
	}
}
