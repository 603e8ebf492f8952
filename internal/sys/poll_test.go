//go:build linux

package sys_test

import (
	"runtime"
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
