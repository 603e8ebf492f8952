//go:build linux

// Command xdp-drop receives every frame the redirect program steers to its
// AF_XDP socket and drops it, putting the frame straight back on the fill
// ring: the simplest xdpkit program, and a measure of the receive path's
// cost.
//
// It shows the whole life of an AF_XDP program: compile a tcpdump filter
// (package filter), attach the XDP program that redirects the queue's
// frames (package redirect), open a socket on the queue (package afxdp),
// run a pipeline over it until Ctrl-C (package pipeline), and close it all.
// With -queues it runs one worker per queue (package workers); with -pin,
// processes of their own per queue share one program pinned in bpffs.
//
// Linux 5.10+, root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF).
//
//	sudo xdp-drop -i eth0 -q 0 -filter 'udp port 9000' -duration 10s -json
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
	"github.com/xdpkit/xdpkit/workers"
)

func main() {
	cli := app.New("xdp-drop", "receive and drop every redirected frame", "")
	cli.Main(func(ctx context.Context) error { return run(ctx, cli) })
}

func run(ctx context.Context, cli *app.CLI) error {
	iface, err := net.InterfaceByName(cli.Iface)
	if err != nil {
		return fmt.Errorf("interface %q: %w", cli.Iface, err)
	}

	// The XDP program redirects each queue's frames to the socket
	// registered for that queue. The filter runs first, in the kernel:
	// frames it does not match go on to the kernel stack, and so do ARP,
	// ND, SSH and DNS with -keep-mgmt.
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
		prog, err = redirect.AttachPinned(iface.Index, cli.Pin, opts) // shared with other processes
	} else {
		prog, err = redirect.Attach(iface.Index, opts)
	}
	if err != nil {
		return err
	}
	defer prog.Close()

	if cli.Queues != "" {
		return runWorkers(ctx, cli, prog)
	}

	// One socket on one queue, registered in the program's XSKMAP.
	sock, err := afxdp.Open(cli.Iface, cli.Queue, &afxdp.Config{Bind: cli.Bind, Steering: prog})
	if err != nil {
		return err
	}
	defer sock.Close()

	// No stages: every frame gets the Final verdict, Drop, which recycles it.
	r, err := pipeline.New(pipeline.Config{Socket: sock, Final: pipeline.Drop})
	if err != nil {
		return err
	}
	stop := cli.LiveRate(r.Snapshot, nil)
	st, err := r.Run(ctx) // until Ctrl-C or -duration
	stop()
	if err != nil {
		return err
	}
	return cli.Summary(st, sock, nil)
}

// runWorkers runs a socket and a pipeline per queue, each on its own
// thread pinned to a CPU, all registered in prog.
func runWorkers(ctx context.Context, cli *app.CLI, prog *redirect.Program) error {
	queues, err := workers.ParseList(cli.Queues, prog.Queues()) // "all": every XSKMAP entry, one per RX queue
	if err != nil {
		return fmt.Errorf("-queues: %w", err)
	}
	var cpus []int // nil: spread over the CPUs the process may use
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
		Socket:     afxdp.Config{Bind: cli.Bind},
		Program:    prog,
		Pipeline: func(queue int) (pipeline.Config, error) {
			return pipeline.Config{Final: pipeline.Drop}, nil
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
	return cli.WorkersSummary(st, set, nil)
}
