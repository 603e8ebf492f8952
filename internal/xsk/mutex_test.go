//go:build linux

package xsk

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestPoolMutex checks mutual exclusion under contention: goroutines on
// every CPU add to a plain counter under the lock, and none of the adds
// is lost. Under the race detector the unlock is atomic and the test
// also checks that the lock orders what it guards.
func TestPoolMutex(t *testing.T) {
	var m poolMutex
	var counter int
	workers := max(4, 2*runtime.GOMAXPROCS(0))
	const adds = 20000
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range adds {
				m.Lock()
				counter++
				m.Unlock()
			}
		}()
	}
	wg.Wait()
	if want := workers * adds; counter != want {
		t.Fatalf("counter = %d after %d locked adds: the lock let two holders in", counter, want)
	}
}

// TestPoolMutexLongHold checks that a waiter gets the lock once a holder
// that kept it past the spins and yields (a transmit kick, a preempted
// thread) gives it back, and not before.
func TestPoolMutexLongHold(t *testing.T) {
	var m poolMutex
	m.Lock()
	got := make(chan time.Time, 1)
	go func() {
		m.Lock()
		got <- time.Now()
		m.Unlock()
	}()
	const hold = 20 * time.Millisecond
	time.Sleep(hold)
	select {
	case <-got:
		t.Fatal("a second Lock returned while the lock was held")
	default:
	}
	released := time.Now()
	m.Unlock()
	select {
	case at := <-got:
		if wait := at.Sub(released); wait > 500*time.Millisecond {
			t.Errorf("the waiter took the lock %v after it was given back", wait)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter never got the lock")
	}
}
