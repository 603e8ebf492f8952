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

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/cli"
	"github.com/xdpkit/xdpkit/metrics"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/stages"
	"github.com/xdpkit/xdpkit/umem"
	"github.com/xdpkit/xdpkit/workers"
)

func main() {
	tool := cli.New("xdp-reflect", "send every redirected frame back to its sender", "udp")
	swapIP := tool.Flags.Bool("swap-ip", true, "also swap IP addresses and UDP/TCP ports (a valid reply); false swaps MACs only")
	recompute := tool.Flags.Bool("recompute-csum", false, "recompute UDP/TCP checksums (for senders with checksum offload, e.g. veth)")
	leave := tool.Flags.Bool("leave-csum", false, "leave UDP/TCP checksums to the NIC or the kernel (TX metadata, Linux 6.8+): -recompute-csum without the CPU's work")
	budget := tool.Flags.Int("tx-budget", 0, "frames per sendto in copy mode (XDP_MAX_TX_SKB_BUDGET, Linux 6.16+; 0: kernel default)")
	tool.Main(func(ctx context.Context) error {
		// The stage swaps the addresses and returns Transmit. Each worker
		// gets its own: stages are not safe for concurrent use.
		reflector := func() (pipeline.Config, func() map[string]any) {
			if !*swapIP {
				return pipeline.Config{Stages: []pipeline.Stage{stages.NewMACSwap()}, Final: pipeline.Drop}, nil
			}
			swap := stages.NewAddrSwap(&stages.AddrSwapOptions{RecomputeL4Checksum: *recompute, LeaveL4Checksum: *leave})
			extra := func() map[string]any { return map[string]any{"checksums_left": swap.ChecksumsLeft()} }
			return pipeline.Config{Stages: []pipeline.Stage{swap}, Final: pipeline.Drop}, extra
		}
		sockCfg := afxdp.Config{Bind: tool.Bind, Coalesce: tool.Coalesce, TXBudget: *budget}
		if *leave {
			// TX metadata in front of each frame for the checksum request;
			// in copy mode the kernel computes the checksum at send.
			sockCfg.UMEMOptions = &umem.Options{TXMetadata: true, TXSoftwareChecksum: true}
		}
		return run(ctx, tool, sockCfg, reflector)
	})
}

// run attaches the redirect program and runs a reflecting worker on each
// queue: the one of -q, or each of -queues.
func run(ctx context.Context, tool *cli.Tool, sockCfg afxdp.Config, reflector func() (pipeline.Config, func() map[string]any)) error {
	iface, err := net.InterfaceByName(tool.Iface)
	if err != nil {
		return fmt.Errorf("interface %q: %w", tool.Iface, err)
	}
	opts, err := tool.RedirectOptions() // -xdp-mode, and -filter (default "udp") in the kernel
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
	extras := map[int]func() map[string]any{} // per queue, for the summary
	set, err := workers.New(workers.Config{
		Interface:   tool.Iface,
		Queues:      queues,
		CPUs:        cpus,
		SharedUMEM:  tool.SharedUMEM,
		UMEMOptions: sockCfg.UMEMOptions, // each worker's UMEM (-leave-csum: with TX metadata)
		Socket:      sockCfg,
		Steering:    steer, // each worker's socket is registered for its queue
		Pipeline: func(q int) (pipeline.Config, error) {
			cfg, extra := reflector()
			if extra != nil {
				extras[q] = extra // read after Run, on this goroutine
			}
			return cfg, nil
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
	stop := tool.LiveRate(func() pipeline.Stats { return set.Snapshot().Total }, nil)
	st, err := set.Run(ctx) // until Ctrl-C or -duration
	stop()
	if err != nil {
		return err
	}
	return tool.WorkersSummary(st, set, extras)
}
