//go:build linux

package sys_test

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/sys"
)

// TestPollHeld: PollHeld times out, sees a readable fd, and, although
// the goroutine keeps its P while it sleeps, the runtime still reaches
// it: with GOMAXPROCS=1 another goroutine runs and a GC completes long
// before the poll's timeout (preemption ends ppoll with EINTR and
// PollHeld yields).
func TestPollHeld(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	fds := []unix.PollFd{{Fd: int32(p[0]), Events: unix.POLLIN}}

	if n, err := sys.PollHeld(fds, 0); n != 0 || err != nil {
		t.Fatalf("PollHeld(0) on an empty pipe: %d, %v", n, err)
	}
	// Sysmon signals a goroutine that seems to run for 10 ms: a timeout
	// restarted after every EINTR would never end.
	start := time.Now()
	if n, err := sys.PollHeld(fds, 30*time.Millisecond); n != 0 || err != nil {
		t.Fatalf("PollHeld(30ms) on an empty pipe: %d, %v", n, err)
	}
	if d := time.Since(start); d < 25*time.Millisecond || d > 2*time.Second {
		t.Errorf("PollHeld(30ms) took %v", d)
	}
	if _, err := sys.PollHeld(nil, 0); err == nil {
		t.Error("PollHeld with no fds: no error")
	}

	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const timeout = 5 * time.Second
	started := make(chan time.Time)
	type result struct {
		n   int
		err error
		d   time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		started <- start
		n, err := sys.PollHeld(fds, timeout)
		done <- result{n, err, time.Since(start)}
	}()
	pollStart := <-started
	// Here the poller holds the only P (the channel hand-off ran it on
	// this one's P): this goroutine runs again only once the runtime has
	// preempted it.
	if d := time.Since(pollStart); d > timeout/5 {
		t.Errorf("another goroutine ran %v after PollHeld began", d)
	}
	start = time.Now()
	runtime.GC()
	if d := time.Since(start); d > timeout/5 {
		t.Errorf("a GC during PollHeld took %v", d)
	}
	if _, err := unix.Write(p[1], []byte{1}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.n != 1 || r.err != nil {
			t.Errorf("PollHeld with a byte written: %d, %v; want 1", r.n, r.err)
		}
		if r.d > timeout/2 {
			t.Errorf("PollHeld returned after %v, not at the write", r.d)
		}
	case <-time.After(2 * timeout):
		t.Fatal("PollHeld still blocked")
	}
}

// threadSlack reads the timer slack of thread tid, or -1 if it cannot
// (/proc/TID/timerslack_ns: the file is not under /proc/self/task).
func threadSlack(tid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/timerslack_ns", tid))
	if err != nil {
		return -1
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return v
}

// TestSleepSlack: SleepHeld and Sleep run with the thread's timer slack
// at SleepSlack, seen from another goroutine while they sleep, and put
// the thread's slack back after, so that a 20 µs coalescing sleep is not
// a 70 µs one and the thread keeps the program's slack otherwise.
func TestSleepSlack(t *testing.T) {
	// A held sleep keeps its P: the goroutine that looks needs another.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0))))
	for _, tc := range []struct {
		name  string
		sleep func(time.Duration)
	}{{"SleepHeld", sys.SleepHeld}, {"Sleep", sys.Sleep}} {
		t.Run(tc.name, func(t *testing.T) {
			type sleeper struct{ tid, before int }
			ready := make(chan sleeper)
			done := make(chan int, 1)
			var stop atomic.Bool
			go func() {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				tid := unix.Gettid()
				ready <- sleeper{tid, threadSlack(tid)}
				// The runtime's preemption ends a held sleep early (EINTR):
				// sleep again until the other goroutine has looked.
				for end := time.Now().Add(2 * time.Second); !stop.Load() && time.Now().Before(end); {
					tc.sleep(50 * time.Millisecond)
				}
				done <- threadSlack(tid)
			}()
			s := <-ready
			if s.before < 0 {
				t.Fatalf("cannot read /proc/%d/timerslack_ns", s.tid)
			}
			if s.before <= sys.SleepSlack {
				t.Skipf("the thread's timer slack is already %d ns", s.before)
			}
			seen := -1
			deadline := time.Now().Add(250 * time.Millisecond)
			for seen != sys.SleepSlack && time.Now().Before(deadline) {
				seen = threadSlack(s.tid)
				time.Sleep(time.Millisecond)
			}
			stop.Store(true)
			if seen != sys.SleepSlack {
				t.Errorf("timer slack during the sleep %d ns; want %d", seen, sys.SleepSlack)
			}
			select {
			case after := <-done:
				if after != s.before {
					t.Errorf("timer slack after the sleep %d ns; want %d as before", after, s.before)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the sleep did not end")
			}
		})
	}
	if n := testing.AllocsPerRun(50, func() { sys.SleepHeld(time.Microsecond) }); n != 0 {
		t.Errorf("SleepHeld allocates %v times", n)
	}
}

// BenchmarkSleepHeld reports how long a 20 µs SleepHeld lasts: about
// 20 µs plus the wake-up, where a plain nanosleep (nanosleep-default-slack)
// lasts 20 µs plus the thread's timer slack (50 µs by default).
func BenchmarkSleepHeld(b *testing.B) {
	const d = 20 * time.Microsecond
	b.Run("SleepHeld", func(b *testing.B) {
		for b.Loop() {
			sys.SleepHeld(d)
		}
	})
	b.Run("nanosleep-default-slack", func(b *testing.B) {
		ts := unix.NsecToTimespec(int64(d))
		for b.Loop() {
			_ = unix.Nanosleep(&ts, nil)
		}
	})
}
