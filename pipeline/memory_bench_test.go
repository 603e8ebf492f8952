//go:build linux

package pipeline_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/internal/testframes"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/stages"
	"github.com/xdpkit/xdpkit/umem"
)

// memFlows are 1024 UDP flows (testframes.UDP4, 192.0.2.1 → 198.51.100.2:53,
// with source ports 1024-2047), one per frame in turn.
func memFlows() [][]byte {
	out := make([][]byte, 1024)
	for i := range out {
		f := bytes.Clone(testframes.UDP4)
		binary.BigEndian.PutUint16(f[34:], uint16(1024+i))
		out[i] = f
	}
	return out
}

// BenchmarkRunnerMemory is the user-space ceiling: the Runner over a
// memory socket (afxdp.NewMemory) whose kernel side is the cheapest there
// is — DeliverN puts 64 frames on the RX ring, Transmitted completes what
// was sent — so that nothing but the user-space side is measured, per
// core, in batches of 64 over 1024 flows: drop (no stage), drop-stage
// (a Raw stage that reads a byte and drops; drop-frames, the same as a
// FrameStage), MAC-swap reflect (a FrameStage; reflect-per-packet calls it
// once per frame), FlowCounter count, LoadBalancer (DSR, 4 backends, connection table),
// and the hand loop (Receive, Frames, touch, Recycle) under drop for
// reference.
func BenchmarkRunnerMemory(b *testing.B) {
	const batch = 64
	flows := memFlows()
	newSock := func(b *testing.B) (*afxdp.Socket, *afxdp.MemoryKernel) {
		s, k, err := afxdp.NewMemory(&afxdp.Config{
			UMEMOptions: &umem.Options{FrameCount: 4096, FillRingSize: 2048, CompletionRingSize: 2048, HugePages: true, HugePageFallback: true},
			RXRingSize:  2048, TXRingSize: 2048,
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		k.Fill(flows...)
		return s, k
	}
	report := func(b *testing.B, frames int) {
		ns := float64(b.Elapsed().Nanoseconds()) / float64(frames)
		b.ReportMetric(ns, "ns/frame")
		b.ReportMetric(1e3/ns, "Mpps")
		b.ReportMetric(0, "ns/op")
	}
	run := func(b *testing.B, st []pipeline.Stage, final pipeline.Verdict, tick func(time.Time)) {
		s, k := newSock(b)
		r, err := pipeline.New(pipeline.Config{Socket: s, Stages: st, Final: final, BatchSize: batch})
		if err != nil {
			b.Fatal(err)
		}
		if tick != nil {
			tick(time.Now())
		}
		frames := 0
		b.ReportAllocs()
		for b.Loop() {
			k.DeliverN(batch, len(flows[0]))
			n, err := r.Poll()
			if err != nil || n != batch {
				b.Fatalf("Poll: %d, %v", n, err)
			}
			frames += n
			k.Transmitted(nil)
		}
		if st := r.Stats(); st.RXPackets != uint64(frames) || st.Dropped+st.TXPackets != st.RXPackets {
			b.Fatalf("stats %+v after %d frames", st, frames)
		}
		report(b, frames)
	}
	b.Run("hand-drop", func(b *testing.B) {
		s, k := newSock(b)
		descs := make([]afxdp.Desc, batch)
		bufs := make([][]byte, batch)
		frames := 0
		var sink byte
		for b.Loop() {
			k.DeliverN(batch, len(flows[0]))
			n, _ := s.Receive(descs)
			s.Frames(descs[:n], bufs)
			for _, f := range bufs[:n] {
				sink ^= f[12]
			}
			_ = s.Recycle(descs[:n])
			frames += n
		}
		_ = sink
		report(b, frames)
	})
	b.Run("drop", func(b *testing.B) { run(b, nil, pipeline.Drop, nil) })
	b.Run("drop-stage", func(b *testing.B) {
		// What the bench's pipeline drop cell runs: a Raw stage that reads
		// the EtherType and drops.
		var sink byte
		st := pipeline.RawFunc(func(p *pipeline.Packet) pipeline.Verdict {
			sink ^= p.Data[12]
			return pipeline.Drop
		})
		run(b, []pipeline.Stage{st}, pipeline.Drop, nil)
		_ = sink
	})
	b.Run("drop-frames", func(b *testing.B) {
		// The same as a FrameStage: one call per batch.
		var sink byte
		st := pipeline.FramesFunc(func(fb *pipeline.FrameBatch) {
			var t byte
			for i, f := range fb.Frames {
				t ^= f[12]
				fb.Verdicts[i] = pipeline.Drop
			}
			sink ^= t
		})
		run(b, []pipeline.Stage{st}, pipeline.Drop, nil)
		_ = sink
	})
	b.Run("reflect", func(b *testing.B) { run(b, []pipeline.Stage{stages.NewMACSwap()}, pipeline.Drop, nil) })
	b.Run("reflect-per-packet", func(b *testing.B) {
		// The same stage called once per frame (a RawFunc hides that it is a FrameStage).
		run(b, []pipeline.Stage{pipeline.RawFunc(stages.NewMACSwap().Handle)}, pipeline.Drop, nil)
	})
	b.Run("count", func(b *testing.B) {
		fc, err := stages.NewFlowCounter(4096)
		if err != nil {
			b.Fatal(err)
		}
		run(b, []pipeline.Stage{fc}, pipeline.Drop, nil)
	})
	b.Run("lb", func(b *testing.B) {
		var backends []stages.Backend
		for i := range 4 {
			backends = append(backends, stages.Backend{IP: netip.AddrFrom4([4]byte{10, 0, 0, byte(10 + i)}), MAC: net.HardwareAddr{2, 0, 0, 0, 0, byte(i)}})
		}
		lb, err := stages.NewLoadBalancer(netip.MustParseAddrPort("198.51.100.2:53"), backends, nil)
		if err != nil {
			b.Fatal(err)
		}
		run(b, []pipeline.Stage{lb}, pipeline.Drop, lb.Tick)
	})
}
