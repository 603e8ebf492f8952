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
// processes of their own per queue share one program pinned in bpffs;
// with -xskmap or -dp it attaches nothing and registers its sockets in an
// XSKMAP another process attached (xdpkit attach, the AF_XDP device
// plugin for Kubernetes), which needs only CAP_NET_RAW.
//
// Linux 5.10+, root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF).
//
//	sudo xdp-drop -i eth0 -q 0 -filter 'udp port 9000' -duration 10s -json
//	sudo xdpkit attach -i eth0 -pin drop && xdp-drop -i eth0 -xskmap /sys/fs/bpf/xdpkit/drop/xsks
package main

import (
	"context"
	"fmt"
	"net"
	"runtime"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/cli"
	"github.com/xdpkit/xdpkit/filter"
	"github.com/xdpkit/xdpkit/metrics"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/redirect"
	"github.com/xdpkit/xdpkit/workers"
)

func main() {
	tool := cli.New("xdp-drop", "receive and drop every redirected frame", "")
	tool.CoalesceByDefault(cli.SinkCoalesce) // it ends the traffic: coalescing delays nothing
	tool.Main(func(ctx context.Context) error { return run(ctx, tool) })
}

func run(ctx context.Context, tool *cli.Tool) error {
	iface, err := net.InterfaceByName(tool.Iface)
	if err != nil {
		return fmt.Errorf("interface %q: %w", tool.Iface, err)
	}

	// With -xskmap or -dp another process attached the program
	// (xdpkit attach, the AF_XDP device plugin): the sockets go into its
	// XSKMAP, which needs no BPF privileges, only CAP_NET_RAW.
	xsks, err := tool.ExistingXSKMap()
	if err != nil {
		return err
	}
	var steer afxdp.Registrar // where each socket is registered for its queue
	var numQueues int
	var prog *redirect.Program
	if xsks != nil {
		defer xsks.Close()
		steer, numQueues = xsks, xsks.Queues()
	} else {
		// The XDP program redirects each queue's frames to the socket
		// registered for that queue. The filter runs first, in the
		// kernel: frames it does not match go on to the kernel stack, and
		// so do ARP, ND, SSH and DNS with -keep-mgmt.
		opts := &redirect.Options{Mode: tool.XDPMode}
		if tool.Filter != "" || tool.KeepMgmt {
			opts.Filter, err = filter.CompileWithOptions(tool.Filter, filter.Redirect, filter.Pass,
				&filter.CompileOptions{KeepManagement: tool.KeepMgmt})
			if err != nil {
				return err
			}
		}
		if tool.Pin != "" {
			prog, err = redirect.AttachPinned(iface.Index, tool.Pin, opts) // shared with other processes
		} else {
			prog, err = redirect.Attach(iface.Index, opts)
		}
		if err != nil {
			return err
		}
		defer prog.Close()
		steer, numQueues = prog, prog.Queues()
	}

	if tool.Queues != "" {
		return runWorkers(ctx, tool, steer, numQueues, prog)
	}

	// One socket on one queue, registered for that queue. Under load its
	// waits coalesce (Config.Coalesce, -coalesce: 50µs by default here):
	// a wait after a burst first sleeps, so the next bursts come as one
	// batch and one wake-up.
	sock, err := afxdp.Open(tool.Iface, tool.Queue, &afxdp.Config{Bind: tool.Bind, Coalesce: tool.Coalesce, Steering: steer})
	if err != nil {
		return err
	}
	defer sock.Close()

	// No stages: every frame gets the Final verdict, Drop. The Runner then
	// puts each batch straight back on the fill ring without reading it
	// (afxdp.Socket.Discard: Receive and Recycle in one pass).
	r, err := pipeline.New(pipeline.Config{Socket: sock, Final: pipeline.Drop})
	if err != nil {
		return err
	}
	m := metrics.New() // what -metrics ADDR serves at /metrics
	m.AddRunner(tool.Iface, tool.Queue, r, sock)
	if prog != nil {
		m.AddProgram(tool.Iface, prog)
	}
	stopMetrics, err := tool.ServeMetrics(m)
	if err != nil {
		return err
	}
	defer stopMetrics()
	stop := tool.LiveRate(r.Snapshot, nil)
	st, err := r.Run(ctx) // until Ctrl-C or -duration
	stop()
	if err != nil {
		return err
	}
	return tool.Summary(st, sock, nil)
}

// runWorkers runs a socket and a pipeline per queue, each on its own
// thread pinned to a CPU, all registered in steer (prog, if this process
// attached it).
func runWorkers(ctx context.Context, tool *cli.Tool, steer afxdp.Registrar, numQueues int, prog *redirect.Program) error {
	queues, err := workers.ParseList(tool.Queues, numQueues) // "all": every XSKMAP entry, one per RX queue
	if err != nil {
		return fmt.Errorf("-queues: %w", err)
	}
	var cpus []int // nil: spread over the CPUs the process may use
	if tool.CPUs != "" {
		if cpus, err = workers.ParseCPUs(tool.CPUs, runtime.NumCPU()); err != nil {
			return fmt.Errorf("-cpus: %w", err)
		}
	}
	set, err := workers.New(workers.Config{
		Interface:  tool.Iface,
		Queues:     queues,
		CPUs:       cpus,
		SharedUMEM: tool.SharedUMEM,
		Socket:     afxdp.Config{Bind: tool.Bind, Coalesce: tool.Coalesce},
		Steering:   steer,
		Pipeline: func(queue int) (pipeline.Config, error) {
			return pipeline.Config{Final: pipeline.Drop}, nil
		},
	})
	if err != nil {
		return err
	}
	defer set.Close()
	tool.Logf("%d workers on %s queues %v, CPUs %v", len(queues), tool.Iface, set.Queues(), set.CPUs())

	m := metrics.New() // what -metrics ADDR serves at /metrics
	m.AddWorkers(tool.Iface, set)
	if prog != nil {
		m.AddProgram(tool.Iface, prog)
	}
	stopMetrics, err := tool.ServeMetrics(m)
	if err != nil {
		return err
	}
	defer stopMetrics()
	stop := tool.LiveRate(func() pipeline.Stats { return set.Snapshot().Total }, nil)
	st, err := set.Run(ctx)
	stop()
	if err != nil {
		return err
	}
	return tool.WorkersSummary(st, set, nil)
}
