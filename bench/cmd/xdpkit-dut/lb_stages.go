//go:build linux && !xbnostages

package main

import (
	"net"
	"net/netip"

	"github.com/xdpkit/xdpkit/fastpath"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/stages"
)

// lbStageImpl names the balancer used by -mode lb.
const lbStageImpl = "stages.LoadBalancer (dsr)"

// lbStage is -mode lb's stage: a stages.LoadBalancer in DSR mode, with
// the fast path if fp is set.
type lbStage struct{ *stages.LoadBalancer }

func newLBStage(vip netip.AddrPort, backends []lbBackend, srcMAC net.HardwareAddr, fp *fastpath.FastPath) (balancer, error) {
	bs := make([]stages.Backend, len(backends))
	for i, b := range backends {
		bs[i] = stages.Backend{IP: b.IP, MAC: b.MAC}
	}
	lb, err := stages.NewLoadBalancer(vip, bs, &stages.LoadBalancerOptions{
		Mode: stages.LBModeDSR, SrcMAC: srcMAC, Other: pipeline.Drop, FastPath: fp,
	})
	if err != nil {
		return nil, err
	}
	return lbStage{lb}, nil
}

// lbReport is what the DUTSTATS line says about the balancer at exit.
type lbReport struct {
	Backends      []lbBackendCount `json:"backends"`
	Conns         stages.ConnStats `json:"connections"`
	OffloadErrors uint64           `json:"offload_errors"`
}

type lbBackendCount struct {
	IP      string `json:"ip"`
	Packets uint64 `json:"packets"`
}

func (s lbStage) Report() any {
	r := lbReport{Conns: s.ConnStats(), OffloadErrors: s.OffloadErrors()}
	for _, b := range s.Stats() {
		r.Backends = append(r.Backends, lbBackendCount{IP: b.IP.String(), Packets: b.Packets})
	}
	return r
}
