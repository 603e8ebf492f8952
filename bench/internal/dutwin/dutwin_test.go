package dutwin

import (
	"testing"
)

var sink [][]byte

// TestEdgeCollectMallocs checks that a snapshot records what collect itself
// allocated, so that the harness can leave it out of the window's
// allocations (the fast path DUT reads map counters there).
func TestEdgeCollectMallocs(t *testing.T) {
	w := New("test", "drop", "", 0)
	rx := uint64(0)
	collect := func() Snap {
		for range 3 {
			sink = append(sink, make([]byte, 4096))
		}
		rx += 100
		return Snap{RX: rx}
	}
	w.flags.Or(flagStart)
	if !w.Pending() {
		t.Fatal("Pending is false after the window opened")
	}
	w.Edge(collect)
	w.flags.Or(flagEnd)
	w.Edge(collect)
	a, b := w.st.A, w.st.B
	if a == nil || b == nil {
		t.Fatalf("snapshots a=%v b=%v, want both", a, b)
	}
	if a.RX != 100 || b.RX != 200 {
		t.Errorf("RX a=%d b=%d, want 100 and 200", a.RX, b.RX)
	}
	if b.CollectMallocs < 3 || b.CollectMallocs > b.Mallocs-a.Mallocs {
		t.Errorf("CollectMallocs %d, want at least 3 and at most the window's %d", b.CollectMallocs, b.Mallocs-a.Mallocs)
	}
	// Threads is read with the collect's allocations: none of the window's.
	if a.Threads < 1 || b.Threads < 1 {
		t.Errorf("Threads a=%d b=%d, want the process's (at least 1)", a.Threads, b.Threads)
	}
	if b.T < a.T {
		t.Errorf("T b=%d before a=%d", b.T, a.T)
	}
}
