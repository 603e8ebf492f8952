//go:build linux

package main

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
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
			"xdpkit.lb.fastpath/lb/60":           "lb",
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
			if c.Mode == "lb" {
				continue // TestLBCells
			}
			a := cellArgs(c)
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

func TestLBCells(t *testing.T) {
	for _, quick := range []bool{false, true} {
		lbs := map[string]Cell{}
		for _, c := range plan(quick) {
			if c.Mode == "lb" {
				lbs[c.Key] = c
			} else if a := cellArgs(c); slices.Contains(a, "-lb-vip") {
				t.Errorf("%s: not an lb cell but has lb arguments %v", c.Key, a)
			}
		}
		if len(lbs) != 2 {
			t.Fatalf("quick=%v: lb cells %v, want xdpkit.lb/lb/60 and xdpkit.lb.fastpath/lb/60", quick, lbs)
		}
		for key, fast := range map[string]bool{"xdpkit.lb/lb/60": false, "xdpkit.lb.fastpath/lb/60": true} {
			c, ok := lbs[key]
			if !ok {
				t.Errorf("quick=%v: no cell %s", quick, key)
				continue
			}
			if c.Impl != "xdpkit" || c.Group != "lb" || c.Size != 60 || c.Flows != 1024 {
				t.Errorf("%s: %+v, want xdpkit, group lb, 60 B, 1024 flows", key, c)
			}
			if !c.toGen() || c.probe() || c.xdpDrops() {
				t.Errorf("%s: toGen %v probe %v xdpDrops %v, want counted at the generator, no probe", key, c.toGen(), c.probe(), c.xdpDrops())
			}
			if (c.FastPath == "lb") != fast || (c.FastPath != "" && !fast) {
				t.Errorf("%s: FastPath %q", key, c.FastPath)
			}
			if slices.Contains(c.Args, "-poll") != fast {
				t.Errorf("%s: args %v: the fast-path cell waits (-poll), the AF_XDP one spins", key, c.Args)
			}
			a := cellArgs(c)
			want := []string{"-lb-vip", dutIP + ":9", "-lb-backend-mac", genMAC, "-lb-backends", "4"}
			if !slices.Equal(a, want) {
				t.Errorf("%s: cellArgs %v, want %v", key, a, want)
			}
		}
	}
	// Counted at the generator's sink, like reflect.
	c := cell("xdpkit", "lb", "lb", 60, "lb")
	t0 := time.Now()
	a := snap{T: t0, C: map[string]map[string]uint64{genIf: {"rx_queue_0_xdp_packets": 1000}, dutIf: {"rx_queue_0_xdp_redirect": 0}}}
	b := snap{T: t0.Add(time.Second), C: map[string]map[string]uint64{genIf: {"rx_queue_0_xdp_packets": 3001000}, dutIf: {"rx_queue_0_xdp_redirect": 9e6}}}
	if f := frames(c, a, b); f != 3e6 {
		t.Errorf("lb frames %v, want 3e6 from the generator's rx", f)
	}
}

func TestLBTargets(t *testing.T) {
	sum := func(key string, mpps float64) *Summary {
		for _, c := range plan(true) {
			if c.Key == key {
				return &Summary{Cell: c, Runs: 3, Mpps: mpps, MppsMin: mpps, MppsMax: mpps}
			}
		}
		t.Fatalf("no cell %s", key)
		return nil
	}
	ss := []*Summary{sum("kernel-xdp/reflect/60", 8), sum("xdpkit.lb/lb/60", 1), sum("xdpkit.lb.fastpath/lb/60", 6), sum("kernel-xdp.1024.flows/reflect/60", 7.5)}
	if k := ss[3].Cell; k.Flows != 1024 || k.Group != "lb" || !k.toGen() {
		t.Errorf("kernel ceiling for the lb cells: %+v, want 1024 flows in group lb, counted at the generator", k)
	}
	ts, _ := targets(ss, extras{})
	got := map[string]Target{}
	for _, tt := range ts {
		got[tt.Name] = tt
	}
	for name, met := range map[string]bool{"lb fastpath / lb (AF_XDP), 64B, 1024 flows": true, "lb fastpath / kernel-xdp reflect, 64B, 1 flow": true, "lb fastpath / kernel-xdp reflect, 64B, same 1024 flows": true} {
		tt, ok := got[name]
		if !ok || tt.Met == nil || *tt.Met != met {
			t.Errorf("target %q: %+v, want met=%v", name, tt, met)
		}
	}
	if r := got["lb fastpath / lb (AF_XDP), 64B, 1024 flows"].Result; !strings.Contains(r, "6.00x") {
		t.Errorf("lb ratio: %q, want 6.00x", r)
	}
	if r := got["lb fastpath / kernel-xdp reflect, 64B, 1 flow"].Result; !strings.Contains(r, "0.75x") {
		t.Errorf("lb vs kernel ratio: %q, want 0.75x", r)
	}
	if r := got["lb fastpath / kernel-xdp reflect, 64B, same 1024 flows"].Result; !strings.Contains(r, "0.80x") {
		t.Errorf("lb vs kernel over the same flows: %q, want 0.80x", r)
	}
	ss[2].Mpps = 2.5 // 2.5x the AF_XDP lb, 0.31x the kernel
	ts, _ = targets(ss, extras{})
	for _, tt := range ts {
		if strings.HasPrefix(tt.Name, "lb fastpath") && (tt.Met == nil || *tt.Met) {
			t.Errorf("target %q at 2.5 Mpps: %+v, want missed", tt.Name, tt)
		}
	}
	fp := fastPathRatios(ss)
	if len(fp) != 1 || !strings.Contains(fp[0].Result, "kernel-xdp reflect") || !strings.Contains(fp[0].Result, "0.33x kernel-xdp reflect over the same 1024 flows (7.500)") {
		t.Errorf("fastPathRatios %+v: want the lb fast-path cell against kernel-xdp reflect", fp)
	}
}

func TestTXCells(t *testing.T) {
	for _, quick := range []bool{false, true} {
		txs := map[string]Cell{}
		for _, c := range plan(quick) {
			if c.tx() {
				txs[c.Key] = c
			}
		}
		want := []string{"xdpkit.xdp-gen/tx/64", "dpdk/tx/64"}
		if !quick {
			want = append(want, "xdpkit.xdp-gen/tx/1500", "dpdk/tx/1500")
		}
		for _, k := range want {
			c, ok := txs[k]
			if !ok {
				t.Errorf("quick=%v: no cell %s", quick, k)
				continue
			}
			if c.Group != "tx" || c.probe() || c.toGen() || c.xdpDrops() || c.Flows != 0 {
				t.Errorf("%s: %+v: want group tx, no probe, no flows, not counted as reflect or XDP drops", k, c)
			}
		}
	}
	keys := map[string]bool{}
	for _, c := range plan(false) {
		keys[c.Key] = true
	}
	for _, c := range optInCells() {
		if keys[c.Key] || !c.tx() && c.Group != "levers" {
			t.Errorf("opt-in cell %s: in the plan too, or neither a TX cell nor a lever", c.Key)
		}
		keys[c.Key] = true
	}
	if cs, err := filterCells(plan(false), "burst256"); err != nil || len(cs) != 3 {
		t.Errorf("-only burst256: %d cells (%v), want the 3 opt-in burst256 cells", len(cs), err)
	}
	if cs, err := filterCells(plan(false), "^xdpkit.gen.Sender/tx/64$"); err != nil || len(cs) != 1 || !slices.Contains(cs[0].Args, "-huge") {
		t.Errorf("-only xdpkit.gen.Sender/tx/64: %v (%v), want the xdpkit-dut cell, on hugepages", cs, err)
	}
	if cs, _ := filterCells(plan(false), ""); len(cs) != len(plan(false)) {
		t.Errorf("no -only: %d cells, want the plan's %d (no opt-in cells)", len(cs), len(plan(false)))
	}
	// Counted where the frames arrive, xbv1's sink, never at the DUT.
	c := cell("dpdk", "", "tx", 64, "tx")
	t0 := time.Now()
	a := snap{T: t0, C: map[string]map[string]uint64{genIf: {"rx_queue_0_xdp_packets": 0, "rx_queue_0_xdp_bytes": 0}, dutIf: {sysfsTXDropped: 10, "rx_queue_0_xdp_redirect": 0}}}
	b := snap{T: t0.Add(time.Second), C: map[string]map[string]uint64{genIf: {"rx_queue_0_xdp_packets": 2e6, "rx_queue_0_xdp_bytes": 2e6 * 50}, dutIf: {sysfsTXDropped: 1000010, "rx_queue_0_xdp_redirect": 7e6}}}
	if f := frames(c, a, b); f != 2e6 {
		t.Errorf("tx frames %v, want 2e6 from the sink's xdp_packets", f)
	}
	var o options
	var r Run
	o.compute(c, &r, a, b, nil)
	if r.Mpps != 2 || r.VethDropMpps != 1 || r.GenMpps != 3 || r.FrameBytes != 64 {
		t.Errorf("compute: Mpps %v, veth drop %v, offered %v, frame bytes %v; want 2, 1, 3, 64", r.Mpps, r.VethDropMpps, r.GenMpps, r.FrameBytes)
	}
}

func TestTXArgv(t *testing.T) {
	dir := t.TempDir()
	o := options{bin: dir, xdpGen: dir + "/xdp-gen", testpmd: "/usr/bin/dpdk-testpmd", dutCPU: 1}
	if err := os.WriteFile(dir+"/xdpkit-dut", nil, 0o755); err != nil {
		t.Fatal(err)
	}
	cells := map[string]Cell{}
	for _, c := range append(plan(false), optInCells()...) {
		cells[c.Key] = c
	}
	for key, want := range map[string][]string{
		"xdpkit.xdp-gen/tx/64":    {o.xdpGen, "-i", dutIf, "-dst", genIP + ":9", "-src", dutIP + ":9", "-dst-mac", genMAC, "-size", "64", "-json"},
		"xdpkit.xdp-gen/tx/1500":  {o.xdpGen, "-size", "1500"},
		"dpdk/tx/64":              {o.testpmd, "--forward-mode=txonly", "--txpkts=64", "--eth-peer=0," + genMAC, "--tx-ip=" + dutIP + "," + genIP},
		"dpdk/tx/1500":            {"--txpkts=1500"},
		"xdpkit.gen.Sender/tx/64": {"-mode", "tx", "-size", "64", "-tx-dst-mac", genMAC, "-huge"},
	} {
		c, ok := cells[key]
		if !ok {
			t.Errorf("no cell %s", key)
			continue
		}
		argv, ready, err := o.dutArgv(c, time.Minute, "")
		if err != nil {
			t.Errorf("%s: %v", key, err)
			continue
		}
		if !slices.Equal(argv[:3], []string{"taskset", "-c", "1"}) {
			t.Errorf("%s: %v: not pinned to the DUT CPU", key, argv)
		}
		for _, w := range want {
			if !slices.Contains(argv, w) {
				t.Errorf("%s: %v lacks %q", key, argv, w)
			}
		}
		if c.xdpGen() {
			if ready != "sending on" || c.dutwin() || slices.Contains(argv, "-huge") {
				t.Errorf("%s: ready %q, dutwin %v, argv %v: xdp-gen has no window protocol nor -huge", key, ready, c.dutwin(), argv)
			}
			if i := slices.Index(argv, "-duration"); i < 0 || argv[i+1] != "1m0s" {
				t.Errorf("%s: %v: want -duration bounded like the other DUTs", key, argv)
			}
		}
	}
	c := cells["xdpkit.xdp-gen/tx/64"]
	o.xdpGen = ""
	if _, _, err := o.dutArgv(c, time.Minute, ""); err == nil || o.unavailable(c) == "" {
		t.Errorf("xdp-gen cell without a built xdp-gen: no error")
	}
}

func TestTXTargets(t *testing.T) {
	sum := func(key string, mpps float64) *Summary {
		for _, c := range plan(false) {
			if c.Key == key {
				return &Summary{Cell: c, Runs: 3, Mpps: mpps, MppsMin: mpps, MppsMax: mpps, FrameBytes: float64(c.Size)}
			}
		}
		t.Fatalf("no cell %s", key)
		return nil
	}
	ss := []*Summary{sum("xdpkit.xdp-gen/tx/64", 2), sum("dpdk/tx/64", 1.6), sum("xdpkit.xdp-gen/tx/1500", 0.9), sum("dpdk/tx/1500", 1)}
	ts, _ := targets(ss, extras{})
	got := map[string]Target{}
	for _, tt := range ts {
		got[tt.Name] = tt
	}
	for name, want := range map[string]struct {
		met   bool
		ratio string
	}{
		"tx 64B (no FCS): xdp-gen / DPDK testpmd txonly":   {true, "1.25x"},
		"tx 1500B (no FCS): xdp-gen / DPDK testpmd txonly": {false, "0.90x"},
	} {
		tt, ok := got[name]
		if !ok || tt.Met == nil || *tt.Met != want.met || !strings.Contains(tt.Result, want.ratio) || tt.Goal != ">= 1.0x" {
			t.Errorf("target %q: %+v, want met=%v, %s", name, tt, want.met, want.ratio)
		}
	}
	tx := txRatios(ss)
	if len(tx) != 4 || !strings.Contains(tx[0].Result, "= 1.25x DPDK (1.600)") || strings.Contains(tx[1].Result, "x DPDK") {
		t.Errorf("txRatios %+v: want xdpkit against DPDK of the same size, DPDK alone", tx)
	}
}
