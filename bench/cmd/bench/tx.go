//go:build linux

package main

// The TX cells: the DUT is the sender. No generator runs; the DUT
// transmits on xbv0 as fast as it can, from its CPU, and the frames are
// counted where they arrive: xbv1's sink (the topology's XDP program,
// which drops them), rx_queue_0_xdp_packets. veth has no TX interrupt:
// xbv1's NAPI, and so the sink, runs on the sending CPU, the DUT's, as in
// the reflect cells (README, "TX cells", says why it is not moved to the
// other CPU).

import (
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// sysfsTXDropped is the counters' key for xbv0's tx_dropped (rtnl
// statistics, /sys/class/net/xbv0/statistics): frames veth dropped because
// xbv1's ring was full. veth's ethtool statistics have no TX counter for
// frames sent through the stack.
const sysfsTXDropped = "sysfs_tx_dropped"

// sysfsStats reads the rtnl statistics of an interface in this netns.
func sysfsStats(ifname string, m map[string]uint64) error {
	for _, name := range []string{"tx_packets", "tx_bytes", "tx_dropped"} {
		b, err := os.ReadFile("/sys/class/net/" + ifname + "/statistics/" + name)
		if err != nil {
			return err
		}
		v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return fmt.Errorf("%s statistics/%s: %w", ifname, name, err)
		}
		m["sysfs_"+name] = v
	}
	return nil
}

// measureTX measures one TX cell whose DUT is running (it started sending
// when it said it was ready): o.warm of warm-up, the window, the perf
// syscall sub-window, then it stops the DUT.
func (o *options) measureTX(ctx context.Context, c Cell, r *Run, dut *proc, base string, perfSub bool, perfRecord string) error {
	if err := sleepCtx(ctx, o.warm); err != nil {
		return err
	}
	a, b, err := o.window(ctx, c, dut, nil, base, perfRecord)
	if err != nil {
		return err
	}
	if dut.exited() {
		return fmt.Errorf("DUT exited during the window: %s", dut.tail(4))
	}
	perfCount, ps, pe := o.perfSyscalls(dut, base, perfSub)
	stopDUT(r, dut)
	o.compute(c, r, a, b, dut)
	setPerfSyscalls(c, r, perfCount, ps, pe)
	o.selfStats(c, r, dut)
	if r.Mpps <= 0 {
		return fmt.Errorf("no frames counted at %s; DUT: %s", genIf, dut.tail(3))
	}
	if math.Abs(r.FrameBytes-float64(c.Size)) > 0.5 {
		return fmt.Errorf("frames of %.1f B on average reached %s, want %d B", r.FrameBytes, genIf, c.Size)
	}
	return nil
}

// perfSyscalls counts the DUT's syscalls with perf for 0.5 s (after the
// window: the tracepoint slows syscalls), if perfSub; -1 if not counted.
// It returns the count and snapshots around it.
func (o *options) perfSyscalls(dut *proc, base string, perfSub bool) (float64, snap, snap) {
	var ps, pe snap
	if !perfSub || dut == nil || dut.exited() {
		return -1, ps, pe
	}
	ps, _ = o.snapshot(nil, nil)
	pp, err := startProc("perf-stat", base+".perf", 15*time.Second, o.perf, "stat", "-x", ",", "-e", "raw_syscalls:sys_enter",
		"-p", strconv.Itoa(dut.pid()), "--", "sleep", "0.5")
	if err != nil {
		return -1, ps, pe
	}
	pp.wait(10 * time.Second)
	pe, _ = o.snapshot(nil, nil)
	if l := pp.find("raw_syscalls:sys_enter"); l != "" {
		if v, err := strconv.ParseFloat(strings.SplitN(l, ",", 2)[0], 64); err == nil {
			return v, ps, pe
		}
	}
	return -1, ps, pe
}
