//go:build linux

// Command xdp-lb is an L4 load balancer: UDP and TCP flows to -vip are
// spread over the -backend servers by a consistent hash of the 5-tuple
// (the same flow always lands on the same backend; removing a backend
// moves only its own flows), rewritten (destination IP and MAC, checksums
// updated incrementally per RFC 1624) and transmitted out of the same
// interface. Backends answer clients directly (direct server return).
// It shows stages.LoadBalancer in a pipeline, and its per-backend counters.
//
// Linux 5.10+, root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF).
//
//	sudo xdp-lb -i eth0 -vip 10.0.0.100:80 \
//	    -backend 10.0.0.11,02:00:00:00:00:11 -backend 10.0.0.12,02:00:00:00:00:12
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/examples/internal/app"
	"github.com/xdpkit/xdpkit/filter"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/redirect"
	"github.com/xdpkit/xdpkit/stages"
	"github.com/xdpkit/xdpkit/workers"
)

// backendList is the repeatable -backend IP,MAC flag.
type backendList []stages.Backend

func (b *backendList) String() string { return fmt.Sprint(*b) }

func (b *backendList) Set(s string) error {
	ipStr, macStr, ok := strings.Cut(s, ",")
	if !ok {
		return fmt.Errorf("backend %q: want IP,MAC", s)
	}
	ip, err := netip.ParseAddr(ipStr)
	if err != nil {
		return fmt.Errorf("backend %q: %w", s, err)
	}
	mac, err := net.ParseMAC(macStr)
	if err != nil || len(mac) != 6 {
		return fmt.Errorf("backend %q: bad MAC %q", s, macStr)
	}
	*b = append(*b, stages.Backend{IP: ip, MAC: mac})
	return nil
}

func main() {
	cli := app.New("xdp-lb", "spread flows to a VIP over backends by consistent hashing", "")
	vip := cli.Flags.String("vip", "", "virtual IP address and port, ADDR:PORT (required)")
	var backends backendList
	cli.Flags.Var(&backends, "backend", "backend IP,MAC (repeat the flag for more)")
	recompute := cli.Flags.Bool("recompute-csum", false, "recompute UDP/TCP checksums instead of updating them (for senders with checksum offload, e.g. veth)")
	cli.Main(func(ctx context.Context) error {
		if *vip == "" {
			return errors.New("-vip ADDR:PORT is required")
		}
		vap, err := netip.ParseAddrPort(*vip)
		if err != nil {
			return fmt.Errorf("-vip: %w", err)
		}
		if len(backends) == 0 {
			return errors.New("at least one -backend IP,MAC is required")
		}
		iface, err := net.InterfaceByName(cli.Iface)
		if err != nil {
			return fmt.Errorf("interface %q: %w", cli.Iface, err)
		}
		// A worker's pipeline: the balancer rewrites flows to the VIP and
		// transmits them, from this interface's MAC; anything else is
		// dropped. With -queues every worker has its own table: built
		// alike, they send each flow to the same backend.
		newPipeline := func() (pipeline.Config, func() map[string]any, error) {
			lb, err := stages.NewLoadBalancer(vap, backends, &stages.LoadBalancerOptions{
				SrcMAC: iface.HardwareAddr, RecomputeL4Checksum: *recompute, Other: pipeline.Drop,
			})
			if err != nil {
				return pipeline.Config{}, nil, err
			}
			summary := func() map[string]any {
				var bs []map[string]any
				for _, b := range lb.Stats() {
					bs = append(bs, map[string]any{"ip": b.IP.String(), "mac": b.MAC.String(), "packets": b.Packets})
				}
				return map[string]any{"vip": vap.String(), "backends": bs}
			}
			return pipeline.Config{Stages: []pipeline.Stage{lb}, Final: pipeline.Drop}, summary, nil
		}
		return run(ctx, cli, iface, newPipeline)
	})
}

func run(ctx context.Context, cli *app.CLI, iface *net.Interface, newPipeline func() (pipeline.Config, func() map[string]any, error)) error {
	// The redirect program (with -filter in front, if any).
	opts := &redirect.Options{Mode: cli.XDPMode}
	var err error
	if cli.Filter != "" || cli.KeepMgmt {
		opts.Filter, err = filter.CompileWithOptions(cli.Filter, filter.Redirect, filter.Pass,
			&filter.CompileOptions{KeepManagement: cli.KeepMgmt})
		if err != nil {
			return err
		}
	}
	var prog *redirect.Program
	if cli.Pin != "" {
		prog, err = redirect.AttachPinned(iface.Index, cli.Pin, opts)
	} else {
		prog, err = redirect.Attach(iface.Index, opts)
	}
	if err != nil {
		return err
	}
	defer prog.Close()

	if cli.Queues != "" {
		return runWorkers(ctx, cli, prog, newPipeline)
	}

	sock, err := afxdp.Open(cli.Iface, cli.Queue, &afxdp.Config{Bind: cli.Bind, Steering: prog})
	if err != nil {
		return err
	}
	defer sock.Close()
	cfg, summary, err := newPipeline()
	if err != nil {
		return err
	}
	cfg.Socket = sock
	r, err := pipeline.New(cfg)
	if err != nil {
		return err
	}
	stop := cli.LiveRate(r.Snapshot, nil)
	st, err := r.Run(ctx)
	stop()
	if err != nil {
		return err
	}
	return cli.Summary(st, sock, summary)
}

// runWorkers balances on every queue of -queues, a worker each.
func runWorkers(ctx context.Context, cli *app.CLI, prog *redirect.Program, newPipeline func() (pipeline.Config, func() map[string]any, error)) error {
	queues, err := workers.ParseList(cli.Queues, prog.Queues())
	if err != nil {
		return fmt.Errorf("-queues: %w", err)
	}
	var cpus []int
	if cli.CPUs != "" {
		if cpus, err = workers.ParseCPUs(cli.CPUs, runtime.NumCPU()); err != nil {
			return fmt.Errorf("-cpus: %w", err)
		}
	}
	summaries := map[int]func() map[string]any{}
	set, err := workers.New(workers.Config{
		Interface:  cli.Iface,
		Queues:     queues,
		CPUs:       cpus,
		SharedUMEM: cli.SharedUMEM,
		Socket:     afxdp.Config{Bind: cli.Bind},
		Program:    prog,
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
	cli.Logf("%d workers on %s queues %v, CPUs %v", len(queues), cli.Iface, set.Queues(), set.CPUs())
	stop := cli.LiveRate(func() pipeline.Stats { return set.Snapshot().Total }, nil)
	st, err := set.Run(ctx)
	stop()
	if err != nil {
		return err
	}
	return cli.WorkersSummary(st, set.CPUs(), summaries)
}
