//go:build linux

package main

// -mode lb: a stages.LoadBalancer (DSR: only the Ethernet header changes)
// in a pipeline, for the flows to -lb-vip, over -lb-backends backends with
// consecutive addresses from -lb-backend-ip, all with the MAC address
// -lb-backend-mac. The harness gives the generator's MAC, so every
// balanced frame goes back to the generator, where the sink counts it
// like a reflected one; the backends differ only in their address, which
// is all the balancer's hash and tables see. The source MAC is the
// interface's own.
//
// With -fastpath lb the balancer has the fast path (LoadBalancerOptions.
// FastPath, also the redirect program's and the pipeline's): the first
// frame of each flow is balanced in user space, which installs the flow's
// rewrite (Transmit with the backend's DstMAC and SrcMAC), and the XDP
// program transmits the flow's later frames itself.
//
// The pipeline is driven by the DUT's loop (Runner.Poll), which calls the
// balancer's Tick as Runner.Run would (about every 64 busy polls and when
// idle), so the connection table reads no clock per frame.

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/xdpkit/xdpkit/pipeline"
)

type lbFlags struct {
	vip      string
	mac      string
	firstIP  string
	backends int
}

// lbBackend is one backend as the flags give it.
type lbBackend struct {
	IP  netip.Addr
	MAC net.HardwareAddr
}

// balancer is -mode lb's stage (lb_stages.go, or lb_fallback.go in a
// build without package stages).
type balancer interface {
	pipeline.Stage
	Tick(now time.Time)
	Report() any
}

// lbInfo is what the DUTSTATS config records about the balancer.
type lbInfo struct {
	Impl     string   `json:"impl"`
	VIP      string   `json:"vip"`
	SrcMAC   string   `json:"src_mac"`
	Backends []string `json:"backends"`
	FastPath bool     `json:"fastpath"`
}

// parse checks the flags and returns the VIP and the backends.
func (f lbFlags) parse() (netip.AddrPort, []lbBackend, error) {
	vip, err := netip.ParseAddrPort(f.vip)
	if err != nil {
		return vip, nil, fmt.Errorf("-lb-vip: %w", err)
	}
	mac, err := net.ParseMAC(f.mac)
	if err != nil || len(mac) != 6 {
		return vip, nil, fmt.Errorf("-lb-backend-mac %q: want a 6-byte MAC address", f.mac)
	}
	ip, err := netip.ParseAddr(f.firstIP)
	if err != nil {
		return vip, nil, fmt.Errorf("-lb-backend-ip: %w", err)
	}
	if f.backends < 1 || f.backends > 256 {
		return vip, nil, fmt.Errorf("-lb-backends %d: want 1 to 256", f.backends)
	}
	bs := make([]lbBackend, f.backends)
	for i := range bs {
		if !ip.IsValid() {
			return vip, nil, fmt.Errorf("-lb-backend-ip %s: %d addresses overflow", f.firstIP, f.backends)
		}
		bs[i] = lbBackend{IP: ip, MAC: mac}
		ip = ip.Next()
	}
	return vip, bs, nil
}

// lbTicks is how many busy polls the loop makes between two Ticks, as
// Runner.Run does.
const lbTicks = 64
