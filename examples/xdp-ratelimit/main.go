// Command xdp-ratelimit polices each source address to -rate packets per
// second, with a token bucket of -burst packets per source, and drops every
// frame from the -block prefixes. The source table has a fixed size
// (-sources), so a flood of spoofed sources cannot grow memory.
//
// # In the kernel (the default)
//
// The policer runs in the XDP program itself (package fastpath, put in by
// redirect.Options.FastPath); no AF_XDP socket is opened. Frames that
// match -filter are policed: within their source's rate they go on to the
// kernel stack (XDP_PASS), so a local service (a DNS server, say) gets
// them as usual; over the rate they are dropped in XDP (rate_dropped).
// Frames that do not match -filter, and with -keep-mgmt (the default)
// ARP, IPv6 ND, SSH and DNS, go to the kernel stack unpoliced. Pick this
// mode to protect a service on the machine.
//
// # In user space (-userspace)
//
// Frames that match -filter are redirected to AF_XDP sockets, one worker
// per queue (-q or -queues), and policed there by stages.RateLimiter in a
// pipeline. The sockets consume them: within the rate or not, nothing
// reaches the local stack. It shows the policing stage on its own, for
// measuring traffic or as the first stage of a user-space service (its
// passed frames would go on to the next stage in pipeline.Config.Stages).
// -block still drops in XDP, in a fast path in front of the redirect.
//
// The kernel mode and -block need Linux 5.18+ (package fastpath),
// -userspace alone 5.10+; root (CAP_NET_ADMIN, CAP_BPF, and CAP_NET_RAW for
// -userspace).
//
//	sudo xdp-ratelimit -i eth0 -rate 100 -burst 20 -filter 'udp port 53' -keep-mgmt=false -block 203.0.113.0/24
//
// (-keep-mgmt=false because -keep-mgmt would leave DNS to the kernel
// before the filter, unpoliced.)
package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/cli"
	"github.com/xdpkit/xdpkit/fastpath"
	"github.com/xdpkit/xdpkit/metrics"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/redirect"
	"github.com/xdpkit/xdpkit/stages"
	"github.com/xdpkit/xdpkit/workers"
)

// limits are the policing flags, checked.
type limits struct {
	rate    float64        // packets per second per source, > 0
	burst   int            // packets, >= 1 (the default resolved)
	sources int            // source table size
	blocks  []netip.Prefix // -block, masked
}

// userspaceFlags are the common flags about sockets and workers, which
// the kernel mode has none of.
var userspaceFlags = []string{"q", "queues", "cpus", "shared-umem", "bind", "pin", "xskmap", "dp"}

func main() {
	tool := cli.New("xdp-ratelimit", "police each source address to a packet rate, in the kernel or in user space", "")
	rate := tool.Flags.Float64("rate", 1000, "packets per second allowed per source address")
	burst := tool.Flags.Int("burst", 0, "packets a source may send back to back (0: rate/10, rounded up, at least 1)")
	sources := tool.Flags.Int("sources", 65536, "size of the table of sources (fixed: when it is full, new sources evict old ones)")
	userspace := tool.Flags.Bool("userspace", false,
		"police in user space, on AF_XDP sockets (-q or -queues): the sockets consume the frames, nothing reaches the local stack")
	var blocks []netip.Prefix
	tool.Flags.Func("block", "drop every frame from this source `CIDR` or address in XDP, IPv4 or IPv6 (repeat for more)", func(s string) error {
		p, err := parsePrefix(s)
		if err == nil {
			blocks = append(blocks, p)
		}
		return err
	})
	// The common flags, as this tool reads them: -filter says what is
	// policed, whichever the mode; the socket and worker flags need
	// -userspace (checked in main).
	tool.Flags.Lookup("filter").Usage = "tcpdump-style filter of the frames to police (empty: all); " +
		"the rest go to the kernel stack unpoliced"
	tool.Flags.Lookup("keep-mgmt").Usage = "always leave ARP, IPv6 ND, SSH and DNS to the kernel, unpoliced " +
		"(so policing DNS needs -keep-mgmt=false)"
	for _, name := range userspaceFlags {
		tool.Flags.Lookup(name).Usage += " (with -userspace)"
	}
	tool.Main(func(ctx context.Context) error {
		lim := limits{rate: *rate, burst: *burst, sources: *sources, blocks: blocks}
		if !(lim.rate > 0) {
			return fmt.Errorf("-rate %g: must be more than 0 packets per second", lim.rate)
		}
		if lim.burst < 0 {
			return fmt.Errorf("-burst %d: must be 0 (rate/10) or more", lim.burst)
		}
		if lim.burst == 0 { // resolved here, so that both modes police alike
			lim.burst = max(1, int(math.Ceil(lim.rate/10)))
		}
		if *userspace {
			if tool.Pin != "" && len(blocks) > 0 {
				return errors.New("-block and -pin cannot be combined: the fast path that blocks is not pinned, " +
					"so the processes sharing the pins could not control it")
			}
			if (tool.XSKMap != "" || tool.DP != "") && len(blocks) > 0 {
				return errors.New("-block runs in the program xdp-ratelimit attaches: it cannot be combined with -xskmap or -dp")
			}
			return policeInUserSpace(ctx, tool, lim)
		}
		for _, name := range userspaceFlags {
			if tool.IsSet(name) {
				return fmt.Errorf("-%s needs -userspace: in the kernel the policer runs in the XDP program on every queue, without a socket", name)
			}
		}
		return policeInKernel(ctx, tool, lim)
	})
}

// parsePrefix reads a -block value: a CIDR, or a single address (a /32 or
// /128).
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q: an address with a zone cannot be blocked", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// newFastPath creates the fast path's maps with the -block prefixes set.
// The policer is off in cfg.Rate unless the caller sets it.
func newFastPath(cfg *fastpath.Config, blocks []netip.Prefix) (*fastpath.FastPath, error) {
	fp, err := fastpath.New(cfg)
	if err != nil {
		return nil, err
	}
	for _, p := range blocks {
		if err := fp.SetPolicy(p, fastpath.Block); err != nil {
			fp.Close()
			return nil, fmt.Errorf("-block %s: %w", p, err)
		}
	}
	return fp, nil
}

// policeInKernel puts the fast path, with its policer and the -block
// prefixes, into the XDP program and reports its counters until ctx is
// done. No socket: the frames it does not drop go to the kernel stack.
func policeInKernel(ctx context.Context, tool *cli.Tool, lim limits) error {
	iface, err := net.InterfaceByName(tool.Iface)
	if err != nil {
		return fmt.Errorf("interface %q: %w", tool.Iface, err)
	}
	// The fast path decides in XDP: frames from a -block prefix are
	// dropped (Counters.Blocked), frames over their source's rate are
	// dropped (RateDropped), and the rest get Default, Pass: the kernel
	// stack has them (RatePassed, and Default counts every Pass). Frames
	// without an IP header (Unparsed) are not policed, they get Pass too.
	fp, err := newFastPath(&fastpath.Config{
		Default: fastpath.Pass,
		Rate:    fastpath.Rate{PerSecond: lim.rate, Burst: lim.burst},
		Sources: lim.sources,
	}, lim.blocks)
	if err != nil {
		return err
	}
	defer fp.Close() // deferred first, so closed after the program: its maps stay in use until then

	// The filter in front of the fast path: tool.RedirectOptions compiles
	// -filter with the actions Redirect for matching frames and Pass for
	// the others (and -keep-mgmt's ARP, ND, SSH and DNS), which is what
	// this mode needs. In a program with a fast path, Redirect means "on
	// to the fast path" (the fast path then passes or drops, it never
	// redirects with Default Pass); Pass sends the frame to the kernel
	// stack unpoliced. Counters: the program's verdicts, to tell how many
	// frames the filter left unpoliced.
	opts, err := tool.RedirectOptions()
	if err != nil {
		return err
	}
	opts.FastPath, opts.Counters = fp, true
	prog, err := redirect.Attach(iface.Index, opts)
	if err != nil {
		return err
	}
	defer prog.Close()

	what := "every frame"
	if tool.Filter != "" {
		what = fmt.Sprintf("frames matching %q", tool.Filter)
	}
	if tool.KeepMgmt {
		what += " but ARP, ND, SSH and DNS (-keep-mgmt)"
	}
	tool.Logf("policing in XDP (%s) on %s: %s, %g pps per source, burst %d; -block prefixes: %d",
		prog.Mode(), tool.Iface, what, lim.rate, lim.burst, len(lim.blocks))

	m := metrics.New() // what -metrics ADDR serves at /metrics
	m.AddProgram(tool.Iface, prog)
	m.AddFastPath(tool.Iface, fp)
	stopMetrics, err := tool.ServeMetrics(m)
	if err != nil {
		return err
	}
	defer stopMetrics()
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	prev, err := fp.Counters()
	if err != nil {
		return err
	}
	prevAt := start
	for {
		select {
		case <-ctx.Done(): // Ctrl-C, SIGTERM or -duration
			return kernelSummary(tool, fp, prog, lim, time.Since(start))
		case now := <-tick.C:
			cur, err := fp.Counters()
			if err != nil {
				return err
			}
			rate := func(n, p uint64) float64 { return float64(n-p) / now.Sub(prevAt).Seconds() }
			tool.Logf("policed %.0f pps  passed %.0f pps  rate_dropped %.0f pps  blocked %.0f pps  drops %d",
				rate(policed(cur), policed(prev)), rate(cur.Default, prev.Default),
				rate(cur.RateDropped, prev.RateDropped), rate(cur.Blocked, prev.Blocked), cur.RateDropped+cur.Blocked)
			prev, prevAt = cur, now
		}
	}
}

// policed is the number of frames the fast path decided: with an empty
// flow table and Default Pass, each is blocked, dropped over its rate, or
// passed (Default).
func policed(c fastpath.Counters) uint64 { return c.Blocked + c.RateDropped + c.Default }

func kernelSummary(tool *cli.Tool, fp *fastpath.FastPath, prog *redirect.Program, lim limits, d time.Duration) error {
	c, err := fp.Counters()
	if err != nil {
		return err
	}
	pc, err := prog.Counters()
	if err != nil {
		return err
	}
	// The program passes what the filter leaves out and what the fast
	// path passes; the difference is what was never policed. (The two
	// reads are not one snapshot; once traffic stops they agree.)
	unpoliced := pc.Passed - min(pc.Passed, c.Default)
	if !tool.JSON {
		tool.Logf("%d frames policed in %.1fs: %d passed to the kernel stack, %d dropped over the rate, %d blocked; %d left to the stack unpoliced",
			policed(c), d.Seconds(), c.Default, c.RateDropped, c.Blocked, unpoliced)
		return nil
	}
	blocks := make([]string, len(lim.blocks))
	for i, p := range lim.blocks {
		blocks[i] = p.String()
	}
	// The common fields: in the kernel frames are counted, not their
	// bytes, and nothing is transmitted.
	return tool.PrintJSON(map[string]any{
		"rx_packets": policed(c), "rx_bytes": 0, "tx_packets": 0, "tx_bytes": 0,
		"dropped": c.RateDropped + c.Blocked, "duration_s": d.Seconds(),
		"mode":          "kernel",
		"passed":        c.Default,     // given to the kernel stack by the fast path
		"rate_passed":   c.RatePassed,  // the IP frames among them, within their source's rate
		"rate_dropped":  c.RateDropped, // over their source's rate: dropped in XDP
		"blocked":       c.Blocked,     // from a -block prefix: dropped in XDP
		"non_ip":        c.Unparsed,    // without an IP header: passed, not policed
		"unpoliced":     unpoliced,     // not matched by -filter (or management): passed, not policed
		"rate_pps":      lim.rate,
		"burst_packets": lim.burst,
		"block":         blocks,
		"filter":        tool.Filter,
	})
}

// policeInUserSpace attaches the redirect program (with a fast path in
// front for -block) and runs a worker on each queue, the one of -q or each
// of -queues, whose pipeline is the rate limiter.
func policeInUserSpace(ctx context.Context, tool *cli.Tool, lim limits) error {
	// A worker's pipeline: the limiter drops what is over the rate and
	// passes the rest on, to the Final verdict here (Drop: the frame goes
	// back to the fill ring). With -queues each worker polices the
	// sources its queue sees: RSS keeps a source's flows on one queue, but
	// a source spread over several queues gets the rate on each.
	newPipeline := func() (pipeline.Config, func() map[string]any, error) {
		rl, err := stages.NewRateLimiter(stages.RateLimitOptions{Rate: lim.rate, Burst: lim.burst, Capacity: lim.sources})
		if err != nil {
			return pipeline.Config{}, nil, err
		}
		summary := func() map[string]any {
			st := rl.Stats()
			return map[string]any{
				"passed":       st.Passed,
				"rate_dropped": st.Dropped,
				"non_ip":       st.NonIP,
				"evicted":      st.Evicted,
				"sources":      st.Sources,
			}
		}
		return pipeline.Config{Stages: []pipeline.Stage{rl}, Final: pipeline.Drop}, summary, nil
	}

	iface, err := net.InterfaceByName(tool.Iface)
	if err != nil {
		return fmt.Errorf("interface %q: %w", tool.Iface, err)
	}
	opts, err := tool.RedirectOptions() // -xdp-mode, and -filter in front of the redirect
	if err != nil {
		return err
	}
	var fp *fastpath.FastPath
	if len(lim.blocks) > 0 {
		// -block: a fast path between the filter and the redirect drops
		// the blocked sources in XDP and sends everything else on to the
		// socket (Default Redirect), unpoliced there: the workers police.
		if fp, err = newFastPath(&fastpath.Config{Default: fastpath.Redirect}, lim.blocks); err != nil {
			return err
		}
		defer fp.Close() // after the program's Close
		opts.FastPath = fp
	}
	// The program this process attaches, or joins with -pin; or, with
	// -xskmap or -dp, another process's XSKMAP (xdpkit attach, the AF_XDP
	// device plugin), which needs no BPF privileges.
	steer, err := tool.AttachOrJoin(iface.Index, opts)
	if err != nil {
		return err
	}
	defer steer.Close()

	queues, cpus, err := tool.WorkerQueues(steer.Queues)
	if err != nil {
		return err
	}
	summaries := map[int]func() map[string]any{}
	set, err := workers.New(workers.Config{
		Interface:  tool.Iface,
		Queues:     queues,
		CPUs:       cpus,
		SharedUMEM: tool.SharedUMEM,
		Socket:     afxdp.Config{Bind: tool.Bind, Coalesce: tool.Coalesce},
		Steering:   steer, // each worker's socket is registered for its queue
		Pipeline: func(queue int) (pipeline.Config, error) {
			cfg, summary, err := newPipeline()
			summaries[queue] = summary
			return cfg, err
		},
	})
	if err != nil {
		return err
	}
	defer set.Close()
	tool.Logf("workers on %s queues %v, CPUs %v: %g pps per source, burst %d; -block prefixes: %d (dropped in XDP)",
		tool.Iface, set.Queues(), set.CPUs(), lim.rate, lim.burst, len(lim.blocks))

	blocked := func() uint64 {
		if fp == nil {
			return 0
		}
		c, _ := fp.Counters()
		return c.Blocked
	}
	var extra func() string
	if fp != nil {
		extra = func() string { return fmt.Sprintf("blocked %d", blocked()) }
	}
	m := metrics.New() // what -metrics ADDR serves at /metrics
	m.AddWorkers(tool.Iface, set)
	if steer.Program != nil {
		m.AddProgram(tool.Iface, steer.Program)
	}
	if fp != nil {
		m.AddFastPath(tool.Iface, fp)
	}
	stopMetrics, err := tool.ServeMetrics(m)
	if err != nil {
		return err
	}
	defer stopMetrics()
	stop := tool.LiveRate(func() pipeline.Stats { return set.Snapshot().Total }, extra)
	st, err := set.Run(ctx) // until Ctrl-C or -duration
	stop()
	if err != nil {
		return err
	}
	// The limits and blocked are the set's, not a queue's (the fast path
	// counts per CPU): they go at the top level, once.
	summaries[cli.SetWide] = func() map[string]any {
		return map[string]any{"blocked": blocked(), "rate_pps": lim.rate, "burst_packets": lim.burst, "mode": "userspace"}
	}
	if err := tool.WorkersSummary(st, set, summaries); err != nil {
		return err
	}
	if fp != nil && !tool.JSON {
		tool.Logf("%d frames from -block prefixes dropped in XDP", blocked())
	}
	return nil
}
