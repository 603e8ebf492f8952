//go:build linux

package afxdp_test

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/internal/testutils"
)

// TestPerPacketPathAllocs checks that receiving and recycling, and
// allocating, transmitting and completing, allocate nothing, while frames
// flow. The allocation count is process-wide, so the peer's transmit loop
// running meanwhile is measured too.
func TestPerPacketPathAllocs(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	s := openHost(t, v, 0, nil)
	p := openPeerTX(t, v, nil)
	frame := testFrame(v, 1, 4000, 60)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		burst := make([][]byte, 64)
		for i := range burst {
			burst[i] = frame
		}
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = p.TransmitBytes(burst)
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	descs := make([]unix.XDPDesc, 64)
	var received int
	allocs := testing.AllocsPerRun(20000, func() {
		n, _ := s.Receive(descs)
		received += n
		_ = s.Release(descs[:n])
		if n == 0 {
			runtime.Gosched() // AllocsPerRun runs with GOMAXPROCS=1: let the sender in
		}
	})
	if allocs != 0 {
		t.Errorf("receive/release: %v allocations per batch, want 0", allocs)
	}
	if received == 0 {
		t.Fatal("no frames flowed during the measurement")
	}
	t.Logf("received %d frames during the measurement", received)

	// Host transmit path: alloc, write, transmit, complete.
	u := s.UMEM()
	tx := make([]unix.XDPDesc, 32)
	allocs = testing.AllocsPerRun(2000, func() {
		n := 0
		for ; n < len(tx); n++ {
			addr, ok := u.Alloc()
			if !ok {
				break
			}
			tx[n] = unix.XDPDesc{Addr: addr, Len: uint32(copy(u.Frame(addr), frame))}
		}
		k, _ := s.Transmit(tx[:n])
		for _, d := range tx[k:n] {
			_ = u.Free(d.Addr)
		}
		s.Complete()
	})
	if allocs != 0 {
		t.Errorf("alloc/transmit/complete: %v allocations per batch, want 0", allocs)
	}
	_ = afxdp.ErrClosed
}

// TestWaitAllocs: waiting, with frames there or not, allocates nothing, so
// a worker that sleeps when idle stays allocation-free.
func TestWaitAllocs(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	s := openHost(t, v, 0, nil)
	allocs := testing.AllocsPerRun(50, func() { _ = s.Wait(time.Microsecond) })
	if allocs != 0 {
		t.Errorf("Wait allocates %.2f times per call", allocs)
	}
}
