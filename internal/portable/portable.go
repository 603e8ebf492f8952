// Package portable is a program's use of xdpkit's public API, compiled on
// every GOOS by CI (GOOS=darwin go vet, GOOS=windows go build): code that
// imports xdpkit must build anywhere and fail at run time, with
// ErrNotSupported, where there is no AF_XDP.
package portable

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/fastpath"
	"github.com/xdpkit/xdpkit/filter"
	"github.com/xdpkit/xdpkit/packet"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/redirect"
	"github.com/xdpkit/xdpkit/ring"
	"github.com/xdpkit/xdpkit/stages"
	"github.com/xdpkit/xdpkit/umem"
	"github.com/xdpkit/xdpkit/workers"
)

// Use touches every public entry point the way a program would.
func Use(ctx context.Context) error {
	u, err := umem.New(&umem.Options{FrameCount: 4096})
	if errors.Is(err, umem.ErrNotSupported) {
		return err
	}
	defer u.Close()
	f, err := filter.Compile("udp port 53", filter.Redirect, filter.Pass)
	if err != nil {
		return err
	}
	fp, err := fastpath.New(&fastpath.Config{Default: fastpath.Redirect, Rate: fastpath.Rate{PerSecond: 100}})
	if err != nil {
		return err
	}
	defer fp.Close()
	if err := fp.SetPolicy(netip.MustParsePrefix("203.0.113.0/24"), fastpath.Block); err != nil {
		return err
	}
	prog, err := redirect.Attach(1, &redirect.Options{Filter: f, Mode: redirect.ModeAuto, FastPath: fp})
	if err != nil {
		return err
	}
	defer prog.Close()
	if _, err := fp.Counters(); err != nil {
		return err
	}
	if _, err := prog.Counters(); err != nil && !errors.Is(err, redirect.ErrNoCounters) {
		return err
	}
	sock, err := afxdp.Open("eth0", 0, &afxdp.Config{UMEM: u, Steering: prog})
	if errors.Is(err, afxdp.ErrNotSupported) {
		return err
	}
	defer sock.Close()
	descs := make([]ring.Desc, 64)
	frames := make([][]byte, 64)
	for sock.Wait(time.Second) == nil {
		n, _ := sock.Receive(descs)
		for _, d := range descs[:n] {
			var h packet.Headers
			_ = packet.Parse(sock.Frame(d), &h)
		}
		sock.Frames(descs[:n], frames)
		_ = sock.Release(descs[:n])
		if sock.WaitPoll(time.Millisecond) == nil {
			n, _ = sock.Receive(descs)
			_ = sock.Recycle(descs[:n])
		}
	}
	mu, err := umem.NewMemory(nil)
	if err == nil && mu.Memory() {
		msock, kernel, err := afxdp.NewMemory(&afxdp.Config{UMEM: mu})
		if err == nil {
			kernel.Fill(make([]byte, 60))
			kernel.Deliver(make([]byte, 60))
			kernel.DeliverN(1, 60)
			kernel.Transmitted(func(frame []byte) {})
			_ = kernel.Stats().Delivered
			_ = msock.Close()
		}
	}
	a, ok := sock.Pool().Alloc()
	if ok {
		_, _ = sock.Transmit([]ring.Desc{{Addr: a, Len: 60}})
	}
	st, _ := sock.Stats()
	_ = st.RXPackets
	_ = sock.RingSizes().Fill
	flows, _ := stages.NewFlowCounter(1024)
	var _ pipeline.FrameStage = flows
	var _ pipeline.ConditionalFrameStage = (*stages.LoadBalancer)(nil)
	drop := pipeline.RawFunc(func(p *pipeline.Packet) pipeline.Verdict { return pipeline.Drop })
	var _ pipeline.Raw = drop
	r, err := pipeline.New(pipeline.Config{Socket: sock, FastPath: fp, LockOSThread: true, Stages: []pipeline.Stage{flows, stages.NewMACSwap(), drop}})
	if err != nil {
		return err
	}
	if _, err := r.Run(ctx); err != nil {
		return err
	}
	set, err := workers.New(workers.Config{Interface: "eth0", Queues: []int{0, 1}, SharedUMEM: true})
	if err != nil {
		return err
	}
	defer set.Close()
	_, err = set.Run(ctx)
	return err
}
