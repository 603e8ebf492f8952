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
	Mode    string   `json:"mode"`    // drop | reflect | count | l2fwd | lb
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

// SizeLabel is the frame size as usually quoted (with FCS for 60 B).
func (c Cell) SizeLabel() string {
	if c.Size == 60 {
		return "64B"
	}
	return strconv.Itoa(c.Size) + "B"
}

func (c Cell) probe() bool { return c.Mode == "reflect" }

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
		cell("xdpkit", "poll+LockOSThread", "drop", 60, "poll", "-poll", "-lock-thread"),
		cell("xdpkit", "poll+LockOSThread runtime-wait", "drop", 60, "poll", "-poll", "-lock-thread", "-wait", "runtime"),
		cell("xdpkit", "poll WaitPoll", "drop", 60, "poll", "-poll", "-wait", "poll"))
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
	return cs
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

func filterCells(cs []Cell, re string) ([]Cell, error) {
	if re == "" {
		return cs, nil
	}
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
