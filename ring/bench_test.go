//go:build linux

package ring_test

import (
	"fmt"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/ring"
)

// benchSize is the ring size the benchmarks use, a common AF_XDP default.
const benchSize = 2048

var benchBatches = []uint32{1, 16, 64, 256}

// The round trips live in their own functions, called once per b.Loop
// iteration. Since Go 1.26 the compiler keeps every assignment and call
// result in a b.Loop body alive (cmd/compile/internal/bloop), nested loops
// included, which spills the per-descriptor loop variables to the stack
// and roughly doubles the time per descriptor. Only the call's results are
// kept alive this way, which is what a real caller's loop looks like.

// fillRoundTrip moves one batch through a fill ring and the completion ring
// over the same memory: reserve, set, submit, peek, read, release. It
// returns how many addresses went through and the sum of those read minus
// those written, which must be 0.
func fillRoundTrip(fill *ring.Fill, comp *ring.Completion, batch uint32) (n uint32, diff uint64) {
	idx, n := fill.Reserve(batch)
	for i := range n {
		fill.Set(idx+i, uint64(idx+i)<<12)
	}
	fill.Submit(n)

	idx, got := comp.Peek(batch)
	for i := range got {
		diff += comp.Addr(idx+i) - uint64(idx+i)<<12
	}
	comp.Release(got)
	return got, diff + uint64(n-got)
}

// txRoundTrip is fillRoundTrip for a TX ring and an RX ring.
func txRoundTrip(tx *ring.TX, rx *ring.RX, batch uint32) (n uint32, diff uint64) {
	idx, n := tx.Reserve(batch)
	for i := range n {
		tx.Set(idx+i, unix.XDPDesc{Addr: uint64(idx+i) << 12, Len: 64})
	}
	tx.Submit(n)

	idx, got := rx.Peek(batch)
	for i := range got {
		d := rx.Desc(idx + i)
		diff += d.Addr + uint64(d.Len) - (uint64(idx+i)<<12 + 64)
	}
	rx.Release(got)
	return got, diff + uint64(n-got)
}

// reportPerDesc reports the time per descriptor and the descriptor rate.
func reportPerDesc(b *testing.B, total uint64) {
	ns := float64(b.Elapsed().Nanoseconds())
	b.ReportMetric(ns/float64(total), "ns/desc")
	b.ReportMetric(float64(total)/ns*1e3, "Mdesc/s")
}

// BenchmarkFillCompletion is a producer+consumer round trip through a fill
// ring and a completion ring, one batch per iteration.
func BenchmarkFillCompletion(b *testing.B) {
	for _, batch := range benchBatches {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			mem := mmapMem(b, ringBytes(benchSize, addrEntry))
			fill, err := ring.NewFill(mem, testOff, benchSize)
			if err != nil {
				b.Fatal(err)
			}
			comp, err := ring.NewCompletion(mem, testOff, benchSize)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			var total, diff uint64
			for b.Loop() {
				n, d := fillRoundTrip(fill, comp, batch)
				total += uint64(n)
				diff |= d
			}
			if diff != 0 || total == 0 {
				b.Fatalf("moved %d addresses, read back wrong (diff %#x)", total, diff)
			}
			reportPerDesc(b, total)
		})
	}
}

// BenchmarkTXRX is the same round trip through a TX ring and an RX ring,
// with 16-byte descriptors.
func BenchmarkTXRX(b *testing.B) {
	for _, batch := range benchBatches {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			mem := mmapMem(b, ringBytes(benchSize, descEntry))
			tx, err := ring.NewTX(mem, testOff, benchSize)
			if err != nil {
				b.Fatal(err)
			}
			rx, err := ring.NewRX(mem, testOff, benchSize)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			var total, diff uint64
			for b.Loop() {
				n, d := txRoundTrip(tx, rx, batch)
				total += uint64(n)
				diff |= d
			}
			if diff != 0 || total == 0 {
				b.Fatalf("moved %d descriptors, read back wrong (diff %#x)", total, diff)
			}
			reportPerDesc(b, total)
		})
	}
}
