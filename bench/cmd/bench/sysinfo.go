//go:build linux

package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// readCPUTicks returns, per CPU, the jiffies of /proc/stat (USER_HZ): busy
// = total - idle - iowait (the sampled figure, like the anchors' harness),
// the idle and iowait time, and steal.
//
// The busy jiffies are sampled: with CONFIG_TICK_CPU_ACCOUNTING (this
// kernel, HZ 250) user, system, irq and softirq time is what the tick saw
// running, and a NO_HZ_IDLE CPU that wakes for a few microseconds at a time
// and sleeps again is often not running when a tick lands. The idle time of
// such a CPU is not sampled: the kernel measures it from entering the idle
// loop to leaving it. So wall time minus idle (busyPct) is the busy time
// that counts every wake-up, and the sampled figure is kept only to compare
// with runs made before it.
func readCPUTicks() []cpuTicks {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil
	}
	var out []cpuTicks
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		n, err := strconv.Atoi(f[0][3:])
		if err != nil {
			continue
		}
		var t uint64
		for _, x := range f[1:] {
			v, _ := strconv.ParseUint(x, 10, 64)
			t += v
		}
		idle, _ := strconv.ParseUint(f[4], 10, 64)
		iow, _ := strconv.ParseUint(f[5], 10, 64)
		steal, _ := strconv.ParseUint(f[8], 10, 64)
		for len(out) <= n {
			out = append(out, cpuTicks{})
		}
		out[n] = cpuTicks{busy: t - idle - iow, total: t, idle: idle + iow, steal: steal}
	}
	return out
}

// busyPct is how busy one CPU was between two readings of /proc/stat taken
// at the monotonic times ta and tb, in percent: the wall time less what the
// CPU spent idle (or waiting for I/O) and what the hypervisor stole. NaN if
// either reading lacks the CPU or no time passed.
func busyPct(a, b []cpuTicks, ta, tb time.Time, cpu int) float64 {
	wall := wallJiffies(a, b, ta, tb, cpu)
	if math.IsNaN(wall) {
		return wall
	}
	idle := float64(b[cpu].idle-a[cpu].idle) + float64(b[cpu].steal-a[cpu].steal)
	return min(max(100*(wall-idle)/wall, 0), 100)
}

// wallJiffies is the time from ta to tb in USER_HZ jiffies, NaN if either
// reading lacks cpu or no time passed.
func wallJiffies(a, b []cpuTicks, ta, tb time.Time, cpu int) float64 {
	wall := tb.Sub(ta).Seconds() * 100 // USER_HZ
	if cpu < 0 || cpu >= len(a) || cpu >= len(b) || wall <= 0 {
		return math.NaN()
	}
	return wall
}

// stealPct is the share of the wall time between ta and tb the
// hypervisor stole from cpu (the steal jiffies of /proc/stat), in percent;
// NaN as for busyPct.
func stealPct(a, b []cpuTicks, ta, tb time.Time, cpu int) float64 {
	wall := wallJiffies(a, b, ta, tb, cpu)
	if math.IsNaN(wall) {
		return wall
	}
	return min(100*float64(b[cpu].steal-a[cpu].steal)/wall, 100)
}

// sampledBusyPct is the busy share of one CPU from the sampled jiffies,
// the figure runs before 2026-12-02 reported as the DUT CPU.
func sampledBusyPct(a, b []cpuTicks, cpu int) float64 {
	if cpu < 0 || cpu >= len(a) || cpu >= len(b) {
		return math.NaN()
	}
	dt := float64(b[cpu].total - a[cpu].total)
	if dt <= 0 {
		return math.NaN()
	}
	return 100 * float64(b[cpu].busy-a[cpu].busy) / dt
}

// idleEntries is how many times cpu entered an idle state, summed over
// its cpuidle states; 0 without cpuidle.
func idleEntries(cpu int) uint64 {
	ds, _ := filepath.Glob(fmt.Sprintf("/sys/devices/system/cpu/cpu%d/cpuidle/state*/usage", cpu))
	var sum uint64
	for _, d := range ds {
		if b, err := os.ReadFile(d); err == nil {
			v, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
			sum += v
		}
	}
	return sum
}

// cpuIRQs is cpu's column of /proc/interrupts: the architecture's
// interrupts by name (LOC, RES, CAL, ...), the devices' summed as "dev",
// and everything as "all". nil if the file or the column is missing.
func cpuIRQs(cpu int) map[string]uint64 {
	b, err := os.ReadFile("/proc/interrupts")
	if err != nil {
		return nil
	}
	lines := strings.Split(string(b), "\n")
	col := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == fmt.Sprintf("CPU%d", cpu) {
			col = i + 1 // the rows start with their name
		}
	}
	if col < 0 {
		return nil
	}
	out := map[string]uint64{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) <= col {
			continue
		}
		v, err := strconv.ParseUint(f[col], 10, 64)
		if err != nil {
			continue
		}
		name := strings.TrimSuffix(f[0], ":")
		if _, err := strconv.Atoi(name); err == nil {
			name = "dev"
		}
		out[name] += v
		out["all"] += v
	}
	return out
}

// schedstatNs is the CPU time of all threads of pid, in ns.
func schedstatNs(pid int) uint64 {
	ds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var sum uint64
	for _, d := range ds {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) > 0 {
			v, _ := strconv.ParseUint(f[0], 10, 64)
			sum += v
		}
	}
	return sum
}

// userSysTicks is the user and system CPU time of all threads of pid, in
// clock ticks (USER_HZ), from /proc/PID/stat: the kernel splits the
// precise run time between the two by where its ticks landed.
func userSysTicks(pid int) (user, sys uint64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces
	if i < 0 {
		return 0, 0
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0, 0
	}
	user, _ = strconv.ParseUint(f[11], 10, 64) // field 14, utime
	sys, _ = strconv.ParseUint(f[12], 10, 64)  // field 15, stime
	return user, sys
}

// ctxSwitches is the number of context switches of all threads of pid.
func ctxSwitches(pid int) uint64 {
	ds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	var sum uint64
	for _, d := range ds {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "voluntary_ctxt_switches:") || strings.HasPrefix(l, "nonvoluntary_ctxt_switches:") {
				f := strings.Fields(l)
				v, _ := strconv.ParseUint(f[len(f)-1], 10, 64)
				sum += v
			}
		}
	}
	return sum
}

type procCPU struct {
	ticks uint64 // utime + stime
	comm  string
	ppid  int
}

const pfKthread = 0x00200000

// scanProcs reads utime+stime of every user-space process, and returns the
// total CPU time of all kernel threads (ns, from schedstat).
func scanProcs() (map[int]procCPU, uint64) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, 0
	}
	var kns uint64
	m := make(map[int]procCPU, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if i < 0 || j < i {
			continue
		}
		f := strings.Fields(s[j+1:])
		// f[0] state, f[1] ppid, f[6] flags, f[11] utime, f[12] stime, f[13] cutime, f[14] cstime
		if len(f) < 15 {
			continue
		}
		flags, _ := strconv.ParseUint(f[6], 10, 64)
		if flags&pfKthread != 0 {
			if b, err := os.ReadFile("/proc/" + e.Name() + "/schedstat"); err == nil {
				if f := strings.Fields(string(b)); len(f) > 0 {
					v, _ := strconv.ParseUint(f[0], 10, 64)
					kns += v
				}
			}
			continue
		}
		var t uint64
		for _, k := range []int{11, 12} {
			v, _ := strconv.ParseUint(f[k], 10, 64)
			t += v
		}
		ppid, _ := strconv.Atoi(f[1])
		m[pid] = procCPU{ticks: t, comm: s[i+1 : j], ppid: ppid}
	}
	return m, kns
}

// foreignTop names the user processes that are not the harness, its
// children or the DUT and used the most CPU during the window (processes
// that started or ended inside the window are not seen), and their total in
// % of one CPU.
func foreignTop(a, b map[int]procCPU, ours map[int]bool, dt float64) (float64, string) {
	isOurs := func(pid int) bool {
		for i := 0; i < 8 && pid > 1; i++ {
			if ours[pid] {
				return true
			}
			p, ok := b[pid]
			if !ok {
				p, ok = a[pid]
			}
			if !ok {
				return false
			}
			pid = p.ppid
		}
		return false
	}
	type top struct {
		comm string
		t    uint64
	}
	var tops []top
	var sum uint64
	for pid, pb := range b {
		if isOurs(pid) {
			continue
		}
		pa, ok := a[pid]
		if !ok || pb.ticks < pa.ticks {
			continue
		}
		d := pb.ticks - pa.ticks
		if d > 0 {
			sum += d
			tops = append(tops, top{pb.comm, d})
		}
	}
	if dt <= 0 {
		return 0, ""
	}
	sort.Slice(tops, func(i, j int) bool { return tops[i].t > tops[j].t })
	var names []string
	for i := 0; i < len(tops) && i < 3; i++ {
		names = append(names, fmt.Sprintf("%s:%.0f%%", tops[i].comm, float64(tops[i].t)/100/dt*100))
	}
	return float64(sum) / 100 / dt * 100, strings.Join(names, " ")
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func summarizeLatency(us []float64, sent int) *Latency {
	if sent == 0 && len(us) == 0 {
		return nil
	}
	s := append([]float64(nil), us...)
	sort.Float64s(s)
	l := &Latency{N: len(s), Sent: sent}
	if sent > 0 {
		l.LossPc = 100 * float64(sent-min(len(s), sent)) / float64(sent)
	}
	if len(s) > 0 {
		l.P50, l.P99, l.P999, l.Max = percentile(s, 50), percentile(s, 99), percentile(s, 99.9), s[len(s)-1]
	}
	return l
}

// treeVersion is the main module's commit and its uncommitted changes (the
// DUTs are built from the working tree, which others edit meanwhile), as
// "abcdef123456" or "abcdef123456 + uncommitted fastpath/program.go, ...".
func treeVersion() string {
	out, err := exec.Command("git", "-C", "..", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return ""
	}
	v := strings.TrimSpace(string(out))
	st, err := exec.Command("git", "-C", "..", "status", "--porcelain", "--untracked-files=no").Output()
	if err != nil {
		return v
	}
	var files []string
	for _, l := range strings.Split(string(st), "\n") {
		if len(l) > 3 { // XY path
			files = append(files, strings.TrimSpace(l[3:]))
		}
	}
	if len(files) > 6 {
		files = append(files[:6], fmt.Sprintf("and %d more", len(files)-6))
	}
	if len(files) > 0 {
		v += " + uncommitted " + strings.Join(files, ", ")
	}
	return v
}

// collectEnv describes the machine (kernel, CPU, the peers' package
// versions, the library's commit) and the run's settings; it runs uname,
// dpkg-query and git.
func collectEnv(o options) Env {
	e := Env{Go: runtime.Version(), CPUs: runtime.NumCPU(), LoadStart: loadavg(), Versions: map[string]string{}}
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		e.Kernel = strings.TrimSpace(string(out))
	}
	for _, l := range strings.Split(readFile("/proc/cpuinfo"), "\n") {
		if strings.HasPrefix(l, "model name") {
			e.CPU = strings.TrimSpace(l[strings.IndexByte(l, ':')+1:])
			break
		}
	}
	if strings.Contains(readFile("/proc/cpuinfo"), "hypervisor") {
		e.CPU += " (VM)"
	}
	for _, p := range []string{"libxdp1", "libbpf1", "dpdk", "dpdk-dev", "librte-net-af-xdp23", "linux-perf"} {
		if out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", p).Output(); err == nil {
			e.Versions[p] = string(out)
		}
	}
	e.Versions["github.com/asavie/xdp"] = "v0.3.3 (built against cilium/ebpf v0.22.0 by MVS)"
	if v := treeVersion(); v != "" {
		e.Versions["github.com/xdpkit/xdpkit"] = v
	}
	e.Settings = map[string]string{
		"runs": strconv.Itoa(o.runs), "warm": o.warm.String(), "window": o.win.String(), "probe_tail": o.tail.String(),
		"probe_rate": strconv.Itoa(o.probeRate), "gen_cpu": strconv.Itoa(o.genCPU), "dut_cpu": strconv.Itoa(o.dutCPU),
		"gen_threads": strconv.Itoa(o.genThreads), "quick": strconv.FormatBool(o.quick),
	}
	return e
}
