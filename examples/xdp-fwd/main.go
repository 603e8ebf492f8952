//go:build linux

// Command xdp-fwd is an L2 forwarder between two interfaces: frames
// redirected on -i go out of -o and, with -bidir, frames on -o go out of
// -i. Both sockets share one UMEM, so a frame moves from one interface to
// the other without a copy in user space; its source MAC is rewritten to
// the outgoing interface's and its destination MAC to -dst-mac (-i-dst-mac
// the other way). Linux 5.10+, root.
//
//	sudo xdp-fwd -i eth0 -o eth1 -dst-mac 02:00:00:00:00:02 -bidir -i-dst-mac 02:00:00:00:00:01
package main

import (
	"errors"
	"fmt"
	"net"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/examples/internal/app"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/redirect"
	"github.com/xdpkit/xdpkit/umem"
)

// rewrite sets the Ethernet addresses and forwards to target 0.
type rewrite struct {
	src, dst net.HardwareAddr
}

func (r rewrite) Name() string { return "l2rewrite" }

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
	a := app.New("xdp-fwd", "forward frames between two interfaces through one shared UMEM", "")
	out := a.Flags.String("o", "", "interface to forward to (required)")
	dstMAC := a.Flags.String("dst-mac", "", "destination MAC of frames sent out of -o (required)")
	bidir := a.Flags.Bool("bidir", false, "also forward frames from -o to -i")
	inDstMAC := a.Flags.String("i-dst-mac", "", "destination MAC of frames sent out of -i (with -bidir)")
	app.Main(a, func(a *app.App) error {
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
		inIf, err := net.InterfaceByName(a.Iface)
		if err != nil {
			return err
		}
		outIf, err := net.InterfaceByName(*out)
		if err != nil {
			return err
		}
		u, err := umem.New(&umem.Options{FrameCount: 8192})
		if err != nil {
			return err
		}
		defer u.Close()
		bind, _ := a.BindMode()
		// -i: its program, with -filter; the socket shares u.
		if err := a.Open(&afxdp.Config{UMEM: u, Bind: bind}); err != nil {
			return err
		}
		// -o: a program only with -bidir; otherwise transmit-only.
		steer := afxdp.NoSteering
		if *bidir {
			mode, _ := a.Mode()
			prog, err := redirect.Attach(outIf.Index, &redirect.Options{Mode: mode})
			if err != nil {
				return err
			}
			defer prog.Close()
			steer = prog
		}
		outSock, err := afxdp.OpenIndex(outIf.Index, a.Queue, &afxdp.Config{UMEM: u, Steering: steer})
		if err != nil {
			return err
		}
		defer outSock.Close()

		fwd, err := pipeline.New(pipeline.Config{Socket: a.Sock, Targets: []*afxdp.Socket{outSock},
			Stages: []pipeline.Stage{rewrite{src: outIf.HardwareAddr, dst: toOut}}})
		if err != nil {
			return err
		}
		runners := []*pipeline.Runner{fwd}
		if *bidir {
			back, err := pipeline.New(pipeline.Config{Socket: outSock, Targets: []*afxdp.Socket{a.Sock},
				Stages: []pipeline.Stage{rewrite{src: inIf.HardwareAddr, dst: toIn}}})
			if err != nil {
				return err
			}
			runners = append(runners, back)
		}
		ctx, cancel := a.Context()
		defer cancel()
		stopLive := a.LiveRate(func() pipeline.Stats {
			var st pipeline.Stats
			for _, r := range runners {
				st.Add(r.Snapshot())
			}
			st.TXPackets += st.Forwarded // the live line counts forwarded frames as sent
			return st
		}, nil)
		stats, err := pipeline.RunAll(ctx, runners...)
		stopLive()
		if err != nil {
			return err
		}
		var total pipeline.Stats
		for _, st := range stats {
			total.Add(st)
		}
		extra := map[string]any{"forwarded_out": stats[0].Forwarded}
		if len(stats) > 1 {
			extra["forwarded_in"] = stats[1].Forwarded
		}
		return a.Summary(total, func() map[string]any { return extra })
	})
}
