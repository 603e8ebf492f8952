//go:build linux

package afxdp_test

import (
	"bytes"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/internal/testframes"
	"github.com/xdpkit/xdpkit/umem"
)

func newMemory(t testing.TB, cfg *afxdp.Config) (*afxdp.Socket, *afxdp.MemoryKernel) {
	t.Helper()
	s, k, err := afxdp.NewMemory(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, k
}

// TestMemoryRoundTrip: frames delivered by the memory kernel are received
// byte for byte, transmitted back, seen by the kernel's Transmitted,
// completed, and every frame is free again at the end; the socket's
// Stats carry the kernel's drops.
func TestMemoryRoundTrip(t *testing.T) {
	s, k := newMemory(t, &afxdp.Config{UMEMOptions: &umem.Options{FrameCount: 256, FillRingSize: 128, CompletionRingSize: 128}, RXRingSize: 64, TXRingSize: 64})
	if s.Interface() != "memory" || s.ZeroCopy() || s.Program() != nil || !s.UMEM().Memory() {
		t.Errorf("memory socket: interface %q, zero-copy %v, program %v, memory UMEM %v", s.Interface(), s.ZeroCopy(), s.Program(), s.UMEM().Memory())
	}
	frames := make([][]byte, 40)
	for i := range frames {
		frames[i] = append(bytes.Clone(testframes.UDP4), byte(i))
	}
	if n := k.Deliver(frames...); n != len(frames) {
		t.Fatalf("Deliver: %d of %d", n, len(frames))
	}
	descs := make([]afxdp.Desc, 64)
	n, err := s.Receive(descs)
	if err != nil || n != len(frames) {
		t.Fatalf("Receive: %d, %v; want %d", n, err, len(frames))
	}
	for i, d := range descs[:n] {
		if got := s.Frame(d); !bytes.Equal(got, frames[i]) {
			t.Fatalf("frame %d: %x, want %x", i, got, frames[i])
		}
		if frame, off := s.FrameHeadroom(d); frame == nil || off < 256 {
			t.Errorf("frame %d: headroom %d, want at least XDP_PACKET_HEADROOM", i, off)
		}
	}
	if sent, err := s.Transmit(descs[:n]); sent != n || err != nil {
		t.Fatalf("Transmit: %d, %v", sent, err)
	}
	var seen int
	if got := k.Transmitted(func(f []byte) {
		if !bytes.Equal(f, frames[seen]) {
			t.Errorf("transmitted frame %d: %x", seen, f)
		}
		seen++
	}); got != n || seen != n {
		t.Fatalf("Transmitted: %d (%d seen), want %d", got, seen, n)
	}
	if c := s.Complete(); c != n {
		t.Errorf("Complete: %d, want %d", c, n)
	}
	// Too long, and more than the fill ring holds.
	big := make([]byte, 4096)
	if n := k.Deliver(big); n != 0 {
		t.Errorf("Deliver of a %d-byte frame: %d", len(big), n)
	}
	many := make([][]byte, 200)
	for i := range many {
		many[i] = testframes.UDP4
	}
	if n := k.Deliver(many...); n != 64 {
		t.Errorf("Deliver of 200 frames onto a 64-entry RX ring: %d", n)
	}
	ks := k.Stats()
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if ks.Delivered != 104 || ks.Transmitted != 40 || ks.TooLong != 1 || ks.RXRingFull+ks.FillEmpty != 136 ||
		st.RXDropped != 1 || st.RXRingFull != ks.RXRingFull || st.RXFillRingEmptyDescs != ks.FillEmpty {
		t.Errorf("kernel stats %+v, socket stats %+v", ks, st)
	}
	for {
		n, _ := s.Receive(descs)
		if n == 0 {
			break
		}
		if err := s.Release(descs[:n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if c := s.UMEM().Counts(); c.Free != c.Total {
		t.Errorf("after Close: %+v, want every frame free", c)
	}
	if n := k.Deliver(testframes.UDP4); n != 0 || k.DeliverN(8, 60) != 0 || k.Transmitted(nil) != 0 {
		t.Errorf("the kernel side works after Close")
	}
	k.Fill(testframes.UDP4) // nothing to write into any more: a no-op, not a fault
}

// TestMemoryWaits: Wait and WaitPoll time out on an empty ring, return
// when another goroutine delivers, and end with ErrClosed on Close.
func TestMemoryWaits(t *testing.T) {
	for _, v := range []struct {
		name       string
		cfg        *afxdp.Config
		gomaxprocs int
	}{
		{"", nil, 0},
		// WaitPoll and WaitAny keep the goroutine's P in their first
		// slice: the goroutine that delivers runs all the same.
		{"/GOMAXPROCS=1", nil, 1},
		{"/PollYields", &afxdp.Config{PollYields: true}, 0},
		{"/PollYields/GOMAXPROCS=1", &afxdp.Config{PollYields: true}, 1},
	} {
		for _, tc := range waitKinds {
			t.Run(tc.name+v.name, func(t *testing.T) {
				if v.gomaxprocs > 0 {
					defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(v.gomaxprocs))
				}
				testMemoryWait(t, v.cfg, tc.wait)
			})
		}
	}
}

// testMemoryWait is TestMemoryWaits for one way to wait on a memory
// socket made with cfg.
func testMemoryWait(t *testing.T, cfg *afxdp.Config, wait func(*afxdp.Socket, time.Duration) error) {
	s, k := newMemory(t, cfg)
	if err := wait(s, 20*time.Millisecond); !errors.Is(err, afxdp.ErrTimeout) {
		t.Fatalf("on an empty ring: %v, want ErrTimeout", err)
	}
	descs := make([]afxdp.Desc, 8)
	for round := range 3 {
		go func() {
			time.Sleep(20 * time.Millisecond)
			k.Deliver(testframes.UDP4)
		}()
		start := time.Now()
		if err := wait(s, 5*time.Second); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("round %d: woken after %v", round, d)
		}
		if n, _ := s.Receive(descs); n != 1 {
			t.Fatalf("round %d: received %d, want 1", round, n)
		}
		_ = s.Release(descs[:1])
	}
	// The eventfd was emptied: with the ring empty it waits again.
	if err := wait(s, 20*time.Millisecond); !errors.Is(err, afxdp.ErrTimeout) {
		t.Fatalf("after the deliveries: %v, want ErrTimeout", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- wait(s, -1) }()
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, afxdp.ErrClosed) {
			t.Errorf("after Close: %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still waiting 5s after Close")
	}
}

// TestMemoryConfig: what needs a kernel is refused with ErrInvalidConfig;
// two memory sockets share a memory UMEM, and one sends the other's frame.
func TestMemoryConfig(t *testing.T) {
	for name, cfg := range map[string]*afxdp.Config{
		"multi-buffer": {MultiBuffer: true},
		"zero-copy":    {Bind: afxdp.BindZeroCopy},
		"busy-poll":    {BusyPoll: afxdp.BusyPoll{Prefer: true}},
		"tx-budget":    {TXBudget: 64},
	} {
		if _, _, err := afxdp.NewMemory(cfg); !errors.Is(err, afxdp.ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
	u, err := umem.NewMemory(&umem.Options{FrameCount: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	a, ka := newMemory(t, &afxdp.Config{UMEM: u})
	b, kb := newMemory(t, &afxdp.Config{UMEM: u})
	if ka.Deliver(testframes.UDP4) != 1 || kb.Deliver(testframes.UDP4) != 1 {
		t.Fatal("Deliver on two sockets of one UMEM")
	}
	descs := make([]afxdp.Desc, 4)
	if n, _ := a.Receive(descs); n != 1 {
		t.Fatalf("socket a: %d frames", n)
	}
	// A frame of a, sent from b: one pool, so allowed.
	if sent, err := b.Transmit(descs[:1]); sent != 1 || err != nil {
		t.Fatalf("b.Transmit(a's frame): %d, %v", sent, err)
	}
	if kb.Transmitted(nil) != 1 || b.Complete() != 1 {
		t.Fatal("b did not complete a's frame")
	}
}

// TestMemoryAllocs: the benchmark cycle — DeliverN, Receive, Release —
// allocates nothing.
func TestMemoryAllocs(t *testing.T) {
	s, k := newMemory(t, nil)
	k.Fill(testframes.UDP4)
	descs := make([]afxdp.Desc, 64)
	allocs := testing.AllocsPerRun(100, func() {
		k.DeliverN(64, len(testframes.UDP4))
		n, _ := s.Receive(descs)
		_ = s.Release(descs[:n])
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per cycle", allocs)
	}
	if n := k.DeliverN(1, 1<<20); n != 0 {
		t.Errorf("DeliverN of frames longer than a frame: %d", n)
	}
}

// TestMemoryConcurrent: a kernel goroutine delivers while the socket's
// goroutine receives, waits and releases; every frame arrives (run with
// -race).
func TestMemoryConcurrent(t *testing.T) {
	s, k := newMemory(t, nil)
	const total = 20000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sent := 0
		for deadline := time.Now().Add(10 * time.Second); sent < total && time.Now().Before(deadline); {
			sent += k.Deliver(testframes.UDP4)
		}
	}()
	descs := make([]afxdp.Desc, 64)
	got := 0
	for deadline := time.Now().Add(10 * time.Second); got < total && time.Now().Before(deadline); {
		n, err := s.Receive(descs)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			_ = s.WaitPoll(10 * time.Millisecond)
			continue
		}
		for _, d := range descs[:n] {
			if !bytes.Equal(s.Frame(d), testframes.UDP4) {
				t.Fatalf("frame %x", s.Frame(d))
			}
		}
		got += n
		if err := s.Release(descs[:n]); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if got != total {
		t.Errorf("received %d of %d", got, total)
	}
}

// TestRecycle: Recycle puts frames straight back on the fill ring (the
// kernel can fill them again at once), Release on the free list (Alloc
// finds them); both refuse frames not held; after Close, Recycle is
// Release.
func TestRecycle(t *testing.T) {
	s, k := newMemory(t, &afxdp.Config{UMEMOptions: &umem.Options{FrameCount: 64, FillRingSize: 32, CompletionRingSize: 32}, RXRingSize: 32, TXRingSize: 32})
	descs := make([]afxdp.Desc, 32)
	receive := func(n int) []afxdp.Desc {
		t.Helper()
		frames := make([][]byte, n)
		for i := range frames {
			frames[i] = testframes.UDP4
		}
		if got := k.Deliver(frames...); got != n {
			t.Fatalf("Deliver: %d of %d", got, n)
		}
		got, err := s.Receive(descs)
		if err != nil || got != n {
			t.Fatalf("Receive: %d, %v", got, err)
		}
		return descs[:got]
	}
	c0 := s.UMEM().Counts()
	d := append([]afxdp.Desc(nil), receive(16)...)
	// Receive refilled the fill ring; the kernel takes 16 of those frames
	// again, which makes room there.
	for range 16 {
		k.Deliver(testframes.UDP4)
	}
	c1 := s.UMEM().Counts()
	if err := s.Recycle(d); err != nil {
		t.Fatal(err)
	}
	c2 := s.UMEM().Counts()
	if c2.Fill != c1.Fill+16 || c2.Free != c1.Free || c2.App != 0 {
		t.Errorf("Recycle: counts %+v -> %+v, want the 16 frames on the fill ring", c1, c2)
	}
	if err := s.Recycle(d[:1]); !errors.Is(err, umem.ErrFrameState) {
		t.Errorf("Recycle of a frame not held: %v, want ErrFrameState", err)
	}
	n, err := s.Receive(descs) // the 16 delivered above
	if err != nil || n != 16 {
		t.Fatalf("Receive: %d, %v; want 16", n, err)
	}
	d = descs[:n]
	c3 := s.UMEM().Counts()
	if err := s.Release(d); err != nil {
		t.Fatal(err)
	}
	if c := s.UMEM().Counts(); c.Free != c3.Free+16 || c.Fill != c3.Fill || c.App != 0 || c.Total != c0.Total {
		t.Errorf("Release: counts %+v -> %+v, want the 16 frames free", c3, c)
	}
	k.Deliver(testframes.UDP4, testframes.UDP4, testframes.UDP4, testframes.UDP4)
	n, _ = s.Receive(descs)
	held := append([]afxdp.Desc(nil), descs[:n]...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Recycle(held); err != nil {
		t.Errorf("Recycle after Close: %v", err)
	}
	if c := s.UMEM().Counts(); c.Free != c.Total {
		t.Errorf("after Close and Recycle: %+v, want every frame free", c)
	}
}

// TestDiscard: Discard takes delivered frames in batches no longer than
// its scratch, counts their bytes, leaves none with the application and
// puts them back on the fill ring, so that many more frames than the
// UMEM holds go through; it allocates nothing and says ErrClosed after
// Close.
func TestDiscard(t *testing.T) {
	s, k := newMemory(t, &afxdp.Config{UMEMOptions: &umem.Options{FrameCount: 64, FillRingSize: 64, CompletionRingSize: 64}, RXRingSize: 64, TXRingSize: 64})
	descs := make([]afxdp.Desc, 16)
	var total int
	for round := range 20 { // 800 frames through 64
		if n := k.DeliverN(40, 60); n != 40 {
			t.Fatalf("round %d: DeliverN delivered %d of 40: the discarded frames did not come back", round, n)
		}
		for _, want := range []int{16, 16, 8, 0} {
			n, bytes, err := s.Discard(descs)
			if n != want || bytes != uint64(60*want) || err != nil {
				t.Fatalf("round %d: Discard = %d, %d bytes, %v; want %d, %d bytes", round, n, bytes, err, want, 60*want)
			}
			total += n
		}
		if c := s.UMEM().Counts(); c.App != 0 || c.TX != 0 {
			t.Fatalf("round %d: counts %+v after Discard, want no frame held", round, c)
		}
	}
	if st, err := s.Stats(); err != nil || st.RXPackets != uint64(total) || st.RXBytes != uint64(60*total) {
		t.Errorf("Stats: %+v, %v; want %d packets of 60 bytes", st, err, total)
	}
	if err := s.UMEM().Check(); err != nil {
		t.Errorf("UMEM check: %v", err)
	}
	if allocs := testing.AllocsPerRun(50, func() {
		k.DeliverN(16, 60)
		_, _, _ = s.Discard(descs)
	}); allocs != 0 {
		t.Errorf("DeliverN + Discard allocate %.2f times", allocs)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n, _, err := s.Discard(descs); n != 0 || !errors.Is(err, afxdp.ErrClosed) {
		t.Errorf("Discard after Close: %d, %v; want ErrClosed", n, err)
	}
}

// TestTXBytesStat: TXBytes counts the bytes of the descriptors put on
// the TX ring, and only those: not the ones a full ring had no room for,
// nor those from a refused descriptor on.
func TestTXBytesStat(t *testing.T) {
	s, k := newMemory(t, &afxdp.Config{UMEMOptions: &umem.Options{FrameCount: 256, FillRingSize: 128, CompletionRingSize: 128}, RXRingSize: 128, TXRingSize: 64})
	frames := make([][]byte, 100)
	for i := range frames {
		frames[i] = append(bytes.Clone(testframes.UDP4), make([]byte, i)...)
	}
	if n := k.Deliver(frames...); n != len(frames) {
		t.Fatalf("Deliver: %d of %d", n, len(frames))
	}
	descs := make([]afxdp.Desc, len(frames))
	if n, err := s.Receive(descs); n != len(frames) || err != nil {
		t.Fatalf("Receive: %d, %v", n, err)
	}
	sum := func(ds []afxdp.Desc) (n uint64) {
		for _, d := range ds {
			n += uint64(d.Len)
		}
		return n
	}
	txBytes := func() uint64 {
		st, err := s.Stats()
		if err != nil {
			t.Fatal(err)
		}
		return st.TXBytes
	}
	// 100 onto a ring of 64: 64 go.
	if sent, err := s.Transmit(descs); sent != 64 || err != nil {
		t.Fatalf("Transmit of 100 onto a 64-entry ring: %d, %v", sent, err)
	}
	if got, want := txBytes(), sum(descs[:64]); got != want {
		t.Errorf("TXBytes after a full ring: %d, want %d", got, want)
	}
	if n := k.Transmitted(nil); n != 64 {
		t.Fatalf("Transmitted: %d", n)
	}
	s.Complete()
	// A zero-length descriptor stops the batch: the 6 before it go.
	rest := descs[64:]
	bad := rest[6]
	rest[6].Len = 0
	if sent, err := s.Transmit(rest); sent != 6 || !errors.Is(err, afxdp.ErrInvalidDescriptor) {
		t.Fatalf("Transmit with a zero-length descriptor: %d, %v", sent, err)
	}
	if got, want := txBytes(), sum(descs[:70]); got != want {
		t.Errorf("TXBytes after a refused descriptor: %d, want %d", got, want)
	}
	rest[6] = bad
	if err := s.Release(rest[6:]); err != nil {
		t.Fatal(err)
	}
	k.Transmitted(nil)
	s.Complete()
}
