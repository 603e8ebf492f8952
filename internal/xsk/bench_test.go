//go:build linux

package xsk

import (
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkRXCycle measures the frame accounting of the receive path for
// a batch of 64 — fill-ring refill, marking the received frames the
// application's, releasing them — with the kernel's side played in
// memory: what a socket's Receive and Release cost beyond the rings.
func BenchmarkRXCycle(b *testing.B) {
	u := newTestUMEM(b, Config{FrameCount: 4096, FrameSize: 4096, FillRingSize: 2048, CompletionRingSize: 2048})
	p := u.Main()
	tp := addTestPair(b, p, 2048, 2048)
	descs := make([]unix.XDPDesc, 64)
	p.refill(tp, 2048)
	b.ReportAllocs()
	frames := 0
	for b.Loop() {
		idx, got := tp.kFill.Peek(64)
		for i := range got {
			descs[i] = unix.XDPDesc{Addr: tp.kFill.Addr(idx+i) + 256, Len: 60}
		}
		tp.kFill.Release(got)
		p.Lock()
		n := p.ReceivedLocked(tp.Pair, descs[:got])
		p.Unlock()
		p.Lock()
		p.ReleaseLocked(descs[:n])
		p.RefillLocked(tp.Pair, 64)
		p.Unlock()
		frames += n
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(frames), "ns/frame")
}

// BenchmarkTXCycle is the transmit side: allocate 64 frames, stage and
// commit them, the kernel completes them, reap.
func BenchmarkTXCycle(b *testing.B) {
	u := newTestUMEM(b, Config{FrameCount: 4096, FrameSize: 4096, FillRingSize: 2048, CompletionRingSize: 2048})
	p := u.Main()
	tp := addTestPair(b, p, 2048, 2048)
	addrs := make([]uint64, 64)
	descs := make([]unix.XDPDesc, 64)
	b.ReportAllocs()
	frames := 0
	for b.Loop() {
		n := p.AllocInto(addrs)
		for i := range n {
			descs[i] = unix.XDPDesc{Addr: addrs[i], Len: 60}
		}
		p.Lock()
		k, _ := p.StageTXLocked(tp.Pair, descs[:n], 0)
		p.CommitTXLocked(tp.Pair, k)
		p.Unlock()
		tp.complete(addrs[:k]...)
		p.Lock()
		p.ReapLocked(tp.Pair, 64)
		p.Unlock()
		frames += k
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(frames), "ns/frame")
}
