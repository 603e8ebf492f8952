//go:build linux

package filter_test

import (
	"testing"

	"github.com/xdpkit/xdpkit/filter"
	"github.com/xdpkit/xdpkit/internal/testutils"
)

var benchExprs = []struct {
	name, expr string
	keep       bool
}{
	{"all", "", false},
	{"udp port", "udp port 9999", false},
	{"port", "port 9999", false},
	{"hosts", "host 10.0.0.1 or 10.0.0.2 or 10.0.0.3 or 10.0.0.4", false},
	{"vlan", "udp port 9999 or (vlan and udp port 9999)", false},
	{"keep+udp port", "udp port 9999", true},
}

func BenchmarkCompile(b *testing.B) {
	for _, bc := range benchExprs {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := filter.CompileWithOptions(bc.expr, filter.Redirect, filter.Pass, &filter.CompileOptions{KeepManagement: bc.keep}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRun measures the filter in the kernel with BPF_PROG_TEST_RUN
// on an IPv4 UDP frame to port 9999 (the worst case for most: every test
// up to the last port comparison runs).
func BenchmarkRun(b *testing.B) {
	testutils.RequirePrivileged(b)
	mac := []byte{2, 0, 0, 0, 0, 1}
	frame := testutils.UDPFrame(mac, mac, [4]byte{10, 0, 0, 2}, [4]byte{10, 0, 0, 1}, 1234, 9999, make([]byte, 18))
	for _, bc := range benchExprs {
		b.Run(bc.name, func(b *testing.B) {
			p, err := filter.CompileWithOptions(bc.expr, filter.Drop, filter.Pass, &filter.CompileOptions{KeepManagement: bc.keep})
			if err != nil {
				b.Fatal(err)
			}
			prog := mustLoad(b, p)
			ret, perFrame, err := prog.Benchmark(frame, b.N, nil)
			if err != nil {
				b.Fatal(err)
			}
			if filter.Action(ret) != filter.Drop {
				b.Fatalf("verdict %s, want drop", filter.Action(ret))
			}
			b.ReportMetric(float64(perFrame.Nanoseconds()), "ns/frame")
			b.ReportMetric(float64(len(p.Instructions())), "insns")
		})
	}
}
