//go:build linux

package main

// One run of one cell: start the DUT, start the generator, take counter
// snapshots WARM s and WARM+WIN s after the generator started, stop
// everything, compute the rates. And the ring benchmarks, which measure
// the ring package alone.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/xdpkit/xdpkit/bench/internal/dutwin"
	"github.com/xdpkit/xdpkit/bench/internal/progs"
)

type options struct {
	quick        bool
	runs         int
	warm, win    time.Duration
	tail         time.Duration // probe-only time after the load (idle latency)
	probeRate    int
	genCPU       int
	dutCPU       int
	genThreads   int
	perfRounds   int // rounds in which a perf-stat syscall sub-window runs
	profileCells string
	perfCPU      int

	self    string // this executable (for `gen`)
	bin     string // built DUTs (and examples/xdp-gen, if it built)
	xdpGen  string // examples/xdp-gen, "" if it did not build
	cBin    string // built C anchor (xsk_rxdrop + anc_xdp.bpf.o), "" if unavailable
	testpmd string // dpdk-testpmd, "" if unavailable
	perf    string // perf, "" if unavailable
	res     string // results directory
	topo    *topo
}

// snap is the state at one instant.
type snap struct {
	T     time.Time
	C     map[string]map[string]uint64
	CPU   []cpuTicks
	CPUT  time.Time         // when CPU was read (monotonic)
	Idle  uint64            // entries into the DUT CPU's idle states
	IRQs  map[string]uint64 // the DUT CPU's interrupts by kind, and "all"
	DUTns uint64            // DUT process CPU time (schedstat), ns
	DUTcs uint64            // DUT context switches
	DUTut uint64            // DUT user time, ticks
	DUTst uint64            // DUT system time (syscalls, and the softirqs that ran in them), ticks
	GenNs uint64            // generator process CPU time, ns
	OurNs uint64            // this process, ns
	KNs   uint64            // all kernel threads, ns
	Procs map[int]procCPU
	Load  string
}

type cpuTicks struct{ busy, total, idle, steal uint64 }

// Latency is a percentile summary, in microseconds.
type Latency struct {
	N      int     `json:"n"`
	Sent   int     `json:"sent"`
	LossPc float64 `json:"loss_pct"`
	P50    float64 `json:"p50_us"`
	P99    float64 `json:"p99_us"`
	P999   float64 `json:"p99_9_us"`
	Max    float64 `json:"max_us"`
}

// Run is one measured window.
type Run struct {
	Cell  string `json:"cell"`
	Round int    `json:"round"`
	OK    bool   `json:"ok"`
	Err   string `json:"error,omitempty"`
	// Disturbed: other processes used more than disturbedPct of a CPU in
	// the window; Retry: this run repeats a disturbed one.
	Disturbed bool `json:"disturbed,omitempty"`
	Retry     bool `json:"retry,omitempty"`

	Secs          float64 `json:"secs"`
	Mpps          float64 `json:"mpps"` // the scenario's rate, see README
	GenMpps       float64 `json:"gen_mpps"`
	ArrivedMpps   float64 `json:"arrived_mpps"`
	VethDropMpps  float64 `json:"veth_drop_mpps"`
	RedirectMpps  float64 `json:"xsk_redirect_mpps"`
	XDPDropMpps   float64 `json:"xdp_drop_mpps"`
	ReflectedMpps float64 `json:"reflected_mpps"`
	ForwardedMpps float64 `json:"forwarded_mpps"`
	// FrameBytes (tx): the mean length without FCS of the frames that
	// reached the sink, from its byte counter; it must be the cell's size.
	FrameBytes float64 `json:"frame_bytes,omitempty"`
	Gbps       float64 `json:"gbps"`

	GenCPU            float64 `json:"gen_cpu_pct"`
	DUTCPU            float64 `json:"dut_cpu_pct"`              // busy % of the DUT CPU: wall time less idle (/proc/stat), see busyPct
	DUTCPUSampled     float64 `json:"dut_cpu_sampled_pct"`      // the same from the tick-sampled jiffies, as reported before 2026-12-02
	DUTProcCPU        float64 `json:"dut_proc_cpu_pct"`         // the DUT process's own CPU time (schedstat)
	NsPerFrame        float64 `json:"dut_ns_per_frame"`         // DUT CPU busy ns / frame
	SampledNsPerFrame float64 `json:"dut_sampled_ns_per_frame"` // from DUTCPUSampled
	DUTSteal          float64 `json:"dut_cpu_steal_pct"`        // wall time the hypervisor stole from the DUT CPU, %
	GenSteal          float64 `json:"gen_cpu_steal_pct"`        // the same for the generator's CPU
	ProcNsPerFrame    float64 `json:"dut_proc_ns_per_frame"`
	DUTCtxSw          float64 `json:"dut_ctx_switches_per_s"`
	// The DUT CPU's wake-ups, per frame: how often it left the idle
	// loop (cpuidle) and the interrupts it took (/proc/interrupts), by
	// kind. They are what busy time the DUT process is not charged for
	// is made of.
	DUTIdleEntries float64            `json:"dut_cpu_idle_entries_per_frame,omitempty"`
	DUTIRQs        map[string]float64 `json:"dut_cpu_irqs_per_frame,omitempty"`
	// UserNsPerFrame and SysNsPerFrame split the DUT process's CPU time
	// per frame into user space and kernel (/proc/PID/stat): what the
	// implementation itself costs, apart from the kernel's copy-mode path.
	UserNsPerFrame float64  `json:"dut_user_ns_per_frame"`
	SysNsPerFrame  float64  `json:"dut_sys_ns_per_frame"`
	ForeignCPU     float64  `json:"foreign_cpu_pct"` // other user processes on the machine, % of one CPU
	ForeignTop     string   `json:"foreign_top,omitempty"`
	LoadAvg        string   `json:"loadavg"`
	SelfMpps       *float64 `json:"self_mpps,omitempty"`

	AllocsPerFrame   *float64 `json:"allocs_per_frame,omitempty"`
	ThreadAllocs     uint64   `json:"thread_allocs,omitempty"` // left out of AllocsPerFrame: the runtime's for the NewThreads it started in the window
	NewThreads       int      `json:"new_threads,omitempty"`
	SyscallsPerFrame *float64 `json:"syscalls_per_frame,omitempty"` // the DUT's own count
	PerfSyscalls     *float64 `json:"perf_syscalls_per_frame,omitempty"`
	DUTDroppedMpps   *float64 `json:"dut_dropped_mpps,omitempty"`

	Lat     *Latency `json:"latency_loaded,omitempty"`
	LatIdle *Latency `json:"latency_idle,omitempty"`

	DUT     *dutwin.Stats `json:"dut,omitempty"`
	GenErrs []string      `json:"gen_errors,omitempty"`

	samplesLoaded, samplesIdle []float64
	sentLoaded, sentIdle       int
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (o *options) snapshot(dut, gen *proc) (snap, error) {
	s := snap{T: time.Now()}
	var err error
	s.C, err = o.topo.counters()
	s.CPUT = time.Now()
	s.CPU = readCPUTicks()
	s.Idle = idleEntries(o.dutCPU)
	s.IRQs = cpuIRQs(o.dutCPU)
	if dut != nil && !dut.exited() {
		s.DUTns = schedstatNs(dut.pid())
		s.DUTcs = ctxSwitches(dut.pid())
		s.DUTut, s.DUTst = userSysTicks(dut.pid())
	}
	if gen != nil && !gen.exited() {
		s.GenNs = schedstatNs(gen.pid())
	}
	s.OurNs = schedstatNs(os.Getpid())
	s.Procs, s.KNs = scanProcs()
	if b, e := os.ReadFile("/proc/loadavg"); e == nil {
		s.Load = strings.TrimSpace(string(b))
	}
	return s, err
}

// dutArgv returns the command line of a cell's DUT.
func (o *options) dutArgv(c Cell, bound time.Duration, profile string) ([]string, string, error) {
	tb := []string{"taskset", "-c", strconv.Itoa(o.dutCPU)}
	secs := strconv.Itoa(int(bound.Seconds()))
	switch c.Impl {
	case "xdpkit":
		if c.xdpGen() {
			if o.xdpGen == "" {
				return nil, "", errors.New("examples/xdp-gen not built")
			}
			return append(append(tb, o.xdpGen), xdpGenArgs(c, bound)...), "sending on", nil
		}
		bin := "xdpkit-dut"
		if c.Bin != "" {
			bin = c.Bin
		}
		if _, err := os.Stat(filepath.Join(o.bin, bin)); err != nil {
			return nil, "", fmt.Errorf("%s not built", bin)
		}
		a := append(tb, filepath.Join(o.bin, bin), "-i", dutIf, "-mode", c.Mode, "-T", bound.String())
		if c.Mode == "l2fwd" {
			a = append(a, "-out", outIf, "-out-dmac", sinkMAC)
		}
		if c.tx() {
			a = append(a, txFrameArgs(c)...)
		}
		a = append(a, cellArgs(c)...)
		if profile != "" {
			a = append(a, "-cpuprofile", profile)
		}
		return append(a, c.Args...), "READY", nil
	case "asavie":
		a := append(tb, filepath.Join(o.bin, "asavie-dut"), "-i", dutIf, "-m", c.Mode, "-T", bound.String())
		if profile != "" {
			a = append(a, "-cpuprofile", profile)
		}
		return append(a, c.Args...), "READY", nil
	case "c-libxdp":
		if o.cBin == "" {
			return nil, "", errors.New("C anchor not built (needs /work/shared/anchors, clang, gcc, libxdp-dev)")
		}
		a := append(tb, filepath.Join(o.cBin, "xsk_rxdrop"), "-i", dutIf, "-q", "0", "-m", c.Mode,
			"-W", fmt.Sprint(o.warm.Seconds()), "-M", fmt.Sprint(o.win.Seconds()*0.9), "-T", secs)
		return append(a, c.Args...), "READY", nil
	case "dpdk":
		if o.testpmd == "" {
			return nil, "", errors.New("dpdk-testpmd not installed (apt-get install dpdk librte-net-af-xdp23)")
		}
		fwd := map[string]string{"drop": "rxonly", "reflect": "macswap", "l2fwd": "mac", "tx": "txonly"}[c.Mode]
		d := strconv.Itoa(o.dutCPU)
		// A variant's "vdev:KEY=VALUE" arguments are af_xdp PMD options
		// (e.g. busy_budget=0), appended to the first vdev's.
		vdev := "net_af_xdp0,iface=" + dutIf + ",start_queue=0,queue_count=1"
		var app []string
		for _, x := range c.Args {
			if kv, ok := strings.CutPrefix(x, "vdev:"); ok {
				vdev += "," + kv
			} else {
				app = append(app, x)
			}
		}
		// No timeout(1) wrapper: the DUT's PID must be testpmd's own (CPU
		// time, perf); startProc bounds its life instead.
		a := []string{"taskset", "-c", d, o.testpmd, "--lcores", "0@" + d + ",1@" + d, "-n", "1",
			"--no-huge", "-m", "512", "--no-pci", "--file-prefix=xbench",
			"--vdev", vdev}
		if c.Mode == "l2fwd" {
			a = append(a, "--vdev", "net_af_xdp1,iface="+outIf+",start_queue=0,queue_count=1")
		}
		a = append(a, "--", "--forward-mode="+fwd, "--nb-cores=1", "--total-num-mbufs=16384", "--stats-period", "1")
		if c.Mode == "l2fwd" {
			a = append(a, "--eth-peer=1,"+sinkMAC)
		}
		if c.tx() {
			a = append(a, testpmdTXArgs(c)...)
		}
		return append(a, app...), "forwards packets on", nil
	}
	return nil, "", fmt.Errorf("unknown implementation %s", c.Impl)
}

// The TX cells' frames are the same for every DUT (xdpGenArgs,
// txFrameArgs, testpmdTXArgs): Ethernet/IPv4/UDP from dutIP:loadPort to
// genIP:loadPort, to the generator's MAC (the sink drops them: they are
// not for probePort), of c.Size bytes without FCS.
//
// xdpGenArgs is examples/xdp-gen's command line for a TX cell: as fast as
// the ring takes them, for longer than the run (the harness stops it with
// SIGTERM after the window), with a JSON summary (its own count, a
// cross-check only) at the end; then the cell's levers.
func xdpGenArgs(c Cell, bound time.Duration) []string {
	a := []string{"-i", dutIf, "-q", "0", "-src", dutIP + ":" + strconv.Itoa(loadPort), "-dst", genIP + ":" + strconv.Itoa(loadPort),
		"-dst-mac", genMAC, "-size", strconv.Itoa(c.Size), "-duration", bound.String(), "-json"}
	return append(a, c.Args...)
}

// txFrameArgs tells xdpkit-dut -mode tx the frames to send.
func txFrameArgs(c Cell) []string {
	return []string{"-tx-src", dutIP + ":" + strconv.Itoa(loadPort), "-tx-dst", genIP + ":" + strconv.Itoa(loadPort),
		"-tx-dst-mac", genMAC, "-size", strconv.Itoa(c.Size)}
}

// testpmdTXArgs are testpmd's txonly options: --txpkts is the frame
// length without FCS (one segment; testpmd sizes the IPv4 and UDP lengths
// from it), the same addresses and ports as the xdpkit DUTs.
func testpmdTXArgs(c Cell) []string {
	p := strconv.Itoa(loadPort)
	return []string{"--txpkts=" + strconv.Itoa(c.Size), "--eth-peer=0," + genMAC, "--tx-ip=" + dutIP + "," + genIP, "--tx-udp=" + p + "," + p}
}

// cellArgs are the addresses an xdpkit cell's DUT needs from the topology:
// the balancer's (lbArgs) or the fast path's flows (fastPathArgs).
func cellArgs(c Cell) []string {
	switch {
	case c.Mode == "lb":
		return lbArgs()
	case c.FastPath != "":
		return fastPathArgs(c)
	}
	return nil
}

// lbBackends is how many backends the lb cells balance over (10.235.0.10
// and up, the DUT's default).
const lbBackends = 4

// lbArgs tells a -mode lb DUT its VIP, the generator's destination
// (dutIP:loadPort), and its backends' MAC address, the generator's.
func lbArgs() []string {
	return []string{"-lb-vip", dutIP + ":" + strconv.Itoa(loadPort), "-lb-backend-mac", genMAC, "-lb-backends", strconv.Itoa(lbBackends)}
}

// fastPathArgs tells a -fastpath DUT the generator's flows, as gen.go
// makes them: genIP:loadPort > dutIP:loadPort, or with c.Flows the source
// ports from progs.FlowBasePort; and the latency probe's flow for reflect.
func fastPathArgs(c Cell) []string {
	sport, n := loadPort, 1
	if c.Flows > 0 {
		sport, n = progs.FlowBasePort, c.Flows
	}
	a := []string{"-fp-src", genIP, "-fp-dst", dutIP, "-fp-sport", strconv.Itoa(sport), "-fp-sports", strconv.Itoa(n), "-fp-dport", strconv.Itoa(loadPort)}
	if c.probe() {
		a = append(a, "-fp-probe", strconv.Itoa(probePort))
	}
	return a
}

func cleanupDUT() {
	quiet("ip", "link", "set", "dev", dutIf, "xdp", "off")
	quiet("ip", "link", "set", "dev", outIf, "xdp", "off")
	_ = os.RemoveAll("/var/run/dpdk/xbench")
}

// runOne measures one window of cell c. profile, if set, asks a Go DUT for
// a CPU profile of the window; perfRecord, if set, records the DUT CPU with
// perf into that file.
func (o *options) runOne(ctx context.Context, c Cell, round int, profile, perfRecord string) *Run {
	r := &Run{Cell: c.Key, Round: round}
	err := o.measure(ctx, c, r, profile, perfRecord)
	cleanupDUT()
	if err != nil {
		r.Err = err.Error()
	} else {
		r.OK = true
	}
	return r
}

func (o *options) measure(ctx context.Context, c Cell, r *Run, profile, perfRecord string) error {
	base := filepath.Join(o.res, "runs", fmt.Sprintf("%s_%d", strings.NewReplacer("/", "_", " ", "_").Replace(c.Key), r.Round))
	if profile != "" || perfRecord != "" {
		base += "_profile"
	}
	perfSub := r.Round <= o.perfRounds && o.perf != "" && c.Impl != "kernel-xdp" && profile == "" && perfRecord == ""
	extra := 200 * time.Millisecond
	if perfSub {
		extra = 800 * time.Millisecond
	}
	load := o.warm + o.win + extra
	tail := time.Duration(0)
	if c.probe() {
		tail = o.tail
	}
	bound := 60*time.Second + load + tail

	// The DUT.
	var dut *proc
	if c.Impl == "kernel-xdp" {
		var prog *ebpf.Program
		var err error
		if c.Mode == "reflect" {
			prog, err = progs.MACSwap()
		} else {
			prog, err = progs.Drop()
		}
		if err != nil {
			return err
		}
		defer prog.Close()
		ifc, err := net.InterfaceByName(dutIf)
		if err != nil {
			return err
		}
		l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifc.Index, Flags: link.XDPDriverMode})
		if err != nil {
			return fmt.Errorf("attach kernel-xdp program: %w", err)
		}
		defer l.Close()
	} else {
		argv, ready, err := o.dutArgv(c, bound, profile)
		if err != nil {
			return err
		}
		if dut, err = startProc(c.Label(), base+".dut", bound, argv...); err != nil {
			return err
		}
		defer dut.stop(10 * time.Second)
		to := 20 * time.Second
		if c.Impl == "dpdk" {
			to = 40 * time.Second
		}
		if !dut.waitLine(ready, to) {
			return fmt.Errorf("DUT did not get ready: %s", dut.tail(4))
		}
		if err := sleepCtx(ctx, 300*time.Millisecond); err != nil {
			return err
		}
		if dut.exited() {
			return fmt.Errorf("DUT exited: %s", dut.tail(4))
		}
	}

	if c.tx() {
		return o.measureTX(ctx, c, r, dut, base, perfSub, perfRecord)
	}

	// The generator, in its netns, on its CPU.
	genArgv := []string{"ip", "netns", "exec", nsName, "taskset", "-c", strconv.Itoa(o.genCPU), o.self, "gen",
		"-if", genIf, "-dst-mac", dutMAC, "-src-mac", genMAC, "-dst-ip", dutIP, "-src-ip", genIP,
		"-size", strconv.Itoa(c.Size), "-threads", strconv.Itoa(o.genThreads), "-cpu", strconv.Itoa(o.genCPU),
		"-load", load.String(), "-repeat", strconv.Itoa(genRepeat(c.Size))}
	if c.Flows > 0 {
		genArgv = append(genArgv, "-flows", strconv.Itoa(c.Flows))
	}
	if c.probe() && o.probeRate > 0 {
		genArgv = append(genArgv, "-probe-rate", strconv.Itoa(o.probeRate), "-probe-tail", tail.String(), "-probe-port", strconv.Itoa(probePort))
	}
	gen, err := startProc("gen", base+".gen", load+tail+30*time.Second, genArgv...)
	if err != nil {
		return err
	}
	defer gen.stop(5 * time.Second)
	if !gen.waitLine("GEN_START", 15*time.Second) {
		return fmt.Errorf("generator did not start: %s", gen.tail(4))
	}

	if err := sleepCtx(ctx, o.warm); err != nil {
		return err
	}
	a, b, err := o.window(ctx, c, dut, gen, base, perfRecord)
	if err != nil {
		return err
	}

	// Syscall sub-window: perf counts the DUT's syscalls for 0.5 s after the
	// window, so that the tracepoint does not slow the window itself.
	perfCount, ps, pe := o.perfSyscalls(dut, base, perfSub)

	// Let the generator finish (load end + probe tail), then stop the DUT.
	if !gen.wait(load + tail + 10*time.Second) {
		gen.stop(5 * time.Second)
	}
	var gr GenResult
	if l := gen.find("GENRESULT "); l != "" {
		_ = json.Unmarshal([]byte(l[strings.Index(l, "GENRESULT ")+10:]), &gr)
	}
	r.GenErrs = gr.Errors
	if dut != nil {
		stopDUT(r, dut)
	}

	o.compute(c, r, a, b, dut)
	setPerfSyscalls(c, r, perfCount, ps, pe)
	if dut != nil {
		o.selfStats(c, r, dut)
	}
	if c.probe() {
		o.latency(r, &gr, a, b)
	}
	if len(gr.Errors) > 0 {
		return fmt.Errorf("generator: %s", strings.Join(gr.Errors, "; "))
	}
	if r.Mpps <= 0 {
		return fmt.Errorf("no frames counted (gen %.3f Mpps); DUT: %s", r.GenMpps, func() string {
			if dut != nil {
				return dut.tail(3)
			}
			return ""
		}())
	}
	return nil
}

func genRepeat(size int) int {
	if size > 1000 {
		return 1 << 18 // ~1-2 Mpps: keep one BPF_PROG_RUN call short
	}
	return 1 << 20
}

func rate(a, b snap, ifn, key string) float64 {
	dt := b.T.Sub(a.T).Seconds()
	va, vb := a.C[ifn][key], b.C[ifn][key]
	if dt <= 0 || vb < va {
		return 0
	}
	return float64(vb-va) / dt
}

// frames is the scenario's frame rate (frames/s) between two snapshots.
// stopDUT stops the DUT and reads the statistics it printed at exit
// (its DUTSTATS line) into r.
func stopDUT(r *Run, dut *proc) {
	dut.stop(10 * time.Second)
	if l := dut.find("DUTSTATS "); l != "" {
		var st dutwin.Stats
		if json.Unmarshal([]byte(l[strings.Index(l, "DUTSTATS ")+9:]), &st) == nil {
			r.DUT = &st
		}
	}
}

// setPerfSyscalls sets r's syscalls per frame from a perf count over the
// snapshots ps and pe (perfCount < 0: none was taken).
func setPerfSyscalls(c Cell, r *Run, perfCount float64, ps, pe snap) {
	if perfCount < 0 {
		return
	}
	dt := pe.T.Sub(ps.T).Seconds()
	if f := frames(c, ps, pe) * dt; f > 0 {
		v := perfCount / f
		r.PerfSyscalls = &v
	}
}

func frames(c Cell, a, b snap) float64 {
	switch {
	case c.toGen(), c.tx():
		return rate(a, b, genIf, "rx_queue_0_xdp_packets")
	case c.Mode == "l2fwd":
		return rate(a, b, sinkIf, "rx_queue_0_xdp_packets")
	}
	if c.xdpDrops() {
		return rate(a, b, dutIf, "rx_queue_0_xdp_drops")
	}
	return rate(a, b, dutIf, "rx_queue_0_xdp_redirect")
}

func (o *options) compute(c Cell, r *Run, a, b snap, dut *proc) {
	dt := b.T.Sub(a.T).Seconds()
	r.Secs = dt
	f := frames(c, a, b)
	r.Mpps = f / 1e6
	r.Gbps = f * float64(c.Size+4+20) * 8 / 1e9 // with FCS, preamble and gap
	r.GenMpps = rate(a, b, genIf, "tx_queue_0_xdp_xmit") / 1e6
	r.ArrivedMpps = rate(a, b, dutIf, "rx_queue_0_xdp_packets") / 1e6
	r.VethDropMpps = rate(a, b, dutIf, "rx_queue_0_drops") / 1e6
	r.RedirectMpps = rate(a, b, dutIf, "rx_queue_0_xdp_redirect") / 1e6
	r.XDPDropMpps = rate(a, b, dutIf, "rx_queue_0_xdp_drops") / 1e6
	r.ReflectedMpps = rate(a, b, genIf, "rx_queue_0_xdp_packets") / 1e6
	r.ForwardedMpps = rate(a, b, sinkIf, "rx_queue_0_xdp_packets") / 1e6
	if c.tx() {
		// What the DUT put into xbv0: what reached the sink plus what veth
		// dropped on the way (xbv1's ring full, xbv0's tx_dropped).
		r.VethDropMpps = rate(a, b, dutIf, sysfsTXDropped) / 1e6
		r.GenMpps = r.Mpps + r.VethDropMpps
		if f > 0 {
			// veth counts skb->len after eth_type_trans took the Ethernet
			// header, so the frame length is the byte count per frame + 14.
			r.FrameBytes = rate(a, b, genIf, "rx_queue_0_xdp_bytes")/f + 14
		}
	}
	r.GenCPU = busyPct(a.CPU, b.CPU, a.CPUT, b.CPUT, o.genCPU)
	r.DUTCPU = busyPct(a.CPU, b.CPU, a.CPUT, b.CPUT, o.dutCPU)
	r.DUTCPUSampled = sampledBusyPct(a.CPU, b.CPU, o.dutCPU)
	r.DUTSteal = stealPct(a.CPU, b.CPU, a.CPUT, b.CPUT, o.dutCPU)
	r.GenSteal = stealPct(a.CPU, b.CPU, a.CPUT, b.CPUT, o.genCPU)
	if f > 0 {
		r.NsPerFrame = r.DUTCPU / 100 * 1e9 / f
		r.SampledNsPerFrame = r.DUTCPUSampled / 100 * 1e9 / f
	}
	if dut != nil && b.DUTns > a.DUTns {
		r.DUTProcCPU = 100 * float64(b.DUTns-a.DUTns) / 1e9 / dt
		if f > 0 {
			r.ProcNsPerFrame = float64(b.DUTns-a.DUTns) / dt / f
		}
	}
	if f > 0 && dt > 0 {
		if b.Idle > a.Idle {
			r.DUTIdleEntries = float64(b.Idle-a.Idle) / dt / f
		}
		for k, v := range b.IRQs {
			if w, ok := a.IRQs[k]; ok && v >= w {
				if r.DUTIRQs == nil {
					r.DUTIRQs = map[string]float64{}
				}
				r.DUTIRQs[k] = float64(v-w) / dt / f
			}
		}
	}
	if dut != nil && b.DUTcs >= a.DUTcs {
		r.DUTCtxSw = float64(b.DUTcs-a.DUTcs) / dt
	}
	if dut != nil && f > 0 && b.DUTut >= a.DUTut && b.DUTst >= a.DUTst {
		const tick = 1e9 / 100 // USER_HZ
		r.UserNsPerFrame = float64(b.DUTut-a.DUTut) * tick / dt / f
		r.SysNsPerFrame = float64(b.DUTst-a.DUTst) * tick / dt / f
	}
	ours := map[int]bool{os.Getpid(): true}
	if dut != nil {
		ours[dut.pid()] = true
	}
	_, r.ForeignTop = foreignTop(a.Procs, b.Procs, ours, dt)
	// Foreign CPU: all busy time of the machine (/proc/stat, both CPUs)
	// minus what the DUT, the generator, this process and kernel threads
	// used (schedstat; softirq work is charged to the task it interrupted,
	// as this kernel has no IRQ time accounting). It includes processes too
	// short-lived to be seen by the /proc scan.
	// The sampled jiffies, as when the threshold was chosen: wall time less
	// idle would also count the wake-ups' interrupts, which no task is
	// charged for, as someone else's.
	var busyTicks uint64
	for i := range b.CPU {
		if i < len(a.CPU) {
			busyTicks += b.CPU[i].busy - a.CPU[i].busy
		}
	}
	busyNs := float64(busyTicks) * 1e9 / 100 // USER_HZ
	ourNs := float64((b.DUTns - a.DUTns) + (b.GenNs - a.GenNs) + (b.OurNs - a.OurNs) + (b.KNs - a.KNs))
	if b.GenNs < a.GenNs || b.DUTns < a.DUTns {
		ourNs = math.NaN()
	}
	if r.ForeignCPU = (busyNs - ourNs) / 1e9 / dt * 100; math.IsNaN(r.ForeignCPU) {
		r.ForeignCPU = -1 // unknown
	} else if r.ForeignCPU < 0 {
		r.ForeignCPU = 0
	}
	r.LoadAvg = b.Load
}

// selfStats reads what the DUT says about its own window.
// threadMallocs is how many heap objects the Go runtime (1.26) allocates
// to start an OS thread (runtime.newm: allocm, mcommoninit, malg), as a
// memory profile of the xdpkit.poll+LockOSThread.runtime-wait cell
// showed: 35 objects for 5 threads, and the 7 one window counted in 4.3
// million frames were one thread's. A goroutine locked to its thread
// that parks in the runtime poller hands its P to another thread,
// started if none is idle. Allocations beyond these counts still show.
const threadMallocs = 7

func (o *options) selfStats(c Cell, r *Run, dut *proc) {
	if st := r.DUT; st != nil && st.A != nil && st.B != nil {
		n := float64(st.B.RX - st.A.RX)
		if c.tx() {
			n = float64(st.B.TX - st.A.TX) // a sender's frames are the ones it sent
		}
		dt := float64(st.B.T-st.A.T) / 1e9
		if n > 0 && dt > 0 {
			// Not what collect itself allocated for B (reading the fast
			// path's counters): that is the measurement, not the frames.
			allocs := st.B.Mallocs - st.A.Mallocs - min(st.B.CollectMallocs, st.B.Mallocs-st.A.Mallocs)
			// Nor what the Go runtime allocated to start an OS thread.
			if st.A.Threads > 0 && st.B.Threads > st.A.Threads {
				r.NewThreads = st.B.Threads - st.A.Threads
				r.ThreadAllocs = min(allocs, threadMallocs*uint64(r.NewThreads))
				allocs -= r.ThreadAllocs
			}
			al := float64(allocs) / n
			sc := float64(st.B.Syscalls-st.A.Syscalls) / n
			dr := float64(st.B.Dropped-st.A.Dropped) / dt / 1e6
			self := n / dt / 1e6
			if c.toGen() || c.Mode == "l2fwd" || c.tx() {
				self = float64(st.B.TX-st.A.TX) / dt / 1e6
			}
			r.AllocsPerFrame, r.SyscallsPerFrame, r.DUTDroppedMpps, r.SelfMpps = &al, &sc, &dr, &self
		}
	}
	if c.xdpGen() {
		// Its JSON summary: the whole run, not the window.
		if l := dut.find(`"tx_pps":`); l != "" {
			if v, err := strconv.ParseFloat(strings.Trim(strings.TrimSpace(strings.SplitN(l, ":", 2)[1]), ","), 64); err == nil {
				v /= 1e6
				r.SelfMpps = &v
			}
		}
	}
	if c.Impl == "dpdk" && c.tx() {
		// testpmd's last per-second line (--stats-period 1).
		if l := dut.find("Tx-pps:"); l != "" {
			if f := strings.Fields(l[strings.Index(l, "Tx-pps:")+7:]); len(f) > 0 {
				if v, err := strconv.ParseFloat(f[0], 64); err == nil {
					v /= 1e6
					r.SelfMpps = &v
				}
			}
		}
	}
	if c.Impl == "c-libxdp" {
		if l := dut.find("RESULT "); l != "" {
			kv := map[string]string{}
			for _, f := range strings.Fields(l) {
				if k, v, ok := strings.Cut(f, "="); ok {
					kv[k] = v
				}
			}
			key := "rx_pps"
			if c.Mode == "reflect" {
				key = "tx_pps"
			}
			if v, err := strconv.ParseFloat(kv[key], 64); err == nil {
				v /= 1e6
				r.SelfMpps = &v
			}
			if v, err := strconv.ParseFloat(kv["syscalls_per_pkt"], 64); err == nil {
				r.SyscallsPerFrame = &v
			}
		}
	}
}

func (o *options) latency(r *Run, gr *GenResult, a, b snap) {
	at, bt := a.T.UnixNano(), b.T.UnixNano()
	idleFrom := gr.LoadEnd + int64(100*time.Millisecond)
	for _, s := range gr.Samples {
		us := float64(s[1]) / 1e3
		switch {
		case s[0] >= at && s[0] < bt:
			r.samplesLoaded = append(r.samplesLoaded, us)
		case gr.LoadEnd > 0 && s[0] >= idleFrom:
			r.samplesIdle = append(r.samplesIdle, us)
		}
	}
	for _, t := range gr.SendTimes {
		switch {
		case t >= at && t < bt:
			r.sentLoaded++
		case gr.LoadEnd > 0 && t >= idleFrom:
			r.sentIdle++
		}
	}
	r.Lat = summarizeLatency(r.samplesLoaded, r.sentLoaded)
	r.LatIdle = summarizeLatency(r.samplesIdle, r.sentIdle)
}

// ringResult is what ringBenchmark measured.
type ringResult struct {
	Err     string             `json:"error,omitempty"`
	NsDesc  map[string]float64 `json:"ns_per_desc"`
	Allocs  map[string]float64 `json:"allocs_per_op"`
	Command string             `json:"command"`
}

var benchLine = regexp.MustCompile(`^Benchmark(\S+?)(-\d+)?\s+\d+\s+.*?([\d.]+) ns/desc.*?(\d+) allocs/op`)

// ringBenchmark runs the ring package's benchmarks in the main module, on
// the DUT CPU.
func ringBenchmark(ctx context.Context, cpu int) *ringResult {
	rr := &ringResult{NsDesc: map[string]float64{}, Allocs: map[string]float64{}}
	args := []string{"taskset", "-c", strconv.Itoa(cpu), "go", "test", "-run", "^$", "-bench", ".", "-benchtime", "200ms", "-count", "1", "./ring"}
	rr.Command = "(cd .. && " + strings.Join(args, " ") + ")"
	logf("ring benchmarks: %s", rr.Command)
	c, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(c, args[0], args[1:]...)
	cmd.Dir = ".."
	outb, err := cmd.CombinedOutput()
	for _, l := range strings.Split(string(outb), "\n") {
		if m := benchLine.FindStringSubmatch(l); m != nil {
			v, _ := strconv.ParseFloat(m[3], 64)
			a, _ := strconv.ParseFloat(m[4], 64)
			rr.NsDesc[m[1]] = v
			rr.Allocs[m[1]] = a
		}
	}
	if err != nil || len(rr.NsDesc) == 0 {
		rr.Err = fmt.Sprintf("%v: %s", err, firstLine(strings.TrimSpace(string(outb))))
	}
	return rr
}

// window is the measurement window both kinds of cells share: counters
// before, the Go DUT told to count (SIGUSR1) and perf recording when
// asked, o.win, counters after, the DUT told to stop counting (SIGUSR2).
func (o *options) window(ctx context.Context, c Cell, dut, gen *proc, base, perfRecord string) (a, b snap, err error) {
	if a, err = o.snapshot(dut, gen); err != nil {
		return a, b, err
	}
	goDUT := dut != nil && c.dutwin()
	if goDUT {
		dut.signal(syscall.SIGUSR1)
	}
	var rec *proc
	if perfRecord != "" && o.perf != "" {
		cpu := o.dutCPU
		if o.perfCPU >= 0 {
			cpu = o.perfCPU
		}
		rec, _ = startProc("perf-record", base+".perfrec", o.win+20*time.Second, o.perf, "record", "-q", "-g", "-e", "cpu-clock",
			"-C", strconv.Itoa(cpu), "-o", perfRecord, "--", "sleep", fmt.Sprint(o.win.Seconds()))
	}
	if err := sleepCtx(ctx, o.win); err != nil {
		return a, b, err
	}
	if b, err = o.snapshot(dut, gen); err != nil {
		return a, b, err
	}
	if goDUT {
		dut.signal(syscall.SIGUSR2)
	}
	if rec != nil {
		rec.wait(10 * time.Second)
	}
	return a, b, nil
}
