//go:build linux

// Command bench measures xdpkit against peer AF_XDP systems (the kernel's
// own XDP_DROP/XDP_TX ceiling, DPDK's af_xdp PMD, C libxdp and
// github.com/asavie/xdp) in one run, on one veth topology, with one neutral
// generator, counting frames from the veth's own counters.
//
//	cd bench && sudo go run ./cmd/bench          # everything, < 10 min
//	cd bench && sudo go run ./cmd/bench -quick   # peers, the fast path and the LB at 64 B, < 3 min
//
// See bench/README.md for the method and the latest results.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "gen" {
		os.Exit(genMain(os.Args[2:]))
	}
	os.Exit(benchMain())
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[bench %s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func benchMain() int {
	var o options
	flag.BoolVar(&o.quick, "quick", false, "peers, the fast path and the LB at 64 B only, 2 rounds, short windows (< 3 min)")
	flag.IntVar(&o.runs, "runs", 0, "rounds (interleaved); 0 = 3, or 2 with -quick")
	warm := flag.Float64("warm", 0, "seconds of load before the window; 0 = 0.7 (0.5 with -quick)")
	win := flag.Float64("win", 0, "window seconds; 0 = 1.5 (1.2 with -quick)")
	tail := flag.Float64("tail", 0.5, "seconds of probe-only traffic after the load, for idle latency (reflect)")
	flag.IntVar(&o.probeRate, "probe-rate", 2000, "latency probes per second in reflect runs (0 = none)")
	flag.IntVar(&o.genCPU, "gen-cpu", 0, "generator CPU")
	flag.IntVar(&o.dutCPU, "dut-cpu", 1, "DUT CPU")
	flag.IntVar(&o.genThreads, "gen-threads", 2, "generator threads")
	flag.IntVar(&o.perfRounds, "perf-rounds", 1, "rounds with a perf-stat syscall count after the window (0 = none)")
	only := flag.String("only", "", "regexp: run only cells whose key matches (e.g. 'xdpkit|c-libxdp')")
	anchors := flag.String("anchors", defaultAnchors(), "the anchors' sources (C libxdp anchor); read-only is fine")
	out := flag.String("out", "results", "results parent directory")
	profiles := flag.Bool("profile", true, "after the rounds: CPU profiles of xdpkit and perf profiles of the DUT CPU (full runs only)")
	flag.StringVar(&o.profileCells, "profile-cells", "", "regexp of the cells to profile (default: xdpkit and c-libxdp reflect 64 B and poll-mode drop)")
	flag.IntVar(&o.perfCPU, "perf-cpu", -1, "CPU perf records in the profile runs (default: the DUT CPU)")
	ringBench := flag.Bool("ring-bench", true, "run `go test -bench . ./ring` in the main module (full runs only)")
	readme := flag.Bool("readme", true, "update the results block of README.md (full runs with default settings only)")
	ceiling := flag.Bool("ceiling", true, "measure the user-space ceiling (xdpkit's BenchmarkRunnerMemory against C libxdp's ring code over memory rings) after the rounds (full runs only)")
	ceilingOnly := flag.Bool("ceiling-only", false, "measure only the user-space ceiling, no cells (no veth, no generator)")
	ceilingRounds := flag.Int("ceiling-rounds", 3, "user-space ceiling: interleaved rounds")
	ceilingSecs := flag.Float64("ceiling-secs", 1, "user-space ceiling: seconds per path and round")
	ceilingInstr := flag.Bool("ceiling-instr", true, "user-space ceiling: also count instructions per frame under valgrind's callgrind (skipped without valgrind)")
	maxLoad := flag.Float64("max-load", 0, "wait (up to 2 min) until the 1-minute load average is below this before measuring (0 = don't wait)")
	flag.Parse()
	if o.runs == 0 {
		o.runs = 3
		if o.quick {
			o.runs = 2
		}
	}
	o.warm, o.win = secs(*warm, 0.7, 0.5, o.quick), secs(*win, 1.5, 1.2, o.quick)
	o.tail = time.Duration(*tail * float64(time.Second))
	if os.Geteuid() != 0 {
		logf("must run as root (sudo go run ./cmd/bench)")
		return 2
	}
	if _, err := os.Stat("go.mod"); err != nil || !strings.Contains(readFile("go.mod"), "module github.com/xdpkit/xdpkit/bench") {
		logf("run from the bench/ directory (cd bench && sudo go run ./cmd/bench)")
		return 2
	}
	for _, t := range []string{"ip", "taskset", "go"} {
		if _, err := exec.LookPath(t); err != nil {
			logf("missing %s", t)
			return 2
		}
	}
	cells := plan(o.quick)
	cells, err := filterCells(cells, *only)
	if err != nil {
		logf("%v", err)
		return 2
	}
	t0 := time.Now()
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer cancel()

	stamp := time.Now().UTC().Format("20060102T150405Z")
	o.res, _ = filepath.Abs(filepath.Join(*out, stamp))
	if err := os.MkdirAll(filepath.Join(o.res, "runs"), 0o755); err != nil {
		logf("%v", err)
		return 1
	}
	work, err := os.MkdirTemp("", "xbench-")
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer os.RemoveAll(work)
	o.self, _ = os.Executable()

	env := collectEnv(o)
	env.Start = time.Now().UTC().Format(time.RFC3339)
	logf("results -> %s; load before start: %s", o.res, env.LoadStart)
	if *maxLoad > 0 {
		waitLoad(ctx, *maxLoad)
	}
	if *ceilingOnly {
		return ceilingOnlyRun(ctx, o, env, work, *ceilingRounds, *ceilingSecs, *ceilingInstr)
	}

	// Build the DUTs and the C anchor.
	bs := build(ctx, work, *anchors)
	o.bin, o.cBin, o.xdpGen = bs.bin, bs.cBin, bs.xdpGen
	env.Build = bs.notes
	if bs.err != nil {
		logf("build failed: %v", bs.err)
		return 1
	}
	if p, err := exec.LookPath("dpdk-testpmd"); err == nil {
		o.testpmd = p
	} else {
		env.Build = append(env.Build, "dpdk-testpmd not found: DPDK cells skipped")
	}
	if p, err := exec.LookPath("perf"); err == nil {
		o.perf = p
	}

	// From here on, everything is undone on the way out, also on signals.
	var hp hugepages
	o.topo = &topo{}
	// libxdp (DPDK's af_xdp PMD, the C anchor) makes this directory in
	// bpffs for its dispatcher and leaves it, empty, behind.
	const libxdpDir = "/sys/fs/bpf/xdp"
	_, err = os.Stat(libxdpDir)
	hadLibxdpDir := err == nil
	cleanup := func() {
		stopAll()
		cleanupDUT()
		o.topo.down()
		hp.restore()
		if !hadLibxdpDir {
			_ = os.Remove(libxdpDir) // rmdir: only if it is empty
		}
		if l := leftovers(); len(l) > 0 {
			logf("WARNING: left behind: %v", l)
		}
	}
	defer cleanup()
	go func() {
		<-ctx.Done()
		// The main loop notices ctx; this only makes sure children stop now.
		stopAll()
	}()

	pinSelf(o.dutCPU) // keep the harness off the generator CPU
	if err := o.topo.upAll(); err != nil {
		logf("topology: %v", err)
		return 1
	}
	for _, c := range cells {
		if c.Huge {
			if err := hp.reserve(32); err != nil {
				logf("hugepages: %v (hugepage cells will fail)", err)
			}
			break
		}
	}
	env.Topology = topoStatus()

	// Rounds: every cell once per round, in the same order (interleaved), so
	// slow drifts of the VM hit all implementations alike. A run during which
	// other processes used more than disturbedPct of a CPU, or the
	// hypervisor stole more than stolenPct of the DUT's or the generator's,
	// is repeated once
	// at the end of its round, if the time budget allows; the summary then
	// uses the undisturbed runs.
	budget := 9*time.Minute + 20*time.Second
	reserve := 50 * time.Second // profiles and ring benchmarks
	if *ceiling && !o.quick {
		// The ceiling's runs come on top of the cells' time.
		c := time.Duration(float64(*ceilingRounds*len(ceilingPaths)) * (*ceilingSecs + 0.6) * float64(time.Second))
		if *ceilingInstr {
			c += time.Duration(len(ceilingPaths)) * 8 * time.Second
		}
		budget, reserve = budget+c, reserve+c
	}
	if o.quick {
		// 17 cells x 2 rounds; more rounds (-runs) get more time.
		budget, reserve = time.Duration(max(2, o.runs))*75*time.Second, 0
	}
	var results []*Run
	var runTimes []time.Duration
	avgRun := func() time.Duration {
		if len(runTimes) == 0 {
			return 4 * time.Second
		}
		var t time.Duration
		for _, d := range runTimes {
			t += d
		}
		return t / time.Duration(len(runTimes))
	}
	left := func() time.Duration { return budget - reserve - time.Since(t0) }
	outOfTime := false
	do := func(round, i int, c Cell, retry bool) {
		if left() < avgRun() {
			if !outOfTime {
				logf("time budget used up: skipping the remaining runs")
			}
			outOfTime = true
			return
		}
		start := time.Now()
		r := o.runOne(ctx, c, round, "", "")
		runTimes = append(runTimes, time.Since(start))
		r.Retry = retry
		if r.OK && (r.ForeignCPU > disturbedPct || r.DUTSteal > stolenPct || r.GenSteal > stolenPct) {
			r.Disturbed = true
		}
		results = append(results, r)
		tag := ""
		if retry {
			tag = " (repeat)"
		}
		logf("[%d/%d %2d/%d] %-40s %s%s", round, o.runs, i+1, len(cells), c.Key, r.brief(), tag)
	}
	for round := 1; round <= o.runs && ctx.Err() == nil; round++ {
		// Each round visits every cell once, in an order shuffled per round
		// (seeded by the round number, so it is reproducible): the VM's
		// fast and slow phases and other people's load then fall on random
		// cells instead of always on the same neighbours.
		order := rand.New(rand.NewPCG(uint64(round), 0x5842)).Perm(len(cells))
		var disturbed []int
		for _, i := range order {
			c := cells[i]
			if ctx.Err() != nil {
				break
			}
			if skip := o.unavailable(c); skip != "" {
				if round == 1 {
					results = append(results, &Run{Cell: c.Key, Round: round, Err: skip})
					logf("%-40s skipped: %s", c.Key, skip)
				}
				continue
			}
			do(round, i, c, false)
			if n := len(results); n > 0 && results[n-1].Disturbed {
				disturbed = append(disturbed, i)
			}
		}
		for _, i := range disturbed {
			if ctx.Err() != nil || left() < time.Duration(len(disturbed))*avgRun() {
				break
			}
			do(round, i, cells[i], true)
		}
	}
	if ctx.Err() != nil {
		logf("interrupted: writing what was measured")
	}

	var extra extras
	if !o.quick && ctx.Err() == nil && time.Since(t0) > budget {
		logf("no time left for profiles and ring benchmarks")
	} else if !o.quick && ctx.Err() == nil {
		if *profiles {
			extra.Profiles = o.profilePass(ctx, cells)
		}
		if *ringBench {
			extra.Ring = ringBenchmark(ctx, o.dutCPU)
		}
		if *ceiling {
			extra.Ceiling = ceilingBenchmark(ctx, work, o.dutCPU, *ceilingRounds, *ceilingSecs, *ceilingInstr)
		}
	}
	env.End = time.Now().UTC().Format(time.RFC3339)
	env.LoadEnd = loadavg()
	env.Duration = time.Since(t0).Round(time.Second).String()
	rep := report(o, env, cells, results, extra)
	if err := rep.write(o.res); err != nil {
		logf("write results: %v", err)
	}
	fmt.Print(rep.Table)
	def := *warm == 0 && *win == 0 && *only == "" && o.runs == 3 && *tail == 0.5 && o.probeRate == 2000
	if *readme && !o.quick && def && ctx.Err() == nil {
		if err := updateReadme("README.md", rep, *out+"/"+stamp); err != nil {
			logf("README: %v", err)
		} else {
			logf("README.md updated")
		}
	}
	logf("done in %s; results in %s", time.Since(t0).Round(time.Second), o.res)
	if ctx.Err() != nil {
		return 130
	}
	return 0
}

func secs(v, def, quickDef float64, quick bool) time.Duration {
	if v == 0 {
		v = def
		if quick {
			v = quickDef
		}
	}
	return time.Duration(v * float64(time.Second))
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func loadavg() string { return strings.TrimSpace(readFile("/proc/loadavg")) }

func waitLoad(ctx context.Context, max float64) {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		f := strings.Fields(loadavg())
		if len(f) > 0 {
			if v, err := strconv.ParseFloat(f[0], 64); err == nil && v < max {
				return
			}
		}
		logf("load %s >= %.2f, waiting", loadavg(), max)
		_ = sleepCtx(ctx, 10*time.Second)
	}
}

// pinSelf moves every thread of this process (new ones inherit it) to cpu.
func pinSelf(cpu int) {
	var set unix.CPUSet
	set.Set(cpu)
	ents, _ := os.ReadDir("/proc/self/task")
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			_ = unix.SchedSetaffinity(tid, &set)
		}
	}
	runtime.Gosched()
}

func (o *options) unavailable(c Cell) string {
	if c.xdpGen() && o.xdpGen == "" {
		return "examples/xdp-gen not built"
	}
	switch c.Impl {
	case "c-libxdp":
		if o.cBin == "" {
			return "C anchor not built"
		}
	case "dpdk":
		if o.testpmd == "" {
			return "dpdk-testpmd not installed"
		}
	}
	return ""
}

// hugepages reserves 2 MiB pages and gives them back.
type hugepages struct {
	path     string
	old, set int
}

func (h *hugepages) reserve(n int) error {
	h.path = "/proc/sys/vm/nr_hugepages"
	free := meminfo("HugePages_Free:")
	if free >= n {
		return nil
	}
	old, err := strconv.Atoi(strings.TrimSpace(readFile(h.path)))
	if err != nil {
		return err
	}
	h.old, h.set = old, old+n-free
	if err := os.WriteFile(h.path, []byte(strconv.Itoa(h.set)), 0); err != nil {
		h.set = 0
		return err
	}
	if got := meminfo("HugePages_Free:"); got < n {
		return fmt.Errorf("asked for %d free hugepages, have %d", n, got)
	}
	return nil
}

// restore puts nr_hugepages back, unless someone else changed it meanwhile.
func (h *hugepages) restore() {
	if h.set == 0 {
		return
	}
	cur, err := strconv.Atoi(strings.TrimSpace(readFile(h.path)))
	if err == nil && cur == h.set {
		_ = os.WriteFile(h.path, []byte(strconv.Itoa(h.old)), 0)
	}
	h.set = 0
}

func meminfo(key string) int {
	for _, l := range strings.Split(readFile("/proc/meminfo"), "\n") {
		if strings.HasPrefix(l, key) {
			f := strings.Fields(l)
			if len(f) >= 2 {
				v, _ := strconv.Atoi(f[1])
				return v
			}
		}
	}
	return 0
}

func topoStatus() string {
	var b strings.Builder
	for _, c := range [][]string{{"ip", "-d", "link", "show", "dev", dutIf}, {"ip", "-n", nsName, "-d", "link", "show", "dev", genIf},
		{"ethtool", "-l", dutIf}} {
		out, _ := exec.Command(c[0], c[1:]...).CombinedOutput()
		b.WriteString("$ " + strings.Join(c, " ") + "\n" + string(out))
	}
	return b.String()
}

// disturbedPct is the share of a CPU (%) other processes may use during a
// window before the run counts as disturbed.
const disturbedPct = 20

// stolenPct is the share of the DUT's or the generator's CPU (%) the
// hypervisor may steal during a window before the run counts as
// disturbed: with the guest's cpuidle-haltpoll, time stolen while the
// guest polled in idle is counted as both idle and steal, so the DUT's
// busy time (wall less idle less steal) reads low under heavy steal —
// down to 0 with 40-70 % stolen, seen on this host — and the frame rate
// drops for everyone.
const stolenPct = 10

// defaultAnchors finds the peer harness: shared/anchors beside the
// repository (as CI and developers have it), else /work/shared/anchors.
func defaultAnchors() string {
	for _, dir := range []string{"../../shared/anchors", "../shared/anchors", "/work/shared/anchors"} {
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			if abs, err := filepath.Abs(dir); err == nil {
				return abs
			}
			return dir
		}
	}
	return "/work/shared/anchors"
}
