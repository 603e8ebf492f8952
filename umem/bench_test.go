//go:build linux

package umem_test

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/umem"
)

// BenchmarkRecycle measures the frame bookkeeping of one receive batch:
// frames marked received, released to the free list, and put back on the
// fill ring (whose consumer side, the kernel's, is advanced by hand).
func BenchmarkRecycle(b *testing.B) {
	testutils.RequirePrivileged(b)
	for _, checked := range []bool{false, true} {
		name := "unchecked"
		if checked {
			name = "checked"
		}
		b.Run(name, func(b *testing.B) {
			u, err := umem.New(&umem.Options{FrameCount: 4096, FillRingSize: 2048, Checked: checked})
			if err != nil {
				b.Fatal(err)
			}
			defer u.Close()
			descs := make([]unix.XDPDesc, 64)
			b.ReportAllocs()
			frames := 0
			for b.Loop() {
				for i := range descs {
					a, _ := u.Alloc()
					descs[i] = unix.XDPDesc{Addr: a, Len: 60}
				}
				if err := u.ReleaseDescs(descs); err != nil {
					b.Fatal(err)
				}
				frames += len(descs)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(frames), "ns/frame")
		})
	}
}
