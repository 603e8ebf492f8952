//go:build linux

// Command xdp-reflect sends every redirected frame back where it came from:
// it swaps the MAC addresses and, with -swap-ip (the default), the IP
// addresses and UDP/TCP ports too, so a UDP client on the other side gets
// its datagrams echoed back to its own socket. ICMP echo requests get echo
// replies. It shows a pipeline that edits frames in place and transmits
// them out of the socket they came in on (the Transmit verdict), without a
// copy.
//
// Linux 5.10+, root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF).
//
//	sudo xdp-reflect -i eth0 -filter 'udp port 7'
//
// On a veth pair, turn TX checksum offload off on the sending side
// (ethtool -K PEER tx off) or pass -recompute-csum: with offload the peer's
// frames carry partial UDP/TCP checksums, and the reflected frames would
// be dropped as corrupt.
package main

import (
	"context"
	"fmt"
	"net"
	"runtime"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/examples/internal/app"
	"github.com/xdpkit/xdpkit/filter"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/redirect"
	"github.com/xdpkit/xdpkit/stages"
	"github.com/xdpkit/xdpkit/workers"
)

func main() {
	cli := app.New("xdp-reflect", "send every redirected frame back to its sender", "udp")
	swapIP := cli.Flags.Bool("swap-ip", true, "also swap IP addresses and UDP/TCP ports (a valid reply); false swaps MACs only")
	recompute := cli.Flags.Bool("recompute-csum", false, "recompute UDP/TCP checksums (for senders with checksum offload, e.g. veth)")
	budget := cli.Flags.Int("tx-budget", 0, "frames per sendto in copy mode (XDP_MAX_TX_SKB_BUDGET, Linux 6.16+; 0: kernel default)")
	cli.Main(func(ctx context.Context) error {
		// The stage swaps the addresses and returns Transmit. Each worker
		// gets its own: stages are not safe for concurrent use.
		reflector := func() pipeline.Config {
			var st pipeline.Stage = stages.NewMACSwap()
			if *swapIP {
				st = stages.NewAddrSwap(&stages.AddrSwapOptions{RecomputeL4Checksum: *recompute})
			}
			return pipeline.Config{Stages: []pipeline.Stage{st}, Final: pipeline.Drop}
		}
		return run(ctx, cli, afxdp.Config{Bind: cli.Bind, TXBudget: *budget}, reflector)
	})
}

func run(ctx context.Context, cli *app.CLI, sockCfg afxdp.Config, reflector func() pipeline.Config) error {
	iface, err := net.InterfaceByName(cli.Iface)
	if err != nil {
		return fmt.Errorf("interface %q: %w", cli.Iface, err)
	}
	// The redirect program, with -filter (default "udp") in the kernel.
	opts := &redirect.Options{Mode: cli.XDPMode}
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
		return runWorkers(ctx, cli, prog, sockCfg, reflector)
	}

	sockCfg.Steering = prog
	sock, err := afxdp.Open(cli.Iface, cli.Queue, &sockCfg)
	if err != nil {
		return err
	}
	defer sock.Close()
	cfg := reflector()
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
	return cli.Summary(st, sock, nil)
}

// runWorkers reflects on every queue of -queues, a worker each.
func runWorkers(ctx context.Context, cli *app.CLI, prog *redirect.Program, sockCfg afxdp.Config, reflector func() pipeline.Config) error {
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
	set, err := workers.New(workers.Config{
		Interface:  cli.Iface,
		Queues:     queues,
		CPUs:       cpus,
		SharedUMEM: cli.SharedUMEM,
		Socket:     sockCfg,
		Program:    prog,
		Pipeline:   func(int) (pipeline.Config, error) { return reflector(), nil },
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
	return cli.WorkersSummary(st, set.CPUs(), nil)
}
