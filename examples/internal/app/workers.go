//go:build linux

package app

import (
	"fmt"
	"runtime"
	"sort"
	"sync"

	"github.com/xdpkit/xdpkit/internal/netlink"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/redirect"
	"github.com/xdpkit/xdpkit/stages"
	"github.com/xdpkit/xdpkit/workers"
)

// Builder makes one worker's pipeline (its own stage instances) and the
// function that reports its own summary fields.
type Builder func(queue int) (cfg pipeline.Config, extra func() map[string]any, err error)

// RunBuilder runs the tool: on one queue (-q), or with -queues on one
// worker per queue, pinned to -cpus; with -pin the redirect program is the
// one pinned under that name in bpffs, shared with other processes. live,
// if not nil, adds to the live line (single-queue mode only).
func (a *App) RunBuilder(build Builder, live func() string) error {
	if a.Queues == "" {
		if a.Pin != "" {
			if err := a.attachPinned(); err != nil {
				return err
			}
		}
		cfg, extra, err := build(a.Queue)
		if err != nil {
			return err
		}
		if err := a.Open(&a.SocketConfig); err != nil {
			return err
		}
		return a.Run(cfg, live, extra)
	}
	link, err := netlink.LinkByName(a.Iface)
	if err != nil {
		return err
	}
	queues, err := workers.ParseList(a.Queues, max(link.NumRXQueues, 1))
	if err != nil {
		return fmt.Errorf("-queues: %w", err)
	}
	var cpus []int
	if a.CPUs != "" {
		if cpus, err = workers.ParseCPUs(a.CPUs, runtime.NumCPU()); err != nil {
			return fmt.Errorf("-cpus: %w", err)
		}
	}
	if a.Pin != "" {
		if err := a.attachPinned(); err != nil {
			return err
		}
	} else {
		mode, _ := a.mode()
		opts, err := a.redirectOptions(mode)
		if err != nil {
			return err
		}
		if a.Prog, err = redirect.Attach(link.Index, opts); err != nil {
			return err
		}
	}
	var mu sync.Mutex
	extras := map[int]func() map[string]any{}
	bind, _ := a.bindMode()
	sc := a.SocketConfig
	sc.Bind = bind
	set, err := workers.New(workers.Config{
		Interface:  a.Iface,
		Queues:     queues,
		CPUs:       cpus,
		SharedUMEM: a.SharedUMEM,
		Socket:     sc,
		Program:    a.Prog,
		Pipeline: func(q int) (pipeline.Config, error) {
			cfg, extra, err := build(q)
			mu.Lock()
			extras[q] = extra
			mu.Unlock()
			return cfg, err
		},
	})
	if err != nil {
		return err
	}
	defer set.Close()
	fmt.Fprintf(a.Stderr, "%s: %d workers on %s queues %v, CPUs %v\n", a.Name, len(queues), a.Iface, set.Queues(), set.CPUs())
	ctx, cancel := a.Context()
	defer cancel()
	stopLive := a.LiveRate(func() pipeline.Stats { return set.Snapshot().Total }, nil)
	st, err := set.Run(ctx)
	stopLive()
	if err != nil {
		return err
	}
	return a.Summary(st.Total, func() map[string]any {
		out := map[string]any{}
		perQueue := map[string]any{}
		for q, e := range extras {
			qs := st.PerQueue[q]
			fields := map[string]any{"rx_packets": qs.RXPackets, "tx_packets": qs.TXPackets + qs.Forwarded, "dropped": qs.Dropped}
			if e != nil {
				m := e()
				for k, v := range m {
					fields[k] = v
				}
				merge(out, m)
			}
			perQueue[fmt.Sprint(q)] = fields
		}
		if flows, ok := out["top_flows"].([]stages.Flow); ok {
			sort.Slice(flows, func(i, j int) bool { return flows[i].Packets > flows[j].Packets })
		}
		out["per_queue"] = perQueue
		out["cpus"] = set.CPUs()
		return out
	})
}

// attachPinned attaches, or joins, the program pinned under -pin.
func (a *App) attachPinned() error {
	ifindex, err := ifindexOf(a.Iface)
	if err != nil {
		return err
	}
	mode, _ := a.mode()
	opts, err := a.redirectOptions(mode)
	if err != nil {
		return err
	}
	a.Prog, err = redirect.AttachPinned(ifindex, a.Pin, opts)
	return err
}

// merge adds the fields of m into out: numbers and maps of numbers are
// summed, slices of flows appended, anything else kept from the first.
func merge(out, m map[string]any) {
	for k, v := range m {
		switch v := v.(type) {
		case uint64:
			o, _ := out[k].(uint64)
			out[k] = o + v
		case int:
			o, _ := out[k].(int)
			out[k] = o + v
		case map[string]uint64:
			o, _ := out[k].(map[string]uint64)
			if o == nil {
				o = map[string]uint64{}
			}
			for name, n := range v {
				o[name] += n
			}
			out[k] = o
		case []stages.Flow:
			o, _ := out[k].([]stages.Flow)
			out[k] = append(o, v...)
		default:
			if _, ok := out[k]; !ok {
				out[k] = v
			}
		}
	}
}
