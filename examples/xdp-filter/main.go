//go:build linux

// Command xdp-filter drops the frames that match -drop (default: HTTP,
// 'tcp port 80'), in the kernel by default — the XDP program drops them
// before the stack sees them, nothing reaches user space — or, with
// -userspace, by redirecting them to an AF_XDP socket that drops them.
// Everything else goes on to the kernel stack untouched, and with
// -keep-mgmt (default) ARP, IPv6 ND, SSH and DNS are never dropped.
// Linux 5.10+, root.
//
//	sudo xdp-filter -i eth0 -drop 'tcp port 80 or udp port 19' -json
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/xdpkit/xdpkit/examples/internal/app"
	"github.com/xdpkit/xdpkit/filter"
	"github.com/xdpkit/xdpkit/pipeline"
)

func main() {
	a := app.New("xdp-filter", "drop frames matching a filter, in the kernel or in user space", "")
	drop := a.Flags.String("drop", "tcp port 80", "tcpdump-style expression of the frames to drop")
	userspace := a.Flags.Bool("userspace", false, "drop in user space (AF_XDP) instead of in the kernel")
	app.Main(a, func(a *app.App) error {
		if a.Filter != "" {
			return errors.New("-filter does not apply to xdp-filter: say what to drop with -drop")
		}
		if *drop == "" {
			return errors.New("-drop must not be empty (it would drop everything)")
		}
		if *userspace {
			if a.Queues != "" || a.Pin != "" {
				return errors.New("-userspace runs on one queue (-q), without -pin")
			}
			if err := a.AttachFilter(*drop, filter.Redirect, filter.Pass); err != nil {
				return err
			}
			return a.RunBuilder(func(int) (pipeline.Config, func() map[string]any, error) {
				return pipeline.Config{Final: pipeline.Drop}, func() map[string]any {
					return map[string]any{"mode": "userspace", "drop": *drop, "kernel_verdicts": counters(a)}
				}, nil
			}, nil)
		}
		if err := a.AttachFilter(*drop, filter.Drop, filter.Pass); err != nil {
			return err
		}
		return kernelMode(a, *drop)
	})
}

func counters(a *app.App) any {
	c, err := a.Prog.Counters()
	if err != nil {
		return err.Error()
	}
	return c
}

// kernelMode waits, printing the program's verdict counts each second.
func kernelMode(a *app.App, expr string) error {
	ctx, cancel := a.Context()
	defer cancel()
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	prev, _ := a.Prog.Counters()
	prevAt := start
	for {
		select {
		case <-ctx.Done():
			return summary(a, expr, time.Since(start))
		case now := <-tick.C:
			cur, err := a.Prog.Counters()
			if err != nil {
				return err
			}
			dt := now.Sub(prevAt).Seconds()
			fmt.Fprintf(a.Stderr, "xdp-filter: seen %.0f pps  dropped %.0f pps  passed %.0f pps  drops %d\n",
				float64(cur.Dropped+cur.Passed-prev.Dropped-prev.Passed)/dt,
				float64(cur.Dropped-prev.Dropped)/dt, float64(cur.Passed-prev.Passed)/dt, cur.Dropped)
			prev, prevAt = cur, now
		}
	}
}

func summary(a *app.App, expr string, d time.Duration) error {
	c, err := a.Prog.Counters()
	if err != nil {
		return err
	}
	if !a.JSON {
		fmt.Fprintf(a.Stderr, "xdp-filter: %d frames dropped, %d passed in %.1fs\n", c.Dropped, c.Passed, d.Seconds())
		return nil
	}
	// In the kernel, frames are counted, not their bytes.
	out := map[string]any{
		"rx_packets": c.Dropped + c.Passed, "rx_bytes": 0, "tx_packets": 0, "tx_bytes": 0,
		"dropped": c.Dropped, "passed": c.Passed, "duration_s": d.Seconds(),
		"mode": "kernel", "drop": expr,
	}
	enc := json.NewEncoder(a.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
