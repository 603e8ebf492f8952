// Command xdp-ratelimit polices each source address to -rate packets per
// second (a token bucket with -burst): frames over the rate are dropped and
// counted (rate_dropped), frames within it are counted as passed. The
// source table has a fixed size, so a flood of spoofed sources cannot grow
// memory. It shows the policing stage on its own; in a real service the
// passed frames go on to the next stage in pipeline.Config.Stages.
//
// Linux 5.10+, root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF).
//
//	sudo xdp-ratelimit -i eth0 -rate 1000 -burst 100 -filter 'udp port 53'
package main

import (
	"context"
	"fmt"
	"net"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/cli"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/redirect"
	"github.com/xdpkit/xdpkit/stages"
	"github.com/xdpkit/xdpkit/workers"
)

func main() {
	tool := cli.New("xdp-ratelimit", "police each source address to a packet rate", "")
	rate := tool.Flags.Float64("rate", 1000, "packets per second allowed per source address")
	burst := tool.Flags.Int("burst", 0, "packets a source may send back to back (0: rate/10)")
	sources := tool.Flags.Int("sources", 65536, "source table size (fixed)")
	tool.Main(func(ctx context.Context) error {
		// A worker's pipeline: the limiter drops what is over the rate and
		// passes the rest on, to the Final verdict here. With -queues each
		// worker polices the sources its queue sees: RSS keeps a source's
		// flows on one queue, but a source spread over several queues gets
		// the rate on each.
		newPipeline := func() (pipeline.Config, func() map[string]any, error) {
			rl, err := stages.NewRateLimiter(stages.RateLimitOptions{Rate: *rate, Burst: *burst, Capacity: *sources})
			if err != nil {
				return pipeline.Config{}, nil, err
			}
			summary := func() map[string]any {
				st := rl.Stats()
				return map[string]any{
					"passed":        st.Passed,
					"rate_dropped":  st.Dropped,
					"non_ip":        st.NonIP,
					"evicted":       st.Evicted,
					"sources":       st.Sources,
					"rate_pps":      *rate,
					"burst_packets": *burst,
				}
			}
			return pipeline.Config{Stages: []pipeline.Stage{rl}, Final: pipeline.Drop}, summary, nil
		}
		return run(ctx, tool, newPipeline)
	})
}

// run attaches the redirect program and runs a worker, with a pipeline
// from newPipeline, on each queue: the one of -q, or each of -queues.
func run(ctx context.Context, tool *cli.Tool, newPipeline func() (pipeline.Config, func() map[string]any, error)) error {
	iface, err := net.InterfaceByName(tool.Iface)
	if err != nil {
		return fmt.Errorf("interface %q: %w", tool.Iface, err)
	}
	opts, err := tool.RedirectOptions() // -xdp-mode, and -filter in front of the redirect
	if err != nil {
		return err
	}
	var prog *redirect.Program
	if tool.Pin != "" {
		prog, err = redirect.AttachPinned(iface.Index, tool.Pin, opts) // shared with other processes
	} else {
		prog, err = redirect.Attach(iface.Index, opts)
	}
	if err != nil {
		return err
	}
	defer prog.Close()

	queues, cpus, err := tool.WorkerQueues(prog.Queues())
	if err != nil {
		return err
	}
	summaries := map[int]func() map[string]any{}
	set, err := workers.New(workers.Config{
		Interface:  tool.Iface,
		Queues:     queues,
		CPUs:       cpus,
		SharedUMEM: tool.SharedUMEM,
		Socket:     afxdp.Config{Bind: tool.Bind},
		Program:    prog, // each worker's socket is registered for its queue
		Pipeline: func(queue int) (pipeline.Config, error) {
			cfg, summary, err := newPipeline()
			summaries[queue] = summary
			return cfg, err
		},
	})
	if err != nil {
		return err
	}
	defer set.Close()
	tool.Logf("workers on %s queues %v, CPUs %v", tool.Iface, set.Queues(), set.CPUs())
	stop := tool.LiveRate(func() pipeline.Stats { return set.Snapshot().Total }, nil)
	st, err := set.Run(ctx) // until Ctrl-C or -duration
	stop()
	if err != nil {
		return err
	}
	return tool.WorkersSummary(st, set, summaries)
}
