//go:build linux

package umem_test

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/umem"
)

// BenchmarkRecycle measures the free-list bookkeeping of a batch of 64
// frames: taken one by one (as a transmitter does) and released as a batch
// (as Socket.Release does after a receive).
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
