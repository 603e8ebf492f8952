//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The user-space ceiling: xdpkit's BenchmarkRunnerMemory (package
// pipeline: the Runner over a memory socket whose kernel side is two ring
// updates a batch) and C libxdp's ring code over the same kind of memory
// rings (ceiling/ring_ceiling.c: the C anchor's loops), in interleaved
// rounds on the DUT CPU, so that the two user spaces are compared without
// veth's kernel cost and in the same minutes of the VM.

// ceilingPath is one path of the ceiling: a sub-benchmark of
// BenchmarkRunnerMemory, or a mode of ring_ceiling (C).
type ceilingPath struct {
	Name   string  `json:"name"`
	C      bool    `json:"c,omitempty"`
	Target float64 `json:"target_mpps,omitempty"` // issue 12's Mpps/core goal; 0: none
	Peer   string  `json:"peer,omitempty"`        // the C path it compares with
}

var ceilingPaths = []ceilingPath{
	{Name: "hand-drop", Peer: "c-drop"},
	{Name: "drop", Target: 40}, // reads no frame: C's drop, which touches each, is not its peer
	{Name: "drop-stage", Peer: "c-drop"},
	{Name: "drop-frames", Peer: "c-drop"},
	{Name: "reflect", Target: 30, Peer: "c-reflect"},
	{Name: "count", Target: 20},
	{Name: "lb", Target: 20},
	{Name: "c-drop", C: true},
	{Name: "c-reflect", C: true},
}

type ceilingResult struct {
	Err     string               `json:"error,omitempty"`
	Rounds  int                  `json:"rounds"`
	Seconds float64              `json:"seconds_per_run"`
	CPU     int                  `json:"cpu"`
	Paths   []ceilingPath        `json:"paths"`
	NsFrame map[string][]float64 `json:"ns_per_frame"` // by path, one per round
	// Instructions per frame by path (valgrind --tool=callgrind: two
	// runs of a fixed number of batches, their difference over the
	// difference in frames), which unlike time does not move with the
	// VM's phases; nil without valgrind.
	Instr    map[string]float64 `json:"instructions_per_frame,omitempty"`
	InstrErr string             `json:"instructions_error,omitempty"`
	Commands []string           `json:"commands"`
}

// median is the path's median ns/frame, or 0 if it was not measured.
func (c *ceilingResult) median(path string) float64 {
	if v := c.NsFrame[path]; len(v) > 0 {
		return median(v)
	}
	return 0
}

// ceilingBatch is both sides' batch size (BenchmarkRunnerMemory's, and
// ring_ceiling's default).
const ceilingBatch = 64

// command is the command line that runs p for secs seconds, or for
// batches batches (untimed, for counting instructions) if batches > 0.
func (p ceilingPath) command(goBin, cBin string, secs float64, batches int) []string {
	if p.C {
		amount := []string{"-t", strconv.FormatFloat(secs, 'f', -1, 64)}
		if batches > 0 {
			amount = []string{"-i", strconv.Itoa(batches)}
		}
		return append([]string{cBin, "-m", strings.TrimPrefix(p.Name, "c-"), "-b", strconv.Itoa(ceilingBatch)}, amount...)
	}
	benchtime := strconv.FormatFloat(secs, 'f', -1, 64) + "s"
	if batches > 0 {
		benchtime = strconv.Itoa(batches) + "x"
	}
	// Anchored per level: "drop$" alone matches hand-drop too.
	return []string{goBin, "-test.run", "^$", "-test.bench", "^BenchmarkRunnerMemory$/^" + p.Name + "$", "-test.benchtime", benchtime, "-test.cpu", "1"}
}

var memBenchLine = regexp.MustCompile(`^BenchmarkRunnerMemory/(\S+?)(-\d+)?\s+\d+\s+.*?([\d.]+) ns/frame`)
var cCeilingLine = regexp.MustCompile(`mode=(\S+) .*ns_per_frame=([\d.]+)`)

// ceilingBenchmark builds both sides into dir and measures every path
// rounds times, each run secs long, in an order shuffled per round.
func ceilingBenchmark(ctx context.Context, dir string, cpu, rounds int, secs float64, instr bool) *ceilingResult {
	cr := &ceilingResult{Rounds: rounds, Seconds: secs, CPU: cpu, Paths: ceilingPaths, NsFrame: map[string][]float64{}}
	goBin := filepath.Join(dir, "pipeline.test")
	if err := run(ctx, "..", "go", "test", "-c", "-o", goBin, "./pipeline"); err != nil {
		cr.Err = firstLine(err.Error())
		return cr
	}
	cBin := filepath.Join(dir, "ring_ceiling")
	if _, err := os.Stat("/usr/include/xdp/xsk.h"); err != nil {
		cr.Err = "no <xdp/xsk.h> for the C side (apt-get install libxdp-dev)"
		return cr
	}
	if err := run(ctx, ".", "cc", "-O2", "-Wall", "-o", cBin, "ceiling/ring_ceiling.c"); err != nil {
		cr.Err = firstLine(err.Error())
		return cr
	}
	argv := func(p ceilingPath) []string {
		return append([]string{"taskset", "-c", strconv.Itoa(cpu)}, p.command(goBin, cBin, secs, 0)...)
	}
	for _, p := range ceilingPaths {
		cr.Commands = append(cr.Commands, strings.Join(argv(p), " "))
	}
	logf("user-space ceiling: %d paths x %d rounds of %gs on CPU %d", len(ceilingPaths), rounds, secs, cpu)
	for round := 1; round <= rounds && ctx.Err() == nil; round++ {
		order := rand.New(rand.NewPCG(uint64(round), 0xce11)).Perm(len(ceilingPaths))
		var line []string
		for _, i := range order {
			p := ceilingPaths[i]
			ns, err := ceilingRun(ctx, argv(p), p, secs)
			if err != nil {
				logf("ceiling %s: %v", p.Name, err)
				continue
			}
			cr.NsFrame[p.Name] = append(cr.NsFrame[p.Name], ns)
			line = append(line, fmt.Sprintf("%s %.1f", p.Name, ns))
		}
		logf("ceiling round %d/%d (ns/frame): %s", round, rounds, strings.Join(line, ", "))
	}
	if len(cr.NsFrame) == 0 && cr.Err == "" {
		cr.Err = "no path measured"
	}
	if instr && ctx.Err() == nil {
		cr.Instr, cr.InstrErr = ceilingInstructions(ctx, goBin, cBin, cpu)
	}
	return cr
}

// The batch counts of the two instruction-counting runs of a path.
const instrBatchesA, instrBatchesB = 2000, 6000

// ceilingInstructions counts each path's instructions per frame under
// callgrind. Go's runtime runs without asynchronous preemption (callgrind
// fails on its signals) and without GC (so that only the loop differs
// between the two runs).
func ceilingInstructions(ctx context.Context, goBin, cBin string, cpu int) (map[string]float64, string) {
	vg, err := exec.LookPath("valgrind")
	if err != nil {
		return nil, "no valgrind (apt-get install valgrind)"
	}
	logf("user-space ceiling: instructions per frame under callgrind")
	out := map[string]float64{}
	var errs []string
	for _, p := range ceilingPaths {
		var total [2]float64
		var failed error
		for i, n := range []int{instrBatchesA, instrBatchesB} {
			argv := append([]string{"taskset", "-c", strconv.Itoa(cpu), vg, "--tool=callgrind", "--callgrind-out-file=/dev/null"}, p.command(goBin, cBin, 0, n)...)
			c, cancel := context.WithTimeout(ctx, 3*time.Minute)
			cmd := exec.CommandContext(c, argv[0], argv[1:]...)
			cmd.Env = append(os.Environ(), "GODEBUG=asyncpreemptoff=1", "GOGC=off")
			b, err := cmd.CombinedOutput()
			cancel()
			if err == nil {
				total[i], err = parseCollected(string(b))
			}
			if err != nil {
				failed = err
				break
			}
		}
		if failed != nil {
			errs = append(errs, p.Name+": "+failed.Error())
			continue
		}
		out[p.Name] = (total[1] - total[0]) / float64((instrBatchesB-instrBatchesA)*ceilingBatch)
	}
	return out, strings.Join(errs, "; ")
}

var collectedLine = regexp.MustCompile(`Collected : (\d+)`)

// parseCollected is the instruction total callgrind printed.
func parseCollected(out string) (float64, error) {
	m := collectedLine.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no instruction count in callgrind's output: %s", firstLine(strings.TrimSpace(out)))
	}
	return strconv.ParseFloat(m[1], 64)
}

// ceilingRun runs one path and returns its ns per frame.
func ceilingRun(ctx context.Context, argv []string, p ceilingPath, secs float64) (float64, error) {
	c, cancel := context.WithTimeout(ctx, time.Duration(secs*float64(time.Second))*4+30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(c, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%w: %s", err, firstLine(strings.TrimSpace(string(out))))
	}
	return parseCeiling(string(out), p)
}

// parseCeiling finds path p's ns per frame in its run's output: the
// line of its own sub-benchmark (a -test.bench pattern may match more
// than one), or the C side's result line for its mode.
func parseCeiling(out string, p ceilingPath) (float64, error) {
	for _, l := range strings.Split(out, "\n") {
		if m := memBenchLine.FindStringSubmatch(l); m != nil && !p.C && m[1] == p.Name {
			return strconv.ParseFloat(m[3], 64)
		}
		if m := cCeilingLine.FindStringSubmatch(l); m != nil && p.C && "c-"+m[1] == p.Name {
			return strconv.ParseFloat(m[2], 64)
		}
	}
	return 0, fmt.Errorf("no result for %s in its output: %s", p.Name, firstLine(strings.TrimSpace(out)))
}

// ceilingTargets are the report's rows for the ceiling: the issue's
// Mpps/core goals, and every Go path against its C counterpart.
func ceilingTargets(cr *ceilingResult) []Target {
	const name = "user-space ceiling (memory rings, batch 64)"
	if cr == nil {
		return []Target{{Name: name, Goal: "see bench/README.md", Result: "not measured (full runs and -ceiling-only)"}}
	}
	if cr.Err != "" {
		return []Target{{Name: name, Goal: "see bench/README.md", Result: "failed: " + cr.Err}}
	}
	var t []Target
	for _, p := range cr.Paths {
		v := cr.NsFrame[p.Name]
		if p.C || len(v) == 0 {
			continue
		}
		ns := median(v)
		lo, hi := minmax(v)
		res := fmt.Sprintf("%.1f Mpps/core, %.1f ns/frame (%.1f-%.1f, %d rounds)", 1e3/ns, ns, lo, hi, len(v))
		if c := cr.median(p.Peer); c > 0 {
			res += fmt.Sprintf("; C libxdp's ring code %s %.1f ns/frame: %.2fx", strings.TrimPrefix(p.Peer, "c-"), c, ns/c)
		}
		if in, ok := cr.Instr[p.Name]; ok {
			res += fmt.Sprintf("; %.0f instructions/frame", in)
			if c, ok := cr.Instr[p.Peer]; ok && c > 0 {
				res += fmt.Sprintf(" against C's %.0f (%.1fx)", c, in/c)
			}
		}
		tt := Target{Name: "ceiling " + p.Name, Goal: infoGoal, Result: res}
		if p.Target > 0 {
			tt.Goal = fmt.Sprintf(">= %g Mpps/core", p.Target)
			tt.Met = boolp(1e3/ns >= p.Target)
		}
		t = append(t, tt)
	}
	return t
}

// ceilingOnlyRun is -ceiling-only: the ceiling alone, written to the
// results directory as ceiling.json and ceiling.txt.
func ceilingOnlyRun(ctx context.Context, o options, env Env, work string, rounds int, secs float64, instr bool) int {
	cr := ceilingBenchmark(ctx, work, o.dutCPU, rounds, secs, instr)
	var b strings.Builder
	fmt.Fprintf(&b, "user-space ceiling, %s, CPU %d, %d rounds of %gs\n", env.Start, o.dutCPU, rounds, secs)
	if cr.InstrErr != "" {
		fmt.Fprintf(&b, "  instructions: %s\n", cr.InstrErr)
	}
	for _, t := range ceilingTargets(cr) {
		mark := ""
		if t.Met != nil {
			mark = map[bool]string{true: "[met]", false: "[MISSED]"}[*t.Met]
		}
		fmt.Fprintf(&b, "  %-22s goal %-18s %-9s %s\n", t.Name, t.Goal, mark, t.Result)
	}
	js, err := json.MarshalIndent(struct {
		Env     Env            `json:"env"`
		Ceiling *ceilingResult `json:"ceiling"`
	}{env, cr}, "", "  ")
	if err == nil {
		err = os.WriteFile(filepath.Join(o.res, "ceiling.json"), js, 0o644)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(o.res, "ceiling.txt"), []byte(b.String()), 0o644)
	}
	if err != nil {
		logf("write results: %v", err)
		return 1
	}
	_ = os.Remove(filepath.Join(o.res, "runs")) // empty: no cells ran
	fmt.Print(b.String())
	if cr.Err != "" {
		return 1
	}
	return 0
}
