// Command xdp-gen sends traffic from AF_XDP sockets: UDP, TCP SYN or ICMP
// echo frames over IPv4 or IPv6, of a fixed size or IMIX, in N flows, at a
// paced rate or as fast as the ring takes them; or the frames of a pcap or
// pcapng file, byte for byte, at their recorded pace, faster, or at a
// rate. With -latency it also receives the replies of a reflector on the
// far side (xdp-reflect, or any echo service) and reports round-trip
// times, loss, reordering and duplicates.
//
// Linux 5.10+, root (CAP_NET_RAW; with -latency also CAP_BPF and
// CAP_NET_ADMIN for the redirect program that brings the replies).
//
//	sudo xdp-gen -i eth1 -dst 10.0.0.2:9 -rate 100k -duration 10s
//	sudo xdp-gen -i eth1 -dst 10.0.0.2:7 -latency -rate 10k -count 100000
//	sudo xdp-gen -i eth1 -pcap trace.pcapng -speed 2 -loop 3
//
// It refuses to flood the interface that carries the default route or
// the SSH session it runs in, unless -force.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/cli"
	"github.com/xdpkit/xdpkit/gen"
	"github.com/xdpkit/xdpkit/metrics"
	"github.com/xdpkit/xdpkit/redirect"
	"github.com/xdpkit/xdpkit/umem"
)

func main() {
	tool := cli.New("xdp-gen", "send traffic from AF_XDP sockets, and measure replies", "")
	f := tool.Flags
	dst := f.String("dst", "", "destination `IP[:PORT]` (port default 9, discard)")
	src := f.String("src", "", "source `IP[:PORT]` (default: the interface's address, port 40000)")
	dstMAC := f.String("dst-mac", "", "destination `MAC` (default: from the kernel's neighbour table)")
	proto := f.String("proto", "udp", "udp, tcp-syn or icmp")
	size := f.String("size", "64", "frame `bytes` without FCS, a list (64,1500) or imix (7:4:1 of 64/576/1500)")
	flows := f.Int("flows", 1, "rotate through `N` flows")
	flowBy := f.String("flow-by", "port", "what differs between flows: port, addr or both")
	vlan := f.Int("vlan", 0, "802.1Q VLAN `id` (0: untagged)")
	rate := f.String("rate", "", "frames a second (100k, 1.5M) or bits a second (10Mbit, 1Gbit), split over -queues (default: as fast as the ring takes)")
	count := f.Uint64("count", 0, "send `N` frames and stop (0: until -duration or Ctrl-C)")
	batch := f.Int("burst", 64, "frames put on the TX ring at once")
	pcap := f.String("pcap", "", "replay the frames of this pcap or pcapng `file` byte for byte")
	loop := f.Int("loop", 1, "with -pcap: send the file `N` times (0: until -count, -duration or Ctrl-C)")
	speed := f.Float64("speed", 1, "with -pcap: the recorded pace times `X` (0: as fast as possible; -rate overrides)")
	latency := f.Bool("latency", false, "receive the replies of a reflector and report RTT, loss, reordering, duplicates")
	wait := f.Duration("latency-wait", time.Second, "with -latency: how long to wait for the last replies")
	force := f.Bool("force", false, "flood the interface even if it carries the default route or this SSH session")
	budget := f.Int("tx-budget", 256, "frames per sendto in copy mode (XDP_MAX_TX_SKB_BUDGET, Linux 6.16+, where the kernel's default is 32; 0: the kernel's; without the option the default falls back to it)")
	stamp := f.Bool("stamp", false, "write a sequence number and the send time into every UDP and ICMP frame (always with -latency)")
	csum := f.String("csum", "compute", "UDP/TCP checksums: compute (here), offload (TX metadata: the NIC, or in copy mode the kernel's stack, finishes them) or kernel (TX metadata: the kernel computes them at send, XDP_UMEM_TX_SW_CSUM); Linux 6.8+")
	rxts := f.Bool("rx-timestamps", false, "with -latency: time replies by the NIC's RX timestamp (XDP RX metadata) where it has one")
	tool.Refuse("xdp-gen opens its own sockets; run one process per interface", "pin", "shared-umem")
	tool.Refuse("it only transmits; replies are counted as they come", "coalesce")
	tool.Main(func(ctx context.Context) error {
		cfg := config{tool: tool, count: *count, batch: *batch, latency: *latency, wait: *wait, budget: *budget, rxts: *rxts,
			stamp: *stamp || *latency, budgetSet: tool.IsSet("tx-budget")}
		switch *csum {
		case "compute":
		case "offload", "kernel":
			cfg.csum = *csum
		default:
			return fmt.Errorf("-csum %q: want compute, offload or kernel", *csum)
		}
		if *rxts && !*latency {
			return errors.New("-rx-timestamps needs -latency: it times the replies")
		}
		if (tool.XSKMap != "" || tool.DP != "") && !*latency {
			return errors.New("-xskmap and -dp need -latency: without it xdp-gen only sends, and registers its sockets nowhere")
		}
		if err := safeToFlood(tool.Iface, *force); err != nil {
			return err
		}
		r, err := gen.ParseRate(*rate)
		if err != nil {
			return fmt.Errorf("-rate: %w", err)
		}
		if *pcap != "" {
			for _, name := range []string{"dst", "src", "dst-mac", "proto", "size", "flows", "flow-by", "vlan", "latency", "csum"} {
				if tool.IsSet(name) {
					return fmt.Errorf("-%s does not apply to -pcap: the frames are sent as captured", name)
				}
			}
			if *loop < 0 || *speed < 0 {
				return errors.New("-loop and -speed must not be negative")
			}
			c, err := gen.ReadCapture(*pcap, 4096)
			if err != nil {
				return err
			}
			cfg.capture, cfg.loops, cfg.speed = c, *loop, *speed
			if *loop == 0 {
				cfg.loops = -1
			}
			cfg.rate = r.FramesPerSecond(c.MeanSize())
			return run(ctx, cfg)
		}
		b, err := builder(tool.Iface, *dst, *src, *dstMAC, *proto, *size, *flows, *flowBy, *vlan, cfg.csum != "")
		if err != nil {
			return err
		}
		if *latency && (b.Template().Proto == gen.TCPSYN || !b.HasStamp(0)) {
			return errors.New("-latency needs -proto udp or icmp with frames large enough for the 20-byte stamp")
		}
		cfg.builder, cfg.rate = b, r.FramesPerSecond(b.MeanSize())
		return run(ctx, cfg)
	})
}

type config struct {
	tool    *cli.Tool
	builder *gen.Builder
	capture *gen.Capture
	loops   int
	speed   float64
	rate    float64 // frames a second over all queues; 0: no limit
	count   uint64
	batch   int
	latency bool
	wait    time.Duration
	budget  int
	csum    string // "", offload or kernel
	rxts    bool
	stamp   bool
	// budgetSet: -tx-budget was given; the default falls back to the
	// kernel's on kernels without XDP_MAX_TX_SKB_BUDGET.
	budgetSet bool
}

// builder turns the packet flags into a frame builder, resolving what
// was left to defaults from the interface and the kernel.
func builder(ifname, dst, src, dstMAC, proto, size string, flows int, flowBy string, vlan int, offload bool) (*gen.Builder, error) {
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w", ifname, err)
	}
	p, err := gen.ParseProto(proto)
	if err != nil {
		return nil, fmt.Errorf("-proto: %w", err)
	}
	sizes, err := gen.ParseSizes(size)
	if err != nil {
		return nil, fmt.Errorf("-size: %w", err)
	}
	if dst == "" {
		return nil, errors.New("-dst IP[:PORT] is required (or -pcap FILE)")
	}
	t := gen.Template{Proto: p, Sizes: sizes, Flows: flows, VLAN: uint16(vlan), SrcMAC: ifc.HardwareAddr, ChecksumOffload: offload}
	if vlan < 0 || vlan > 4094 {
		return nil, fmt.Errorf("-vlan %d: want 0 to 4094", vlan)
	}
	switch flowBy {
	case "port":
		t.FlowBy = gen.FlowSrcPort
	case "addr":
		t.FlowBy = gen.FlowSrcAddr
	case "both":
		t.FlowBy = gen.FlowBoth
	default:
		return nil, fmt.Errorf("-flow-by %q: want port, addr or both", flowBy)
	}
	if t.Dst, t.DstPort, err = addrPort(dst, 9); err != nil {
		return nil, fmt.Errorf("-dst: %w", err)
	}
	if src != "" {
		if t.Src, t.SrcPort, err = addrPort(src, 40000); err != nil {
			return nil, fmt.Errorf("-src: %w", err)
		}
	} else {
		t.SrcPort = 40000
		if t.Src, err = ifaceAddr(ifc, t.Dst.Is4()); err != nil {
			return nil, err
		}
	}
	t.DstMAC = net.HardwareAddr{0, 0, 0, 0, 0, 0}
	if _, err := gen.NewBuilder(t); err != nil { // the flags' errors before any lookup
		return nil, err
	}
	if dstMAC != "" {
		if t.DstMAC, err = net.ParseMAC(dstMAC); err != nil {
			return nil, fmt.Errorf("-dst-mac: %w", err)
		}
	} else if t.DstMAC, err = resolve(ifc, t.Dst); err != nil {
		return nil, err
	}
	return gen.NewBuilder(t)
}

// addrPort reads "IP", "IP:PORT" or "[IPv6]:PORT".
func addrPort(s string, defPort uint16) (netip.Addr, uint16, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), ap.Port(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("%q is not IP or IP:PORT", s)
	}
	return a.Unmap(), defPort, nil
}

func ifaceAddr(ifc *net.Interface, v4 bool) (netip.Addr, error) {
	addrs, err := ifc.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("interface %s: %w", ifc.Name, err)
	}
	for _, a := range addrs {
		if pn, ok := a.(*net.IPNet); ok {
			ip, _ := netip.AddrFromSlice(pn.IP)
			ip = ip.Unmap()
			if ip.Is4() == v4 && !ip.IsLinkLocalUnicast() {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no %s address to send from: give -src", ifc.Name, map[bool]string{true: "IPv4", false: "IPv6"}[v4])
}

// run opens a socket per queue and runs a sender on each.
func run(ctx context.Context, cfg config) error {
	tool := cfg.tool
	iface, err := net.InterfaceByName(tool.Iface)
	if err != nil {
		return fmt.Errorf("interface %q: %w", tool.Iface, err)
	}
	sockCfg := afxdp.Config{Bind: tool.Bind, TXBudget: cfg.budget, Steering: afxdp.NoSteering}
	if cfg.csum != "" {
		// TX metadata in front of every frame, where the checksum request
		// goes; with "kernel" the kernel computes the checksum at send.
		sockCfg.UMEMOptions = &umem.Options{TXMetadata: true, TXSoftwareChecksum: cfg.csum == "kernel"}
	}
	numQueues := 1
	var prog *redirect.Program
	if cfg.latency {
		// The replies come back through a redirect program: only what
		// matches the filter (the reflector's replies) reaches the
		// sockets. With -xskmap or -dp, through another process's.
		xsks, err := tool.ExistingXSKMap()
		if err != nil {
			return err
		}
		if xsks != nil {
			defer xsks.Close()
			sockCfg.Steering, numQueues = xsks, xsks.Queues()
		} else {
			if !tool.IsSet("filter") {
				tool.Filter = replyFilter(cfg.builder.Template())
			}
			opts, err := tool.RedirectOptions()
			if err != nil {
				return err
			}
			opts.RXMetadata = cfg.rxts // the NIC's RX timestamps in front of each reply
			if prog, err = redirect.Attach(iface.Index, opts); err != nil {
				return err
			}
			defer prog.Close()
			sockCfg.Steering, numQueues = prog, prog.Queues()
		}
	} else if n, err := queueCount(tool.Iface); err == nil {
		numQueues = n
	}
	queues, _, err := tool.WorkerQueues(numQueues)
	if err != nil {
		return err
	}
	var socks []*afxdp.Socket
	defer func() {
		for _, s := range socks {
			s.Close()
		}
	}()
	for _, q := range queues {
		s, err := afxdp.Open(tool.Iface, q, &sockCfg)
		if errors.Is(err, afxdp.ErrNotSupported) && sockCfg.TXBudget != 0 && !cfg.budgetSet {
			sockCfg.TXBudget = 0 // a kernel before 6.16: its own budget
			s, err = afxdp.Open(tool.Iface, q, &sockCfg)
		}
		if err != nil {
			return err
		}
		socks = append(socks, s)
	}
	var replies []*gen.Tracker
	if cfg.latency {
		replies = make([]*gen.Tracker, slicesMax(queues)+1)
		for _, q := range queues {
			replies[q] = gen.NewTracker(0)
		}
	}
	senders := make([]*gen.Sender, len(socks))
	for k, s := range socks {
		sc := gen.SenderConfig{Socket: s, Builder: cfg.builder, Stamp: cfg.builder != nil && cfg.stamp, Capture: cfg.capture, Loops: cfg.loops, Speed: cfg.speed,
			Rate: cfg.rate / float64(len(socks)), Batch: cfg.batch, Count: share(cfg.count, len(socks), k)}
		if cfg.latency {
			q := queues[k]
			sc.Tracker, sc.SeqBase, sc.Replies, sc.RXTimestamps = replies[q], uint64(q)<<gen.SeqQueueShift, replies, cfg.rxts
		}
		if cfg.count > 0 && sc.Count == 0 {
			continue // fewer frames than queues
		}
		if senders[k], err = gen.NewSender(sc); err != nil {
			return err
		}
	}
	m := metrics.New() // what -metrics ADDR serves at /metrics
	for _, s := range socks {
		m.AddSocket(tool.Iface, s)
	}
	if prog != nil {
		m.AddProgram(tool.Iface, prog)
	}
	stopMetrics, err := tool.ServeMetrics(m)
	if err != nil {
		return err
	}
	defer stopMetrics()
	tool.Logf("sending on %s queues %v%s", tool.Iface, queues, rateNote(cfg.rate))

	stopLive := live(tool, senders, replies)
	var wg sync.WaitGroup
	errs := make([]error, len(senders))
	results := make([]gen.SenderStats, len(senders))
	for k, s := range senders {
		if s == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[k], errs[k] = s.Run(ctx)
		}()
	}
	wg.Wait()
	if cfg.latency {
		// The last replies are still on their way.
		wctx, cancel := context.WithTimeout(context.Background(), cfg.wait)
		for _, s := range senders {
			if s != nil {
				wg.Add(1)
				go func() { defer wg.Done(); s.Drain(wctx) }()
			}
		}
		wg.Wait()
		cancel()
		for k, s := range senders {
			if s != nil {
				results[k] = s.Snapshot()
			}
		}
	}
	stopLive()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return summary(tool, queues, results, replies)
}

// replyFilter matches what a reflector sends back for t's frames.
func replyFilter(t gen.Template) string {
	if t.Proto == gen.ICMPEcho {
		if t.Dst.Is6() {
			return "icmp6 and src host " + t.Dst.String()
		}
		return "icmp and src host " + t.Dst.String()
	}
	return fmt.Sprintf("udp and src host %s and src port %d", t.Dst, t.DstPort)
}

func queueCount(ifname string) (int, error) {
	ents, err := os.ReadDir("/sys/class/net/" + ifname + "/queues")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "tx-") {
			n++
		}
	}
	if n == 0 {
		return 0, errors.New("no TX queues listed")
	}
	return n, nil
}

func slicesMax(qs []int) int {
	m := 0
	for _, q := range qs {
		m = max(m, q)
	}
	return m
}

// share is sender k's part of count frames split over n.
func share(count uint64, n, k int) uint64 {
	if count == 0 {
		return 0
	}
	s := count / uint64(n)
	if uint64(k) < count%uint64(n) {
		s++
	}
	return s
}

func rateNote(r float64) string {
	if r == 0 {
		return ", as fast as the ring takes them"
	}
	return fmt.Sprintf(" at %s frames/s", strconv.FormatFloat(r, 'f', -1, 64))
}

// live prints a line a second: rates, and with replies, latency and loss.
func live(tool *cli.Tool, senders []*gen.Sender, replies []*gen.Tracker) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var prev gen.SenderStats
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				cur := total(senders)
				dt := now.Sub(last).Seconds()
				line := fmt.Sprintf("tx %s frames/s %s", cli.SI(float64(cur.Sent-prev.Sent)/dt), cli.BitRate(float64(cur.Bytes-prev.Bytes)*8/dt))
				if replies != nil {
					ls := latencyStats(replies)
					line += fmt.Sprintf(" | rx %s frames/s, rtt p50 %v p99 %v, %d not back", cli.SI(float64(cur.Replies-prev.Replies)/dt),
						ls.p50, ls.p99, ls.st.Lost)
				}
				tool.Logf("%s", line)
				prev, last = cur, now
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func total(senders []*gen.Sender) gen.SenderStats {
	var t gen.SenderStats
	for _, s := range senders {
		if s == nil {
			continue
		}
		st := s.Snapshot()
		t.Sent += st.Sent
		t.Bytes += st.Bytes
		t.RingFull += st.RingFull
		t.Received += st.Received
		t.Replies += st.Replies
		t.Elapsed = max(t.Elapsed, st.Elapsed)
	}
	return t
}

type latencySummary struct {
	st                  gen.TrackerStats
	p50, p99, p999, max time.Duration
	mean                time.Duration
}

// latencyStats merges the trackers' counts; the percentiles are over all
// replies (each queue's histogram weighed by its count).
func latencyStats(replies []*gen.Tracker) latencySummary {
	var out latencySummary
	var all gen.Histogram
	var sum time.Duration
	var n uint64
	for _, tr := range replies {
		if tr == nil {
			continue
		}
		st := tr.Stats()
		out.st.Sent += st.Sent
		out.st.Replied += st.Replied
		out.st.Lost += st.Lost
		out.st.Duplicates += st.Duplicates
		out.st.Reordered += st.Reordered
		out.st.Late += st.Late
		all.Merge(&tr.RTT)
		sum += tr.RTT.Mean() * time.Duration(tr.RTT.Count())
		n += tr.RTT.Count()
	}
	out.p50, out.p99, out.p999, out.max = all.Quantile(0.5), all.Quantile(0.99), all.Quantile(0.999), all.Max()
	if n > 0 {
		out.mean = sum / time.Duration(n)
	}
	return out
}

func summary(tool *cli.Tool, queues []int, results []gen.SenderStats, replies []*gen.Tracker) error {
	var t gen.SenderStats
	perQueue := map[string]any{}
	for k, r := range results {
		t.Sent += r.Sent
		t.Bytes += r.Bytes
		t.RingFull += r.RingFull
		t.Replies += r.Replies
		t.Received += r.Received
		t.RXBytes += r.RXBytes
		t.RXTimed += r.RXTimed
		t.Elapsed = max(t.Elapsed, r.Elapsed)
		perQueue[strconv.Itoa(queues[k])] = map[string]any{"tx_packets": r.Sent, "tx_bytes": r.Bytes, "duration_s": r.Elapsed.Seconds()}
	}
	secs := t.Elapsed.Seconds()
	// The common fields (rx_*, tx_*, dropped, duration_s), and the sender's.
	out := map[string]any{
		"rx_packets": t.Received, "rx_bytes": t.RXBytes, "tx_packets": t.Sent, "tx_bytes": t.Bytes, "dropped": uint64(0),
		"duration_s": secs, "tx_ring_full": t.RingFull, "per_queue": perQueue,
	}
	if secs > 0 {
		out["tx_pps"], out["tx_bps"] = float64(t.Sent)/secs, float64(t.Bytes)*8/secs
	}
	line := fmt.Sprintf("sent %d frames (%d bytes) in %.3f s", t.Sent, t.Bytes, secs)
	if replies != nil {
		ls := latencyStats(replies)
		out["latency"] = map[string]any{
			"rx_timestamped": t.RXTimed,
			"sent":           ls.st.Sent, "replied": ls.st.Replied, "lost": ls.st.Lost, "duplicates": ls.st.Duplicates,
			"reordered": ls.st.Reordered, "late": ls.st.Late,
			"rtt_ns": map[string]int64{"p50": int64(ls.p50), "p99": int64(ls.p99), "p99.9": int64(ls.p999), "max": int64(ls.max), "mean": int64(ls.mean)},
		}
		line += fmt.Sprintf("; %d replies, %d lost, %d reordered, %d duplicates; rtt p50 %v p99 %v p99.9 %v max %v",
			ls.st.Replied, ls.st.Lost, ls.st.Reordered, ls.st.Duplicates, ls.p50, ls.p99, ls.p999, ls.max)
	}
	tool.Logf("%s", line)
	if tool.JSON {
		return tool.PrintJSON(out)
	}
	return nil
}
