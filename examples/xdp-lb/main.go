//go:build linux

// Command xdp-lb is an L4 load balancer: UDP and TCP flows to -vip are
// spread over the -backend servers by a consistent hash of the 5-tuple
// (the same flow always lands on the same backend; removing a backend
// moves only its own flows), rewritten (destination IP and MAC, checksums
// updated incrementally per RFC 1624) and transmitted out of the same
// interface. Backends answer clients directly (direct server return).
// Linux 5.10+, root.
//
//	sudo xdp-lb -i eth0 -vip 10.0.0.100:80 \
//	    -backend 10.0.0.11,02:00:00:00:00:11 -backend 10.0.0.12,02:00:00:00:00:12
package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/xdpkit/xdpkit/examples/internal/app"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/stages"
)

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
	a := app.New("xdp-lb", "spread flows to a VIP over backends by consistent hashing", "")
	vip := a.Flags.String("vip", "", "virtual IP address and port, ADDR:PORT (required)")
	var backends backendList
	a.Flags.Var(&backends, "backend", "backend IP,MAC (repeat the flag for more)")
	recompute := a.Flags.Bool("recompute-csum", false, "recompute UDP/TCP checksums instead of updating them (for senders with checksum offload, e.g. veth)")
	app.Main(a, func(a *app.App) error {
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
		iface, err := net.InterfaceByName(a.Iface)
		if err != nil {
			return fmt.Errorf("interface %q: %w", a.Iface, err)
		}
		// With -queues every worker has its own table; built alike, they
		// send every flow to the same backend.
		return a.RunBuilder(func(int) (pipeline.Config, func() map[string]any, error) {
			lb, err := stages.NewLoadBalancer(vap, backends, &stages.LoadBalancerOptions{
				SrcMAC: iface.HardwareAddr, RecomputeL4Checksum: *recompute, Other: pipeline.Drop,
			})
			if err != nil {
				return pipeline.Config{}, nil, err
			}
			return pipeline.Config{Stages: []pipeline.Stage{lb}, Final: pipeline.Drop}, func() map[string]any {
				var bs []map[string]any
				for _, b := range lb.Stats() {
					bs = append(bs, map[string]any{"ip": b.IP.String(), "mac": b.MAC.String(), "packets": b.Packets})
				}
				return map[string]any{"vip": vap.String(), "backends": bs}
			}, nil
		}, nil)
	})
}
