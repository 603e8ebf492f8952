//go:build linux

package afxdp_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/redirect"
	"github.com/xdpkit/xdpkit/umem"
)

// checkAllFree checks u's accounting and that every frame is back on a
// free list: nothing held, nothing left in a ring of a closed socket.
func checkAllFree(t testing.TB, u *umem.UMEM) {
	t.Helper()
	if err := u.Check(); err != nil {
		t.Errorf("accounting: %v", err)
	}
	if c := u.Counts(); c.Free != c.Total {
		t.Errorf("counts %+v: want every frame free", c)
	}
}

// TestCloseRace closes a socket from one goroutine while others are in
// every other method, hundreds of times (run it with -race). Nothing may
// fault, every call after Close returns ErrClosed or nothing, and at the
// end every frame of the UMEM, which outlives the sockets, is back free.
func TestCloseRace(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	prog, err := redirect.Attach(v.HostIndex, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	u, err := umem.New(&umem.Options{FrameCount: 512, FrameSize: 2048, FillRingSize: 256, CompletionRingSize: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	peer := v.OpenPeerPacketSocket(t)
	frame := testFrame(v, 1, 1000, 128)

	// The peer floods while the sockets come and go.
	stop := make(chan struct{})
	var flood sync.WaitGroup
	flood.Add(1)
	go func() {
		defer flood.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for range 16 {
				_ = peer.Send(frame)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}()
	defer func() { close(stop); flood.Wait() }()

	rounds := 300
	if testing.Short() {
		rounds = 60
	}
	var calls atomic.Int64
	for round := range rounds {
		s, err := afxdp.OpenIndex(v.HostIndex, 0, &afxdp.Config{UMEM: u, RXRingSize: 256, TXRingSize: 256, Steering: prog})
		if err != nil {
			t.Fatalf("round %d: open: %v", round, err)
		}
		closed := make(chan struct{})
		var wg sync.WaitGroup
		// Each worker loops on one method until the socket is closed,
		// and gives back whatever frames it holds when it stops.
		worker := func(name string, fn func(held *[]unix.XDPDesc) error) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var held []unix.XDPDesc
				defer func() {
					if err := s.Release(held); err != nil {
						t.Errorf("%s: release after close: %v", name, err)
					}
				}()
				for i := 0; i < 100000; i++ {
					calls.Add(1)
					err := fn(&held)
					if errors.Is(err, afxdp.ErrClosed) {
						return
					}
					if err != nil && !errors.Is(err, afxdp.ErrTimeout) && !errors.Is(err, afxdp.ErrTXStalled) {
						t.Errorf("round %d: %s: %v", round, name, err)
						return
					}
					select {
					case <-closed:
						if i%8 == 7 {
							return
						}
					default:
					}
				}
			}()
		}
		batch := func() []unix.XDPDesc { return make([]unix.XDPDesc, 32) }
		worker("receive", func(held *[]unix.XDPDesc) error {
			d := batch()
			n, err := s.Receive(d)
			if err == nil {
				err = s.Release(d[:n])
			}
			return err
		})
		worker("receive packets", func(held *[]unix.XDPDesc) error {
			d := batch()
			n, err := s.ReceivePackets(d)
			*held = append(*held, d[:n]...)
			if len(*held) > 64 {
				err = errors.Join(err, s.Release(*held))
				*held = (*held)[:0]
			}
			return err
		})
		worker("reflect", func(held *[]unix.XDPDesc) error {
			d := batch()
			n, err := s.Receive(d)
			if err != nil {
				return err
			}
			sent, err := s.Transmit(d[:n])
			*held = append(*held, d[sent:n]...)
			return err
		})
		worker("transmit", func(held *[]unix.XDPDesc) error {
			var addrs [8]uint64
			k := s.Pool().AllocInto(addrs[:])
			d := make([]unix.XDPDesc, k)
			for i := range d {
				d[i] = unix.XDPDesc{Addr: addrs[i], Len: uint32(copy(u.Frame(addrs[i]), frame))}
			}
			sent, err := s.Transmit(d)
			*held = append(*held, d[sent:]...)
			if len(*held) > 32 {
				err = errors.Join(err, s.Release(*held))
				*held = (*held)[:0]
			}
			return err
		})
		worker("complete", func(*[]unix.XDPDesc) error {
			s.Complete()
			_ = s.PendingTX()
			return nil
		})
		worker("wait", func(*[]unix.XDPDesc) error { return s.Wait(time.Millisecond) })
		worker("wait any", func(*[]unix.XDPDesc) error { return afxdp.WaitAny(time.Millisecond, s) })
		worker("stats", func(*[]unix.XDPDesc) error { _, err := s.Stats(); return err })
		worker("flush", func(*[]unix.XDPDesc) error { return s.Flush(time.Millisecond) })
		worker("busy poll", func(*[]unix.XDPDesc) error {
			s.BusyPollOnce()
			if _, err := s.Stats(); err != nil {
				return err
			}
			return nil
		})

		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		var closers sync.WaitGroup
		for range 2 {
			closers.Add(1)
			go func() {
				defer closers.Done()
				if err := s.Close(); err != nil {
					t.Errorf("round %d: close: %v", round, err)
				}
			}()
		}
		closers.Wait()
		close(closed)
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: calls still running 10s after Close", round)
		}
		if _, err := s.Receive(batch()); !errors.Is(err, afxdp.ErrClosed) {
			t.Fatalf("round %d: Receive after Close: %v", round, err)
		}
		if n, err := s.Transmit(batch()[:1]); n != 0 || !errors.Is(err, afxdp.ErrClosed) {
			t.Fatalf("round %d: Transmit after Close: %d, %v", round, n, err)
		}
		checkAllFree(t, u)
		if t.Failed() {
			return
		}
	}
	t.Logf("%d rounds, %d calls", rounds, calls.Load())
}

// TestTransmitInvalidDescriptors: descriptors the kernel would drop
// without a completion — or that name a frame the application does not
// hold — are refused before they reach the ring; the valid ones before
// them go out, the frames stay the caller's and the counts add up.
func TestTransmitInvalidDescriptors(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	u, err := umem.New(&umem.Options{FrameCount: 2048, FillRingSize: 1024, CompletionRingSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	s := openHost(t, v, 0, &afxdp.Config{UMEM: u})
	frame := testFrame(v, 1, 1000, 100)
	alloc := func() unix.XDPDesc {
		a, ok := u.Alloc()
		if !ok {
			t.Fatal("no free frame")
		}
		return unix.XDPDesc{Addr: a, Len: uint32(copy(u.Frame(a), frame))}
	}
	// A frame in the pool's free list and one on the fill ring, both far
	// from the ones alloc hands out.
	var free, inFill uint64
	for a := uint64(2047 * 4096); a > 0; a -= 4096 {
		switch st, _ := u.StateOf(a); {
		case st == umem.StateFree && free == 0:
			free = a
		case st == umem.StateFill && inFill == 0:
			inFill = a
		}
	}
	dup := alloc()
	for _, tc := range []struct {
		name string
		bad  unix.XDPDesc
		want error
	}{
		{"length past the frame", unix.XDPDesc{Addr: alloc().Addr, Len: 9000}, afxdp.ErrInvalidDescriptor},
		{"crosses the frame end", unix.XDPDesc{Addr: alloc().Addr + 4000, Len: 200}, afxdp.ErrInvalidDescriptor},
		{"outside the UMEM", unix.XDPDesc{Addr: 2048 * 4096, Len: 60}, afxdp.ErrInvalidDescriptor},
		{"far outside", unix.XDPDesc{Addr: 1 << 60, Len: 60}, afxdp.ErrInvalidDescriptor},
		{"zero length", unix.XDPDesc{Addr: alloc().Addr, Len: 0}, afxdp.ErrInvalidDescriptor},
		{"options", unix.XDPDesc{Addr: alloc().Addr, Len: 60, Options: unix.XDP_PKT_CONTD}, afxdp.ErrInvalidPacket},
		{"free frame", unix.XDPDesc{Addr: free, Len: 60}, umem.ErrFrameState},
		{"frame on the fill ring", unix.XDPDesc{Addr: inFill, Len: 60}, umem.ErrFrameState},
		{"twice in one batch", dup, umem.ErrFrameState},
	} {
		good := alloc()
		batch := []unix.XDPDesc{good, tc.bad}
		if tc.name == "twice in one batch" {
			batch = []unix.XDPDesc{good, dup, dup}
		}
		before := u.Counts()
		n, err := s.Transmit(batch)
		if !errors.Is(err, tc.want) || !errors.Is(err, afxdp.ErrInvalidDescriptor) {
			t.Errorf("%s: Transmit error %v, want %v", tc.name, err, tc.want)
		}
		wantN := 1
		if tc.name == "twice in one batch" {
			wantN = 2
		}
		if n != wantN {
			t.Errorf("%s: Transmit took %d, want the %d valid ones before", tc.name, n, wantN)
		}
		after := u.Counts()
		if after.App != before.App-wantN || after.TX != before.TX+wantN && after.TX > before.TX+wantN {
			t.Errorf("%s: counts %+v -> %+v", tc.name, before, after)
		}
		if tc.bad.Len > 0 && tc.bad.Len < 4096 && tc.name != "free frame" && tc.name != "frame on the fill ring" && tc.name != "outside the UMEM" && tc.name != "far outside" {
			if st, ok := u.StateOf(tc.bad.Addr); !ok || st != umem.StateApp {
				t.Errorf("%s: refused frame is %v, want still the application's", tc.name, st)
			}
		}
		if err := s.Flush(2 * time.Second); err != nil {
			t.Fatalf("%s: flush: %v", tc.name, err)
		}
		dup = alloc()
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.TXInvalidDescs != 0 {
		t.Errorf("the kernel saw %d invalid descriptors, want none", st.TXInvalidDescs)
	}
	if st.TXRefused != 9 {
		t.Errorf("Stats.TXRefused = %d, want 9", st.TXRefused)
	}
	// Give back what the test holds: everything adds up and nothing is lost.
	for a := uint64(0); a < 2048*4096; a += 4096 {
		if s, _ := u.StateOf(a); s == umem.StateApp {
			if err := u.Free(a); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := u.Check(); !errors.Is(err, umem.ErrFrameState) {
		t.Errorf("Check: %v, want the refused frames' ownership errors reported", err)
	}
	if c := u.Counts(); c.App != 0 || c.TX != 0 || c.Free+c.Fill != c.Total {
		t.Errorf("counts at the end %+v", c)
	}
}

// TestOpenFailureLeavesUMEMReusable: a zero-copy Open that fails on veth
// leaves the caller's UMEM as it was, and the copy-mode retry on it works
// and receives.
func TestOpenFailureLeavesUMEMReusable(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	u, err := umem.New(&umem.Options{FrameCount: 2048, FillRingSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for range 3 {
		s, err := afxdp.OpenIndex(v.HostIndex, 0, &afxdp.Config{UMEM: u, Bind: afxdp.BindZeroCopy})
		if err == nil {
			s.Close()
			t.Skip("veth accepted zero-copy")
		}
		if !errors.Is(err, afxdp.ErrZeroCopyNotSupported) {
			t.Fatalf("zero-copy on veth: %v, want ErrZeroCopyNotSupported", err)
		}
		checkAllFree(t, u)
	}
	s := openHost(t, v, 0, &afxdp.Config{UMEM: u, Bind: afxdp.BindCopy})
	peer := v.OpenPeerPacketSocket(t)
	for i := range 10 {
		if err := peer.Send(testFrame(v, uint32(i), 1000, 100)); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	receiveUntil(t, s, 5*time.Second, func() bool { return got == 10 }, func(uint32, []byte) { got++ })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkAllFree(t, u)
}

// TestReopenKeepsPool: a socket with its own pool of a shared UMEM,
// reopened again and again under traffic, never loses frames: those on
// its rings when it closes come back.
func TestReopenKeepsPool(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 2})
	prog, err := redirect.Attach(v.HostIndex, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	u, err := umem.New(&umem.Options{FrameCount: 4096, FillRingSize: 1024, CompletionRingSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	p0, err := u.NewPool(2048)
	if err != nil {
		t.Fatal(err)
	}
	s0 := openHost(t, v, 0, &afxdp.Config{UMEM: u, Pool: p0, Steering: prog})
	peer := v.OpenPeerPacketSocket(t)
	for round := range 20 {
		s1, err := afxdp.OpenIndex(v.HostIndex, 1, &afxdp.Config{UMEM: u, Pool: u.Pool, Steering: prog})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for i := range 50 {
			_ = peer.Send(testFrame(v, uint32(i), uint16(1000+i), 100)) // spread over both queues
		}
		time.Sleep(5 * time.Millisecond)
		descs := make([]unix.XDPDesc, 16)
		n, _ := s1.Receive(descs)
		_ = s1.Release(descs[:n]) // take some, leave the rest on the ring
		if err := s1.Close(); err != nil {
			t.Fatal(err)
		}
		if c := u.Pool.Counts(); c.Free != c.Total {
			t.Fatalf("round %d: the reopened socket's pool after Close: %+v, want all free", round, c)
		}
	}
	if err := s0.Close(); err != nil {
		t.Fatal(err)
	}
	checkAllFree(t, u)
}

// TestUMEMCloseWithOpenSockets: closing a UMEM that sockets still use
// does not pull their memory away; the area goes when the last socket has
// closed and the application has given back its frames.
func TestUMEMCloseWithOpenSockets(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	u, err := umem.New(&umem.Options{FrameCount: 2048, FillRingSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	s := openHost(t, v, 0, &afxdp.Config{UMEM: u})
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := u.Alloc(); ok {
		t.Error("Alloc on a closed UMEM gave a frame")
	}
	if _, err := afxdp.OpenIndex(v.HostIndex, 0, &afxdp.Config{UMEM: u, Steering: afxdp.NoSteering}); !errors.Is(err, umem.ErrClosed) {
		t.Errorf("Open on a closed UMEM: %v, want ErrClosed", err)
	}
	peer := v.OpenPeerPacketSocket(t)
	for i := range 5 {
		if err := peer.Send(testFrame(v, uint32(i), 1000, 100)); err != nil {
			t.Fatal(err)
		}
	}
	descs := make([]unix.XDPDesc, 64)
	held := 0
	deadline := time.Now().Add(5 * time.Second)
	for held < 5 && time.Now().Before(deadline) {
		_ = s.Wait(100 * time.Millisecond)
		n, err := s.Receive(descs[held:])
		if err != nil {
			t.Fatal(err)
		}
		held += n
	}
	if held < 5 {
		t.Fatalf("received %d frames on a socket of a closed UMEM, want 5", held)
	}
	// The socket goes while the application holds frames: they stay
	// readable (the area is still mapped) and can be given back.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, d := range descs[:held] {
		if _, ok := seqOf(s.Frame(d)); !ok {
			t.Error("a held frame's bytes changed after Close")
		}
	}
	if err := s.Release(descs[:held]); err != nil {
		t.Fatal(err)
	}
	if c := u.Counts(); c.Free != c.Total {
		t.Errorf("counts %+v", c)
	}
}

// TestFramesHeldAcrossClose: Transmit after Close refuses and leaves the
// frames the caller's; Release after Close takes them back.
func TestFramesHeldAcrossClose(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	u, err := umem.New(&umem.Options{FrameCount: 2048, FillRingSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	s, err := afxdp.OpenIndex(v.HostIndex, 0, &afxdp.Config{UMEM: u})
	if err != nil {
		t.Fatal(err)
	}
	var descs []unix.XDPDesc
	for range 10 {
		a, _ := u.Alloc()
		descs = append(descs, unix.XDPDesc{Addr: a, Len: 60})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Transmit(descs); n != 0 || !errors.Is(err, afxdp.ErrClosed) {
		t.Fatalf("Transmit after Close: %d, %v", n, err)
	}
	if c := u.Counts(); c.App != 10 {
		t.Fatalf("counts after a refused Transmit: %+v, want 10 held", c)
	}
	if err := s.Release(descs); err != nil {
		t.Fatal(err)
	}
	checkAllFree(t, u)
	if _, err := s.Stats(); !errors.Is(err, afxdp.ErrClosed) {
		t.Errorf("Stats after Close: %v", err)
	}
	if err := s.Flush(time.Second); !errors.Is(err, afxdp.ErrClosed) {
		t.Errorf("Flush after Close: %v", err)
	}
	if n := s.Complete(); n != 0 {
		t.Errorf("Complete after Close: %d", n)
	}
	if err := afxdp.WaitAny(time.Second, s); !errors.Is(err, afxdp.ErrClosed) {
		t.Errorf("WaitAny after Close: %v", err)
	}
	s.BusyPollOnce() // a no-op, not a syscall on a stale fd
}

// TestWaitAnyWokenByClose: WaitAny allocates nothing, and without a
// timeout it returns ErrClosed when one of its sockets is closed.
func TestWaitAnyWokenByClose(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 2})
	prog, err := redirect.Attach(v.HostIndex, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	a := openHost(t, v, 0, &afxdp.Config{Steering: prog})
	b := openHost(t, v, 1, &afxdp.Config{Steering: prog})
	drain := make([]unix.XDPDesc, 64)
	for _, s := range []*afxdp.Socket{a, b} {
		n, _ := s.Receive(drain)
		_ = s.Release(drain[:n])
	}
	if allocs := testing.AllocsPerRun(10, func() { _ = afxdp.WaitAny(time.Millisecond, a, b) }); allocs != 0 {
		t.Errorf("WaitAny on two sockets allocates %.2f times per call", allocs)
	}
	errc := make(chan error, 1)
	go func() { errc <- afxdp.WaitAny(-1, a, b) }()
	time.Sleep(50 * time.Millisecond)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, afxdp.ErrClosed) {
			t.Errorf("WaitAny: %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitAny(-1) still blocked 5s after Close")
	}
}

// TestLinkFlap: a socket survives its link going down and up: transmit
// reports ENETDOWN while down, and traffic flows again after.
func TestLinkFlap(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	u, err := umem.New(&umem.Options{FrameCount: 2048, FillRingSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	s := openHost(t, v, 0, &afxdp.Config{UMEM: u})
	peer := v.OpenPeerPacketSocket(t)
	receive := func(seq uint32) {
		t.Helper()
		if err := peer.Send(testFrame(v, seq, 1000, 100)); err != nil {
			t.Fatal(err)
		}
		found := false
		receiveUntil(t, s, 5*time.Second, func() bool { return found }, func(got uint32, _ []byte) { found = found || got == seq })
	}
	receive(1)
	testutils.MustRun(t, "ip", "link", "set", "dev", v.Host, "down")
	a, _ := u.Alloc()
	d := []unix.XDPDesc{{Addr: a, Len: uint32(copy(u.Frame(a), testFrame(v, 2, 1000, 100)))}}
	n, err := s.Transmit(d)
	if !errors.Is(err, unix.ENETDOWN) {
		t.Errorf("Transmit with the link down: %d, %v; want ENETDOWN", n, err)
	}
	if n == 0 {
		_ = s.Release(d)
	}
	testutils.MustRun(t, "ip", "link", "set", "dev", v.Host, "up")
	// veth needs a moment before the peer's frames reach XDP again.
	deadline := time.Now().Add(5 * time.Second)
	for seq := uint32(3); ; seq++ {
		_ = peer.Send(testFrame(v, seq, 1000, 100))
		got := false
		dd := make([]unix.XDPDesc, 64)
		_ = s.Wait(100 * time.Millisecond)
		k, err := s.Receive(dd)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range dd[:k] {
			if _, ok := seqOf(s.Frame(x)); ok {
				got = true
			}
		}
		_ = s.Release(dd[:k])
		if got {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no frame received within 5s of the link coming back up")
		}
	}
	if err := s.Flush(2 * time.Second); err != nil {
		t.Errorf("flush after the link came back: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkAllFree(t, u)
}

var _ = fmt.Sprint

// TestOpenRacesCloseOnOtherQueue: sockets of one UMEM opened and closed
// on two queues at once, from two goroutines. An Open names a bound socket
// of the other queue in its XDP_SHARED_UMEM bind; that socket may be
// closed meanwhile, and the bind must not get its stale (or reused) file
// descriptor. (Found by the soak test.)
func TestOpenRacesCloseOnOtherQueue(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 2})
	u, err := umem.New(&umem.Options{FrameCount: 8192})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	var pools [2]*umem.Pool
	for q := range pools {
		if pools[q], err = u.NewPool(4096); err != nil {
			t.Fatal(err)
		}
	}
	d := 3 * time.Second
	if testing.Short() {
		d = time.Second
	}
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	var rounds [2]int
	for q := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				s, err := afxdp.OpenIndex(v.HostIndex, q, &afxdp.Config{UMEM: u, Pool: pools[q], Steering: afxdp.NoSteering})
				if err != nil {
					t.Errorf("queue %d, round %d: %v", q, rounds[q], err)
					return
				}
				rounds[q]++
				if err := s.Close(); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("rounds %v", rounds)
	checkAllFree(t, u)
}

// TestTransmitBytes: packets are copied into frames of the socket's pool
// and sent; one too long for a frame, or empty, is refused, and the frames
// of a refused batch are back in the pool.
func TestTransmitBytes(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	u, err := umem.New(&umem.Options{FrameCount: 2048, FrameSize: 2048, FillRingSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	s := openHost(t, v, 0, &afxdp.Config{UMEM: u})
	peer := v.OpenPeerPacketSocket(t)
	var pkts [][]byte
	for i := range 100 {
		pkts = append(pkts, testFrame(v, uint32(i), 1000, 100))
	}
	if n, err := s.TransmitBytes(pkts); n != 100 || err != nil {
		t.Fatalf("TransmitBytes(100 packets) = %d, %v", n, err)
	}
	got := map[uint32]bool{}
	buf := make([]byte, 4096)
	for deadline := time.Now().Add(5 * time.Second); len(got) < 100 && time.Now().Before(deadline); {
		n, err := peer.Recv(buf, 100*time.Millisecond)
		if err != nil {
			continue
		}
		if seq, ok := seqOf(buf[:n]); ok && n == 100 {
			got[seq] = true
		}
	}
	if len(got) != 100 {
		t.Errorf("the peer got %d of 100 packets", len(got))
	}
	before := u.Counts()
	for _, tc := range []struct {
		pkt  []byte
		want error
	}{{make([]byte, 3000), afxdp.ErrPacketTooLong}, {nil, afxdp.ErrInvalidPacket}} {
		n, err := s.TransmitBytes([][]byte{pkts[0], tc.pkt})
		if n != 0 || !errors.Is(err, tc.want) {
			t.Errorf("TransmitBytes with a %d-byte packet: %d, %v; want 0, %v", len(tc.pkt), n, err, tc.want)
		}
	}
	if err := s.Flush(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if after := u.Counts(); after.App != 0 || after.Free < before.Free {
		t.Errorf("counts %+v after refused batches, %+v before", after, before)
	}
}

// TestDroppedSocketIsClosed: a Socket the program drops without Close is
// closed by the garbage collector: it leaves the queue (a new socket binds
// there) and its UMEM's frames come back.
func TestDroppedSocketIsClosed(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	u, err := umem.New(&umem.Options{FrameCount: 2048, FillRingSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	prog, err := redirect.Attach(v.HostIndex, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	func() {
		s, err := afxdp.OpenIndex(v.HostIndex, 0, &afxdp.Config{UMEM: u, Steering: prog})
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Queue()
	}()
	deadline := time.Now().Add(5 * time.Second)
	for c := u.Counts(); c.Free != c.Total; c = u.Counts() {
		if time.Now().After(deadline) {
			t.Fatalf("counts %+v 5s after the socket was dropped: its fill ring was never given back", c)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	s := openHost(t, v, 0, &afxdp.Config{UMEM: u, Steering: prog, BindRetryTimeout: 5 * time.Second})
	_ = s.Close()
	checkAllFree(t, u)
}
