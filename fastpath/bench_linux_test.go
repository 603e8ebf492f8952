//go:build linux

package fastpath_test

import (
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/xdpkit/xdpkit/fastpath"
)

// BenchmarkProgram measures the fast path's cost per frame in the kernel
// (BPF_PROG_TEST_RUN with repeat), next to a program that only returns
// XDP_DROP: what each feature adds to a frame's trip through XDP.
func BenchmarkProgram(b *testing.B) {
	c := flowCases()[0] // ipv4/udp
	in := frame(c.spec)
	drop, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "MIT",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, xdpDrop), asm.Return()}})
	if err != nil {
		b.Fatal(err)
	}
	defer drop.Close()
	measure := func(b *testing.B, prog *ebpf.Program) {
		b.Helper()
		var total time.Duration
		runs := 0
		for b.Loop() {
			const repeat = 100000
			ret, d, err := prog.Benchmark(in, repeat, nil)
			if err != nil {
				b.Fatal(err)
			}
			_ = ret
			total += d * repeat
			runs += repeat
		}
		b.ReportMetric(float64(total.Nanoseconds())/float64(runs), "ns/frame")
	}
	b.Run("xdp-drop", func(b *testing.B) { measure(b, drop) })
	b.Run("miss", func(b *testing.B) {
		_, prog := newFastPath(b, nil)
		measure(b, prog)
	})
	b.Run("policer-drop", func(b *testing.B) {
		_, prog := newFastPath(b, &fastpath.Config{Rate: fastpath.Rate{PerSecond: 0.001, Burst: 1}})
		measure(b, prog)
	})
	b.Run("policer-drop-precise", func(b *testing.B) {
		_, prog := newFastPath(b, &fastpath.Config{PreciseClock: true, Rate: fastpath.Rate{PerSecond: 0.001, Burst: 1}})
		measure(b, prog)
	})
	b.Run("blocked", func(b *testing.B) {
		fp, prog := newFastPath(b, nil)
		if err := fp.SetPolicy(netipPrefix(c.flow.Src), fastpath.Block); err != nil {
			b.Fatal(err)
		}
		measure(b, prog)
	})
	b.Run("flow-drop", func(b *testing.B) {
		fp, prog := newFastPath(b, nil)
		if err := fp.Install(c.flow, fastpath.Entry{Action: fastpath.Drop}); err != nil {
			b.Fatal(err)
		}
		measure(b, prog)
	})
	b.Run("flow-swap-tx-atomic", func(b *testing.B) {
		fp, prog := newFastPath(b, &fastpath.Config{AtomicCounters: true})
		if err := fp.Install(c.flow, fastpath.Entry{Action: fastpath.Transmit, SwapMAC: true}); err != nil {
			b.Fatal(err)
		}
		measure(b, prog)
	})
	b.Run("flow-swap-tx", func(b *testing.B) {
		fp, prog := newFastPath(b, nil)
		if err := fp.Install(c.flow, fastpath.Entry{Action: fastpath.Transmit, SwapMAC: true}); err != nil {
			b.Fatal(err)
		}
		measure(b, prog)
	})
}
