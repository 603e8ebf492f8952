//go:build linux

package afxdp_test

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/internal/netlink"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/redirect"
	"github.com/xdpkit/xdpkit/umem"
)

// TestReceive sends known frames from the peer with an AF_PACKET socket and
// checks the AF_XDP socket gets exactly those, byte for byte, with the
// program attached in driver and in generic mode.
func TestReceive(t *testing.T) {
	for _, mode := range []redirect.Mode{redirect.ModeDriver, redirect.ModeGeneric} {
		t.Run(mode.String(), func(t *testing.T) {
			v := testutils.NewVeth(t, testutils.VethOptions{})
			s := openHost(t, v, 0, &afxdp.Config{
				UMEMOptions: &umem.Options{Checked: true},
				Redirect:    &redirect.Options{Mode: mode},
			})
			if got := s.Program().Mode(); got != mode {
				t.Fatalf("program attached in %v mode, want %v", got, mode)
			}
			if s.ZeroCopy() {
				t.Fatal("veth cannot do zero-copy, but the socket says it is zero-copy")
			}
			peer := v.OpenPeerPacketSocket(t)

			const total, burst = 2000, 100
			want := make(map[uint32][]byte, total)
			got := make(map[uint32]bool, total)
			for seq := uint32(0); seq < total; seq++ {
				want[seq] = testFrame(v, seq, uint16(1000+seq%7), 60+int(seq%1400))
			}
			for start := uint32(0); start < total; start += burst {
				for seq := start; seq < start+burst; seq++ {
					if err := peer.Send(want[seq]); err != nil {
						t.Fatal(err)
					}
				}
				end := start + burst
				receiveUntil(t, s, 5*time.Second, func() bool { return len(got) >= int(end) }, func(seq uint32, f []byte) {
					w, ok := want[seq]
					switch {
					case !ok:
						t.Fatalf("unknown sequence number %d", seq)
					case got[seq]:
						t.Fatalf("frame %d received twice", seq)
					case !bytes.Equal(f, w):
						t.Fatalf("frame %d differs:\n got % x\nwant % x", seq, f, w)
					}
					got[seq] = true
				})
			}
			st, err := s.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if st.RXPackets < total {
				t.Errorf("stats count %d received frames, want at least %d", st.RXPackets, total)
			}
			// Nothing more may come: a short wait must time out.
			time.Sleep(50 * time.Millisecond)
			descs := make([]unix.XDPDesc, 64)
			n, _ := s.Receive(descs)
			for _, d := range descs[:n] {
				if seq, ok := seqOf(s.Frame(d)); ok {
					t.Errorf("extra frame %d", seq)
				}
			}
			_ = s.Release(descs[:n])
			checkAccounting(t, s)
		})
	}
}

// TestTransmit sends frames through the socket and captures them on the
// peer with AF_PACKET; every frame must arrive intact and come back
// through the completion ring.
func TestTransmit(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	s := openHost(t, v, 0, &afxdp.Config{UMEMOptions: &umem.Options{Checked: true}})
	peer := v.OpenPeerPacketSocket(t)

	const total = 1000
	u := s.UMEM()
	before := u.Counts()
	want := make(map[uint32][]byte, total)
	descs := make([]unix.XDPDesc, 0, 32)
	for seq := uint32(0); seq < total; seq++ {
		// Host → peer: swap the test frame's addresses.
		f := testutils.UDPFrame(v.PeerMAC, v.HostMAC, v.HostIP.As4(), v.PeerIP.As4(), 7, testPort, append(append([]byte{}, magic...), byte(seq>>24), byte(seq>>16), byte(seq>>8), byte(seq)))
		f = append(f, bytes.Repeat([]byte{byte(seq)}, int(seq%1000))...)
		want[seq] = f
		addr, ok := u.Alloc()
		if !ok {
			t.Fatal("no free frame")
		}
		descs = append(descs, unix.XDPDesc{Addr: addr, Len: uint32(copy(u.Frame(addr), f))})
		if len(descs) == cap(descs) || seq == total-1 {
			for sent := 0; sent < len(descs); {
				n, err := s.Transmit(descs[sent:])
				if err != nil {
					t.Fatalf("transmit: %v", err)
				}
				sent += n
			}
			descs = descs[:0]
		}
	}
	if err := s.Flush(5 * time.Second); err != nil {
		t.Fatalf("flush: %v", err)
	}
	buf := make([]byte, 4096)
	got := 0
	deadline := time.Now().Add(10 * time.Second)
	for got < total && time.Now().Before(deadline) {
		n, err := peer.Recv(buf, 200*time.Millisecond)
		if err != nil {
			continue
		}
		seq, ok := seqOf(buf[:n])
		if !ok {
			continue
		}
		if !bytes.Equal(buf[:n], want[seq]) {
			t.Fatalf("frame %d differs:\n got % x\nwant % x", seq, buf[:n], want[seq])
		}
		delete(want, seq)
		got++
	}
	if got != total {
		t.Fatalf("peer captured %d of %d frames", got, total)
	}
	st, _ := s.Stats()
	if st.TXPackets != total || st.TXCompleted != total {
		t.Errorf("TX %d, completed %d, want %d each", st.TXPackets, st.TXCompleted, total)
	}
	if after := u.Counts(); after != before {
		t.Errorf("frames not all back: before %+v, after %+v", before, after)
	}
	checkAccounting(t, s)
}

// TestFrameAccountingMillion pushes over a million frames through receive
// and recycle (sent by an AF_XDP socket on the peer, which also exercises
// its TX path), then checks every frame of both UMEMs is accounted for.
func TestFrameAccountingMillion(t *testing.T) {
	if testing.Short() {
		t.Skip("long: a million frames")
	}
	v := testutils.NewVeth(t, testutils.VethOptions{})
	s := openHost(t, v, 0, &afxdp.Config{UMEMOptions: &umem.Options{Checked: true}})
	p := openPeerTX(t, v, &afxdp.Config{UMEMOptions: &umem.Options{Checked: true, FrameCount: 4096}})
	const target = 1_000_000
	frame := testFrame(v, 0, 4242, 60)

	pu := p.UMEM()
	burst := make([][]byte, 256)
	for i := range burst {
		burst[i] = frame
	}
	rxDescs := make([]unix.XDPDesc, 256)
	var sent, received uint64
	deadline := time.Now().Add(3 * time.Minute)
	for received < target {
		if time.Now().After(deadline) {
			t.Fatalf("only %d frames received after 3 minutes (%d sent)", received, sent)
		}
		// Keep the peer's TX ring busy, but no more than the host can absorb.
		if sent-received < 1024 {
			k, err := p.TransmitBytes(burst)
			if err != nil {
				t.Fatalf("peer transmit: %v", err)
			}
			sent += uint64(k)
		} else {
			p.Complete()
		}
		if err := s.Wait(10 * time.Millisecond); err != nil && !errors.Is(err, afxdp.ErrTimeout) {
			t.Fatal(err)
		}
		n, err := s.Receive(rxDescs)
		if err != nil {
			t.Fatal(err)
		}
		received += uint64(n)
		if err := s.Release(rxDescs[:n]); err != nil {
			t.Fatal(err)
		}
		if n == 0 && sent > received {
			// Frames dropped on the way (veth ring full) never come: resync.
			if st, _ := s.Stats(); st.RXRingFull+st.RXFillRingEmptyDescs+st.RXDropped > 0 {
				t.Logf("kernel drops: %+v", st)
			}
			sent = received
		}
	}
	if err := p.Flush(5 * time.Second); err != nil {
		t.Fatalf("peer flush: %v", err)
	}
	st, _ := s.Stats()
	pst, _ := p.Stats()
	t.Logf("host: %+v", st)
	t.Logf("peer: %+v", pst)
	checkAccounting(t, s)
	checkAccounting(t, p)
	hc, pc := s.UMEM().Counts(), pu.Counts()
	if hc.App != 0 || hc.TX != 0 || hc.Free+hc.Fill != hc.Total {
		t.Errorf("host frames not all free or in the fill ring: %+v", hc)
	}
	if pc.App != 0 || pc.TX != 0 || pc.Free+pc.Fill != pc.Total {
		t.Errorf("peer frames not all back after flush: %+v", pc)
	}
	if pst.TXCompleted != pst.TXPackets {
		t.Errorf("peer: %d transmitted, %d completed", pst.TXPackets, pst.TXCompleted)
	}
}

// TestCloseWhileWaiting closes a socket from another goroutine while Wait
// is blocked; Wait must return ErrClosed promptly and the interface must
// have no XDP program left.
func TestCloseWhileWaiting(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	s, err := afxdp.OpenIndex(v.HostIndex, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if l, _ := netlink.LinkByIndex(v.HostIndex); !l.XDP.IsAttached() {
		t.Fatal("no XDP program attached after Open")
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Wait(-1) }()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-errc:
		t.Fatalf("Wait returned before Close: %v", err)
	default:
	}
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, afxdp.ErrClosed) {
			t.Errorf("Wait returned %v, want ErrClosed", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Wait took %v to return after Close", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait still blocked 5s after Close")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Receive(make([]unix.XDPDesc, 1)); !errors.Is(err, afxdp.ErrClosed) {
		t.Errorf("Receive after Close: %v, want ErrClosed", err)
	}
	if err := s.Wait(0); !errors.Is(err, afxdp.ErrClosed) {
		t.Errorf("Wait after Close: %v, want ErrClosed", err)
	}
	if l, err := netlink.LinkByIndex(v.HostIndex); err != nil || l.XDP.IsAttached() {
		t.Errorf("after Close: XDP %+v, err %v; want no program", l.XDP, err)
	}
}

func TestWaitTimeoutAndContext(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	s := openHost(t, v, 0, nil)
	descs := make([]unix.XDPDesc, 64)
	for n, _ := s.Receive(descs); n > 0; n, _ = s.Receive(descs) {
		_ = s.Release(descs[:n]) // whatever the kernel sent on its own
	}
	start := time.Now()
	if err := s.Wait(50 * time.Millisecond); !errors.Is(err, afxdp.ErrTimeout) {
		t.Fatalf("Wait: %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d < 40*time.Millisecond || d > 2*time.Second {
		t.Errorf("Wait(50ms) took %v", d)
	}
	ctx, cancel := contextWithCancelAfter(30 * time.Millisecond)
	defer cancel()
	if err := s.WaitContext(ctx); !errors.Is(err, errCanceled) {
		t.Fatalf("WaitContext: %v, want context.Canceled", err)
	}
	// Frames already waiting: no block.
	peer := v.OpenPeerPacketSocket(t)
	if err := peer.Send(testFrame(v, 1, 1, 60)); err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(2 * time.Second); err != nil {
		t.Fatalf("Wait with a frame sent: %v", err)
	}
}

// TestReopenSameQueue closes and reopens the same queue many times in a
// row: the kernel may still be releasing the old socket (EBUSY), which
// Open must ride out.
func TestReopenSameQueue(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	for i := range 20 {
		s, err := afxdp.OpenIndex(v.HostIndex, 0, &afxdp.Config{UMEMOptions: &umem.Options{FrameCount: 2048, FillRingSize: 1024}})
		if err != nil {
			t.Fatalf("open #%d: %v", i, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("close #%d: %v", i, err)
		}
	}
	if l, _ := netlink.LinkByIndex(v.HostIndex); l.XDP.IsAttached() {
		t.Errorf("XDP program left: %+v", l.XDP)
	}
}

// TestSharedUMEM binds two sockets on two queues of one veth to one UMEM
// and one redirect program; traffic spread over both queues is all
// received, and every frame is accounted for.
func TestSharedUMEM(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 2})
	u, err := umem.New(&umem.Options{Checked: true, FrameCount: 8192})
	if err != nil {
		t.Fatal(err)
	}
	prog, err := redirect.Attach(v.HostIndex, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last-in first-out: registered before the sockets', this
	// one runs after them, so the sockets go before the program and UMEM.
	t.Cleanup(func() {
		if err := prog.Close(); err != nil {
			t.Error(err)
		}
		if err := u.Close(); err != nil {
			t.Error(err)
		}
	})
	cfg := &afxdp.Config{UMEM: u, Steering: prog}
	s0 := openHost(t, v, 0, cfg)
	s1 := openHost(t, v, 1, cfg)
	if s0.UMEM() != s1.UMEM() {
		t.Fatal("sockets do not share the UMEM")
	}
	peer := v.OpenPeerPacketSocket(t)

	const flows, perFlow = 64, 10
	for seq := uint32(0); seq < flows*perFlow; seq++ {
		if err := peer.Send(testFrame(v, seq, uint16(20000+seq%flows), 60)); err != nil {
			t.Fatal(err)
		}
	}
	got := map[uint32]int{}
	perQueue := [2]int{}
	descs := make([]unix.XDPDesc, 64)
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < flows*perFlow && time.Now().Before(deadline) {
		idle := true
		for q, s := range []*afxdp.Socket{s0, s1} {
			n, err := s.Receive(descs)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range descs[:n] {
				if seq, ok := seqOf(s.Frame(d)); ok {
					got[seq]++
					perQueue[q]++
				}
			}
			if err := s.Release(descs[:n]); err != nil {
				t.Fatal(err)
			}
			idle = idle && n == 0
		}
		if idle {
			time.Sleep(time.Millisecond)
		}
	}
	if len(got) != flows*perFlow {
		t.Fatalf("received %d distinct frames of %d (per queue %v)", len(got), flows*perFlow, perQueue)
	}
	for seq, n := range got {
		if n != 1 {
			t.Errorf("frame %d received %d times", seq, n)
		}
	}
	if perQueue[0] == 0 || perQueue[1] == 0 {
		t.Errorf("traffic of %d flows did not reach both queues: %v", flows, perQueue)
	}
	t.Logf("per queue: %v", perQueue)
	if err := u.Check(); err != nil {
		t.Error(err)
	}
}

func TestOpenErrors(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 2})

	_, err := afxdp.Open("xknotexist0", 0, nil)
	wantErr(t, err, afxdp.ErrInterfaceNotFound, "xknotexist0")

	_, err = afxdp.OpenIndex(v.HostIndex, 2, nil)
	wantErr(t, err, afxdp.ErrQueueOutOfRange, v.Host)

	_, err = afxdp.OpenIndex(v.HostIndex, 0, &afxdp.Config{RXRingSize: 100})
	wantErr(t, err, afxdp.ErrInvalidConfig, "power of 2")

	_, err = afxdp.OpenIndex(v.HostIndex, 0, &afxdp.Config{UMEMOptions: &umem.Options{FrameSize: 3000}})
	wantErr(t, err, umem.ErrInvalidOptions, "2048 or 4096")

	_, err = afxdp.OpenIndex(v.HostIndex, 0, &afxdp.Config{UMEMOptions: &umem.Options{FrameCount: 512, FillRingSize: 1024}})
	wantErr(t, err, umem.ErrTooSmall, "fill ring")

	_, err = afxdp.OpenIndex(v.HostIndex, 0, &afxdp.Config{Bind: afxdp.BindZeroCopy})
	wantErr(t, err, afxdp.ErrZeroCopyNotSupported, "zero-copy")
	if !errors.Is(err, afxdp.ErrNotSupported) {
		t.Errorf("zero-copy error does not match ErrNotSupported: %v", err)
	}

	// A second private program on the same interface must be refused and
	// leave the first one in place.
	s := openHost(t, v, 0, nil)
	_, err = afxdp.OpenIndex(v.HostIndex, 1, nil)
	wantErr(t, err, redirect.ErrAlreadyAttached, "already")
	l, _ := netlink.LinkByIndex(v.HostIndex)
	if l.XDP.AnyProgID() == 0 {
		t.Error("first program gone after a refused attach")
	}
	_ = s
	// Nothing leaked by the failed opens: after Close, no program.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if l, _ := netlink.LinkByIndex(v.HostIndex); l.XDP.IsAttached() {
		t.Errorf("XDP program left: %+v", l.XDP)
	}

	if err := afxdp.SocketErrorForTest(unix.EAFNOSUPPORT); !errors.Is(err, afxdp.ErrNotSupported) || !bytes.Contains([]byte(err.Error()), []byte("CONFIG_XDP_SOCKETS")) {
		t.Errorf("EAFNOSUPPORT maps to %v", err)
	}
}

func TestTXStallDetector(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	s := openHost(t, v, 0, &afxdp.Config{Steering: afxdp.NoSteering})
	if err := s.CheckStallForTest(20 * time.Millisecond); err != nil {
		t.Fatalf("first full ring reported %v", err)
	}
	time.Sleep(30 * time.Millisecond)
	if err := s.CheckStallForTest(20 * time.Millisecond); !errors.Is(err, afxdp.ErrTXStalled) {
		t.Fatalf("got %v, want ErrTXStalled", err)
	}
	if st, _ := s.Stats(); st.TXStalls != 1 {
		t.Errorf("TXStalls = %d, want 1", st.TXStalls)
	}
}

func wantErr(t *testing.T, err, target error, substr string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("got %v, want an error matching %v", err, target)
		return
	}
	var op *afxdp.OpError
	if !errors.As(err, &op) {
		t.Errorf("%v is not an *afxdp.OpError", err)
	}
	if !bytes.Contains([]byte(err.Error()), []byte(substr)) {
		t.Errorf("error %q does not mention %q", err, substr)
	}
	fmt.Fprintln(testWriter{t}, "error text:", err)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

// TestBusyPollOptions opens a socket with busy-poll options and reads them
// back from the kernel; a Receive (and a Discard) that finds its RX ring
// empty then makes one recvfrom, the NAPI poll, where a socket without
// busy polling on a copy-mode veth makes none; and frames arrive.
func TestBusyPollOptions(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	s, err := afxdp.OpenIndex(v.HostIndex, 0, &afxdp.Config{BusyPoll: afxdp.BusyPoll{Prefer: true, Timeout: 20 * time.Microsecond, Budget: 64}})
	testutils.SkipIfNotSupported(t, err, "5.11", "busy-poll socket options")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for opt, want := range map[int]int{unix.SO_PREFER_BUSY_POLL: 1, unix.SO_BUSY_POLL: 20, unix.SO_BUSY_POLL_BUDGET: 64} {
		got, err := unix.GetsockoptInt(s.FD(), unix.SOL_SOCKET, opt)
		if errors.Is(err, unix.ENOPROTOOPT) {
			continue // SO_BUSY_POLL_BUDGET can be set but not read back
		}
		if err != nil {
			t.Fatalf("getsockopt %d: %v", opt, err)
		}
		if got != want {
			t.Errorf("socket option %d = %d, want %d", opt, got, want)
		}
	}
	plain, err := afxdp.OpenIndex(testutils.NewVeth(t, testutils.VethOptions{}).HostIndex, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plain.Close() })
	emptyLooks := func(s *afxdp.Socket) uint64 {
		t.Helper()
		before, _ := s.Stats()
		descs := make([]afxdp.Desc, 16)
		for range 10 {
			if n, err := s.Receive(descs); n != 0 || err != nil {
				t.Fatalf("Receive on an idle socket: %d, %v", n, err)
			}
			if n, _, err := s.Discard(descs); n != 0 || err != nil {
				t.Fatalf("Discard on an idle socket: %d, %v", n, err)
			}
		}
		if n, err := s.Receive(descs[:0]); n != 0 || err != nil { // no room: no poll
			t.Fatalf("Receive into no room: %d, %v", n, err)
		}
		after, _ := s.Stats()
		return after.RXWakeups - before.RXWakeups
	}
	if n := emptyLooks(s); n != 20 {
		t.Errorf("busy-polling socket: 20 empty looks made %d recvfrom calls, want 20", n)
	}
	if n := emptyLooks(plain); n != 0 {
		t.Errorf("socket without busy polling: 20 empty looks made %d recvfrom calls, want 0", n)
	}
	peer := v.OpenPeerPacketSocket(t)
	if err := peer.Send(testFrame(v, 7, 1, 60)); err != nil {
		t.Fatal(err)
	}
	got := false
	receiveUntil(t, s, 5*time.Second, func() bool { return got }, func(seq uint32, _ []byte) { got = seq == 7 })
}

// TestTXBudget raises the copy-mode TX budget; a batch of 256 frames then
// needs fewer sendto calls than 256/32.
func TestTXBudget(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	s, err := afxdp.OpenIndex(v.HostIndex, 0, &afxdp.Config{TXBudget: 256, TXRingSize: 512, Steering: afxdp.NoSteering})
	testutils.SkipIfNotSupported(t, err, "6.16", "XDP_MAX_TX_SKB_BUDGET")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	u := s.UMEM()
	descs := make([]unix.XDPDesc, 256)
	f := testutils.UDPFrame(v.PeerMAC, v.HostMAC, v.HostIP.As4(), v.PeerIP.As4(), 1, 2, []byte("budget"))
	for i := range descs {
		addr, _ := u.Alloc()
		descs[i] = unix.XDPDesc{Addr: addr, Len: uint32(copy(u.Frame(addr), f))}
	}
	n, err := s.Transmit(descs)
	if err != nil || n != len(descs) {
		t.Fatalf("transmit: %d, %v", n, err)
	}
	if err := s.Flush(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	st, _ := s.Stats()
	t.Logf("256 frames in %d sendto calls", st.Kicks)
	if st.Kicks >= 256/32 {
		t.Errorf("%d kicks for 256 frames with budget 256", st.Kicks)
	}
}

// TestWaitPoll: WaitPoll times out, also after a timeout that is not a
// whole number of its slices, returns when a frame is there, ends with
// ErrClosed when another goroutine closes the socket while several block
// (one on a locked thread), and allocates nothing.
func TestWaitPoll(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	s, err := afxdp.OpenIndex(v.HostIndex, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	descs := make([]unix.XDPDesc, 64)
	for n, _ := s.Receive(descs); n > 0; n, _ = s.Receive(descs) {
		_ = s.Release(descs[:n])
	}
	start := time.Now()
	if err := s.WaitPoll(50 * time.Millisecond); !errors.Is(err, afxdp.ErrTimeout) {
		t.Fatalf("WaitPoll: %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d < 40*time.Millisecond || d > 2*time.Second {
		t.Errorf("WaitPoll(50ms) took %v", d)
	}
	start = time.Now() // not a whole number of WaitPoll's 10 ms slices
	if err := s.WaitPoll(25 * time.Millisecond); !errors.Is(err, afxdp.ErrTimeout) {
		t.Fatalf("WaitPoll(25ms): %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d < 20*time.Millisecond || d > 2*time.Second {
		t.Errorf("WaitPoll(25ms) took %v", d)
	}
	if allocs := testing.AllocsPerRun(20, func() { _ = s.WaitPoll(time.Millisecond) }); allocs != 0 {
		t.Errorf("WaitPoll allocates %.2f times per call", allocs)
	}
	peer := v.OpenPeerPacketSocket(t)
	if err := peer.Send(testFrame(v, 1, 1, 60)); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitPoll(2 * time.Second); err != nil {
		t.Fatalf("WaitPoll with a frame sent: %v", err)
	}
	if n, err := s.Receive(descs); n != 1 || err != nil {
		t.Fatalf("Receive after WaitPoll: %d, %v; want the frame", n, err)
	}
	_ = s.Release(descs[:1])

	// Several waits at once, one on a locked thread: Close ends each
	// within its 10 ms slice and returns once they have left.
	const waiters = 4
	errc := make(chan error, waiters)
	for i := range waiters {
		go func() {
			if i == 0 {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
			}
			errc <- s.WaitPoll(-1)
		}()
	}
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-errc:
		t.Fatalf("WaitPoll returned before Close: %v", err)
	default:
	}
	start = time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close with %d WaitPolls in flight took %v", waiters, d)
	}
	for range waiters {
		select {
		case err := <-errc:
			if !errors.Is(err, afxdp.ErrClosed) {
				t.Errorf("WaitPoll returned %v, want ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("WaitPoll still blocked 5s after Close")
		}
	}
	if err := s.WaitPoll(0); !errors.Is(err, afxdp.ErrClosed) {
		t.Errorf("WaitPoll after Close: %v, want ErrClosed", err)
	}
}

// TestWaitDeviceGone: a wait that times out on a socket whose interface
// was deleted says so (ENXIO), for each kind of wait; with the link only
// down it times out as usual.
func TestWaitDeviceGone(t *testing.T) {
	for _, tc := range waitKinds {
		t.Run(tc.name, func(t *testing.T) {
			v := testutils.NewVeth(t, testutils.VethOptions{})
			s := openHost(t, v, 0, nil)
			testutils.MustRun(t, "ip", "link", "set", v.Host, "down")
			if err := tc.wait(s, 20*time.Millisecond); !errors.Is(err, afxdp.ErrTimeout) {
				t.Fatalf("link down: %v, want ErrTimeout", err)
			}
			testutils.MustRun(t, "ip", "link", "del", v.Host)
			err := tc.wait(s, 20*time.Millisecond)
			if !errors.Is(err, unix.ENXIO) {
				t.Fatalf("interface deleted: %v, want ENXIO", err)
			}
			t.Log(err)
		})
	}
}
