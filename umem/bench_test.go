//go:build linux

package umem_test

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/umem"
)

// BenchmarkRecycle measures the free-list bookkeeping of a batch of 64
// frames, taken and released as a batch (as Socket.Release does after a
// receive): taken one by one with Alloc (a lock each) or all at once with
// AllocInto (one lock).
func BenchmarkRecycle(b *testing.B) {
	testutils.RequirePrivileged(b)
	for _, batch := range []bool{false, true} {
		name := "alloc"
		if batch {
			name = "allocinto"
		}
		b.Run(name, func(b *testing.B) {
			u, err := umem.New(&umem.Options{FrameCount: 4096, FillRingSize: 2048})
			if err != nil {
				b.Fatal(err)
			}
			defer u.Close()
			descs := make([]unix.XDPDesc, 64)
			addrs := make([]uint64, 64)
			b.ReportAllocs()
			frames := 0
			for b.Loop() {
				if batch {
					u.AllocInto(addrs)
				} else {
					for i := range addrs {
						addrs[i], _ = u.Alloc()
					}
				}
				for i := range descs {
					descs[i] = unix.XDPDesc{Addr: addrs[i], Len: 60}
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
