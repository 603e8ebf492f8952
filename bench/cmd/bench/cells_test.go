//go:build linux

package main

import (
	"slices"
	"testing"
)

func TestPlan(t *testing.T) {
	for _, quick := range []bool{false, true} {
		seen := map[string]bool{}
		var fast []Cell
		for _, c := range plan(quick) {
			if seen[c.Key] {
				t.Errorf("quick=%v: cell %s twice", quick, c.Key)
			}
			seen[c.Key] = true
			if c.FastPath != "" {
				fast = append(fast, c)
			}
		}
		for _, k := range []string{"kernel-xdp/drop/60", "kernel-xdp/reflect/60", "xdpkit/reflect/60"} {
			if !seen[k] {
				t.Errorf("quick=%v: no cell %s, which the fast path's targets compare with", quick, k)
			}
		}
		want := map[string]string{
			"xdpkit.fastpath.police/drop/60":     "police",
			"xdpkit.fastpath.flow-drop/drop/60":  "flowdrop",
			"xdpkit.fastpath.reflect/reflect/60": "reflect",
		}
		if len(fast) != len(want) {
			t.Errorf("quick=%v: %d fast-path cells, want %d", quick, len(fast), len(want))
		}
		for _, c := range fast {
			if want[c.Key] != c.FastPath {
				t.Errorf("quick=%v: cell %s has FastPath %q, want %q", quick, c.Key, c.FastPath, want[c.Key])
			}
			if got := c.xdpDrops(); got != (c.Mode == "drop") {
				t.Errorf("%s: xdpDrops %v", c.Key, got)
			}
			a := fastPathArgs(c)
			if !slices.Contains(a, genIP) || !slices.Contains(a, dutIP) {
				t.Errorf("%s: fastPathArgs %v lack the generator's addresses", c.Key, a)
			}
			if slices.Contains(a, "-fp-probe") != c.probe() {
				t.Errorf("%s: fastPathArgs %v: probe flow iff the cell has a probe", c.Key, a)
			}
		}
	}
	if c := cell("kernel-xdp", "", "drop", 60, "peers"); !c.xdpDrops() {
		t.Error("kernel-xdp drop is not counted by xdp_drops")
	}
	if c := cell("xdpkit", "", "drop", 60, "peers"); c.xdpDrops() {
		t.Error("xdpkit drop is counted by xdp_drops, not by the XSK redirect")
	}
	c := cell("xdpkit", "fastpath flow-drop", "drop", 60, "fastpath", "-fastpath", "flowdrop")
	c.Flows = 16
	if a := fastPathArgs(c); !slices.Contains(a, "1024") || !slices.Contains(a, "16") {
		t.Errorf("fastPathArgs with 16 flows: %v, want source ports from 1024, 16 of them", a)
	}
}
