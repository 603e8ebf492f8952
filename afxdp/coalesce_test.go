//go:build linux

package afxdp_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/internal/testframes"
)

// coalesceKinds are waitKinds and WaitContext: every wait coalesces.
var coalesceKinds = append(waitKinds[:len(waitKinds):len(waitKinds)], struct {
	name string
	wait func(*afxdp.Socket, time.Duration) error
}{"WaitContext", func(s *afxdp.Socket, d time.Duration) error {
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if d >= 0 {
		ctx, cancel = context.WithTimeout(ctx, d)
	}
	defer cancel()
	if err := s.WaitContext(ctx); errors.Is(err, context.DeadlineExceeded) {
		return afxdp.ErrTimeout
	} else {
		return err
	}
}})

// receiveAll receives and releases what is on s's RX ring, and returns
// how many frames it took.
func receiveAll(t *testing.T, s *afxdp.Socket) int {
	t.Helper()
	descs := make([]afxdp.Desc, 64)
	total := 0
	for range 1000 {
		n, err := s.Receive(descs)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return total
		}
		total += n
		if err := s.Release(descs[:n]); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("the RX ring did not run empty")
	return total
}

func burst(n int) [][]byte {
	fs := make([][]byte, n)
	for i := range fs {
		fs[i] = testframes.UDP4
	}
	return fs
}

// TestCoalesce: with Config.Coalesce, a wait after a burst of
// CoalesceBurst or more frames first sleeps (counted in Coalesced, not
// Waits), then waits for the kernel as usual; a wait after fewer frames,
// or with frames waiting, does not sleep; a timeout shorter than the
// sleep ends the wait with ErrTimeout; and frames that come in bursts
// while the loop coalesces all arrive.
func TestCoalesce(t *testing.T) {
	for _, yields := range []bool{false, true} {
		for _, tc := range coalesceKinds {
			name := tc.name
			if yields {
				name += "/PollYields" // the sleep goes through the scheduler
			}
			t.Run(name, func(t *testing.T) { testCoalesce(t, tc.wait, yields) })
		}
	}
}

func testCoalesce(t *testing.T, wait func(*afxdp.Socket, time.Duration) error, yields bool) {
	s, k := newMemory(t, &afxdp.Config{Coalesce: afxdp.MaxCoalesce, PollYields: yields})
	stats := func() afxdp.Stats {
		st, err := s.Stats()
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	// A burst, then nothing for 50 ms: the sleep, then a wait that
	// the next frame ends.
	if n := k.Deliver(burst(afxdp.CoalesceBurst)...); n != afxdp.CoalesceBurst {
		t.Fatalf("delivered %d", n)
	}
	receiveAll(t, s)
	before := stats()
	go func() {
		time.Sleep(50 * time.Millisecond)
		k.Deliver(testframes.UDP4)
	}()
	if err := wait(s, 5*time.Second); err != nil {
		t.Fatalf("after a burst: %v", err)
	}
	after := stats()
	if after.Coalesced != before.Coalesced+1 || after.Waits != before.Waits+1 {
		t.Errorf("after a burst: coalesced %d, waits %d; want %d and %d",
			after.Coalesced, after.Waits, before.Coalesced+1, before.Waits+1)
	}
	if n := receiveAll(t, s); n != 1 {
		t.Fatalf("received %d after the burst's wait, want 1", n)
	}

	// Light traffic: a wait after one frame does not sleep first.
	before = stats()
	if err := wait(s, 20*time.Millisecond); !errors.Is(err, afxdp.ErrTimeout) {
		t.Fatalf("after one frame: %v, want ErrTimeout", err)
	}
	if after := stats(); after.Coalesced != before.Coalesced || after.Waits != before.Waits+1 {
		t.Errorf("after one frame: coalesced %d, waits %d; want %d and %d",
			after.Coalesced, after.Waits, before.Coalesced, before.Waits+1)
	}

	// Frames waiting: no sleep, and the burst still counts for
	// the wait after them.
	k.Deliver(burst(afxdp.CoalesceBurst)...)
	receiveAll(t, s)
	k.Deliver(testframes.UDP4)
	before = stats()
	if err := wait(s, 5*time.Second); err != nil {
		t.Fatalf("with a frame waiting: %v", err)
	}
	if after := stats(); after != before {
		t.Errorf("with a frame waiting the counters moved: %+v, were %+v", after, before)
	}
	receiveAll(t, s)

	// A timeout shorter than the sleep: ErrTimeout, after the sleep
	// alone.
	before = stats()
	if err := wait(s, afxdp.MaxCoalesce/4); !errors.Is(err, afxdp.ErrTimeout) {
		t.Fatalf("timeout shorter than Coalesce: %v, want ErrTimeout", err)
	}
	if after := stats(); after.Coalesced != before.Coalesced+1 || after.Waits != before.Waits {
		t.Errorf("timeout shorter than Coalesce: coalesced %d, waits %d; want %d and %d",
			after.Coalesced, after.Waits, before.Coalesced+1, before.Waits)
	}

	// Bursts every 200 µs for 100 ms while the loop coalesces:
	// every frame arrives (the RX ring holds what comes in a sleep).
	var wg sync.WaitGroup
	delivered := 0
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for end := time.Now().Add(100 * time.Millisecond); time.Now().Before(end); {
			delivered += k.Deliver(burst(40)...)
			time.Sleep(200 * time.Microsecond)
		}
		close(stop)
	}()
	before = stats()
	received := 0
loop:
	for range 100000 {
		received += receiveAll(t, s)
		select {
		case <-stop:
			break loop
		default:
		}
		if err := wait(s, 100*time.Millisecond); err != nil && !errors.Is(err, afxdp.ErrTimeout) {
			t.Fatal(err)
		}
	}
	wg.Wait()
	received += receiveAll(t, s)
	after = stats()
	if received != delivered || delivered == 0 {
		t.Errorf("bursts: received %d of %d delivered", received, delivered)
	}
	if ks := k.Stats(); ks.RXRingFull != 0 || ks.FillEmpty != 0 {
		t.Errorf("bursts: the memory kernel dropped frames: %+v", ks)
	}
	if after.Coalesced == before.Coalesced {
		t.Errorf("bursts: no wait coalesced (%+v)", after)
	}
	t.Logf("bursts: %d frames, %d waits coalesced, %d waited", received, after.Coalesced-before.Coalesced, after.Waits-before.Waits)
}

// TestCoalesceClose: Close during the sleep ends the wait with ErrClosed.
func TestCoalesceClose(t *testing.T) {
	for _, tc := range coalesceKinds {
		t.Run(tc.name, func(t *testing.T) {
			s, k := newMemory(t, &afxdp.Config{Coalesce: afxdp.MaxCoalesce})
			k.Deliver(burst(afxdp.CoalesceBurst)...)
			receiveAll(t, s)
			errc := make(chan error, 1)
			go func() { errc <- tc.wait(s, -1) }()
			time.Sleep(afxdp.MaxCoalesce / 2)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-errc:
				if !errors.Is(err, afxdp.ErrClosed) {
					t.Fatalf("after Close: %v, want ErrClosed", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("still waiting 5s after Close")
			}
		})
	}
}

// TestCoalesceConfig: Coalesce is between 0 and MaxCoalesce.
func TestCoalesceConfig(t *testing.T) {
	for _, d := range []time.Duration{-1, afxdp.MaxCoalesce + 1, time.Second} {
		if err := (&afxdp.Config{Coalesce: d}).Validate(); !errors.Is(err, afxdp.ErrInvalidConfig) {
			t.Errorf("Coalesce %v: %v, want ErrInvalidConfig", d, err)
		}
	}
	for _, d := range []time.Duration{0, time.Microsecond, afxdp.MaxCoalesce} {
		if err := (&afxdp.Config{Coalesce: d}).Validate(); err != nil {
			t.Errorf("Coalesce %v: %v", d, err)
		}
	}
}
