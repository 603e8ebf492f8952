//go:build linux

package umem_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/xdpkit/xdpkit/umem"
)

func TestPools(t *testing.T) {
	u := newUMEM(t, &umem.Options{FrameCount: 256, FillRingSize: 64, CompletionRingSize: 64, Checked: true})
	var pools []*umem.Pool
	for range 3 {
		p, err := u.NewPool(64)
		if err != nil {
			t.Fatal(err)
		}
		pools = append(pools, p)
	}
	if _, err := u.NewPool(65); !errors.Is(err, umem.ErrTooSmall) {
		t.Fatalf("pool larger than the main pool's free frames: %v", err)
	}
	if c := u.Pool.Counts(); c.Total != 64 || c.Free != 64 {
		t.Fatalf("main pool after three pools: %+v", c)
	}
	if c := u.Counts(); c != (umem.Counts{Total: 256, Free: 256}) {
		t.Fatalf("UMEM counts %+v", c)
	}
	// Each pool on its own goroutine, at once: no shared state (run with -race).
	var wg sync.WaitGroup
	for _, p := range append(pools, u.Pool) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			held := make([]uint64, 0, 64)
			for range 1000 {
				for {
					a, ok := p.Alloc()
					if !ok {
						break
					}
					held = append(held, a)
				}
				for _, a := range held {
					if err := p.Free(a); err != nil {
						t.Error(err)
						return
					}
				}
				held = held[:0]
			}
		}()
	}
	wg.Wait()
	if err := u.Check(); err != nil {
		t.Fatal(err)
	}
	// A frame of another pool freed twice is caught there.
	a, _ := pools[0].Alloc()
	_ = pools[0].Free(a)
	if err := pools[0].Free(a); !errors.Is(err, umem.ErrFrameState) {
		t.Fatalf("double free in a pool: %v", err)
	}
	if err := u.Check(); !errors.Is(err, umem.ErrFrameState) {
		t.Fatalf("UMEM Check after a pool's violation: %v", err)
	}
}
