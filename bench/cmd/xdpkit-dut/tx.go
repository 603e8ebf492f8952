//go:build linux

package main

// -mode tx: a gen.Sender transmits as fast as the socket takes frames, as
// examples/xdp-gen does, but with the harness's window protocol, so that
// the run reports allocations and syscalls per frame (and -cpuprofile
// covers the window). The socket has no XDP program (afxdp.NoSteering,
// like xdp-gen): nothing is received.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/bench/internal/dutwin"
	"github.com/xdpkit/xdpkit/gen"
)

// txFlags are -mode tx's frame flags.
type txFlags struct {
	Src    string `json:"src"`
	Dst    string `json:"dst"`
	DstMAC string `json:"dst_mac"`
	Size   int    `json:"size"`
	Stamp  bool   `json:"stamp"` // gen.SenderConfig.Stamp
}

// builder makes the frames: UDP from Src to Dst, of Size bytes without
// FCS, from srcMAC (the interface's) to DstMAC.
func (f txFlags) builder(srcMAC net.HardwareAddr) (*gen.Builder, error) {
	src, err := netip.ParseAddrPort(f.Src)
	if err != nil {
		return nil, fmt.Errorf("-tx-src: %w", err)
	}
	dst, err := netip.ParseAddrPort(f.Dst)
	if err != nil {
		return nil, fmt.Errorf("-tx-dst: %w", err)
	}
	mac, err := net.ParseMAC(f.DstMAC)
	if err != nil {
		return nil, fmt.Errorf("-tx-dst-mac: %w", err)
	}
	return gen.NewBuilder(gen.Template{SrcMAC: srcMAC, DstMAC: mac, Src: src.Addr(), Dst: dst.Addr(),
		SrcPort: src.Port(), DstPort: dst.Port(), Proto: gen.UDP, Sizes: []int{f.Size}})
}

// runTX sends until the harness stops the DUT, and records the window's
// edges from the sender's counters.
func (d *dut) runTX(b *gen.Builder) error {
	s, err := gen.NewSender(gen.SenderConfig{Socket: d.sock, Builder: b, Stamp: d.c.TX.Stamp, Batch: d.c.Batch})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := s.Run(ctx)
		done <- err
	}()
	collect := func() dutwin.Snap {
		sst := s.Snapshot()
		st, _ := d.sock.Stats()
		return dutwin.Snap{TX: sst.Sent, Dropped: sst.RingFull, Kicks: st.Kicks, Waits: st.Waits, Syscalls: st.Kicks + st.RXWakeups + st.Waits}
	}
	// The sender has the CPU; this goroutine only looks at the window
	// every millisecond (a timer, which does not allocate).
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for !d.w.Stopped() {
		select {
		case err := <-done:
			return err
		case <-t.C:
		}
		if d.w.Pending() {
			d.w.Edge(collect)
		}
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, afxdp.ErrTimeout) {
		return err
	}
	return nil
}
