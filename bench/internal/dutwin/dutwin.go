// Package dutwin is the measurement-window protocol between the harness and
// its Go DUTs: SIGUSR1 opens the window, SIGUSR2 closes it, SIGTERM/SIGINT
// stop the DUT. At each edge the DUT's loop records its own counters and the
// Go heap's allocation count; at exit it prints one "DUTSTATS {json}" line.
// The harness does not use these numbers for throughput (it counts from the
// veth); it uses them for allocations and syscalls per frame.
package dutwin

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Snap is a DUT's view at one window edge.
type Snap struct {
	T         int64  `json:"t_ns"` // wall clock, ns
	RX        uint64 `json:"rx"`
	TX        uint64 `json:"tx"`
	Mallocs   uint64 `json:"mallocs"`
	Syscalls  uint64 `json:"syscalls"` // syscalls the DUT made on its sockets (kicks, wakeups, waits)
	Kicks     uint64 `json:"kicks"`
	RXWakeups uint64 `json:"rx_wakeups"`
	Waits     uint64 `json:"waits"`
	Dropped   uint64 `json:"dropped"` // frames the DUT itself dropped (TX ring full, ...)
	// CollectMallocs are the allocations the DUT's collect function made
	// for this snapshot (reading map counters, say): Mallocs includes them,
	// the harness leaves them out of the window's allocations per frame.
	CollectMallocs uint64 `json:"collect_mallocs,omitempty"`
	// Threads is how many OS threads the process has (/proc/self/status):
	// the Go runtime allocates when it starts one (runtime.newm), which a
	// goroutine locked to its thread that parks makes it do, and the
	// harness tells those allocations from the frames' by it.
	Threads int `json:"threads,omitempty"`
}

// threads returns the process's OS thread count, 0 if unknown.
func threads() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// Stats is what the DUT prints at exit.
type Stats struct {
	Impl   string `json:"impl"`
	Mode   string `json:"mode"`
	A      *Snap  `json:"a,omitempty"`
	B      *Snap  `json:"b,omitempty"`
	Config any    `json:"config,omitempty"`
	Extra  any    `json:"extra,omitempty"` // whatever else the DUT reports (SetExtra)
}

const (
	flagStart = 1 << iota
	flagEnd
)

// Window tracks the signals.
type Window struct {
	flags   atomic.Int32
	stop    atomic.Bool
	profile string
	profF   *os.File
	st      Stats
	a, b    Snap // preallocated: taking a snapshot must not allocate
	ms      runtime.MemStats
}

// New installs the signal handlers. profile, if set, is a file for a CPU
// profile of the window. bound stops the DUT after that long regardless.
func New(impl, mode, profile string, bound time.Duration) *Window {
	w := &Window{profile: profile, st: Stats{Impl: impl, Mode: mode}}
	c := make(chan os.Signal, 4)
	signal.Notify(c, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for s := range c {
			switch s {
			case syscall.SIGUSR1:
				w.flags.Or(flagStart)
			case syscall.SIGUSR2:
				w.flags.Or(flagEnd)
			default:
				w.stop.Store(true)
			}
		}
	}()
	if bound > 0 {
		time.AfterFunc(bound, func() { w.stop.Store(true) })
	}
	return w
}

// SetConfig records the DUT's configuration for the report.
func (w *Window) SetConfig(c any) { w.st.Config = c }

// SetExtra records more of the DUT's own numbers for the report; call it
// before Report.
func (w *Window) SetExtra(x any) { w.st.Extra = x }

// Stopped reports whether the DUT should stop.
func (w *Window) Stopped() bool { return w.stop.Load() }

// Pending is the loop's cheap check: is a window edge waiting?
func (w *Window) Pending() bool { return w.flags.Load() != 0 }

// Edge records the window edge(s) waiting, with the counters collect returns.
// Call it from the loop's goroutine when Pending is true.
func (w *Window) Edge(collect func() Snap) {
	f := w.flags.Swap(0)
	take := func(s *Snap) {
		runtime.ReadMemStats(&w.ms)
		before := w.ms.Mallocs
		*s = collect()
		s.Threads = threads() // its allocations are the collect's
		runtime.ReadMemStats(&w.ms)
		s.Mallocs = w.ms.Mallocs
		s.CollectMallocs = w.ms.Mallocs - before
		s.T = time.Now().UnixNano()
	}
	if f&flagStart != 0 && w.st.A == nil {
		if w.profile != "" {
			if pf, err := os.Create(w.profile); err == nil && pprof.StartCPUProfile(pf) == nil {
				w.profF = pf
			}
		}
		take(&w.a)
		w.st.A = &w.a
	}
	if f&flagEnd != 0 && w.st.A != nil && w.st.B == nil {
		take(&w.b)
		w.st.B = &w.b
		w.stopProfile()
	}
}

func (w *Window) stopProfile() {
	if w.profF != nil {
		pprof.StopCPUProfile()
		w.profF.Close()
		w.profF = nil
	}
}

// Ready prints the READY line the harness waits for.
func Ready(format string, args ...any) {
	fmt.Printf("READY "+format+"\n", args...)
}

// Report prints the DUTSTATS line.
func (w *Window) Report() {
	w.stopProfile()
	b, _ := json.Marshal(w.st)
	fmt.Printf("DUTSTATS %s\n", b)
}
