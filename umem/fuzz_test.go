//go:build linux

package umem_test

import (
	"errors"
	"math/bits"
	"testing"

	"github.com/xdpkit/xdpkit/umem"
)

// validOptions is the reference for Options.Validate, from the field
// docs, with defaults applied and in 64-bit arithmetic: it returns nil,
// ErrInvalidOptions or ErrTooSmall.
func validOptions(o umem.Options) error {
	def := func(v, d uint32) uint64 {
		if v == 0 {
			return uint64(d)
		}
		return uint64(v)
	}
	count, size := def(o.FrameCount, umem.DefaultFrameCount), def(o.FrameSize, umem.DefaultFrameSize)
	fill, comp := def(o.FillRingSize, umem.DefaultFillRingSize), def(o.CompletionRingSize, umem.DefaultCompletionRingSize)
	ring := func(n uint64) bool { return n <= 1<<20 && bits.OnesCount64(n) == 1 }
	switch {
	case o.Unaligned && (size < 2048 || size > 4096),
		!o.Unaligned && size != 2048 && size != 4096,
		count > 1<<24,
		uint64(o.Headroom)+256+1024 > size, // the kernel's 256, then at least 1024 for the packet
		!ring(fill), !ring(comp):
		return umem.ErrInvalidOptions
	case count < fill:
		return umem.ErrTooSmall
	}
	return nil
}

// FuzzUMEMOptions checks Options.Validate against the documented rules:
// it never panics, accepts exactly the options that follow them, and
// refuses the others with ErrInvalidOptions, or ErrTooSmall when only the
// frame count is short of the fill ring.
func FuzzUMEMOptions(f *testing.F) {
	f.Add(uint32(0), uint32(0), uint32(0), uint32(0), uint32(0), false, false, false, false)
	f.Add(uint32(64), uint32(2048), uint32(768), uint32(32), uint32(32), false, false, false, true)
	f.Add(uint32(1<<24), uint32(4096), uint32(2816), uint32(1<<20), uint32(1), false, true, true, false)
	f.Add(uint32(1024), uint32(3000), uint32(0), uint32(2048), uint32(2048), true, false, false, false) // too small
	f.Add(uint32(100), uint32(4001), uint32(100), uint32(64), uint32(3), true, false, false, false)
	f.Add(uint32(1<<24+1), uint32(8192), uint32(1), uint32(1<<21), uint32(0), false, false, false, false)
	f.Add(uint32(0), uint32(2048), uint32(0xffffffff), uint32(0), uint32(0), false, false, false, false) // headroom+1280 wraps
	f.Fuzz(func(t *testing.T, count, size, headroom, fill, comp uint32, unaligned, huge, fallback, checked bool) {
		o := umem.Options{FrameCount: count, FrameSize: size, Headroom: headroom, FillRingSize: fill, CompletionRingSize: comp,
			Unaligned: unaligned, HugePages: huge, HugePageFallback: fallback, Checked: checked}
		orig := o
		err := o.Validate()
		want := validOptions(o)
		switch {
		case want == nil && err != nil:
			t.Fatalf("Validate(%+v) refused valid options: %v", o, err)
		case want != nil && err == nil:
			t.Fatalf("Validate(%+v) accepted invalid options (want %v)", o, want)
		case want != nil && !errors.Is(err, want):
			t.Fatalf("Validate(%+v) = %v, want an error wrapping %v", o, err, want)
		}
		if o != orig {
			t.Fatalf("Validate changed the options: %+v, was %+v", o, orig)
		}
	})
}
