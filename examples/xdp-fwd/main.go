// Command xdp-fwd is an L2 forwarder between two interfaces: frames
// redirected on -i go out of -o and, with -bidir, frames on -o go out of
// -i. Both sockets share one UMEM, so a frame moves from one interface to
// the other without a copy in user space; its source MAC is rewritten to
// the outgoing interface's and its destination MAC to -dst-mac (-i-dst-mac
// the other way). It shows two sockets sharing a UMEM, the Forward verdict
// with pipeline.Config.Targets, and pipeline.RunAll driving both Runners
// from one goroutine.
//
// Linux 5.10+, root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF).
//
//	sudo xdp-fwd -i eth0 -o eth1 -dst-mac 02:00:00:00:00:02 -bidir -i-dst-mac 02:00:00:00:00:01
package main

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/cli"
	"github.com/xdpkit/xdpkit/metrics"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/redirect"
	"github.com/xdpkit/xdpkit/umem"
)

// rewrite sets the Ethernet addresses and forwards to target 0.
type rewrite struct {
	src, dst net.HardwareAddr
}

func (r rewrite) Name() string { return "l2rewrite" }

// Raw tells the Runner that rewrite reads only the frame's bytes, so it
// does not parse frames for it (pipeline.Raw).
func (r rewrite) Raw() {}

func (r rewrite) Handle(p *pipeline.Packet) pipeline.Verdict {
	if len(p.Data) < 14 {
		return pipeline.Malformed
	}
	copy(p.Data[0:6], r.dst)
	copy(p.Data[6:12], r.src)
	p.Out = 0
	return pipeline.Forward
}

func main() {
	tool := cli.New("xdp-fwd", "forward frames between two interfaces through one shared UMEM", "")
	out := tool.Flags.String("o", "", "interface to forward to (required)")
	dstMAC := tool.Flags.String("dst-mac", "", "destination MAC of frames sent out of -o (required)")
	bidir := tool.Flags.Bool("bidir", false, "also forward frames from -o to -i")
	inDstMAC := tool.Flags.String("i-dst-mac", "", "destination MAC of frames sent out of -i (with -bidir)")
	tool.Refuse("it forwards one queue (-q) of each interface, in one process", "queues", "cpus", "shared-umem", "pin")
	tool.Main(func(ctx context.Context) error {
		if *out == "" || *dstMAC == "" {
			return errors.New("-o IFACE and -dst-mac MAC are required")
		}
		if *bidir && *inDstMAC == "" {
			return errors.New("-bidir needs -i-dst-mac MAC")
		}
		toOut, err := net.ParseMAC(*dstMAC)
		if err != nil {
			return fmt.Errorf("-dst-mac: %w", err)
		}
		var toIn net.HardwareAddr
		if *bidir {
			if toIn, err = net.ParseMAC(*inDstMAC); err != nil {
				return fmt.Errorf("-i-dst-mac: %w", err)
			}
		}
		return run(ctx, tool, *out, toOut, toIn)
	})
}

// run forwards from tool.Iface to out, and back if toIn is set.
func run(ctx context.Context, tool *cli.Tool, out string, toOut, toIn net.HardwareAddr) error {
	inIf, err := net.InterfaceByName(tool.Iface)
	if err != nil {
		return fmt.Errorf("interface %q: %w", tool.Iface, err)
	}
	outIf, err := net.InterfaceByName(out)
	if err != nil {
		return fmt.Errorf("interface %q: %w", out, err)
	}

	// One UMEM for both sockets: a frame received on one is sent from the
	// other as it is, without a copy.
	u, err := umem.New(&umem.Options{FrameCount: 8192})
	if err != nil {
		return err
	}
	defer u.Close()

	// -i: the redirect program, with -filter, and a socket on -q; with
	// -xskmap or -dp, the XSKMAP of a program another process attached.
	var inSteer afxdp.Registrar
	xsks, err := tool.ExistingXSKMap()
	if err != nil {
		return err
	}
	var inProg *redirect.Program
	if xsks != nil {
		defer xsks.Close()
		if toIn != nil {
			return errors.New("-bidir receives on -o too, through a program of its own: it cannot be combined with -xskmap or -dp")
		}
		inSteer = xsks
	} else {
		opts, err := tool.RedirectOptions() // -xdp-mode, and -filter in front of the redirect
		if err != nil {
			return err
		}
		if inProg, err = redirect.Attach(inIf.Index, opts); err != nil {
			return err
		}
		defer inProg.Close()
		inSteer = inProg
	}
	inSock, err := afxdp.Open(tool.Iface, tool.Queue, &afxdp.Config{UMEM: u, Bind: tool.Bind, Coalesce: tool.Coalesce, Steering: inSteer})
	if err != nil {
		return err
	}
	defer inSock.Close()

	// -o: a program only with -bidir, to receive there too; otherwise the
	// socket only transmits and is registered nowhere.
	var steer afxdp.Registrar = afxdp.NoSteering
	if toIn != nil {
		outProg, err := redirect.Attach(outIf.Index, &redirect.Options{Mode: tool.XDPMode})
		if err != nil {
			return err
		}
		defer outProg.Close()
		steer = outProg
	}
	outSock, err := afxdp.Open(out, tool.Queue, &afxdp.Config{UMEM: u, Coalesce: tool.Coalesce, Steering: steer})
	if err != nil {
		return err
	}
	defer outSock.Close()

	// A Runner per direction: Forward sends the frame out of Targets[0].
	fwd, err := pipeline.New(pipeline.Config{Socket: inSock, Targets: []*afxdp.Socket{outSock},
		Stages: []pipeline.Stage{rewrite{src: outIf.HardwareAddr, dst: toOut}}})
	if err != nil {
		return err
	}
	runners := []*pipeline.Runner{fwd}
	if toIn != nil {
		back, err := pipeline.New(pipeline.Config{Socket: outSock, Targets: []*afxdp.Socket{inSock},
			Stages: []pipeline.Stage{rewrite{src: inIf.HardwareAddr, dst: toIn}}})
		if err != nil {
			return err
		}
		runners = append(runners, back)
	}

	m := metrics.New() // what -metrics ADDR serves at /metrics
	m.AddRunner(tool.Iface, tool.Queue, fwd, inSock)
	if len(runners) > 1 {
		m.AddRunner(out, tool.Queue, runners[1], outSock)
	}
	if inProg != nil {
		m.AddProgram(tool.Iface, inProg)
	}
	stopMetrics, err := tool.ServeMetrics(m)
	if err != nil {
		return err
	}
	defer stopMetrics()
	// The sockets share a UMEM, so one goroutine drives both Runners.
	stop := tool.LiveRate(func() pipeline.Stats {
		var st pipeline.Stats
		for _, r := range runners {
			st.Add(r.Snapshot())
		}
		st.TXPackets += st.Forwarded // the live line counts forwarded frames as sent
		return st
	}, nil)
	stats, err := pipeline.RunAll(ctx, runners...)
	stop()
	if err != nil {
		return err
	}
	var total pipeline.Stats
	for _, st := range stats {
		total.Add(st)
	}
	return tool.Summary(total, inSock, func() map[string]any {
		extra := map[string]any{"forwarded_out": stats[0].Forwarded}
		if len(stats) > 1 {
			extra["forwarded_in"] = stats[1].Forwarded
		}
		return extra
	})
}
