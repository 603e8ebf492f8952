package main

import (
	"testing"

	"github.com/xdpkit/xdpkit/bench/internal/dutwin"
)

// TestSelfStatsThreadAllocs: the allocations of the Go runtime starting
// an OS thread in the window are left out of the allocations per frame,
// and counted apart; any beyond them still show.
func TestSelfStatsThreadAllocs(t *testing.T) {
	c := Cell{Impl: "xdpkit", Mode: "drop"}
	for _, tc := range []struct {
		name         string
		a, b         dutwin.Snap
		allocs       float64 // per frame
		threadAllocs uint64
		newThreads   int
	}{
		{"none", dutwin.Snap{RX: 0, Mallocs: 100, Threads: 5}, dutwin.Snap{RX: 1e6, T: 1e9, Mallocs: 100, Threads: 5}, 0, 0, 0},
		{"one thread", dutwin.Snap{Mallocs: 100, Threads: 5}, dutwin.Snap{RX: 1e6, T: 1e9, Mallocs: 107, Threads: 6}, 0, 7, 1},
		{"a thread and the frames'", dutwin.Snap{Mallocs: 100, Threads: 5}, dutwin.Snap{RX: 1e6, T: 1e9, Mallocs: 110, Threads: 6}, 3e-6, 7, 1},
		{"no thread", dutwin.Snap{Mallocs: 100, Threads: 5}, dutwin.Snap{RX: 1e6, T: 1e9, Mallocs: 107, Threads: 5}, 7e-6, 0, 0},
		{"threads unknown", dutwin.Snap{Mallocs: 100}, dutwin.Snap{RX: 1e6, T: 1e9, Mallocs: 107, Threads: 6}, 7e-6, 0, 0},
		{"collect's", dutwin.Snap{Mallocs: 100, Threads: 5}, dutwin.Snap{RX: 1e6, T: 1e9, Mallocs: 112, CollectMallocs: 5, Threads: 6}, 0, 7, 1},
	} {
		a, b := tc.a, tc.b
		r := &Run{DUT: &dutwin.Stats{A: &a, B: &b}}
		(&options{}).selfStats(c, r, nil)
		if r.AllocsPerFrame == nil || *r.AllocsPerFrame != tc.allocs || r.ThreadAllocs != tc.threadAllocs || r.NewThreads != tc.newThreads {
			got := -1.0
			if r.AllocsPerFrame != nil {
				got = *r.AllocsPerFrame
			}
			t.Errorf("%s: allocs/frame %g, thread allocs %d, new threads %d; want %g, %d, %d",
				tc.name, got, r.ThreadAllocs, r.NewThreads, tc.allocs, tc.threadAllocs, tc.newThreads)
		}
	}
}
