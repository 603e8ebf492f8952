// Command xdp-filter drops the frames that match -drop (default: HTTP,
// 'tcp port 80'), in the kernel by default — the XDP program drops them
// before the stack sees them, nothing reaches user space — or, with
// -userspace, by redirecting them to an AF_XDP socket that drops them.
// Everything else goes on to the kernel stack untouched, and with
// -keep-mgmt (default) ARP, IPv6 ND, SSH and DNS are never dropped.
//
// It shows what package filter does on its own: a compiled tcpdump
// expression decides in the kernel, per frame, between dropping it, passing
// it to the stack and redirecting it to a socket, and the program's
// counters (redirect.Options.Counters) report the verdicts.
//
// Linux 5.10+, root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF).
//
//	sudo xdp-filter -i eth0 -drop 'tcp port 80 or udp port 19' -json
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/cli"
	"github.com/xdpkit/xdpkit/filter"
	"github.com/xdpkit/xdpkit/metrics"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/redirect"
)

func main() {
	tool := cli.New("xdp-filter", "drop frames matching a filter, in the kernel or in user space", "")
	tool.CoalesceByDefault(cli.SinkCoalesce) // it ends the traffic: coalescing delays nothing
	drop := tool.Flags.String("drop", "tcp port 80", "tcpdump-style expression of the frames to drop")
	userspace := tool.Flags.Bool("userspace", false, "drop in user space (AF_XDP) instead of in the kernel")
	tool.Refuse("say what to drop with -drop", "filter")
	tool.Refuse("it drops on every queue in the kernel, or on one (-q) with -userspace", "queues", "cpus", "shared-umem", "pin")
	tool.Refuse("its filter runs in the program it attaches", "xskmap", "dp")
	tool.Main(func(ctx context.Context) error {
		if !*userspace && (tool.IsSet("q") || tool.IsSet("bind") || tool.IsSet("coalesce")) {
			return errors.New("-q, -bind and -coalesce need -userspace: in the kernel the filter runs on every queue, without a socket")
		}
		if *drop == "" {
			return errors.New("-drop must not be empty (it would drop everything)")
		}
		iface, err := net.InterfaceByName(tool.Iface)
		if err != nil {
			return fmt.Errorf("interface %q: %w", tool.Iface, err)
		}

		// The filter's verdict for matching frames: Drop, in the XDP
		// program itself, or Redirect, to the AF_XDP socket. Frames that
		// do not match, and management traffic with -keep-mgmt, Pass to
		// the kernel stack.
		match := filter.Drop
		if *userspace {
			match = filter.Redirect
		}
		f, err := filter.CompileWithOptions(*drop, match, filter.Pass, &filter.CompileOptions{KeepManagement: tool.KeepMgmt})
		if err != nil {
			return err
		}
		// Counters: the program counts its verdicts, read with prog.Counters.
		prog, err := redirect.Attach(iface.Index, &redirect.Options{Mode: tool.XDPMode, Filter: f, Counters: true})
		if err != nil {
			return err
		}
		defer prog.Close()

		if !*userspace {
			return watchKernel(ctx, tool, prog, *drop)
		}

		// -userspace: a socket on -q gets the matching frames, and its
		// pipeline, without stages, drops them all.
		sock, err := afxdp.Open(tool.Iface, tool.Queue, &afxdp.Config{Bind: tool.Bind, Coalesce: tool.Coalesce, Steering: prog})
		if err != nil {
			return err
		}
		defer sock.Close()
		r, err := pipeline.New(pipeline.Config{Socket: sock, Final: pipeline.Drop})
		if err != nil {
			return err
		}
		m := metrics.New() // what -metrics ADDR serves at /metrics
		m.AddRunner(tool.Iface, tool.Queue, r, sock)
		m.AddProgram(tool.Iface, prog)
		stopMetrics, err := tool.ServeMetrics(m)
		if err != nil {
			return err
		}
		defer stopMetrics()
		stop := tool.LiveRate(r.Snapshot, nil)
		st, err := r.Run(ctx)
		stop()
		if err != nil {
			return err
		}
		return tool.Summary(st, sock, func() map[string]any {
			return map[string]any{"mode": "userspace", "drop": *drop, "kernel_verdicts": counters(prog)}
		})
	})
}

func counters(prog *redirect.Program) any {
	c, err := prog.Counters()
	if err != nil {
		return err.Error()
	}
	return c
}

// watchKernel prints the program's verdict counts each second until ctx
// is done, then the summary: no socket, nothing reaches user space.
func watchKernel(ctx context.Context, tool *cli.Tool, prog *redirect.Program, expr string) error {
	m := metrics.New() // what -metrics ADDR serves at /metrics
	m.AddProgram(tool.Iface, prog)
	stopMetrics, err := tool.ServeMetrics(m)
	if err != nil {
		return err
	}
	defer stopMetrics()
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	prev, _ := prog.Counters()
	prevAt := start
	for {
		select {
		case <-ctx.Done():
			return kernelSummary(tool, prog, expr, time.Since(start))
		case now := <-tick.C:
			cur, err := prog.Counters()
			if err != nil {
				return err
			}
			dt := now.Sub(prevAt).Seconds()
			tool.Logf("seen %.0f pps  dropped %.0f pps  passed %.0f pps  drops %d",
				float64(cur.Dropped+cur.Passed-prev.Dropped-prev.Passed)/dt,
				float64(cur.Dropped-prev.Dropped)/dt, float64(cur.Passed-prev.Passed)/dt, cur.Dropped)
			prev, prevAt = cur, now
		}
	}
}

func kernelSummary(tool *cli.Tool, prog *redirect.Program, expr string, d time.Duration) error {
	c, err := prog.Counters()
	if err != nil {
		return err
	}
	if !tool.JSON {
		tool.Logf("%d frames dropped, %d passed in %.1fs", c.Dropped, c.Passed, d.Seconds())
		return nil
	}
	// In the kernel, frames are counted, not their bytes.
	return tool.PrintJSON(map[string]any{
		"rx_packets": c.Dropped + c.Passed, "rx_bytes": 0, "tx_packets": 0, "tx_bytes": 0,
		"dropped": c.Dropped, "passed": c.Passed, "duration_s": d.Seconds(),
		"mode": "kernel", "drop": expr,
	})
}
