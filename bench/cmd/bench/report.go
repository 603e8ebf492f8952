//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Env describes the machine and the run.
type Env struct {
	Start     string            `json:"start"`
	End       string            `json:"end"`
	Duration  string            `json:"duration"`
	Kernel    string            `json:"kernel"`
	CPU       string            `json:"cpu"`
	CPUs      int               `json:"cpus"`
	Go        string            `json:"go"`
	LoadStart string            `json:"loadavg_start"`
	LoadEnd   string            `json:"loadavg_end"`
	Settings  map[string]string `json:"settings"`
	Versions  map[string]string `json:"versions"`
	Build     []string          `json:"build"`
	Topology  string            `json:"topology"`
}

// Summary is one cell over its rounds.
type Summary struct {
	Cell     Cell `json:"cell"`
	Runs     int  `json:"runs_ok"`
	Failed   int  `json:"runs_failed"`
	Excluded int  `json:"runs_disturbed_excluded"`
	// AllDisturbed: every run of the cell was disturbed by other processes;
	// its numbers are shown but not used for the targets.
	AllDisturbed bool     `json:"all_runs_disturbed,omitempty"`
	Errors       []string `json:"errors,omitempty"`
	Mpps         float64  `json:"mpps_median"`
	MppsMin      float64  `json:"mpps_min"`
	MppsMax      float64  `json:"mpps_max"`
	Gbps         float64  `json:"gbps_median"`
	GenMpps      float64  `json:"gen_mpps_median"`
	Arrived      float64  `json:"arrived_mpps_median"`
	VethDrop     float64  `json:"veth_drop_mpps_median"`
	GenCPU       float64  `json:"gen_cpu_pct_median"`
	DUTCPU       float64  `json:"dut_cpu_pct_median"`
	Ns           float64  `json:"dut_ns_per_frame_median"`
	NsMin        float64  `json:"dut_ns_per_frame_min"`
	NsMax        float64  `json:"dut_ns_per_frame_max"`
	ProcNs       float64  `json:"dut_proc_ns_per_frame_median"`
	SampledNs    float64  `json:"dut_sampled_ns_per_frame_median,omitempty"` // from the tick-sampled jiffies
	Allocs       *float64 `json:"allocs_per_frame_max,omitempty"`
	ThreadAllocs uint64   `json:"thread_allocs,omitempty"` // over the runs: the runtime's, left out of Allocs
	NewThreads   int      `json:"new_threads,omitempty"`
	Syscalls     *float64 `json:"syscalls_per_frame_median,omitempty"`
	PerfSys      *float64 `json:"perf_syscalls_per_frame,omitempty"`
	SelfMpps     *float64 `json:"self_mpps_median,omitempty"`
	FrameBytes   float64  `json:"frame_bytes_median,omitempty"` // tx: frame length at the sink
	UserNs       float64  `json:"dut_user_ns_per_frame_median"`
	SysNs        float64  `json:"dut_sys_ns_per_frame_median"`
	Foreign      float64  `json:"foreign_cpu_pct_max"`
	Lat          *Latency `json:"latency_loaded,omitempty"`
	LatIdle      *Latency `json:"latency_idle,omitempty"`
}

// Saturated reports whether the DUT CPU was busy all the time, which makes
// ns/frame an upper bound of "CPU available per frame", not a cost.
func (s *Summary) Saturated() bool { return s.DUTCPU >= 95 }

type extras struct {
	Profiles map[string]string `json:"profiles,omitempty"` // name -> file (relative)
	Ring     *ringResult       `json:"ring,omitempty"`
	Ceiling  *ceilingResult    `json:"ceiling,omitempty"`
}

// Target is one of the goals the README states, as this run measured it.
type Target struct {
	Name   string `json:"name"`
	Goal   string `json:"goal"`
	Result string `json:"result"`
	Met    *bool  `json:"met,omitempty"`
}

type Report struct {
	Env       Env        `json:"env"`
	Summaries []*Summary `json:"summaries"`
	Targets   []Target   `json:"targets"`
	Levers    []Target   `json:"levers"`
	FastPath  []Target   `json:"fastpath"`
	TX        []Target   `json:"tx"`
	Extras    extras     `json:"extras"`
	Runs      []*Run     `json:"runs"`
	Table     string     `json:"-"`
	Markdown  string     `json:"-"`
	SVG       string     `json:"-"`
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func minmax(v []float64) (float64, float64) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, x := range v {
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	return lo, hi
}

func (r *Run) brief() string {
	if !r.OK {
		return "FAIL: " + firstLine(r.Err)
	}
	s := fmt.Sprintf("%7.3f Mpps  gen %6.3f  vethdrop %6.3f  cpu %3.0f/%3.0f%%  %6.1f ns/f", r.Mpps, r.GenMpps, r.VethDropMpps, r.GenCPU, r.DUTCPU, r.NsPerFrame)
	if r.AllocsPerFrame != nil {
		s += fmt.Sprintf("  allocs %.2g", *r.AllocsPerFrame)
		if r.ThreadAllocs > 0 {
			s += fmt.Sprintf(" (+%d of the runtime starting %d thread(s))", r.ThreadAllocs, r.NewThreads)
		}
	}
	if r.SyscallsPerFrame != nil {
		s += fmt.Sprintf("  sys/f %.3f", *r.SyscallsPerFrame)
	}
	if r.Lat != nil && r.Lat.N > 0 {
		s += fmt.Sprintf("  lat50 %.0fus", r.Lat.P50)
	}
	if r.DUTCtxSw > 0 {
		s += fmt.Sprintf("  cs/s %.0f", r.DUTCtxSw)
	}
	if r.ForeignCPU > 5 {
		s += fmt.Sprintf("  FOREIGN %.0f%% (%s)", r.ForeignCPU, r.ForeignTop)
	}
	return s
}

func ptrMedian(rs []*Run, f func(*Run) *float64) *float64 {
	var v []float64
	for _, r := range rs {
		if p := f(r); p != nil {
			v = append(v, *p)
		}
	}
	if len(v) == 0 {
		return nil
	}
	m := median(v)
	return &m
}

func summarize(cells []Cell, runs []*Run) []*Summary {
	var out []*Summary
	for _, c := range cells {
		s := &Summary{Cell: c}
		var ok []*Run
		for _, r := range runs {
			if r.Cell != c.Key {
				continue
			}
			if r.OK {
				ok = append(ok, r)
			} else {
				s.Failed++
				s.Errors = append(s.Errors, firstLine(r.Err))
			}
		}
		var calm []*Run
		for _, r := range ok {
			if !r.Disturbed {
				calm = append(calm, r)
			}
		}
		if len(calm) > 0 && len(calm) < len(ok) {
			s.Excluded = len(ok) - len(calm)
			ok = calm
		}
		s.AllDisturbed = len(ok) > 0 && len(calm) == 0
		s.Runs = len(ok)
		if len(ok) == 0 {
			out = append(out, s)
			continue
		}
		col := func(f func(*Run) float64) []float64 {
			var v []float64
			for _, r := range ok {
				if x := f(r); !math.IsNaN(x) {
					v = append(v, x)
				}
			}
			return v
		}
		mp := col(func(r *Run) float64 { return r.Mpps })
		s.Mpps = median(mp)
		s.MppsMin, s.MppsMax = minmax(mp)
		s.Gbps = median(col(func(r *Run) float64 { return r.Gbps }))
		s.GenMpps = median(col(func(r *Run) float64 { return r.GenMpps }))
		s.Arrived = median(col(func(r *Run) float64 { return r.ArrivedMpps }))
		s.VethDrop = median(col(func(r *Run) float64 { return r.VethDropMpps }))
		s.GenCPU = median(col(func(r *Run) float64 { return r.GenCPU }))
		s.DUTCPU = median(col(func(r *Run) float64 { return r.DUTCPU }))
		ns := col(func(r *Run) float64 { return r.NsPerFrame })
		s.Ns = median(ns)
		s.NsMin, s.NsMax = minmax(ns)
		s.ProcNs = median(col(func(r *Run) float64 { return r.ProcNsPerFrame }))
		s.SampledNs = median(col(func(r *Run) float64 { return r.SampledNsPerFrame }))
		s.UserNs = median(col(func(r *Run) float64 { return r.UserNsPerFrame }))
		s.SysNs = median(col(func(r *Run) float64 { return r.SysNsPerFrame }))
		_, s.Foreign = minmax(col(func(r *Run) float64 { return r.ForeignCPU }))
		for _, r := range ok {
			if r.AllocsPerFrame != nil && (s.Allocs == nil || *r.AllocsPerFrame > *s.Allocs) {
				v := *r.AllocsPerFrame
				s.Allocs = &v
			}
			s.ThreadAllocs += r.ThreadAllocs
			s.NewThreads += r.NewThreads
		}
		s.Syscalls = ptrMedian(ok, func(r *Run) *float64 { return r.SyscallsPerFrame })
		s.PerfSys = ptrMedian(ok, func(r *Run) *float64 { return r.PerfSyscalls })
		s.SelfMpps = ptrMedian(ok, func(r *Run) *float64 { return r.SelfMpps })
		if c.tx() {
			s.FrameBytes = median(col(func(r *Run) float64 { return r.FrameBytes }))
		}
		if c.probe() {
			var l, i []float64
			var ls, is int
			for _, r := range ok {
				l, i = append(l, r.samplesLoaded...), append(i, r.samplesIdle...)
				ls, is = ls+r.sentLoaded, is+r.sentIdle
			}
			s.Lat, s.LatIdle = summarizeLatency(l, ls), summarizeLatency(i, is)
		}
		out = append(out, s)
	}
	return out
}

func find(ss []*Summary, key string) *Summary {
	for _, s := range ss {
		if s.Cell.Key == key && s.Runs > 0 {
			return s
		}
	}
	return nil
}

func boolp(b bool) *bool { return &b }

func targets(ss []*Summary, ex extras) ([]Target, []Target) {
	var t []Target
	// Reflect at 64 B.
	xd := find(ss, "xdpkit/reflect/60")
	var best *Summary
	for _, s := range ss {
		if s.Cell.Impl == "xdpkit" && s.Cell.FastPath == "" && s.Cell.Mode == "reflect" && s.Cell.Size == 60 && s.Runs > 0 && !s.AllDisturbed && !strings.Contains(s.Cell.Variant, "diag") && (best == nil || s.Mpps > best.Mpps) {
			best = s
		}
	}
	var peer *Summary
	for _, k := range []string{"dpdk/reflect/60", "c-libxdp/reflect/60"} {
		if s := find(ss, k); s != nil && (peer == nil || s.Mpps > peer.Mpps) {
			peer = s
		}
	}
	as := find(ss, "asavie/reflect/60")
	cmp := func(name, goal string, x *Summary, p *Summary, factor float64) {
		tt := Target{Name: name, Goal: goal}
		if x == nil || p == nil {
			tt.Result = "not measured"
		} else if x.AllDisturbed || p.AllDisturbed {
			tt.Result = fmt.Sprintf("not measurable: all runs disturbed by other processes (%s %.3f vs %s %.3f Mpps)", x.Cell.Label(), x.Mpps, p.Cell.Label(), p.Mpps)
		} else {
			ratio := x.Mpps / p.Mpps
			tt.Result = fmt.Sprintf("%s %.3f Mpps vs %s %.3f Mpps = %.2fx", x.Cell.Label(), x.Mpps, p.Cell.Label(), p.Mpps, ratio)
			tt.Met = boolp(ratio >= factor)
		}
		t = append(t, tt)
	}
	cmp("reflect 64B vs best of DPDK / C libxdp (default xdpkit)", ">= 1.2x", xd, peer, 1.2)
	if best != nil && best != xd {
		cmp("reflect 64B vs best of DPDK / C libxdp (best xdpkit lever)", ">= 1.2x", best, peer, 1.2)
	}
	cmp("reflect 64B vs asavie (default xdpkit)", ">= 1.5x", xd, as, 1.5)
	// The fast path (package fastpath, in XDP) against the kernel's own
	// XDP programs, and against reflecting through an AF_XDP socket.
	kd, kr := find(ss, "kernel-xdp/drop/60"), find(ss, "kernel-xdp/reflect/60")
	fpol, frefl := find(ss, "xdpkit.fastpath.police/drop/60"), find(ss, "xdpkit.fastpath.reflect/reflect/60")
	var bestXSK *Summary
	for _, s := range ss {
		if s.Cell.Impl != "kernel-xdp" && s.Cell.FastPath == "" && s.Cell.Mode == "reflect" && s.Cell.Size == 60 && s.Runs > 0 && !s.AllDisturbed && (bestXSK == nil || s.Mpps > bestXSK.Mpps) {
			bestXSK = s
		}
	}
	cmp("kernel-policed drop 64B (fastpath policer) vs kernel-xdp drop", ">= 0.9x", fpol, kd, 0.9)
	cmp("fast-path reflect 64B (XDP_TX entry) vs kernel-xdp reflect", ">= 0.7x", frefl, kr, 0.7)
	cmp("fast-path reflect 64B vs best AF_XDP reflect", ">= 3x", frefl, bestXSK, 3)
	// stages.LoadBalancer over 1024 flows, with and without the fast path.
	// The kernel's ceiling for the lb cells is its MAC swap under the same
	// generator (1024 flows): on veth XDP runs on the generator's CPU, so
	// the generator's cost per frame is in both rates. The single-flow
	// ceiling is shown too.
	lbx, lbf := find(ss, "xdpkit.lb/lb/60"), find(ss, "xdpkit.lb.fastpath/lb/60")
	krf := find(ss, "kernel-xdp.1024.flows/reflect/60")
	cmp("lb fastpath / lb (AF_XDP), 64B, 1024 flows", ">= 3x", lbf, lbx, 3)
	cmp("lb fastpath / kernel-xdp reflect, 64B, same 1024 flows", ">= 0.7x", lbf, krf, 0.7)
	cmp("lb fastpath / kernel-xdp reflect, 64B, 1 flow", ">= 0.7x", lbf, kr, 0.7)
	// TX: xdpkit's generator tool against DPDK testpmd txonly.
	for _, size := range txCellSizes {
		n := strconv.Itoa(size)
		cmp("tx "+n+"B (no FCS): xdp-gen / DPDK testpmd txonly", ">= 1.0x", find(ss, "xdpkit.xdp-gen/tx/"+n), find(ss, "dpdk/tx/"+n), 1.0)
	}
	// rx-drop ns/frame in poll mode (issue 12): DUT CPU per frame against
	// C libxdp's, and the locked loop against the unlocked one.
	nsCmp := func(name, goal string, x, p *Summary, factor float64) {
		tt := Target{Name: name, Goal: goal}
		if x == nil || p == nil {
			tt.Result = "not measured"
		} else if x.AllDisturbed || p.AllDisturbed {
			tt.Result = fmt.Sprintf("not measurable: all runs disturbed (%s %.1f ns, %s %.1f ns)", x.Cell.Label(), x.Ns, p.Cell.Label(), p.Ns)
		} else {
			tt.Result = fmt.Sprintf("%s %.1f ns (%.1f-%.1f, %.2f Mpps) vs %s %.1f ns (%.1f-%.1f, %.2f Mpps) = %.2fx",
				x.Cell.Label(), x.Ns, x.NsMin, x.NsMax, x.Mpps, p.Cell.Label(), p.Ns, p.NsMin, p.NsMax, p.Mpps, x.Ns/p.Ns)
			tt.Met = boolp(x.Ns <= factor*p.Ns)
			// The same two costs as the DUT process's own CPU time (the
			// wake-ups' interrupts left out) and, for runs before
			// 2026-12-02, from the sampled jiffies they reported.
			if x.ProcNs > 0 && p.ProcNs > 0 {
				tt.Result += fmt.Sprintf("; process %.1f vs %.1f = %.2fx", x.ProcNs, p.ProcNs, x.ProcNs/p.ProcNs)
			}
			if x.SampledNs > 0 && p.SampledNs > 0 {
				tt.Result += fmt.Sprintf("; sampled %.1f vs %.1f = %.2fx", x.SampledNs, p.SampledNs, x.SampledNs/p.SampledNs)
			}
		}
		t = append(t, tt)
	}
	cpoll := find(ss, "c-libxdp.poll/drop/60")
	nsCmp("rx-drop DUT ns/frame (poll when idle, DUT CPU not saturated)", "<= C libxdp", find(ss, "xdpkit.poll/drop/60"), cpoll, 1)
	nsCmp("poll-mode rx-drop ns/frame, hand loop with WaitPoll", "<= 0.9x C libxdp", find(ss, "xdpkit.poll.WaitPoll/drop/60"), cpoll, 0.9)
	nsCmp("poll-mode rx-drop ns/frame, pipeline.Runner (a RawFunc stage)", "<= 1.0x C libxdp", find(ss, "xdpkit.pipeline.poll/drop/60"), cpoll, 1)
	nsCmp("poll-mode rx-drop ns/frame, pipeline.Runner (a FrameStage)", "<= 1.0x C libxdp", find(ss, "xdpkit.pipeline.poll.frame-stage/drop/60"), cpoll, 1)
	nsCmp("poll-mode rx-drop ns/frame, locked loop vs unlocked (WaitPoll)", "<= 1.0x", find(ss, "xdpkit.poll+LockOSThread/drop/60"), find(ss, "xdpkit.poll.WaitPoll/drop/60"), 1)
	// The same with afxdp.Config.Coalesce (50 µs): an option, not the
	// default, so these rows are beside the ones above, not instead.
	nsCmp("the same, hand loop with WaitPoll and Coalesce", "<= 0.9x C libxdp", find(ss, "xdpkit.poll.WaitPoll.coalesce/drop/60"), cpoll, 0.9)
	nsCmp("the same, pipeline.Runner (a RawFunc stage) with Coalesce", "<= 1.0x C libxdp", find(ss, "xdpkit.pipeline.poll.coalesce/drop/60"), cpoll, 1)
	nsCmp("the same, pipeline.Runner (a FrameStage) with Coalesce", "<= 1.0x C libxdp", find(ss, "xdpkit.pipeline.poll.frame-stage.coalesce/drop/60"), cpoll, 1)
	nsCmp("the same, locked loop vs unlocked, both with Coalesce", "<= 1.0x", find(ss, "xdpkit.poll+LockOSThread.coalesce/drop/60"), find(ss, "xdpkit.poll.WaitPoll.coalesce/drop/60"), 1)
	// The tool: xdp-drop's pipeline as it runs by default (the anchors'
	// harness measures the binary itself against the same 1.1x).
	nsCmp("xdp-drop's pipeline as the tool runs by default (no stage, Coalesce 50 µs)", "<= 1.1x C libxdp", find(ss, "xdpkit.pipeline.poll.no-stage.coalesce/drop/60"), cpoll, 1.1)
	// Allocations.
	{
		tt := Target{Name: "allocations per frame (all xdpkit cells, max over runs)", Goal: "0"}
		var worst float64
		n := 0
		var ta uint64 // the runtime's, for threads it started: left out
		var nt int
		var where []string
		for _, s := range ss {
			if s.Cell.Impl == "xdpkit" && s.Allocs != nil {
				n++
				worst = math.Max(worst, *s.Allocs)
				if s.ThreadAllocs > 0 {
					ta, nt = ta+s.ThreadAllocs, nt+s.NewThreads
					where = append(where, s.Cell.Label())
				}
			}
		}
		if n == 0 {
			tt.Result = "not measured"
		} else {
			tt.Result = fmt.Sprintf("max %.3g over %d cells", worst, n)
			if ta > 0 {
				tt.Result += fmt.Sprintf("; left out: %d allocations of the Go runtime starting %d OS thread(s) (%s)", ta, nt, strings.Join(where, ", "))
			}
			tt.Met = boolp(worst == 0)
		}
		t = append(t, tt)
	}
	// Ring.
	{
		tt := Target{Name: "ring ops (go test -bench . ./ring, batch >= 16)", Goal: "< 2 ns/desc"}
		switch {
		case ex.Ring == nil:
			tt.Result = "not measured (full runs only)"
		case ex.Ring.Err != "":
			tt.Result = "failed: " + ex.Ring.Err
		default:
			var parts []string
			met := true
			keys := make([]string, 0, len(ex.Ring.NsDesc))
			for k := range ex.Ring.NsDesc {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				v := ex.Ring.NsDesc[k]
				parts = append(parts, fmt.Sprintf("%s %.2f", k, v))
				if !strings.HasSuffix(k, "batch=1") && v >= 2 {
					met = false
				}
			}
			tt.Result = strings.Join(parts, ", ")
			tt.Met = boolp(met)
		}
		t = append(t, tt)
	}
	t = append(t, ceilingTargets(ex.Ceiling)...)
	// Levers: every xdpkit reflect 64 B variant against the default.
	var lv []Target
	if xd != nil {
		for _, s := range ss {
			if s.Cell.Impl == "xdpkit" && s.Cell.FastPath == "" && s.Cell.Mode == "reflect" && s.Cell.Size == 60 && s.Cell.Variant != "" && s.Runs > 0 {
				lv = append(lv, Target{Name: s.Cell.Variant + " (" + strings.Join(s.Cell.Args, " ") + ")",
					Result: fmt.Sprintf("%.3f Mpps (%.3f-%.3f) = %.2fx default; syscalls/frame %s", s.Mpps, s.MppsMin, s.MppsMax, s.Mpps/xd.Mpps, fmtp(s.Syscalls, "%.3f"))})
			}
		}
	}
	return t, lv
}

// fastPathRatios puts every fast-path cell next to the kernel-xdp cell of
// its mode (reflect for lb: both send every frame back to the generator),
// with the fast path's own count of the frames (the DUT's fp.Counters) as
// a cross-check of the veth counter.
func fastPathRatios(ss []*Summary) []Target {
	var out []Target
	for _, s := range ss {
		if s.Cell.FastPath == "" || s.Runs == 0 {
			continue
		}
		t := Target{Name: s.Cell.Variant + " " + s.Cell.Mode + " " + s.Cell.SizeLabel() + " (" + strings.Join(s.Cell.Args, " ") + ")"}
		t.Result = fmt.Sprintf("%.3f Mpps (%.3f-%.3f), gen %.3f", s.Mpps, s.MppsMin, s.MppsMax, s.GenMpps)
		mode := s.Cell.Mode
		if s.Cell.toGen() {
			mode = "reflect"
		}
		if k := find(ss, "kernel-xdp/"+mode+"/"+strconv.Itoa(s.Cell.Size)); k != nil {
			t.Result += fmt.Sprintf(" = %.2fx kernel-xdp %s (%.3f)", s.Mpps/k.Mpps, mode, k.Mpps)
		}
		if k := kernelSameFlows(ss, s.Cell, mode); k != nil {
			t.Result += fmt.Sprintf(", %.2fx kernel-xdp %s over the same %d flows (%.3f)", s.Mpps/k.Mpps, mode, k.Cell.Flows, k.Mpps)
		}
		t.Result += "; fast path's own count " + fmtp(s.SelfMpps, "%.3f") + " Mpps"
		out = append(out, t)
	}
	return out
}

// txRatios puts every TX cell next to DPDK's of its size, with the
// frame length the sink saw (it must be the cell's size for both), what
// veth dropped on the way (xbv1's ring full: the sink fell behind) and
// the DUT's own rate as a cross-check (xdp-gen: its JSON summary over the
// whole run; testpmd: its last per-second Tx-pps; xdpkit-dut: the window).
func txRatios(ss []*Summary) []Target {
	var out []Target
	for _, s := range ss {
		if !s.Cell.tx() || s.Runs == 0 {
			continue
		}
		t := Target{Name: s.Cell.Label() + " " + s.Cell.SizeLabel()}
		if len(s.Cell.Args) > 0 {
			t.Name += " (" + strings.Join(s.Cell.Args, " ") + ")"
		}
		t.Result = fmt.Sprintf("%.3f Mpps (%.3f-%.3f), %.2f Gbit/s", s.Mpps, s.MppsMin, s.MppsMax, s.Gbps)
		if d := find(ss, "dpdk/tx/"+strconv.Itoa(s.Cell.Size)); d != nil && s.Cell.Impl != "dpdk" {
			t.Result += fmt.Sprintf(" = %.2fx DPDK (%.3f)", s.Mpps/d.Mpps, d.Mpps)
		}
		t.Result += fmt.Sprintf("; DUT process %.0f ns/frame user + %.0f kernel; %.1f B/frame at the sink, veth drop %.3f Mpps; own count %s Mpps; syscalls/frame %s",
			s.UserNs, s.SysNs, s.FrameBytes, s.VethDrop, fmtp(s.SelfMpps, "%.3f"), fmtp(s.Syscalls, "%.3f"))
		if s.PerfSys != nil {
			t.Result += fmt.Sprintf(" [perf %.3f]", *s.PerfSys)
		}
		out = append(out, t)
	}
	return out
}

// kernelSameFlows is the kernel-xdp cell of mode under the same
// generator flows as c, if c has flows and the run measured one.
func kernelSameFlows(ss []*Summary, c Cell, mode string) *Summary {
	if c.Flows == 0 {
		return nil
	}
	for _, k := range ss {
		if k.Cell.Impl == "kernel-xdp" && k.Cell.Mode == mode && k.Cell.Size == c.Size && k.Cell.Flows == c.Flows && k.Runs > 0 {
			return k
		}
	}
	return nil
}

func fmtp(p *float64, f string) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf(f, *p)
}

func fmtf(v float64, f string) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return fmt.Sprintf(f, v)
}

func latStr(l *Latency) string {
	if l == nil || l.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f/%.0f/%.0f (n=%d, loss %.0f%%)", l.P50, l.P99, l.P999, l.N, l.LossPc)
}

func nsStr(s *Summary) string {
	if s.Runs == 0 || math.IsNaN(s.Ns) {
		return "-"
	}
	if s.Saturated() {
		return fmt.Sprintf("(%.0f)", s.Ns)
	}
	return fmt.Sprintf("%.1f", s.Ns)
}

func report(o options, env Env, cells []Cell, runs []*Run, ex extras) *Report {
	rep := &Report{Env: env, Runs: runs, Extras: ex}
	rep.Summaries = summarize(cells, runs)
	rep.Targets, rep.Levers = targets(rep.Summaries, ex)
	rep.FastPath = fastPathRatios(rep.Summaries)
	rep.TX = txRatios(rep.Summaries)
	rows := tableRows(rep.Summaries)
	rep.Table = textTable(o, rep, rows)
	rep.Markdown = markdown(o, rep, rows)
	rep.SVG = plotSVG(rep.Summaries, env)
	return rep
}

// tableRow is one summary as the text and markdown tables show it: the
// columns they share, formatted once for both renderers. The numeric
// columns, which the text table pads, are the Summary's.
type tableRow struct {
	*Summary
	group, impl, size, mode string
	failed                  string // for a cell without a run: its errors, "; "-joined
	ns, sys, allocs         string
	latLoaded, latIdle      string // reflect cells only, see lat
}

// tableRows makes the rows of the results tables, one per summary.
func tableRows(ss []*Summary) []tableRow {
	rows := make([]tableRow, 0, len(ss))
	for _, s := range ss {
		c := s.Cell
		r := tableRow{Summary: s, group: c.Group, impl: c.Label(), size: c.SizeLabel(), mode: c.Mode}
		if s.Runs == 0 {
			r.failed = strings.Join(uniq(s.Errors), "; ")
			rows = append(rows, r)
			continue
		}
		r.ns, r.allocs = nsStr(s), fmtp(s.Allocs, "%.2g")
		r.sys = fmtp(s.Syscalls, "%.3f") // the DUT's own count; perf's in brackets
		if s.PerfSys != nil {
			r.sys += fmt.Sprintf(" [%.3f]", *s.PerfSys)
		}
		if c.probe() {
			r.latLoaded, r.latIdle = latStr(s.Lat), latStr(s.LatIdle)
		}
		rows = append(rows, r)
	}
	return rows
}

// lat is the latency column: the loaded and the idle percentiles with sep
// between them, or nothing for a cell without a probe.
func (r tableRow) lat(sep string) string {
	if !r.Cell.probe() {
		return ""
	}
	return r.latLoaded + sep + r.latIdle
}

// textTable renders summary.txt: the rows in fixed-width columns, the
// targets, the levers and how much CPU other processes took.
func textTable(o options, rep *Report, rows []tableRow) string {
	var b strings.Builder
	env := rep.Env
	fmt.Fprintf(&b, "\nxdpkit bench: %s, xdpkit %s, kernel %s, %s x%d, %s; %d rounds interleaved, %s warm-up, %s window; load %s -> %s\n",
		env.Start, env.Versions["github.com/xdpkit/xdpkit"], env.Kernel, env.CPU, env.CPUs, env.Go, o.runs, o.warm, o.win, env.LoadStart, env.LoadEnd)
	fmt.Fprintf(&b, "Mpps = median (min-max) from veth counters; ns/f = DUT-CPU busy ns per frame (wall time less idle, every wake-up counted), (x) = DUT CPU saturated;\n")
	fmt.Fprintf(&b, "sys/f = syscalls per frame (DUT's own count; perf in []); lat = probe RTT p50/p99/p99.9 us under load | idle\n")
	fmt.Fprintf(&b, "n = runs used; + = disturbed runs excluded; ! = every run disturbed by other processes (>%d%% of a CPU)\n\n", disturbedPct)
	fmt.Fprintf(&b, "%-8s %-30s %-6s %-7s %-22s %-3s %7s %8s %6s %8s %-14s %-7s %s\n",
		"group", "implementation", "size", "mode", "Mpps (min-max)", "n", "gen", "vethdrop", "dutCPU", "ns/f", "sys/f", "allocs", "latency (us)")
	for _, r := range rows {
		if r.Runs == 0 {
			fmt.Fprintf(&b, "%-8s %-30s %-6s %-7s FAILED/SKIPPED: %s\n", r.group, r.impl, r.size, r.mode, r.failed)
			continue
		}
		n := strconv.Itoa(r.Runs)
		if r.AllDisturbed {
			n += "!"
		} else if r.Excluded > 0 {
			n += "+"
		}
		fmt.Fprintf(&b, "%-8s %-30s %-6s %-7s %7.3f (%6.3f-%6.3f) %-3s %7.3f %8.3f %5.0f%% %8s %-14s %-7s %s\n",
			r.group, r.impl, r.size, r.mode, r.Mpps, r.MppsMin, r.MppsMax, n, r.GenMpps, r.VethDrop, r.DUTCPU, r.ns,
			r.sys, r.allocs, r.lat(" | "))
	}
	fmt.Fprintf(&b, "\nTargets (measured):\n")
	for _, t := range rep.Targets {
		fmt.Fprintf(&b, "  %-62s goal %-12s %s  %s\n", t.Name, t.Goal, metStr(t), t.Result)
	}
	if len(rep.Levers) > 0 {
		fmt.Fprintf(&b, "\nxdpkit levers, reflect 64B (vs default):\n")
		for _, t := range rep.Levers {
			fmt.Fprintf(&b, "  %-44s %s\n", t.Name, t.Result)
		}
	}
	if len(rep.FastPath) > 0 {
		fmt.Fprintf(&b, "\nxdpkit fast path (in XDP) vs kernel-xdp:\n")
		for _, t := range rep.FastPath {
			fmt.Fprintf(&b, "  %-44s %s\n", t.Name, t.Result)
		}
	}
	if len(rep.TX) > 0 {
		fmt.Fprintf(&b, "\nTX (DUT sends, counted at xbv1's sink) vs DPDK txonly:\n")
		for _, t := range rep.TX {
			fmt.Fprintf(&b, "  %-44s %s\n", t.Name, t.Result)
		}
	}
	var maxForeign, sumForeign, maxSteal float64
	nd, nr := 0, 0
	for _, r := range rep.Runs {
		if !r.OK {
			continue
		}
		nr++
		maxForeign = math.Max(maxForeign, r.ForeignCPU)
		sumForeign += math.Max(0, r.ForeignCPU)
		maxSteal = math.Max(maxSteal, math.Max(r.DUTSteal, r.GenSteal))
		if r.Disturbed {
			nd++
		}
	}
	if nr > 0 {
		fmt.Fprintf(&b, "\nOther processes during the windows: mean %.0f%%, max %.0f%% of one CPU; hypervisor steal max %.0f%% of the DUT's or generator's CPU; %d of %d runs disturbed (>%d%% others or >%d%% stolen), repeated when time allowed\n",
			sumForeign/float64(nr), maxForeign, maxSteal, nd, nr, disturbedPct, stolenPct)
	}
	return b.String()
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// infoGoal is the goal of a row that only reports (no target).
const infoGoal = "-"

func metStr(t Target) string {
	switch m := t.Met; {
	case m == nil && t.Goal == infoGoal:
		return "[info]"
	case m == nil:
		return "[ ? ]"
	case *m:
		return "[met]"
	}
	return "[MISSED]"
}

// markdown renders summary.md, which the README quotes: the rows as a
// table, then the targets and the levers. It reads the other processes'
// line from rep.Table.
func markdown(o options, rep *Report, rows []tableRow) string {
	var b strings.Builder
	e := rep.Env
	fmt.Fprintf(&b, "Run %s (%s), xdpkit %s, kernel %s, %s, %d vCPUs, %s; %d rounds interleaved, %s warm-up + %s window each; load average %s at the start, %s at the end.\n\n",
		e.Start, e.Duration, e.Versions["github.com/xdpkit/xdpkit"], e.Kernel, e.CPU, e.CPUs, e.Go, o.runs, o.warm, o.win, e.LoadStart, e.LoadEnd)
	b.WriteString("| group | implementation | size | mode | Mpps median (min-max) | runs | gen Mpps | veth drop Mpps | DUT CPU | DUT ns/frame | syscalls/frame | allocs/frame | RTT p50/p99/p99.9 µs loaded \\| idle |\n")
	b.WriteString("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, r := range rows {
		if r.Runs == 0 {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | failed/skipped: %s | | | | | | | | |\n", r.group, r.impl, r.size, r.mode, r.failed)
			continue
		}
		runs := strconv.Itoa(r.Runs)
		if r.Excluded > 0 {
			runs += fmt.Sprintf(" (+%d disturbed, excluded)", r.Excluded)
		}
		if r.AllDisturbed {
			runs += " (all disturbed!)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.3f (%.3f-%.3f) | %s | %.3f | %.3f | %.0f%% | %s | %s | %s | %s |\n",
			r.group, r.impl, r.size, r.mode, r.Mpps, r.MppsMin, r.MppsMax, runs, r.GenMpps, r.VethDrop, r.DUTCPU, r.ns, r.sys, r.allocs, r.lat(" \\| "))
	}
	if i := strings.Index(rep.Table, "\nOther processes during the windows:"); i >= 0 {
		b.WriteString("\n" + strings.TrimSpace(rep.Table[i:]) + ".\n")
	}
	b.WriteString("\nTargets, as measured in this run:\n\n| target | goal | result | |\n| --- | --- | --- | --- |\n")
	for _, t := range rep.Targets {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.Name, t.Goal, t.Result, metStr(t))
	}
	if len(rep.Levers) > 0 {
		b.WriteString("\nxdpkit levers (reflect, 64 B) against its default:\n\n")
		for _, t := range rep.Levers {
			fmt.Fprintf(&b, "- %s: %s\n", t.Name, t.Result)
		}
	}
	if len(rep.FastPath) > 0 {
		b.WriteString("\nxdpkit fast path (package fastpath, in XDP) against kernel-xdp:\n\n")
		for _, t := range rep.FastPath {
			fmt.Fprintf(&b, "- %s: %s\n", t.Name, t.Result)
		}
	}
	if len(rep.TX) > 0 {
		b.WriteString("\nTX cells (the DUT sends, veth counts at xbv1's sink) against DPDK testpmd txonly:\n\n")
		for _, t := range rep.TX {
			fmt.Fprintf(&b, "- %s: %s\n", t.Name, t.Result)
		}
	}
	return b.String()
}

// noNaN replaces NaN and infinite float64 values (which JSON cannot hold)
// in v, a pointer to a struct, slice or map, by -1.
func noNaN(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			noNaN(v.Elem())
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				noNaN(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			noNaN(v.Index(i))
		}
	case reflect.Float64:
		if f := v.Float(); (math.IsNaN(f) || math.IsInf(f, 0)) && v.CanSet() {
			v.SetFloat(-1)
		}
	}
}

func (rep *Report) write(dir string) error {
	noNaN(reflect.ValueOf(rep))
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), b, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "summary.txt"), []byte(rep.Table), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "summary.md"), []byte(rep.Markdown), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "plot.svg"), []byte(rep.SVG), 0o644)
}

const (
	readmeBegin = "<!-- results:begin (written by cmd/bench) -->"
	readmeEnd   = "<!-- results:end -->"
)

func updateReadme(path string, rep *Report, rel string) error {
	s := readFile(path)
	i, j := strings.Index(s, readmeBegin), strings.Index(s, readmeEnd)
	if i < 0 || j < i {
		return fmt.Errorf("markers %q ... %q not found", readmeBegin, readmeEnd)
	}
	block := readmeBegin + "\n" + rep.Markdown + "\n![Mpps and DUT ns/frame per scenario](" + rel + "/plot.svg)\n\nRaw data: [`" + rel + "/results.json`](" + rel + "/results.json), table: [`" + rel + "/summary.txt`](" + rel + "/summary.txt).\n" + readmeEnd
	return os.WriteFile(path, []byte(s[:i]+block+s[j+len(readmeEnd):]), 0o644)
}
