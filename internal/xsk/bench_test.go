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
		k, _, _ := p.StageTXLocked(tp.Pair, descs[:n], 0)
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

// BenchmarkRXRecycle is a hand loop's receive path as afxdp runs it, in
// batches of 64 with the kernel's side played in memory: the kernel takes
// frames off the fill ring and produces their descriptors; the
// application takes them (ReceiveLocked: Fill → App) and recycles them
// (RecycleLocked: App → Fill). "rings" is the same traffic through the
// same rings without the frame accounting — the descriptors copied out,
// the addresses written back — as C libxdp's xsk_rxdrop does it: the
// difference is what the checks cost per frame.
func BenchmarkRXRecycle(b *testing.B) {
	setup := func(b *testing.B) (*Pool, *testPair, []unix.XDPDesc, []unix.XDPDesc) {
		u := newTestUMEM(b, Config{FrameCount: 4096, FrameSize: 4096, FillRingSize: 2048, CompletionRingSize: 2048})
		p := u.Main()
		tp := addTestPair(b, p, 2048, 2048)
		p.refill(tp, 2048)
		return p, tp, make([]unix.XDPDesc, 64), make([]unix.XDPDesc, 64)
	}
	kernel := func(tp *testPair, rx []unix.XDPDesc) uint32 {
		idx, got := tp.kFill.Peek(64)
		for i := range got {
			rx[i] = unix.XDPDesc{Addr: tp.kFill.Addr(idx+i) + 256, Len: 60}
		}
		tp.kFill.Release(got)
		return got
	}
	report := func(b *testing.B, frames int) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(frames), "ns/frame")
	}
	b.Run("checked", func(b *testing.B) {
		p, tp, rx, descs := setup(b)
		frames := 0
		for b.Loop() {
			got := kernel(tp, rx)
			p.Lock()
			n, _ := p.ReceiveLocked(tp.Pair, rx[:got], nil, descs)
			p.Unlock()
			p.Lock()
			if bad := p.RecycleLocked(tp.Pair, descs[:n]); bad != 0 {
				b.Fatalf("RecycleLocked refused %d", bad)
			}
			p.Unlock()
			frames += n
		}
		report(b, frames)
	})
	b.Run("rings", func(b *testing.B) {
		p, tp, rx, descs := setup(b)
		fill := tp.Pair.Fill
		frames := 0
		for b.Loop() {
			got := kernel(tp, rx)
			n := copy(descs, rx[:got])
			idx, room := fill.Reserve(uint32(n))
			s1, s2 := fill.Slots(idx, room)
			for i := range s1 {
				s1[i] = descs[i].Addr &^ 4095
			}
			for i := range s2 {
				s2[i] = descs[len(s1)+i].Addr &^ 4095
			}
			fill.Submit(room)
			frames += n
		}
		_ = p
		report(b, frames)
	})
}
