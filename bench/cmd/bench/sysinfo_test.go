//go:build linux

package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestBusyPct(t *testing.T) {
	t0 := time.Now()
	a := []cpuTicks{{idle: 1000, steal: 5}, {idle: 2000}}
	b := []cpuTicks{{idle: 1150, steal: 5}, {idle: 2100}}
	type row struct {
		cpu  int
		dt   time.Duration
		want float64
	}
	check := func(name string, fn func(a, b []cpuTicks, t0, t1 time.Time, cpu int) float64, rows []row) {
		t.Helper()
		for _, tc := range rows {
			got := fn(a, b, t0, t0.Add(tc.dt), tc.cpu)
			if math.IsNaN(tc.want) != math.IsNaN(got) || !math.IsNaN(got) && math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("%s(cpu %d, %v) = %v, want %v", name, tc.cpu, tc.dt, got, tc.want)
			}
		}
	}
	check("busyPct", busyPct, []row{
		{0, 2 * time.Second, 25},       // 150 of 200 jiffies idle
		{1, 2 * time.Second, 50},       // 100 of 200
		{1, 500 * time.Millisecond, 0}, // more idle than wall (rounding): 0, not negative
		{2, 2 * time.Second, math.NaN()},
		{0, 0, math.NaN()},
	})
	b[0].steal = 55 // stolen time is not the guest's work
	if got := busyPct(a, b, t0, t0.Add(2*time.Second), 0); math.Abs(got-0) > 1e-9 {
		t.Errorf("busyPct with 50 jiffies stolen = %v, want 0", got)
	}
	check("stealPct", stealPct, []row{
		{0, 2 * time.Second, 25},         // 50 of 200 jiffies stolen
		{1, 2 * time.Second, 0},          // none
		{0, 100 * time.Millisecond, 100}, // more stolen than wall (rounding): 100, not more
		{2, 2 * time.Second, math.NaN()},
		{0, 0, math.NaN()},
	})
}

// TestBusyPctCountsShortBursts runs a thread that works 5 µs and sleeps
// 20 µs on one CPU and checks that the CPU's busy time is at least the
// thread's own run time (schedstat, which is exact). The tick-sampled
// jiffies often fail it on a NO_HZ_IDLE kernel (here they saw 14.6 % of a
// CPU that such a thread ran 28.3 % of). On a kernel whose idle time is
// itself sampled (no NO_HZ) busyPct would be no better, and this could fail.
func TestBusyPctCountsShortBursts(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 1-3 s")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	cpu := -1
	for i := range 1024 {
		if set.IsSet(i) {
			cpu = i // the last allowed CPU: the least likely to be busy with other work
		}
	}
	var one unix.CPUSet
	one.Set(cpu)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		t.Fatal(err)
	}
	defer unix.SchedSetaffinity(0, &set)
	self := fmt.Sprintf("/proc/self/task/%d/schedstat", unix.Gettid())
	run := func() uint64 {
		b, err := os.ReadFile(self)
		if err != nil {
			t.Fatal(err)
		}
		v, err := strconv.ParseUint(strings.Fields(string(b))[0], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	// A window in which the hypervisor stole much of the CPU says nothing:
	// with the guest's haltpoll, stolen idle polling counts as idle and as
	// steal (see stolenPct). Up to three windows, then give up.
	var own, busy, sampled, stolen float64
	for attempt := range 3 {
		ta, ra, a := time.Now(), run(), readCPUTicks()
		sleep := unix.NsecToTimespec(20_000)
		for end := ta.Add(time.Second); time.Now().Before(end); {
			for s := time.Now(); time.Since(s) < 5*time.Microsecond; {
			}
			_ = unix.Nanosleep(&sleep, nil)
		}
		tb, rb, b := time.Now(), run(), readCPUTicks()
		own = 100 * float64(rb-ra) / float64(tb.Sub(ta).Nanoseconds())
		busy = busyPct(a, b, ta, tb, cpu)
		sampled = sampledBusyPct(a, b, cpu)
		stolen = stealPct(a, b, ta, tb, cpu)
		t.Logf("CPU %d, window %d: thread %.1f%%, busy (wall - idle - steal) %.1f%%, sampled jiffies %.1f%%, stolen %.1f%%", cpu, attempt, own, busy, sampled, stolen)
		if stolen <= stolenPct {
			break
		}
	}
	if stolen > stolenPct {
		t.Skipf("the hypervisor stole %.0f%% of CPU %d in every window (more than stolenPct, %d%%): busy time cannot be checked now", stolen, cpu, stolenPct)
	}
	// One jiffy of rounding at each end of 1 s is 2%; the rest of the
	// slack is for a steal figure that is itself sampled.
	if busy < own-4 {
		t.Errorf("busy %.1f%% of CPU %d is less than the %.1f%% its one thread ran", busy, cpu, own)
	}
}
