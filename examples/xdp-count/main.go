// Command xdp-count counts the redirected traffic per protocol and per flow
// (5-tuple, in a fixed-size table) and shows the top flows live. It shows a
// stage with state of its own (stages.FlowCounter) and how to read that
// state while the pipeline runs: on the Runner's goroutine, from
// pipeline.Config.Tick, never from another goroutine.
//
// Linux 5.10+, root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF).
//
//	sudo xdp-count -i eth0 -top 10 -duration 30s -json
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/cli"
	"github.com/xdpkit/xdpkit/metrics"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/stages"
	"github.com/xdpkit/xdpkit/workers"
)

func main() {
	tool := cli.New("xdp-count", "count redirected packets per protocol and per flow", "")
	tool.CoalesceByDefault(cli.SinkCoalesce) // it ends the traffic: coalescing delays nothing
	top := tool.Flags.Int("top", 10, "how many top flows to show and report")
	flows := tool.Flags.Int("flows", 65536, "flow table size (fixed; flows beyond it are counted as overflow)")
	tool.Main(func(ctx context.Context) error {
		if *top < 0 {
			return errors.New("-top must not be negative")
		}
		c := &counting{top: *top, flows: *flows}
		return run(ctx, tool, c)
	})
}

// counting makes a worker's FlowCounter and keeps a copy of what the live
// line shows.
type counting struct {
	top, flows int

	mu     sync.Mutex // the copy is written on the Runner's goroutine, read by the live line's
	shown  []stages.Flow
	protos map[string]uint64
	n      int
}

// pipeline returns a worker's pipeline, with a FlowCounter of its own, and
// its summary fields.
func (c *counting) pipeline() (pipeline.Config, func() map[string]any, error) {
	counter, err := stages.NewFlowCounter(c.flows)
	if err != nil {
		return pipeline.Config{}, nil, err
	}
	// The table belongs to the Runner's goroutine: copy what the live line
	// shows there, once a second, off the per-packet path.
	snap := func(time.Time) {
		top, protos, n := counter.TopN(c.top), counter.Protocols(), counter.Len()
		c.mu.Lock()
		c.shown, c.protos, c.n = top, protos, n
		c.mu.Unlock()
	}
	cfg := pipeline.Config{Stages: []pipeline.Stage{counter}, Final: pipeline.Drop, Tick: snap, TickInterval: time.Second}
	summary := func() map[string]any { // after Run returned: the table is ours to read
		return map[string]any{
			"protocols":      counter.Protocols(),
			"top_flows":      counter.TopN(c.top),
			"flows":          counter.Len(),
			"flow_overflow":  counter.Overflow(),
			"flow_malformed": counter.Malformed(),
		}
	}
	return cfg, summary, nil
}

// live is the end of the live line: the flow count, the protocols and the
// top 3 flows.
func (c *counting) live() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "flows %d  %v", c.n, c.protos)
	for i, f := range c.shown {
		if i == 3 {
			break
		}
		fmt.Fprintf(&b, "\n    %s %s:%d -> %s:%d  %d pkts %d bytes", stages.ProtoName(f.Proto), f.Src, f.SrcPort, f.Dst, f.DstPort, f.Packets, f.Bytes)
	}
	return b.String()
}

// run attaches the redirect program and runs a worker, with a counting
// pipeline and flow table of its own, on each queue: the one of -q, or each of -queues.
func run(ctx context.Context, tool *cli.Tool, c *counting) error {
	iface, err := net.InterfaceByName(tool.Iface)
	if err != nil {
		return fmt.Errorf("interface %q: %w", tool.Iface, err)
	}
	opts, err := tool.RedirectOptions() // -xdp-mode, and -filter in front of the redirect
	if err != nil {
		return err
	}
	// The program this process attaches, or joins with -pin; or, with
	// -xskmap or -dp, another process's XSKMAP (xdpkit attach, the AF_XDP
	// device plugin), which needs no BPF privileges.
	steer, err := tool.AttachOrJoin(iface.Index, opts)
	if err != nil {
		return err
	}
	defer steer.Close()

	queues, cpus, err := tool.WorkerQueues(steer.Queues)
	if err != nil {
		return err
	}
	summaries := map[int]func() map[string]any{}
	set, err := workers.New(workers.Config{
		Interface:  tool.Iface,
		Queues:     queues,
		CPUs:       cpus,
		SharedUMEM: tool.SharedUMEM,
		Socket:     afxdp.Config{Bind: tool.Bind, Coalesce: tool.Coalesce},
		Steering:   steer, // each worker's socket is registered for its queue
		Pipeline: func(queue int) (pipeline.Config, error) {
			cfg, summary, err := c.pipeline()
			summaries[queue] = summary
			return cfg, err
		},
	})
	if err != nil {
		return err
	}
	defer set.Close()
	tool.Logf("workers on %s queues %v, CPUs %v", tool.Iface, set.Queues(), set.CPUs())
	m := metrics.New() // what -metrics ADDR serves at /metrics
	m.AddWorkers(tool.Iface, set)
	if steer.Program != nil {
		m.AddProgram(tool.Iface, steer.Program)
	}
	stopMetrics, err := tool.ServeMetrics(m)
	if err != nil {
		return err
	}
	defer stopMetrics()
	stop := tool.LiveRate(func() pipeline.Stats { return set.Snapshot().Total }, c.live)
	st, err := set.Run(ctx) // until Ctrl-C or -duration
	stop()
	if err != nil {
		return err
	}
	return tool.WorkersSummary(st, set, summaries)
}
