//go:build linux

package main

// The plan: which implementation runs which scenario with which knobs.

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Cell is one (implementation, variant, mode, frame size) combination.
type Cell struct {
	Key     string   `json:"key"`
	Impl    string   `json:"impl"`    // kernel-xdp | dpdk | c-libxdp | asavie | xdpkit
	Variant string   `json:"variant"` // "" = default configuration
	Mode    string   `json:"mode"`    // drop | reflect | count | l2fwd | lb | tx
	Size    int      `json:"size"`    // frame length without FCS
	Group   string   `json:"group"`
	Args    []string `json:"args,omitempty"` // the variant's DUT flags
	Huge    bool     `json:"hugepages,omitempty"`
	Busy    bool     `json:"busy_poll,omitempty"`
	Flows   int      `json:"flows,omitempty"`
	Bin     string   `json:"bin,omitempty"` // DUT binary, when not the implementation's usual one
	Note    string   `json:"note,omitempty"`

	// FastPath is the xdpkit DUT's -fastpath (police, flowdrop, reflect,
	// lb): the frames are decided in XDP by package fastpath, not by the
	// socket; with lb, the load balancer installs the entries.
	FastPath string `json:"fastpath,omitempty"`
}

// Label is the implementation and variant, as shown in tables.
func (c Cell) Label() string {
	if c.Variant == "" {
		return c.Impl
	}
	return c.Impl + " " + c.Variant
}

// SizeLabel is the frame size as usually quoted (with FCS for 60 B). The
// TX cells' 64 B frames are 64 B without FCS (68 on a wire), as package
// gen counts sizes: "64B+FCS" keeps them apart from the 60 B frames.
func (c Cell) SizeLabel() string {
	switch c.Size {
	case 60:
		return "64B"
	case 64:
		return "64B+FCS"
	}
	return strconv.Itoa(c.Size) + "B"
}

func (c Cell) probe() bool { return c.Mode == "reflect" }

// tx reports whether the DUT is the sender: no generator runs, the DUT
// transmits on xbv0 as fast as it can and the frames are counted where
// they arrive, at xbv1's sink.
func (c Cell) tx() bool { return c.Mode == "tx" }

// xdpGen reports whether the cell's DUT is the examples/xdp-gen tool.
func (c Cell) xdpGen() bool { return c.Bin == "xdp-gen" }

// dutwin reports whether the cell's DUT speaks the window protocol
// (bench/internal/dutwin): the Go DUTs of this module.
func (c Cell) dutwin() bool { return (c.Impl == "xdpkit" || c.Impl == "asavie") && c.Bin == "" }

// toGen reports whether the cell's frames come back to the generator and
// are counted at its sink: reflect, and lb, whose backends all have the
// generator's MAC address.
func (c Cell) toGen() bool { return c.Mode == "reflect" || c.Mode == "lb" }

// xdpDrops reports whether the cell's frames are dropped in XDP, so that
// veth's xdp_drops counts them: the kernel's XDP_DROP program and the fast
// path's policer and drop entries.
func (c Cell) xdpDrops() bool {
	return c.Mode == "drop" && (c.Impl == "kernel-xdp" || c.FastPath == "police" || c.FastPath == "flowdrop")
}

// cell makes a cell. xdpkit runs with its UMEM on hugepages unless the
// arguments say -4k (the "4k-pages" lever), as a deployment would.
func cell(impl, variant, mode string, size int, group string, args ...string) Cell {
	if impl == "xdpkit" {
		var rest []string
		small := false
		for _, a := range args {
			if a == "-4k" {
				small = true
				continue
			}
			rest = append(rest, a)
		}
		args = rest
		if !small {
			args = append(args, "-huge")
		}
	}
	c := Cell{Impl: impl, Variant: variant, Mode: mode, Size: size, Group: group, Args: args}
	c.Key = strings.ReplaceAll(c.Label(), " ", ".") + "/" + mode + "/" + strconv.Itoa(size)
	for i, a := range args {
		switch a {
		case "-huge", "-H":
			c.Huge = true
		case "-busypoll", "-B":
			c.Busy = true
		case "-fastpath":
			if i+1 < len(args) {
				c.FastPath = args[i+1]
			}
		}
	}
	if mode == "count" || mode == "lb" {
		c.Flows = 1024
	}
	return c
}

// plan returns the cells of a full or quick run.
func plan(quick bool) []Cell {
	var cs []Cell
	add := func(c ...Cell) { cs = append(cs, c...) }
	if quick {
		for _, m := range []string{"drop", "reflect"} {
			add(cell("kernel-xdp", "", m, 60, "peers"),
				cell("xdpkit", "", m, 60, "peers"),
				cell("c-libxdp", "", m, 60, "peers"),
				cell("dpdk", "", m, 60, "peers"),
				cell("asavie", "", m, 60, "peers"))
		}
		add(cell("xdpkit", "poll", "drop", 60, "poll", "-poll"),
			cell("c-libxdp", "poll", "drop", 60, "poll", "-p"))
		add(fastPathCells()...)
		add(lbCells()...)
		add(txCells(true)...)
		return cs
	}
	// Peers, 64 B: rx-drop and reflect, each implementation's default.
	for _, m := range []string{"drop", "reflect"} {
		add(cell("kernel-xdp", "", m, 60, "peers"),
			cell("dpdk", "", m, 60, "peers"),
			cell("c-libxdp", "", m, 60, "peers"),
			cell("asavie", "", m, 60, "peers"),
			cell("xdpkit", "", m, 60, "peers"))
	}
	// rx-drop with a blocking wait when idle: the DUT CPU is not saturated,
	// so DUT CPU ns per frame compares the user-space side.
	add(cell("c-libxdp", "poll", "drop", 60, "poll", "-p"),
		cell("asavie", "poll", "drop", 60, "poll", "-poll"),
		cell("xdpkit", "poll", "drop", 60, "poll", "-poll"),
		cell("xdpkit", "pipeline poll", "drop", 60, "poll", "-poll", "-loop", "pipeline"),
		cell("xdpkit", "pipeline poll runtime-wait", "drop", 60, "poll", "-poll", "-loop", "pipeline", "-wait", "runtime"),
		cell("xdpkit", "pipeline poll frame-stage", "drop", 60, "poll", "-poll", "-loop", "pipeline", "-frame-stage"),
		// The xdp-drop tool's pipeline: no stage, Final Drop (Socket.Discard; the frames unread).
		cell("xdpkit", "pipeline poll no-stage", "drop", 60, "poll", "-poll", "-loop", "pipeline", "-no-stage"),
		cell("xdpkit", "poll+LockOSThread", "drop", 60, "poll", "-poll", "-lock-thread"),
		cell("xdpkit", "poll+LockOSThread runtime-wait", "drop", 60, "poll", "-poll", "-lock-thread", "-wait", "runtime"),
		cell("xdpkit", "poll WaitPoll", "drop", 60, "poll", "-poll", "-wait", "poll"),
		// The same with afxdp.Config.Coalesce: a wait after a burst first
		// sleeps 50 µs without a wake-up.
		cell("xdpkit", "poll WaitPoll coalesce", "drop", 60, "poll", "-poll", "-wait", "poll", "-coalesce", "50us"),
		cell("xdpkit", "pipeline poll coalesce", "drop", 60, "poll", "-poll", "-loop", "pipeline", "-coalesce", "50us"),
		cell("xdpkit", "pipeline poll frame-stage coalesce", "drop", 60, "poll", "-poll", "-loop", "pipeline", "-frame-stage", "-coalesce", "50us"),
		cell("xdpkit", "poll+LockOSThread coalesce", "drop", 60, "poll", "-poll", "-lock-thread", "-coalesce", "50us"),
		// xdp-drop as the tool runs by default (cli.SinkCoalesce).
		cell("xdpkit", "pipeline poll no-stage coalesce", "drop", 60, "poll", "-poll", "-loop", "pipeline", "-no-stage", "-coalesce", "50us"))
	// 1500 B frames.
	add(cell("c-libxdp", "", "drop", 1500, "1500"),
		cell("xdpkit", "", "drop", 1500, "1500"))
	for _, impl := range []string{"dpdk", "c-libxdp", "xdpkit"} {
		add(cell(impl, "", "reflect", 1500, "1500"))
	}
	// xdpkit's levers, reflect 64 B.
	add(cell("xdpkit", "batch16", "reflect", 60, "levers", "-batch", "16"),
		cell("xdpkit", "batch256", "reflect", 60, "levers", "-batch", "256"),
		cell("xdpkit", "4k-pages", "reflect", 60, "levers", "-4k"),
		cell("xdpkit", "no-wakeup", "reflect", 60, "levers", "-nowakeup"),
		cell("xdpkit", "busy-poll", "reflect", 60, "levers", "-busypoll"),
		cell("xdpkit", "poll", "reflect", 60, "levers", "-poll"),
		cell("xdpkit", "poll coalesce", "reflect", 60, "levers", "-poll", "-coalesce", "50us"),
		cell("xdpkit", "txbudget256", "reflect", 60, "levers", "-txbudget", "256"),
		cell("xdpkit", "b256+txb256", "reflect", 60, "levers", "-batch", "256", "-txbudget", "256"),
		cell("xdpkit", "pipeline", "reflect", 60, "levers", "-loop", "pipeline"),
		cell("xdpkit", "pipeline frame-stage", "reflect", 60, "levers", "-loop", "pipeline", "-frame-stage"))
	// Busy polling in rx-drop, against the C anchor's busy-poll mode.
	add(cell("xdpkit", "busy-poll", "drop", 60, "busy", "-busypoll"),
		cell("c-libxdp", "busy-poll", "drop", 60, "busy", "-B"))
	// count (parse + flow table over 1024 flows) and l2fwd.
	add(cell("xdpkit", "", "count", 60, "count"),
		cell("xdpkit", "poll", "count", 60, "count", "-poll"),
		cell("xdpkit", "", "l2fwd", 60, "l2fwd"),
		cell("dpdk", "", "l2fwd", 60, "l2fwd"))
	add(fastPathCells()...)
	add(lbCells()...)
	add(txCells(false)...)
	return cs
}

// txCellSizes are the TX cells' frame lengths without FCS.
var txCellSizes = []int{64, 1500}

// txCells are the transmit cells: the DUT sends on xbv0 as fast as it
// can, nothing else runs, and veth counts the frames at xbv1's sink (see
// tx.go). The headline is xdpkit's own tool, examples/xdp-gen, as a user
// runs it (its defaults: -burst 64, the kernel's TX budget of 32 frames
// per sendto, 4 KiB pages), against DPDK testpmd --forward-mode=txonly on
// the af_xdp PMD, at 64 and 1500 B. quick: the 64 B pair only. (The full
// run has no time for more; optInCells has the levers and xdpkit-dut
// -mode tx.)
func txCells(quick bool) []Cell {
	var cs []Cell
	for _, size := range txCellSizes {
		cs = append(cs, xdpGenCell("xdp-gen", size), cell("dpdk", "", "tx", size, "tx"))
		if quick {
			return cs
		}
	}
	return cs
}

// xdpGenCell is a TX cell of examples/xdp-gen with args (the tool's own
// flags: no -huge, it has none).
func xdpGenCell(variant string, size int, args ...string) Cell {
	c := Cell{Impl: "xdpkit", Variant: variant, Mode: "tx", Size: size, Group: "tx", Args: args, Bin: "xdp-gen"}
	c.Key = strings.ReplaceAll(c.Label(), " ", ".") + "/tx/" + strconv.Itoa(size)
	return c
}

// optInCells run only when -only selects them (a full run has no time
// left for them): the TX levers, and three of reflect. xdp-gen's -burst
// and -tx-budget (the budget only pays when a burst holds more frames
// than the default 32);
// xdpkit-dut -mode tx, which drives the same gen.Sender with the
// harness's window protocol (allocations and syscalls per frame,
// -cpuprofile) and the UMEM on hugepages, also on 4 KiB pages like
// xdp-gen, without the per-frame stamp that xdp-gen always writes, and
// with 2 KiB or 2176-byte frames (unaligned: DPDK's mbuf stride) instead
// of 4 KiB ones, whose headers all fall into the same cache sets (and
// the same strides in reflect); DPDK
// without preferred busy polling and with bursts of 64.
func optInCells() []Cell {
	return []Cell{
		xdpGenCell("xdp-gen burst32", 64, "-burst", "32"),
		xdpGenCell("xdp-gen burst256", 64, "-burst", "256"),
		xdpGenCell("xdp-gen tx-budget256", 64, "-tx-budget", "256"),
		xdpGenCell("xdp-gen burst256 tx-budget256", 64, "-burst", "256", "-tx-budget", "256"),
		xdpGenCell("xdp-gen burst256 tx-budget256", 1500, "-burst", "256", "-tx-budget", "256"),
		cell("xdpkit", "gen.Sender", "tx", 64, "tx"),
		cell("xdpkit", "gen.Sender", "tx", 1500, "tx"),
		cell("xdpkit", "gen.Sender no-stamp", "tx", 64, "tx", "-tx-stamp=false"),
		cell("xdpkit", "gen.Sender no-stamp", "tx", 1500, "tx", "-tx-stamp=false"),
		cell("xdpkit", "gen.Sender 4k-pages", "tx", 64, "tx", "-4k"),
		cell("xdpkit", "gen.Sender 2k-frames", "tx", 64, "tx", "-frame-size", "2048"),
		cell("xdpkit", "gen.Sender unaligned-2176", "tx", 64, "tx", "-frame-size", "2176", "-unaligned"),
		cell("dpdk", "busy_budget0", "tx", 64, "tx", "vdev:busy_budget=0"),
		// The same frame strides in reflect, against the 4k-pages lever.
		cell("xdpkit", "2k-frames", "reflect", 60, "levers", "-frame-size", "2048"),
		cell("xdpkit", "unaligned-2176", "reflect", 60, "levers", "-frame-size", "2176", "-unaligned"),
		cell("xdpkit", "4k-pages unaligned-2176", "reflect", 60, "levers", "-4k", "-frame-size", "2176", "-unaligned"),
		cell("dpdk", "burst64", "tx", 64, "tx", "--burst=64"),
	}
}

// fastPathCells are xdpkit's fast path (package fastpath in the socket's
// redirect program) against the kernel-xdp cells: a policer of 1 packet/s
// that drops nearly every generator frame in XDP, a Drop entry and a
// Transmit+SwapMAC entry for the generator's flow (and the probe's). The
// socket stays, as in a deployment, and gets the misses; it waits in
// Socket.Wait (-poll) since it has next to nothing to do. measure.go gives
// the DUT the flows (dutArgv).
func fastPathCells() []Cell {
	return []Cell{
		cell("xdpkit", "fastpath police", "drop", 60, "fastpath", "-poll", "-fastpath", "police", "-fp-rate", "1", "-fp-burst", "1"),
		cell("xdpkit", "fastpath flow-drop", "drop", 60, "fastpath", "-poll", "-fastpath", "flowdrop"),
		cell("xdpkit", "fastpath reflect", "reflect", 60, "fastpath", "-poll", "-fastpath", "reflect"),
	}
}

// lbCells are stages.LoadBalancer (DSR) over the generator's 1024 flows,
// with every backend's MAC the generator's, so that each balanced frame
// goes back to it and is counted there like a reflected one: in user space
// only (AF_XDP, spinning like the other xdpkit cells), and with the fast
// path, where the balancer offloads each flow's rewrite when it balances
// its first frame and the XDP program transmits the rest (the socket then
// waits, -poll). measure.go gives the DUT the VIP and the MAC (lbArgs).
//
// kernelFlows is the kernel's XDP_TX ceiling for the same traffic: the
// kernel-xdp MAC-swap program under the lb cells' generator, which rewrites
// the source port of every frame over the 1024 flows. XDP runs on the
// generator's CPU on veth, so the generator's own cost per frame is part of
// every XDP cell's rate, and the lb target compares like with like.
func lbCells() []Cell {
	kernelFlows := cell("kernel-xdp", "1024 flows", "reflect", 60, "lb")
	kernelFlows.Flows = 1024
	return []Cell{
		cell("xdpkit", "lb", "lb", 60, "lb"),
		cell("xdpkit", "lb fastpath", "lb", 60, "lb", "-poll", "-fastpath", "lb"),
		kernelFlows,
	}
}

// filterCells selects the cells of cs whose key matches re; with a
// pattern, the opt-in cells are candidates too.
func filterCells(cs []Cell, re string) ([]Cell, error) {
	if re == "" {
		return cs, nil
	}
	cs = append(cs[:len(cs):len(cs)], optInCells()...)
	r, err := regexp.Compile(re)
	if err != nil {
		return nil, err
	}
	var out []Cell
	for _, c := range cs {
		if r.MatchString(c.Key) {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-only %q matches no cell", re)
	}
	return out, nil
}
