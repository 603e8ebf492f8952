//go:build linux

package main

// -fastpath: a fastpath.FastPath in the socket's redirect program, so that
// the generator's frames are decided in XDP and (nearly) never reach the
// socket:
//
//	police    a per-source policer of -fp-rate packets/s (burst -fp-burst):
//	          the generator's single source is over its rate, so nearly every
//	          frame is dropped in XDP (Counters.RateDropped)
//	flowdrop  a flow entry with Action Drop for each generator flow
//	reflect   a flow entry with Action Transmit, SwapMAC for each generator
//	          flow and for the latency probe's flow: XDP_TX back to the
//	          generator
//	lb        no entries of its own: -mode lb's stages.LoadBalancer installs
//	          each flow's rewrite (Transmit with DstMAC, SrcMAC) when it
//	          balances the flow's first frame (see lb.go)
//
// Misses (the ~1 frame/s the policer lets through, frames of other flows)
// take Config.Default, Redirect: to the socket, which the DUT's loop
// handles as in its -mode. The harness counts the frames from the veth
// (xdp_drops, or the generator's rx for reflect); the DUT reports the fast
// path's own counters (fp.Counters) as its window counts.

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/xdpkit/xdpkit/fastpath"
)

type fpFlags struct {
	mode         string
	src, dst     string
	sport, dport uint
	sports       uint
	probe        uint
	rate         float64
	burst        int
}

// fpInfo is what the DUTSTATS config records about the fast path.
type fpInfo struct {
	Mode  string        `json:"mode"`
	Rate  fastpath.Rate `json:"rate"`
	Flows []string      `json:"flows,omitempty"`
	Entry string        `json:"entry,omitempty"`
}

// newFastPath makes the fast path for f.mode and the flow entries to
// install once the program is attached.
func newFastPath(f fpFlags) (*fastpath.FastPath, []fastpath.Flow, fastpath.Entry, *fpInfo, error) {
	info := &fpInfo{Mode: f.mode}
	cfg := &fastpath.Config{Default: fastpath.Redirect}
	var entry fastpath.Entry
	switch f.mode {
	case "police":
		cfg.Rate = fastpath.Rate{PerSecond: f.rate, Burst: f.burst}
		info.Rate = cfg.Rate
	case "flowdrop":
		entry = fastpath.Entry{Action: fastpath.Drop}
	case "reflect":
		entry = fastpath.Entry{Action: fastpath.Transmit, SwapMAC: true}
	case "lb":
		// As examples/xdp-lb: entries age like the balancer's connection
		// table (stages.DefaultLBConnIdle).
		cfg.IdleTimeout = 5 * time.Minute
		info.Entry = "transmit (per flow, by stages.LoadBalancer)"
	default:
		return nil, nil, entry, nil, fmt.Errorf("-fastpath must be police, flowdrop, reflect or lb, not %q", f.mode)
	}
	var flows []fastpath.Flow
	if f.mode != "police" && f.mode != "lb" {
		src, err := netip.ParseAddr(f.src)
		if err != nil {
			return nil, nil, entry, nil, fmt.Errorf("-fp-src: %w", err)
		}
		dst, err := netip.ParseAddr(f.dst)
		if err != nil {
			return nil, nil, entry, nil, fmt.Errorf("-fp-dst: %w", err)
		}
		if f.sports < 1 || f.sport+f.sports > 65536 || f.dport > 65535 || f.probe > 65535 {
			return nil, nil, entry, nil, fmt.Errorf("-fp-sport %d -fp-sports %d -fp-dport %d -fp-probe %d: ports out of range", f.sport, f.sports, f.dport, f.probe)
		}
		for i := uint(0); i < f.sports; i++ {
			flows = append(flows, fastpath.Flow{Src: src, Dst: dst, SrcPort: uint16(f.sport + i), DstPort: uint16(f.dport), Proto: fastpath.UDP})
		}
		if f.probe > 0 {
			flows = append(flows, fastpath.Flow{Src: src, Dst: dst, SrcPort: uint16(f.probe), DstPort: uint16(f.probe), Proto: fastpath.UDP})
		}
		cfg.Flows = max(1024, 2*len(flows))
		for i, fl := range flows {
			if i == 4 && len(flows) > 5 {
				info.Flows = append(info.Flows, fmt.Sprintf("... (%d flows)", len(flows)))
				break
			}
			info.Flows = append(info.Flows, fl.String())
		}
		info.Entry = entry.Action.String()
		if entry.SwapMAC {
			info.Entry += "+swapmac"
		}
	}
	fp, err := fastpath.New(cfg)
	if err != nil {
		return nil, nil, entry, nil, err
	}
	return fp, flows, entry, info, nil
}

// fpFrames is the number of frames the fast path saw: each ends in exactly
// one of these verdicts (Unparsed, Expired and FlowErrors frames are
// counted again in Default).
func fpFrames(c fastpath.Counters) uint64 {
	return c.Blocked + c.RateDropped + c.Offloaded() + c.Default
}
