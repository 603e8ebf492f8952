package doctor

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	xnl "github.com/xdpkit/xdpkit/internal/netlink"
	"github.com/xdpkit/xdpkit/internal/sys"
	"github.com/xdpkit/xdpkit/metrics"
)

// Iface is what the interface checks read about one interface.
type Iface struct {
	Link       xnl.Link
	Operstate  string
	Driver     string
	Version    string
	Features   Features
	FeatureErr error // DeviceFeatures' error, if it failed
	// Program is the name of the attached XDP program, if any.
	Program string
	// Release is the kernel's (uname -r): it says whether Queues report
	// bound sockets.
	Release string
	// Queues and NAPIs are the netdev family's lists (Linux 6.8+); their
	// errors say why they are empty.
	Queues    []Queue
	QueuesErr error
	NAPIs     []NAPI
	NAPIsErr  error
	// Peer is a veth's other end (PeerErr when it cannot be read), and
	// PeerNS names its namespace ("this namespace" or "netns id N").
	Peer    *xnl.Link
	PeerErr error
	PeerNS  string
	// Holders names, per RX queue, the processes known to hold a socket
	// on it: xdpkit processes by their announcement, others through
	// xsk_diag where the kernel has it.
	Holders map[int][]string
	// XSKDiagErr is why xsk_diag could not be asked (ErrNoXSKDiag: the
	// kernel lacks it).
	XSKDiagErr error
}

// ReadIface gathers what the checks need about name; runDir is where
// xdpkit processes announce themselves (metrics.RunDir).
func ReadIface(name, runDir string) (*Iface, error) {
	l, err := xnl.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w", name, err)
	}
	i := &Iface{Link: l, Holders: map[int][]string{}}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		i.Release = unix.ByteSliceToString(u.Release[:])
	}
	if b, err := os.ReadFile("/sys/class/net/" + name + "/operstate"); err == nil {
		i.Operstate = strings.TrimSpace(string(b))
	}
	if di, err := sys.EthtoolDrvinfo(name); err == nil {
		i.Driver, i.Version = di.Driver, di.Version
	}
	i.Features, i.FeatureErr = DeviceFeatures(l.Index)
	i.Queues, i.QueuesErr = DeviceQueues(l.Index)
	i.NAPIs, i.NAPIsErr = DeviceNAPIs(l.Index)
	if id := l.XDP.AnyProgID(); id != 0 {
		i.Program = ProgramName(id)
	}
	if i.Driver == "veth" && l.PeerIndex > 0 {
		var p xnl.Link
		if l.PeerNetNSID >= 0 {
			i.PeerNS = fmt.Sprintf("netns id %d", l.PeerNetNSID)
			p, i.PeerErr = xnl.LinkByIndexIn(l.PeerNetNSID, l.PeerIndex)
		} else {
			i.PeerNS = "this namespace"
			p, i.PeerErr = xnl.LinkByIndex(l.PeerIndex)
		}
		if i.PeerErr == nil {
			i.Peer = &p
		}
	}
	if procs, _, err := metrics.Peers(runDir); err == nil {
		for _, p := range procs {
			for _, s := range p.Sockets {
				if s.Interface == name {
					i.Holders[s.Queue] = append(i.Holders[s.Queue], fmt.Sprintf("pid %d (%s)", p.PID, p.Name))
				}
			}
		}
	}
	xsks, err := XDPSockets()
	i.XSKDiagErr = err
	for _, x := range xsks {
		if !x.Bound || int(x.Ifindex) != l.Index {
			continue
		}
		for _, o := range x.Owners {
			h := fmt.Sprintf("pid %d (%s)", o.PID, o.Name)
			if !slices.Contains(i.Holders[int(x.Queue)], h) {
				i.Holders[int(x.Queue)] = append(i.Holders[int(x.Queue)], h)
			}
		}
	}
	return i, nil
}

// ProgramName returns the name of the BPF program with id, or "" if it
// cannot be read (gone, or no privileges).
func ProgramName(id uint32) string {
	p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		return ""
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		return ""
	}
	return info.Name
}

// Checks runs every interface check; queue is -q, or -1.
func (i *Iface) Checks(queue int) []Result {
	rs := []Result{i.LinkState(), i.DriverInfo(), i.MTU(), i.XDP(), i.ZeroCopy(), i.Metadata(), i.Attached(), i.QueueCheck(queue)}
	if queue >= 0 {
		rs = append(rs, i.Holder(queue))
	}
	if i.Driver == "veth" {
		rs = append(rs, i.VethPeer())
	}
	return append(rs, i.NAPI())
}

// LinkState checks that the interface is up.
func (i *Iface) LinkState() Result {
	r := Result{Check: "link", Evidence: fmt.Sprintf("%s (ifindex %d) is %s", i.Link.Name, i.Link.Index, i.Operstate)}
	switch i.Operstate {
	case "up", "unknown": // unknown: drivers that do not report carrier (tun, some virtual ones)
		r.Verdict = OK
	default:
		r.Verdict, r.Fix = Fail, "ip link set dev "+i.Link.Name+" up (and check the cable or the peer: nothing arrives on a link that is down)"
	}
	return r
}

// DriverInfo reports the driver.
func (i *Iface) DriverInfo() Result {
	if i.Driver == "" {
		return Result{Check: "driver", Verdict: Info, Evidence: "the driver does not answer ETHTOOL_GDRVINFO"}
	}
	return Result{Check: "driver", Verdict: Info, Evidence: strings.TrimSpace(i.Driver + " " + i.Version)}
}

// vethMaxMTU is the largest peer MTU veth takes for a single-buffer XDP
// program: a page less XDP_PACKET_HEADROOM (and NET_IP_ALIGN, 0 on x86),
// less the skb_shared_info, less the Ethernet header (veth_xdp_set); 3506
// measured on Linux 6.18 x86-64, 3507 refused.
const vethMaxMTU = 4096 - 256 - 320 - 14

// MTU checks the MTU against what single-buffer native XDP takes. A veth
// checks its peer's MTU, not its own, when a program is attached
// (veth_xdp_set).
func (i *Iface) MTU() Result {
	r := Result{Check: "mtu", Evidence: fmt.Sprintf("MTU %d", i.Link.MTU)}
	switch {
	case i.Driver == "veth" && i.Peer != nil && i.Peer.MTU > vethMaxMTU:
		r.Verdict = Fail
		r.Evidence += fmt.Sprintf(", but its peer %s (%s) has MTU %d: veth takes a single-buffer XDP program only while the peer's MTU is at most %d (a frame must fit in a page with its headroom); attaching in driver mode fails with ERANGE", i.Peer.Name, i.PeerNS, i.Peer.MTU, vethMaxMTU)
		r.Fix = fmt.Sprintf("set the MTU of %s to %d or less (ip link set dev %s mtu %d, in its namespace), or receive jumbo frames with afxdp.Config.MultiBuffer", i.Peer.Name, vethMaxMTU, i.Peer.Name, vethMaxMTU)
	case i.Driver == "veth" && i.Peer != nil:
		r.Verdict = OK
		r.Evidence += fmt.Sprintf("; veth checks its peer's, %d: fits a 4 KiB frame", i.Peer.MTU)
		if i.Link.MTU > vethMaxMTU {
			r.Evidence += fmt.Sprintf(" (this end's is above %d: an XDP program on the peer would be refused)", vethMaxMTU)
		}
	case i.Driver == "veth" && i.Link.MTU > vethMaxMTU:
		r.Verdict = Warn
		r.Evidence += fmt.Sprintf(": veth takes a single-buffer XDP program only while its peer's MTU is at most %d, and the peer could not be read; the two usually match", vethMaxMTU)
		r.Fix = fmt.Sprintf("set the MTU of both ends to %d or less, or receive jumbo frames with afxdp.Config.MultiBuffer", vethMaxMTU)
	case i.Driver != "veth" && i.Link.MTU > 3498:
		r.Verdict = Warn
		r.Evidence += ": above what most drivers take for single-buffer native XDP (about 3500); multi-buffer or a smaller MTU"
		r.Fix = "use afxdp.Config.MultiBuffer for jumbo frames, or lower the MTU"
	default:
		r.Verdict = OK
		r.Evidence += ": fits a 4 KiB frame"
		if i.Driver == "veth" {
			r.Evidence += fmt.Sprintf(" (veth checks its peer's MTU, which could not be read: keep it at most %d too)", vethMaxMTU)
		}
	}
	if r.Fix != "" && i.FeatureErr == nil {
		if i.Features.XDP&xdpRXSG != 0 {
			r.Fix += " (the driver has multi-buffer XDP: rx-sg)"
		} else {
			r.Fix += " (but the driver has no multi-buffer XDP, rx-sg: lower the MTU)"
		}
	}
	return r
}

func (i *Iface) featureErr(check string) (Result, bool) {
	if i.FeatureErr == nil {
		return Result{}, false
	}
	return Result{Check: check, Verdict: Info, Evidence: "unknown: " + i.FeatureErr.Error()}, true
}

// XDP checks that the driver runs XDP programs natively.
func (i *Iface) XDP() Result {
	if r, ok := i.featureErr("native-xdp"); ok {
		return r
	}
	f := i.Features.XDP
	names := flagNames(f, map[uint64]string{xdpBasic: "basic", xdpRedirect: "redirect", xdpNdoXmit: "ndo-xmit", xdpZeroCopy: "xsk-zerocopy", xdpHWOffload: "hw-offload", xdpRXSG: "rx-sg", xdpNdoXmitSG: "ndo-xmit-sg"})
	r := Result{Check: "native-xdp", Evidence: "xdp-features: " + names}
	if f&xdpBasic == 0 || f&xdpRedirect == 0 {
		r.Verdict = Warn
		r.Evidence += ": no native XDP (redirect) in this driver; xdpkit falls back to generic (skb) mode, which copies every frame into an skb first and is several times slower"
		r.Fix = "use a driver with native XDP (the NIC itself rather than a macvlan or bond on it), or accept generic mode (-xdp-mode generic)"
		return r
	}
	r.Verdict = OK
	return r
}

// ZeroCopy checks for AF_XDP zero-copy.
func (i *Iface) ZeroCopy() Result {
	if r, ok := i.featureErr("zero-copy"); ok {
		return r
	}
	if i.Features.XDP&xdpZeroCopy == 0 {
		return Result{Check: "zero-copy", Verdict: Info, Evidence: "no AF_XDP zero-copy in this driver: sockets bind in copy mode (the kernel copies each frame into the UMEM)"}
	}
	return Result{Check: "zero-copy", Verdict: OK, Evidence: fmt.Sprintf("AF_XDP zero-copy supported, up to %d segments per packet", i.Features.ZCMaxSegs)}
}

// Metadata reports the RX metadata kfuncs and XSK TX metadata the driver
// implements.
func (i *Iface) Metadata() Result {
	if r, ok := i.featureErr("metadata"); ok {
		return r
	}
	rx := flagNames(i.Features.RXMetadata, map[uint64]string{rxmdTimestamp: "timestamp", rxmdHash: "hash", rxmdVLAN: "vlan-tag"})
	tx := flagNames(i.Features.XSKFeatures, map[uint64]string{xskTXTimestamp: "tx-timestamp", xskTXChecksum: "tx-checksum", xskLaunchTime: "launch-time"})
	return Result{Check: "metadata", Verdict: Info, Evidence: "RX metadata: " + rx + "; XSK TX metadata: " + tx}
}

// Attached reports the XDP program on the interface and whose it is.
func (i *Iface) Attached() Result {
	r := Result{Check: "xdp-program"}
	id := i.Link.XDP.AnyProgID()
	switch {
	case id == 0:
		r.Verdict, r.Evidence = OK, "no XDP program attached"
	case i.Program == "xdpkit_redirect":
		r.Verdict, r.Evidence = OK, fmt.Sprintf("xdpkit's redirect program, id %d, in %s mode", id, i.Link.XDP.Mode())
	case i.Program == "xdp_dispatcher":
		r.Verdict, r.Evidence = Info, fmt.Sprintf("a libxdp dispatcher, id %d, in %s mode: xdpkit cannot join it; its sockets must come from libxdp's programs", id, i.Link.XDP.Mode())
	default:
		r.Verdict = Warn
		name := i.Program
		if name == "" {
			name = "(unnamed)"
		}
		r.Evidence = fmt.Sprintf("someone else's XDP program %s, id %d, in %s mode: attaching xdpkit's fails with EBUSY, and this one decides what reaches any socket", name, id, i.Link.XDP.Mode())
		r.Fix = fmt.Sprintf("find its owner (bpftool prog show id %d); if it is stale: ip link set dev %s xdp off", id, i.Link.Name)
	}
	return r
}

// xskQueuesRelease is the first kernel whose netdev queue-get marks the
// queues an AF_XDP socket is bound to (NETDEV_A_QUEUE_XSK); before it, a
// queue without the mark says nothing.
const xskQueuesRelease = "6.15"

// boundRX returns the RX queues the kernel marks as bound to an AF_XDP
// socket, and whether the kernel marks them at all.
func (i *Iface) boundRX() (bound []int, known bool) {
	if i.QueuesErr != nil || len(i.Queues) == 0 || !atLeast(i.Release, xskQueuesRelease) {
		return nil, false
	}
	for _, q := range i.Queues {
		if !q.TX && q.XSK {
			bound = append(bound, q.ID)
		}
	}
	return bound, true
}

// QueueCheck checks the queue count against the queues sockets are (or,
// with -q, would be) bound to: traffic the NIC hashes to a queue without a
// socket never reaches one.
func (i *Iface) QueueCheck(queue int) Result {
	n := i.Link.NumRXQueues
	r := Result{Check: "queues", Evidence: fmt.Sprintf("%d RX queues", n)}
	bound, known := i.boundRX()
	for q := range i.Holders { // announced sockets count even where the kernel does not mark them
		if !slices.Contains(bound, q) {
			bound = append(bound, q)
		}
	}
	slices.Sort(bound)
	switch {
	case n == 0:
		r.Verdict, r.Evidence = Info, "the kernel did not report the queue count"
	case queue >= n:
		r.Verdict = Fail
		r.Evidence += fmt.Sprintf(": queue %d does not exist", queue)
		r.Fix = fmt.Sprintf("use -q 0 to -q %d", n-1)
	case len(bound) > 0 && len(bound) < n:
		r.Verdict = Warn
		r.Evidence += fmt.Sprintf(": only %s of %d %s an AF_XDP socket: traffic hashed to the other %d never arrives",
			queueList("queue", bound), n, plural(len(bound), "has", "have"), n-len(bound))
		r.Fix = "use -queues all (one worker per queue), or steer the flows to the bound queues with ethtool -N / -X"
	case len(bound) == n && n > 0:
		r.Verdict, r.Evidence = OK, r.Evidence+": every one has an AF_XDP socket"
	case queue >= 0 && n > 1:
		r.Verdict = Warn
		r.Evidence += fmt.Sprintf(": a socket on queue %d sees only what the NIC puts on that queue; traffic hashed to the other %d never arrives", queue, n-1)
		r.Fix = "use -queues all (one worker per queue), or steer the flows to this queue with ethtool -N / -X"
	case n > 1:
		r.Verdict = Info
		r.Evidence += ": receive on all of them with -queues all (one worker per queue)"
		if known {
			r.Evidence += "; none has an AF_XDP socket now"
		}
	default:
		r.Verdict = OK
	}
	return r
}

// Holder says which socket, if any, holds queue (-q): a second socket on
// a bound queue fails with EBUSY unless it shares the first one's UMEM.
func (i *Iface) Holder(queue int) Result {
	r := Result{Check: "queue-holder"}
	bound, known := i.boundRX()
	holders := i.Holders[queue]
	switch {
	case len(holders) > 0:
		r.Verdict = Warn
		r.Evidence = fmt.Sprintf("queue %d is held by the AF_XDP socket of %s", queue, strings.Join(holders, ", "))
		r.Fix = "a new socket on this queue fails with EBUSY unless it shares that socket's UMEM; stop that process or use another queue"
	case known && slices.Contains(bound, queue):
		r.Verdict = Warn
		r.Evidence = fmt.Sprintf("queue %d is bound to an AF_XDP socket of a process that is not an announced xdpkit one", queue)
		if i.XSKDiagErr != nil {
			r.Evidence += " (the kernel has no xsk_diag to say whose: ss --xdp cannot either)"
		}
		r.Fix = "a new socket on this queue fails with EBUSY; find the owner (ss --xdp -p where the kernel has xsk_diag) or use another queue"
	case known:
		r.Verdict, r.Evidence = OK, fmt.Sprintf("queue %d is free: no AF_XDP socket is bound to it", queue)
	default:
		r.Verdict, r.Evidence = Info, fmt.Sprintf("no announced xdpkit process holds queue %d; this kernel does not mark bound queues (Linux %s+) and has no xsk_diag to ask", queue, xskQueuesRelease)
	}
	return r
}

// VethPeer reports a veth's other end: what it must have for what this
// end sends.
func (i *Iface) VethPeer() Result {
	r := Result{Check: "veth-peer"}
	switch {
	case i.Link.PeerIndex == 0:
		r.Verdict, r.Evidence = Info, "the kernel did not name the peer"
		return r
	case i.Peer == nil:
		r.Verdict, r.Evidence = Info, fmt.Sprintf("peer ifindex %d in %s: %v", i.Link.PeerIndex, i.PeerNS, i.PeerErr)
		return r
	}
	p := i.Peer
	r.Evidence = fmt.Sprintf("peer %s (ifindex %d, %s), MTU %d", p.Name, p.Index, i.PeerNS, p.MTU)
	if p.XDP.IsAttached() {
		r.Verdict = OK
		r.Evidence += fmt.Sprintf(", XDP program %d attached: it has NAPI, so frames this side's XDP program sends with XDP_TX or redirects reach it", p.XDP.AnyProgID())
		return r
	}
	r.Verdict = Info
	r.Evidence += ", no XDP program: frames this side's XDP program sends back with XDP_TX (or redirects into this veth) reach the peer only if it has NAPI, that is GRO on; AF_XDP transmits are not affected"
	r.Fix = fmt.Sprintf("for XDP_TX (e.g. xdp-lb's fast path): ethtool -K %s gro on, or attach an XDP program to it", p.Name)
	return r
}

// NAPI reports the device's NAPI instances and their busy-poll settings.
func (i *Iface) NAPI() Result {
	r := Result{Check: "napi", Verdict: Info}
	if i.NAPIsErr != nil {
		r.Evidence = "unknown: " + i.NAPIsErr.Error()
		return r
	}
	if len(i.NAPIs) == 0 {
		r.Evidence = "no NAPI instance"
		if i.Driver == "veth" {
			r.Evidence += ": a veth has NAPI only while an XDP program is attached or GRO is on"
		}
		return r
	}
	queues := map[uint32][]int{}
	for _, q := range i.Queues {
		if !q.TX && q.NAPIID != 0 {
			queues[q.NAPIID] = append(queues[q.NAPIID], q.ID)
		}
	}
	var parts []string
	tuned := false
	for _, n := range i.NAPIs {
		s := fmt.Sprintf("napi %d", n.ID)
		if qs := queues[n.ID]; len(qs) > 0 {
			s += " (" + queueList("rx queue", qs) + ")"
		}
		if n.IRQ >= 0 {
			s += fmt.Sprintf(" irq %d", n.IRQ)
		}
		if n.Threaded {
			s += fmt.Sprintf(" threaded (pid %d)", n.PID)
		}
		s += fmt.Sprintf(" defer-hard-irqs %d gro-flush-timeout %dns", n.DeferHardIRQs, n.GROFlushTimeout)
		if n.IRQSuspendTimeout != 0 {
			s += fmt.Sprintf(" irq-suspend-timeout %dns", n.IRQSuspendTimeout)
		}
		tuned = tuned || n.DeferHardIRQs != 0 && n.GROFlushTimeout != 0
		parts = append(parts, s)
	}
	r.Evidence = strings.Join(parts, "; ")
	if !tuned {
		r.Evidence += ": interrupts are not deferred"
		r.Fix = "for busy polling (afxdp.Config.BusyPoll) on a NIC, defer them, e.g. napi_defer_hard_irqs 2 and gro_flush_timeout 200000: package napi sets and restores them"
	}
	return r
}

func queueList(word string, qs []int) string {
	s := make([]string, len(qs))
	for k, q := range qs {
		s[k] = fmt.Sprint(q)
	}
	if len(qs) == 1 {
		return word + " " + s[0]
	}
	return word + "s " + strings.Join(s, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func flagNames(v uint64, names map[uint64]string) string {
	var out []string
	for bit := uint64(1); bit != 0 && bit <= v; bit <<= 1 {
		if v&bit == 0 {
			continue
		}
		if n, ok := names[bit]; ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprintf("%#x", bit))
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}
