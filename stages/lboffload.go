package stages

import (
	"bytes"
	"net"

	"github.com/xdpkit/xdpkit/fastpath"
	"github.com/xdpkit/xdpkit/pipeline"
)

// The LoadBalancer's fast path (LoadBalancerOptions.FastPath): the first
// frame of a flow is balanced in user space, which installs the same
// rewrite for the rest of the flow into the XDP program; when a backend
// goes away or changes its MAC address, the entries that send flows to
// it are removed, and those flows come back to user space, where the
// connection table gives them their backend again.

// reofferAfter is how long the LoadBalancer waits before offloading a
// flow again whose frames still reach user space: frames in flight when
// the entry was installed, or frames the XDP program cannot match (IPv4
// options, VLAN tags), which must not cost a syscall each.
const reofferAfter = int64(1e9)

// entry is the fast path's rewrite for a flow to backend b: what Handle
// does to its frames in user space.
func (lb *LoadBalancer) entry(b *lbBackend, srcMAC []byte) fastpath.Entry {
	e := fastpath.Entry{Action: fastpath.Transmit, DstMAC: net.HardwareAddr(b.mac[:]), SrcMAC: net.HardwareAddr(srcMAC)}
	switch lb.mode {
	case LBModeNAT:
		e.NewDst = b.IP
	case LBModeIPIP:
		e.Action, e.TunnelSrc, e.TunnelDst = fastpath.Encap, lb.tunSrc, b.tun
	}
	return e
}

// offload installs the flow's rewrite in the fast path, at most once per
// reofferAfter for a flow the connection table holds (slot); counted in
// the pipeline's Stats.Offloaded.
func (lb *LoadBalancer) offload(p *pipeline.Packet, slot *connSlot, b *lbBackend, srcMAC []byte, now int64) {
	if slot != nil {
		if slot.offered != 0 && now-slot.offered < reofferAfter {
			return
		}
		slot.offered = now
	}
	f, ok := p.Flow()
	if !ok {
		return
	}
	if err := p.OffloadFlow(f, ok, lb.entry(b, srcMAC)); err != nil {
		lb.offloadErrs++
	}
}

// forget removes from the fast path the entries that send flows to the
// backends of old that bs no longer has as they were (gone, or with
// another MAC address). Their flows come back to user space.
func (lb *LoadBalancer) forget(old, bs []lbBackend) {
	if lb.fp == nil {
		return
	}
	var stale []lbBackend
	for _, o := range old {
		kept := false
		for _, n := range bs {
			kept = kept || (n.id == o.id && n.mac == o.mac && n.tun == o.tun)
		}
		if !kept {
			stale = append(stale, o)
		}
	}
	if len(stale) == 0 {
		return
	}
	entries, err := lb.fp.Entries()
	if err != nil {
		lb.offloadErrs++
	}
	for _, fe := range entries {
		for _, o := range stale {
			if bytes.Equal(fe.Entry.DstMAC, o.mac[:]) && (lb.mode != LBModeNAT || fe.Entry.NewDst == o.IP) &&
				(lb.mode != LBModeIPIP || fe.Entry.TunnelDst == o.tun) {
				if err := lb.fp.Remove(fe.Flow); err != nil {
					lb.offloadErrs++
				}
				break
			}
		}
	}
}

// OffloadErrors is the number of fast path operations (installs, removals)
// that failed; the frames concerned stayed in user space.
func (lb *LoadBalancer) OffloadErrors() uint64 { return lb.offloadErrs }

// EncapErrors is the number of frames LBModeIPIP dropped because their
// frame had no room for the outer headers.
func (lb *LoadBalancer) EncapErrors() uint64 { return lb.encapErrs }
