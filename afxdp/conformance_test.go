//go:build linux

package afxdp_test

// The kernel's AF_XDP selftest matrix (tools/testing/selftests/bpf,
// test_xsk.c / test_xsk.h, the xskxceiver cases), ported to xdpkit on a
// veth pair: a peer socket sends a packet stream, a socket on the host
// receives it, and the checker verifies what the kernel's does. The table
// in doc/xsk-conformance.md maps every case to its test here.

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/internal/xsk"
	"github.com/xdpkit/xdpkit/redirect"
	"github.com/xdpkit/xdpkit/umem"
)

// Selftest constants (test_xsk.h).
const (
	xskPktCount     = 4096 // DEFAULT_PKT_CNT
	xskMinPkt       = 64   // MIN_PKT_SIZE
	xskInvalidSize  = 9001 // XSK_UMEM__INVALID_FRAME_SIZE
	xskLargeFrame   = 3072 // XSK_UMEM__LARGE_FRAME_SIZE
	xskMaxFrame     = 4096 // XSK_UMEM__MAX_FRAME_SIZE
	xskInvalidOpt   = 0xffff
	xskHdrSize      = 16 // PKT_HDR_SIZE: Ethernet header and 2 bytes of padding
	xskEtherType    = 0x9000
	xskPacketHR     = 256 // XDP_PACKET_HEADROOM
	xskFrames       = 1024
	xskThreadTmout  = 10 * time.Second // the selftest's 3 s, with room for a loaded CI machine
	xskJumboMTU     = 9000
	xskDefaultBatch = 64
)

// xskOpts shape one run: the zero value is the selftest's default
// (4 KiB aligned frames, 1024 of them, no headroom, 2048-slot rings).
type xskOpts struct {
	mode        redirect.Mode
	frameSize   uint32 // both sides
	rxHeadroom  uint32
	unaligned   bool
	rxRing      uint32 // RX ring slots
	rxFill      uint32 // the RX UMEM's fill ring; zero means the RX ring's size
	noPace      bool   // the sender does not wait for the receiver
	rxFrames    uint32
	multiBuffer bool
	mtu         int
	txFrames    uint32 // the peer's UMEM; zero means 1024
	txFill      uint32 // the peer's fill ring; zero means 64 (it only sends)
}

// xsk is one selftest run: a host socket receiving, a peer socket sending.
type xskRun struct {
	t      *testing.T
	o      xskOpts
	v      *testutils.Veth
	prog   *redirect.Program
	rxU    *umem.UMEM
	rx     *afxdp.Socket
	txU    *umem.UMEM
	tx     *afxdp.Socket
	txPool *xsk.Pool

	unchecked bool                   // descriptors were sent past Transmit's checks
	received  atomic.Int64           // packets the receiver has taken, for the sender's pacing
	inFlight  int64                  // packets that fit the receiver's frames
	refused   int                    // descriptors Transmit refused (each may be an ownership error)
	dst       func(nb uint32) []byte // destination MAC of packet nb; nil means the host's
	checkMeta bool                   // check the program's metadata (pkt_nb) in front of each packet
}

func newXSKRun(t *testing.T, o xskOpts) *xskRun {
	t.Helper()
	if o.frameSize == 0 {
		o.frameSize = 4096
	}
	if o.rxRing == 0 {
		o.rxRing = 2048
	}
	if o.rxFrames == 0 {
		o.rxFrames = xskFrames
	}
	if o.txFrames == 0 {
		o.txFrames = xskFrames
	}
	if o.txFill == 0 {
		o.txFill = 64
	}
	if o.multiBuffer {
		testutils.SkipOnOldKernel(t, "6.6", "multi-buffer AF_XDP (XDP_USE_SG)")
	}
	v := testutils.NewVeth(t, testutils.VethOptions{MTU: o.mtu})
	x := &xskRun{t: t, o: o, v: v}
	var err error
	x.prog, err = redirect.Attach(v.HostIndex, &redirect.Options{Mode: o.mode, MultiBuffer: o.multiBuffer})
	if err != nil {
		t.Fatalf("attach in %v mode: %v", o.mode, err)
	}
	t.Cleanup(func() { _ = x.prog.Close() })
	x.rxU = newTestUMEM(t, &umem.Options{FrameSize: o.frameSize, FrameCount: o.rxFrames, FillRingSize: min(cmp.Or(o.rxFill, o.rxRing), o.rxFrames),
		CompletionRingSize: 2048, Headroom: o.rxHeadroom, Unaligned: o.unaligned})
	x.rx = openHost(t, v, 0, &afxdp.Config{UMEM: x.rxU, RXRingSize: o.rxRing, Bind: afxdp.BindCopy, MultiBuffer: o.multiBuffer,
		Steering: x.prog})
	x.txU = newTestUMEM(t, &umem.Options{FrameSize: o.frameSize, FrameCount: o.txFrames, FillRingSize: o.txFill, Unaligned: o.unaligned})
	// The peer's fill ring gets frames from the middle of its UMEM, so
	// the tables can place packets at its start and end, as the selftest
	// does.
	var all []uint64
	for a, ok := x.txU.Alloc(); ok; a, ok = x.txU.Alloc() {
		all = append(all, a)
	}
	free := func(addrs []uint64) {
		for i := len(addrs) - 1; i >= 0; i-- { // highest first: Alloc pops the lowest
			if err := x.txU.Free(addrs[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	mid := len(all) / 2
	free(all[mid : mid+int(o.txFill)])
	x.tx = openPeerTX(t, v, &afxdp.Config{UMEM: x.txU, MultiBuffer: o.multiBuffer, TXStallTimeout: 200 * time.Millisecond})
	free(all[mid+int(o.txFill):])
	free(all[:mid])
	x.txPool = xsk.PoolOf(x.txU.Pool)
	return x
}

func newTestUMEM(t *testing.T, o *umem.Options) *umem.UMEM {
	t.Helper()
	u, err := umem.New(o)
	if err != nil {
		t.Fatal(err)
	}
	// Closed after the sockets (cleanups run last-in first-out); then
	// every frame must be free again.
	t.Cleanup(func() {
		_ = u.Close()
	})
	return u
}

// xskModes runs f in generic (skb) and driver (drv) mode, as test_progs
// runs the matrix in ns_xsk_skb and ns_xsk_drv.
func xskModes(t *testing.T, f func(t *testing.T, mode redirect.Mode)) {
	for _, m := range []struct {
		name string
		mode redirect.Mode
	}{{"skb", redirect.ModeGeneric}, {"drv", redirect.ModeDriver}} {
		t.Run(m.name, func(t *testing.T) { f(t, m.mode) })
	}
}

// xskPacket is the selftest's packet pkt_nb of length n: an Ethernet
// header to the host, EtherType 0x9000, 2 bytes of padding, then 32-bit
// big-endian words (pkt_nb << 16) | word index (pkt_generate).
func (x *xskRun) xskPacket(dst, src []byte, nb uint32, n int) []byte {
	b := make([]byte, n)
	copy(b[0:6], dst)
	copy(b[6:12], src)
	binary.BigEndian.PutUint16(b[12:14], xskEtherType)
	for off := xskHdrSize; off+4 <= n; off += 4 {
		binary.BigEndian.PutUint32(b[off:], nb<<16|uint32((off-xskHdrSize)/4)&0xffff)
	}
	return b
}

func (x *xskRun) dstOf(nb uint32) []byte {
	if x.dst != nil {
		return x.dst(nb)
	}
	return x.v.HostMAC
}

// xpkt is one packet of a stream: what is sent and what must arrive.
type xpkt struct {
	nb  uint32
	len int
}

// stream is the default stream: n packets of size bytes, pkt_nb 0..n-1.
func stream(n, size int) []xpkt {
	s := make([]xpkt, n)
	for i := range s {
		s[i] = xpkt{nb: uint32(i), len: size}
	}
	return s
}

// sendStream sends pkts from the peer, each split over as many frames as
// it needs (XDP_PKT_CONTD on all but the last), keeping the UMEM's frames
// in flight as the selftest paces them, and waits until everything has
// completed; poll makes it wait in WaitTX for TX-ring room (POLL_TX). It
// checks that completions never exceed what was sent. skip, if set, says
// which packets to leave out (sent as refused invalid descriptors
// instead, via bad).
func (x *xskRun) sendStream(pkts []xpkt, poll bool, bad func(p xpkt) *unix.XDPDesc) (errc chan error) {
	errc = make(chan error, 1)
	go func() { errc <- x.sendStreamSync(pkts, poll, bad) }()
	return errc
}

func (x *xskRun) sendStreamSync(pkts []xpkt, poll bool, bad func(p xpkt) *unix.XDPDesc) error {
	s, u := x.tx, x.txU
	x.setInFlight(pkts)
	fs := int(u.FrameSize())
	descs := make([]unix.XDPDesc, 0, xskDefaultBatch+afxdp.MaxPacketFrames)
	deadline := time.Now().Add(xskThreadTmout)
	next := 0
	var refused int
	for next < len(pkts) {
		if time.Now().After(deadline) {
			return fmt.Errorf("sent %d of %d packets in %v", next, len(pkts), xskThreadTmout)
		}
		// Pacing, as the selftest's: never more packets in flight than
		// the receiver's UMEM holds, so nothing is dropped for want of
		// a frame.
		if x.mustPace(int64(pkts[next].nb)) {
			s.Complete()
			time.Sleep(20 * time.Microsecond)
			continue
		}
		descs = descs[:0]
		var built []int // descriptors per packet in descs
		for k := next; k < len(pkts) && len(descs) < xskDefaultBatch; k++ {
			p := pkts[k]
			if bad != nil {
				if d := bad(p); d != nil {
					descs = append(descs, *d)
					built = append(built, 1)
					continue
				}
			}
			data := x.xskPacket(x.dstOf(p.nb), x.v.PeerMAC, p.nb, p.len)
			start := len(descs)
			for off := 0; off < len(data); off += fs {
				a, ok := u.Alloc()
				if !ok {
					break
				}
				n := copy(u.Frame(a), data[off:min(off+fs, len(data))])
				descs = append(descs, unix.XDPDesc{Addr: a, Len: uint32(n), Options: unix.XDP_PKT_CONTD})
			}
			if got := len(descs) - start; got*fs < len(data) {
				// Out of frames: give these back, send what is built.
				for _, d := range descs[start:] {
					_ = u.Free(d.Addr)
				}
				descs = descs[:start]
				break
			}
			descs[len(descs)-1].Options = 0
			built = append(built, len(descs)-start)
		}
		if len(descs) == 0 {
			s.Complete()
			if err := x.tx.WaitTX(10 * time.Millisecond); err != nil && !errors.Is(err, afxdp.ErrTimeout) {
				return err
			}
			continue
		}
		n, err := s.Transmit(descs)
		if errors.Is(err, afxdp.ErrInvalidDescriptor) {
			// The refused descriptor is the first one not taken: skip it.
			refused++
			n++
		} else if err != nil && !errors.Is(err, afxdp.ErrTXStalled) {
			return fmt.Errorf("transmit: %w", err)
		}
		for _, d := range descs[n:] {
			_ = u.Free(d.Addr)
		}
		if errors.Is(err, afxdp.ErrInvalidDescriptor) {
			if st, ok := u.StateOf(descs[n-1].Addr); ok && st == umem.StateApp {
				_ = u.Free(descs[n-1].Addr)
			}
		}
		// Whole packets were taken: count them.
		for used := 0; len(built) > 0 && used+built[0] <= n; built = built[1:] {
			used += built[0]
			next++
		}
		if n == 0 && poll {
			if err := s.WaitTX(time.Second); err != nil && !errors.Is(err, afxdp.ErrTimeout) {
				return err
			}
		}
	}
	if err := s.Flush(xskThreadTmout); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	st, _ := s.Stats()
	if st.TXCompleted > st.TXPackets {
		return fmt.Errorf("%d completions for %d descriptors sent", st.TXCompleted, st.TXPackets)
	}
	if v := xsk.PoolOf(u.Pool).Violations(); v > refused {
		return fmt.Errorf("%d ownership errors in the sender's pool, %d descriptors refused", v, refused)
	}
	return nil
}

// setInFlight sets how many packets of pkts may be in flight: as many as
// the receiver's frames hold, less two batches.
func (x *xskRun) setInFlight(pkts []xpkt) {
	room := int(x.rxU.FrameSize() - xskPacketHR - x.rxU.Headroom())
	most := 0
	for _, p := range pkts {
		most = max(most, p.len)
	}
	per := max(1, (most+room-1)/room)
	// veth queues at most 256 frames for the receiving side's NAPI
	// (VETH_RING_SIZE) and drops beyond: stay under that too.
	x.inFlight = int64(min(int(x.rxU.FrameCount())/per-2*xskDefaultBatch, 256-xskDefaultBatch))
}

// mustPace reports whether the sender, about to send stream entry nb,
// must wait for the receiver: never more in flight than its UMEM holds.
func (x *xskRun) mustPace(nb int64) bool {
	return !x.o.noPace && nb-x.received.Load() >= x.inFlight
}

// recvOpts shape the receiver.
type recvOpts struct {
	poll bool // Wait before each Receive (POLL_RX); else spin on Receive
}

// receive receives until every packet of want has arrived, in order, each
// checked as the selftest checks it (is_frag_valid, is_offset_correct,
// is_pkt_valid), and returns the descriptors per packet counted.
func (x *xskRun) receive(want []xpkt, ro recvOpts) (frags []int) {
	x.t.Helper()
	s, u := x.rx, x.rxU
	descs := make([]unix.XDPDesc, xskDefaultBatch+afxdp.MaxPacketFrames)
	deadline := time.Now().Add(xskThreadTmout)
	next := 0
	for next < len(want) {
		if time.Now().After(deadline) {
			x.t.Fatalf("received %d of %d packets in %v", next, len(want), xskThreadTmout)
		}
		if ro.poll {
			if err := s.Wait(time.Second); err != nil && !errors.Is(err, afxdp.ErrTimeout) {
				x.t.Fatal(err)
			}
		}
		n, err := s.ReceivePackets(descs)
		if err != nil {
			x.t.Fatal(err)
		}
		if n == 0 && !ro.poll {
			time.Sleep(20 * time.Microsecond)
		}
		for pkt := range afxdp.Packets(descs[:n]) {
			if next == len(want) {
				x.t.Fatalf("received more packets than the %d sent", len(want))
			}
			x.checkPacket(pkt, want[next])
			frags = append(frags, len(pkt))
			// Stream entries up to this one are consumed, dropped ones too.
			x.received.Store(int64(want[next].nb) + 1)
			next++
		}
		if err := s.Release(descs[:n]); err != nil {
			x.t.Fatal(err)
		}
		if x.t.Failed() {
			x.t.FailNow()
		}
	}
	_ = u
	return frags
}

// checkPacket checks one received packet's descriptors against p.
func (x *xskRun) checkPacket(pkt []unix.XDPDesc, p xpkt) {
	x.t.Helper()
	u := x.rxU
	fs := uint64(u.FrameSize())
	size := fs * uint64(u.FrameCount())
	capacity := uint32(fs) - xskPacketHR - u.Headroom()
	wantBytes := x.xskPacket(x.dstOf(p.nb), x.v.PeerMAC, p.nb, p.len)
	if x.checkMeta {
		// is_metadata_correct: the program's 32 bytes in front of the data.
		meta := u.Bytes(pkt[0].Addr-32, 8)
		if meta == nil || binary.NativeEndian.Uint64(meta) != uint64(p.nb) {
			x.t.Fatalf("packet %d: metadata % x, want %d", p.nb, meta, p.nb)
		}
	}
	off := 0
	for i, d := range pkt {
		a := u.DataAddr(d.Addr)
		start := u.FrameStart(d.Addr)
		// is_frag_valid: inside the UMEM, and (aligned) inside its frame.
		if a+uint64(d.Len) > size || a-start+uint64(d.Len) > fs {
			x.t.Fatalf("packet %d frag %d: addr %#x len %d leaves its frame or the UMEM", p.nb, i, d.Addr, d.Len)
		}
		// is_offset_correct: headroom + XDP_PACKET_HEADROOM into the frame;
		// unaligned, the offset rides in the top 16 bits over the chunk.
		if got, want := a-start, uint64(u.Headroom()+xskPacketHR); got != want {
			x.t.Fatalf("packet %d frag %d: offset %d in its frame, want %d", p.nb, i, got, want)
		}
		if u.Unaligned() && (d.Addr>>48 != uint64(u.Headroom()+xskPacketHR) || d.Addr&(1<<48-1) != start) {
			x.t.Fatalf("packet %d frag %d: unaligned address %#x is not chunk %#x | offset %d << 48", p.nb, i, d.Addr, start, u.Headroom()+xskPacketHR)
		}
		if d.Len > capacity {
			x.t.Fatalf("packet %d frag %d: %d bytes in a frame with room for %d", p.nb, i, d.Len, capacity)
		}
		got := u.Bytes(d.Addr, d.Len)
		if off+len(got) > len(wantBytes) {
			x.t.Fatalf("packet %d: %d bytes received so far, sent %d", p.nb, off+len(got), len(wantBytes))
		}
		if string(got) != string(wantBytes[off:off+len(got)]) {
			x.t.Fatalf("packet %d frag %d: payload differs at packet offset %d (got word %#x, pkt_nb/seq out of order?)",
				p.nb, i, off, firstWord(got, off))
		}
		off += len(got)
	}
	// is_pkt_valid: the whole length.
	if off != p.len {
		x.t.Fatalf("packet %d: %d bytes received, sent %d", p.nb, off, p.len)
	}
}

func firstWord(b []byte, off int) uint32 {
	i := max(0, xskHdrSize-off)
	if i+4 > len(b) {
		return 0
	}
	return binary.BigEndian.Uint32(b[i:])
}

// finish closes both sockets and checks every frame of both UMEMs is
// free again.
func (x *xskRun) finish() {
	x.t.Helper()
	for _, s := range []*afxdp.Socket{x.rx, x.tx} {
		if err := s.Close(); err != nil {
			x.t.Error(err)
		}
	}
	checkAllFree(x.t, x.rxU)
	if !x.unchecked && x.refused == 0 {
		checkAllFree(x.t, x.txU)
		return
	}
	if v := xsk.PoolOf(x.txU.Pool).Violations(); !x.unchecked && v > x.refused {
		x.t.Errorf("%d ownership errors in the sender's pool, %d descriptors refused", v, x.refused)
	}
	// Invalid descriptors went straight to the kernel: their completions,
	// if the kernel sent any for frames listed twice or outside the UMEM,
	// are recorded as ownership errors; anything else must hold.
	err := x.txU.Check()
	if err != nil && !(errors.Is(err, umem.ErrFrameState) && strings.Contains(err.Error(), "violations in all")) {
		x.t.Errorf("sender's accounting: %v", err)
	}
	if c := x.txU.Counts(); c.Free != c.Total {
		x.t.Errorf("sender's counts %+v: want every frame free", c)
	}
}

// run sends pkts and receives want (pkts if nil), checking both ends.
func (x *xskRun) run(pkts, want []xpkt, poll bool, ro recvOpts) []int {
	x.t.Helper()
	if want == nil {
		want = pkts
	}
	errc := x.sendStream(pkts, poll, nil)
	frags := x.receive(want, ro)
	if err := <-errc; err != nil {
		x.t.Fatalf("sender: %v", err)
	}
	return frags
}

// SEND_RECEIVE, SEND_RECEIVE_2K_FRAME, SEND_RECEIVE_SINGLE_PKT, POLL_RX,
// POLL_TX, UMEM_HEADROOM.
func TestXSKSendReceive(t *testing.T) {
	xskModes(t, func(t *testing.T, mode redirect.Mode) {
		for _, tc := range []struct {
			name   string
			o      xskOpts
			pkts   []xpkt
			pollTX bool
			ro     recvOpts
		}{
			{"SEND_RECEIVE", xskOpts{}, stream(xskPktCount, xskMinPkt), false, recvOpts{}},
			{"SEND_RECEIVE_2K_FRAME", xskOpts{frameSize: 2048}, stream(xskPktCount, xskMinPkt), false, recvOpts{}},
			{"SEND_RECEIVE_SINGLE_PKT", xskOpts{}, stream(1, xskMinPkt), false, recvOpts{}},
			{"POLL_RX", xskOpts{}, stream(xskPktCount, xskMinPkt), false, recvOpts{poll: true}},
			{"POLL_TX", xskOpts{}, stream(xskPktCount, xskMinPkt), true, recvOpts{}},
			{"UMEM_HEADROOM", xskOpts{rxHeadroom: 128}, stream(xskPktCount, xskMinPkt), false, recvOpts{}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tc.o.mode = mode
				x := newXSKRun(t, tc.o)
				x.run(tc.pkts, nil, tc.pollTX, tc.ro)
				x.finish()
			})
		}
	})
}

// POLL_RXQ_FULL: with nothing sent, a wait for frames times out.
// POLL_TXQ_FULL: with the TX path stalled (the peer's link down, so the
// kernel cannot send and completes nothing), the TX ring fills, a wait for
// room times out, Transmit reports ErrTXStalled, and once the link is back
// everything completes and every frame is accounted for.
func TestXSKPollTimeouts(t *testing.T) {
	xskModes(t, func(t *testing.T, mode redirect.Mode) {
		t.Run("POLL_RXQ_FULL", func(t *testing.T) {
			x := newXSKRun(t, xskOpts{mode: mode})
			drain := make([]unix.XDPDesc, 64)
			n, _ := x.rx.Receive(drain)
			_ = x.rx.Release(drain[:n])
			start := time.Now()
			if err := x.rx.Wait(time.Second); !errors.Is(err, afxdp.ErrTimeout) {
				t.Fatalf("Wait with nothing sent: %v, want ErrTimeout", err)
			}
			if d := time.Since(start); d < 900*time.Millisecond {
				t.Errorf("Wait(1s) returned after %v", d)
			}
			x.finish()
		})
		t.Run("POLL_TXQ_FULL", func(t *testing.T) {
			x := newXSKRun(t, xskOpts{mode: mode, frameSize: 2048, txFrames: 4096})
			testutils.MustRun(t, "ip", "-n", x.v.NS, "link", "set", "dev", x.v.Peer, "down")
			s, u := x.tx, x.txU
			frame := x.xskPacket(x.v.HostMAC, x.v.PeerMAC, 0, xskMinPkt)
			queued := 0
			var last error
			for queued < 4096 {
				a, ok := u.Alloc()
				if !ok {
					t.Fatal("out of frames")
				}
				d := []unix.XDPDesc{{Addr: a, Len: uint32(copy(u.Frame(a), frame))}}
				n, err := s.Transmit(d)
				queued += n
				if n == 0 {
					_ = u.Free(a)
					last = err
					break
				}
				if err != nil && !errors.Is(err, unix.ENETDOWN) {
					t.Fatalf("transmit: %v", err)
				}
			}
			// The ring is full and nothing completes: Transmit says why,
			// and a wait for room times out.
			if queued != 2048 || s.PendingTX() != 2048 {
				t.Errorf("%d queued, %d pending; want the TX ring's 2048", queued, s.PendingTX())
			}
			if !errors.Is(last, unix.ENETDOWN) {
				t.Errorf("Transmit on a full ring with the link down: %v, want ENETDOWN", last)
			}
			start := time.Now()
			if err := s.WaitTX(300 * time.Millisecond); !errors.Is(err, afxdp.ErrTimeout) {
				t.Fatalf("WaitTX with the TX ring full and the link down: %v, want ErrTimeout", err)
			}
			if d := time.Since(start); d < 250*time.Millisecond {
				t.Errorf("WaitTX(300ms) returned after %v", d)
			}
			testutils.MustRun(t, "ip", "-n", x.v.NS, "link", "set", "dev", x.v.Peer, "up")
			if err := s.Flush(xskThreadTmout); err != nil {
				t.Fatalf("flush after the link came back: %v", err)
			}
			x.finish()
		})
	})
}

// TEARDOWN: ten times set up, send and receive the stream, tear down.
func TestXSKTeardown(t *testing.T) {
	xskModes(t, func(t *testing.T, mode redirect.Mode) {
		for i := range 10 {
			x := newXSKRun(t, xskOpts{mode: mode})
			x.run(stream(xskPktCount, xskMinPkt), nil, false, recvOpts{})
			x.finish()
			if err := x.prog.Close(); err != nil {
				t.Fatalf("iteration %d: %v", i, err)
			}
		}
	})
}

// BIDIRECTIONAL: both ends send and receive; step 2 swaps the directions
// and reuses the sockets.
func TestXSKBidirectional(t *testing.T) {
	xskModes(t, func(t *testing.T, mode redirect.Mode) {
		x := newXSKRun(t, xskOpts{mode: mode, txFrames: 4096, txFill: 2048})
		x.run(stream(xskPktCount, xskMinPkt), nil, false, recvOpts{})
		// Step 2: the peer receives through its own program, the host sends.
		var peerProg *redirect.Program
		x.v.InPeer(t, func() (err error) {
			peerProg, err = redirect.Attach(x.v.PeerIndex, &redirect.Options{Mode: mode})
			return err
		})
		t.Cleanup(func() { _ = peerProg.Close() })
		if err := peerProg.Register(0, x.tx.FD()); err != nil {
			t.Fatal(err)
		}
		rev := &xskRun{t: t, o: x.o, v: &testutils.Veth{HostMAC: x.v.PeerMAC, PeerMAC: x.v.HostMAC},
			rxU: x.txU, rx: x.tx, txU: x.rxU, tx: x.rx}
		rev.run(stream(xskPktCount, xskMinPkt), nil, false, recvOpts{})
		if err := peerProg.Unregister(0); err != nil {
			t.Fatal(err)
		}
		x.finish()
	})
}

// xdesc is one entry of a verbatim descriptor table (struct pkt of the
// custom streams): offset is relative to the next frame for valid entries
// and absolute for invalid ones, as pkt_get_addr does.
type xdesc struct {
	offset  int64
	len     uint32
	valid   bool
	options uint32
}

// invalidDescTable is testapp_invalid_desc's table for a UMEM.
func invalidDescTable(u *umem.UMEM) []xdesc {
	fs := int64(u.FrameSize())
	size := fs * int64(u.FrameCount())
	t := []xdesc{
		{0, xskMinPkt, true, 0},                       // zero packet address allowed
		{0, xskMinPkt, true, 0},                       // allowed packet
		{-2, xskMinPkt, false, 0},                     // straddling the start of the UMEM
		{0, xskInvalidSize, false, 0},                 // packet too large
		{size - xskMinPkt - 2*fs, xskMinPkt, true, 0}, // up to the end of the UMEM allowed
		{size, xskMinPkt, false, 0},                   // after the UMEM ends
		{size - xskMinPkt/2, xskMinPkt, false, 0},     // straddling the end of the UMEM
		{0x1000 - xskMinPkt/2, xskMinPkt, false, 0},   // straddling a 4K boundary
		{0x800 - xskMinPkt/2, xskMinPkt, true, 0},     // straddling a 2K boundary
		{0, xskMinPkt, true, 0},                       // valid packet for sync
	}
	if u.Unaligned() {
		t[7].valid = true // crossing a page boundary is allowed
	}
	if fs == 2048 {
		t[8].valid = false // crossing a 2K frame boundary is not
	}
	return t
}

// invalidDescMBTable is testapp_invalid_desc_mb's table, in the form of
// the newest selftest: an invalid descriptor with XDP_PKT_CONTD makes the
// kernel (since the 2026 "reclaim invalid Tx descriptors" change, in 6.18
// too) drop every descriptor up to its packet's last, so each invalid
// packet ends with a terminator.
func invalidDescMBTable(u *umem.UMEM) []xdesc {
	size := int64(u.FrameSize()) * int64(u.FrameCount())
	t := []xdesc{
		{0, xskMinPkt, true, 0},                       // valid packet for sync to start with
		{0, xskLargeFrame, false, unix.XDP_PKT_CONTD}, // zero frame len is not legal
		{0, xskLargeFrame, false, unix.XDP_PKT_CONTD},
		{0, 0, false, 0},
		{0, xskLargeFrame, false, unix.XDP_PKT_CONTD}, // invalid address in the second frame
		{2 * size, xskLargeFrame, false, unix.XDP_PKT_CONTD},
		{0, xskMinPkt, false, 0},
		{0, xskLargeFrame, false, unix.XDP_PKT_CONTD}, // invalid len in the middle
		{0, xskInvalidSize, false, unix.XDP_PKT_CONTD},
		{0, xskMinPkt, false, 0},
		{0, xskLargeFrame, false, unix.XDP_PKT_CONTD}, // invalid options in the middle
		{0, xskLargeFrame, false, xskInvalidOpt},
		{0, xskMinPkt, false, 0},
		{0, xskMaxFrame, true, unix.XDP_PKT_CONTD}, // transmit 2 frags, receive 3
		{0, xskMaxFrame, true, 0},
		{0, xskLargeFrame, false, unix.XDP_PKT_CONTD}, // middle frame crosses a chunk boundary with a small length
		{-xskMinPkt / 2, xskMinPkt, false, 0},
		{0, xskMinPkt, true, 0}, // valid packet for sync so that something is received
	}
	if u.Unaligned() {
		t[15].valid, t[16].valid = true, true // crossing a chunk boundary is allowed
	}
	return t
}

// tableRun places a verbatim table in the peer's UMEM as the selftest
// does (a valid entry at its offset into the next frame, round robin; an
// invalid one at its absolute offset), fills in the payloads of the valid
// packets, and returns the descriptors, the packets that must arrive, and
// which descriptors are invalid.
func (x *xskRun) tableRun(table []xdesc) (descs []unix.XDPDesc, want []xpkt, invalid []bool) {
	x.t.Helper()
	u := x.txU
	fs := int64(u.FrameSize())
	frame := int64(0)
	nb := uint32(0)
	var pktStart []int // for each packet in want, its first descriptor
	var cur []int      // descriptors of the packet being built
	for i, e := range table {
		var addr uint64
		if e.valid {
			addr = uint64(frame*fs + e.offset)
			// The next entry gets the next frame, or the one after the
			// frame this one reached into.
			if landed := int64(u.FrameStart(addr)) / fs; landed == frame+1 {
				frame = landed
			}
			frame = (frame + 1) % int64(u.FrameCount())
		} else {
			addr = uint64(e.offset) // may wrap below 0, as in the kernel's test
		}
		// Hold the frame the descriptor points into, when it is one, so
		// that only the descriptor's geometry can make it invalid.
		if start := u.FrameStart(addr); u.DataAddr(addr) < uint64(fs)*uint64(u.FrameCount()) {
			if st, _ := u.StateOf(start); st == umem.StateFree && !x.txPool.TakeFrame(start) {
				x.t.Fatalf("entry %d: cannot take frame %#x", i, start)
			}
		}
		descs = append(descs, unix.XDPDesc{Addr: addr, Len: e.len, Options: e.options})
		invalid = append(invalid, !e.valid)
		if e.valid {
			cur = append(cur, i)
		}
		if !e.valid || e.options&unix.XDP_PKT_CONTD == 0 {
			if e.valid {
				total := 0
				for _, k := range cur {
					total += int(table[k].len)
				}
				want = append(want, xpkt{nb: nb, len: total})
				pktStart = append(pktStart, cur[0])
			}
			cur = cur[:0]
			nb++
		}
	}
	// Payloads: each valid packet's bytes, spread over its descriptors.
	for k, p := range want {
		data := x.xskPacket(x.v.HostMAC, x.v.PeerMAC, p.nb, p.len)
		off := 0
		for i := pktStart[k]; off < len(data); i++ {
			off += copy(u.Bytes(descs[i].Addr, descs[i].Len), data[off:])
		}
	}
	return descs, want, invalid
}

// sendTable sends a table through Transmit, which must refuse exactly the
// invalid entries (the whole packet they are part of, on a multi-buffer
// socket), or, with kernel set, straight to the kernel, which must drop
// them (Stats.TXInvalidDescs).
func (x *xskRun) sendTable(descs []unix.XDPDesc, invalid []bool, kernel bool) {
	x.t.Helper()
	s := x.tx
	if kernel {
		x.unchecked = true
		for i := range descs {
			if n, err := s.TransmitUncheckedForTest(descs[i : i+1]); n != 1 || err != nil {
				x.t.Fatalf("entry %d: %d, %v", i, n, err)
			}
		}
		_ = s.Flush(time.Second) // the kernel may complete the invalid ones or not
		st, err := s.Stats()
		if err != nil {
			x.t.Fatal(err)
		}
		n := 0
		for _, bad := range invalid {
			if bad {
				n++
			}
		}
		if st.TXInvalidDescs != uint64(n) {
			x.t.Errorf("the kernel counted %d invalid TX descriptors, the table has %d", st.TXInvalidDescs, n)
		}
		return
	}
	refused := make([]bool, len(descs))
	for i := 0; i < len(descs); {
		n, err := s.Transmit(descs[i:])
		i += n
		if errors.Is(err, afxdp.ErrInvalidDescriptor) || errors.Is(err, afxdp.ErrInvalidPacket) || errors.Is(err, afxdp.ErrPacketTooLong) {
			// The packet at i is refused: all its descriptors.
			for {
				refused[i] = true
				x.refused++
				last := descs[i].Options&unix.XDP_PKT_CONTD == 0
				i++
				if last || i == len(descs) || !s.MultiBuffer() {
					break
				}
			}
			continue
		}
		if err != nil {
			x.t.Fatalf("transmit entry %d: %v", i, err)
		}
		if n == 0 {
			s.Complete()
			time.Sleep(time.Millisecond)
		}
	}
	if err := s.Flush(xskThreadTmout); err != nil {
		x.t.Fatal(err)
	}
	for i := range descs {
		if refused[i] != invalid[i] {
			x.t.Errorf("entry %d (addr %#x len %d options %#x): refused %v, the kernel's table says invalid %v",
				i, descs[i].Addr, descs[i].Len, descs[i].Options, refused[i], invalid[i])
		}
	}
	// Give back the frames of refused entries.
	for i := range descs {
		if st, ok := x.txU.StateOf(descs[i].Addr); refused[i] && ok && st == umem.StateApp {
			_ = x.txU.Free(descs[i].Addr)
		}
	}
}

// runTable places table (tableRun) and exchanges it.
func (x *xskRun) runTable(table []xdesc, kernel bool) {
	x.t.Helper()
	descs, want, invalid := x.tableRun(table)
	x.exchange(descs, want, invalid, kernel)
}

// exchange sends descs (sendTable), receives want and finishes the run.
func (x *xskRun) exchange(descs []unix.XDPDesc, want []xpkt, invalid []bool, kernel bool) {
	x.t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); x.sendTable(descs, invalid, kernel) }()
	x.receive(want, recvOpts{})
	<-done
	x.finish()
}

// ALIGNED_INV_DESC, ALIGNED_INV_DESC_2K_FRAME_SIZE, UNALIGNED_INV_DESC,
// UNALIGNED_INV_DESC_4001_FRAME_SIZE: only the valid descriptors of the
// table arrive. Each runs twice: through Transmit, which refuses exactly
// the invalid ones, and straight to the kernel, which drops them.
func TestXSKInvalidDesc(t *testing.T) {
	xskModes(t, func(t *testing.T, mode redirect.Mode) {
		for _, tc := range []struct {
			name string
			o    xskOpts
		}{
			{"ALIGNED_INV_DESC", xskOpts{}},
			{"ALIGNED_INV_DESC_2K_FRAME_SIZE", xskOpts{frameSize: 2048}},
			{"UNALIGNED_INV_DESC", xskOpts{unaligned: true}},
			{"UNALIGNED_INV_DESC_4001_FRAME_SIZE", xskOpts{unaligned: true, frameSize: 4001}},
		} {
			for _, kernel := range []bool{false, true} {
				name := tc.name + map[bool]string{false: "/xdpkit", true: "/kernel"}[kernel]
				t.Run(name, func(t *testing.T) {
					tc.o.mode = mode
					x := newXSKRun(t, tc.o)
					table := invalidDescTable(x.txU)
					if tc.o.unaligned && !kernel {
						// xdpkit keeps a descriptor inside its frame, which
						// the kernel does not ask in unaligned mode: the
						// page-crossing entry is one xdpkit refuses.
						table[7].valid = x.txU.FrameSize() != 4096
					}
					if tc.o.frameSize == 4001 {
						// 4001-byte chunks: 0xfe0 + 64 stays inside a chunk,
						// and 0x7e0 + 64 too.
						table[7].valid, table[8].valid = true, true
					}
					x.runTable(table, kernel)
				})
			}
		}
	})
}

// ALIGNED_INV_DESC_MULTI_BUFF, UNALIGNED_INV_DESC_MULTI_BUFF: the
// multi-buffer table; an invalid descriptor invalidates its whole packet.
func TestXSKInvalidDescMultiBuffer(t *testing.T) {
	xskModes(t, func(t *testing.T, mode redirect.Mode) {
		for _, tc := range []struct {
			name string
			o    xskOpts
		}{
			{"ALIGNED_INV_DESC_MULTI_BUFF", xskOpts{multiBuffer: true, mtu: xskJumboMTU}},
			{"UNALIGNED_INV_DESC_MULTI_BUFF", xskOpts{multiBuffer: true, mtu: xskJumboMTU, unaligned: true}},
		} {
			for _, kernel := range []bool{false, true} {
				name := tc.name + map[bool]string{false: "/xdpkit", true: "/kernel"}[kernel]
				t.Run(name, func(t *testing.T) {
					tc.o.mode = mode
					x := newXSKRun(t, tc.o)
					table := invalidDescMBTable(x.txU)
					if tc.o.unaligned && !kernel {
						// The descriptor 32 bytes before its frame crosses
						// into the previous one: xdpkit refuses it.
						table[15].valid, table[16].valid = false, false
					}
					x.runTable(table, kernel)
				})
			}
		}
	})
}

// SEND_RECEIVE_9K_PACKETS, SEND_RECEIVE_UNALIGNED, SEND_RECEIVE_UNALIGNED_9K_PACKETS.
func TestXSKMultiBufferAndUnaligned(t *testing.T) {
	xskModes(t, func(t *testing.T, mode redirect.Mode) {
		t.Run("SEND_RECEIVE_9K_PACKETS", func(t *testing.T) {
			x := newXSKRun(t, xskOpts{mode: mode, multiBuffer: true, mtu: xskJumboMTU})
			frags := x.run(stream(xskPktCount, xskJumboMTU), nil, false, recvOpts{})
			if frags[0] != 3 {
				t.Errorf("a 9000-byte packet arrived in %d descriptors, want 3 (3840+3840+1320)", frags[0])
			}
			x.finish()
		})
		t.Run("SEND_RECEIVE_UNALIGNED", func(t *testing.T) {
			x := newXSKRun(t, xskOpts{mode: mode, unaligned: true, frameSize: 3000})
			x.run(stream(xskPktCount, xskMinPkt), nil, false, recvOpts{})
			x.finish()
		})
		t.Run("SEND_RECEIVE_UNALIGNED_9K_PACKETS", func(t *testing.T) {
			x := newXSKRun(t, xskOpts{mode: mode, unaligned: true, frameSize: 4001, multiBuffer: true, mtu: xskJumboMTU})
			x.run(stream(xskPktCount, xskJumboMTU), nil, false, recvOpts{})
			x.finish()
		})
	})
}

// TOO_MANY_FRAGS: a packet of the most fragments the kernel takes
// arrives; one fragment more is refused (dropped by the kernel, when sent
// straight to it) without disturbing the next packet.
func TestXSKTooManyFrags(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/core/max_skb_frags")
	if err != nil {
		t.Skipf("no max_skb_frags: %v", err)
	}
	frags, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	max := frags + 1 // the selftest's max_frags
	xskModes(t, func(t *testing.T, mode redirect.Mode) {
		for _, kernel := range []bool{false, true} {
			t.Run(map[bool]string{false: "xdpkit", true: "kernel"}[kernel], func(t *testing.T) {
				x := newXSKRun(t, xskOpts{mode: mode, multiBuffer: true, mtu: xskJumboMTU})
				if got := x.tx.MaxPacketFrames(); got != max {
					t.Errorf("Socket.MaxPacketFrames = %d, the kernel takes %d", got, max)
				}
				var table []xdesc
				table = append(table, xdesc{0, xskMinPkt, true, 0}) // sync
				for i := range max {                                // the most fragments: valid
					table = append(table, xdesc{0, xskMinPkt, true, unix.XDP_PKT_CONTD * uint32(btoi(i < max-1))})
				}
				for i := range max + 1 { // one more: invalid
					table = append(table, xdesc{0, xskMinPkt, false, unix.XDP_PKT_CONTD * uint32(btoi(i < max))})
				}
				table = append(table, xdesc{0, xskMinPkt, true, 0}) // sync
				descs, want, invalid := x.tableRunFrames(table)
				x.exchange(descs, want, invalid, kernel)
			})
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// tableRunFrames is tableRun for a table whose invalid entries are valid
// descriptors in their own frames (too many of them make the packet
// invalid): every entry gets the next frame.
func (x *xskRun) tableRunFrames(table []xdesc) ([]unix.XDPDesc, []xpkt, []bool) {
	valid := make([]bool, len(table))
	for i := range table {
		valid[i] = table[i].valid
		table[i].valid = true
	}
	descs, _, _ := x.tableRun(table)
	invalid := make([]bool, len(table))
	var want []xpkt
	nb, total, ok := uint32(0), 0, true
	for i, e := range table {
		invalid[i] = !valid[i]
		total += int(e.len)
		ok = ok && valid[i]
		if e.options&unix.XDP_PKT_CONTD == 0 {
			if ok {
				want = append(want, xpkt{nb: nb, len: total})
			}
			nb, total, ok = nb+1, 0, true
		}
	}
	// tableRun numbered the packets as all valid: the same numbers.
	return descs, want, invalid
}

// STAT_RX_DROPPED: odd packets do not fit the receiver's frames (a large
// headroom leaves 1024 bytes of a 2048-byte frame) and are dropped and
// counted; the even ones arrive. (The selftest uses 4 KiB frames and a
// headroom xdpkit's umem refuses, as it leaves less than 1024 bytes.)
func TestXSKStatRXDropped(t *testing.T) {
	xskModes(t, func(t *testing.T, mode redirect.Mode) {
		x := newXSKRun(t, xskOpts{mode: mode, frameSize: 2048, rxHeadroom: 2048 - xskPacketHR - 1024})
		pkts := stream(xskPktCount, xskMinPkt)
		var want []xpkt
		for i := range pkts {
			if i%2 == 1 {
				pkts[i].len = 1400
			} else {
				want = append(want, pkts[i])
			}
		}
		x.run(pkts, want, false, recvOpts{})
		time.Sleep(10 * time.Millisecond)
		st, err := x.rx.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.RXDropped != xskPktCount/2 && st.RXDropped != xskPktCount/2-1 {
			t.Errorf("rx_dropped = %d, want %d", st.RXDropped, xskPktCount/2)
		}
		x.finish()
	})
}

// STAT_TX_INVALID: odd packets are 9001 bytes long, an invalid descriptor:
// Transmit refuses each (Stats.TXRefused); sent straight to the kernel,
// it counts each in tx_invalid_descs. The even ones arrive either way.
func TestXSKStatTXInvalid(t *testing.T) {
	xskModes(t, func(t *testing.T, mode redirect.Mode) {
		for _, kernel := range []bool{false, true} {
			t.Run(map[bool]string{false: "xdpkit", true: "kernel"}[kernel], func(t *testing.T) {
				x := newXSKRun(t, xskOpts{mode: mode})
				var table []xdesc
				for i := range xskPktCount {
					if i%2 == 1 {
						table = append(table, xdesc{0, xskInvalidSize, true, 0})
					} else {
						table = append(table, xdesc{0, xskMinPkt, true, 0})
					}
				}
				var want []xpkt
				for i := 0; i < xskPktCount; i += 2 {
					want = append(want, xpkt{nb: uint32(i), len: xskMinPkt})
				}
				errc := make(chan error, 1)
				go func() { errc <- x.sendOddInvalid(table, kernel) }()
				x.receive(want, recvOpts{})
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
				st, _ := x.tx.Stats()
				if kernel && st.TXInvalidDescs != xskPktCount/2 {
					t.Errorf("tx_invalid_descs = %d, want %d", st.TXInvalidDescs, xskPktCount/2)
				}
				if !kernel && (st.TXRefused != xskPktCount/2 || st.TXInvalidDescs != 0) {
					t.Errorf("TXRefused = %d, tx_invalid_descs = %d; want %d and 0", st.TXRefused, st.TXInvalidDescs, xskPktCount/2)
				}
				x.finish()
			})
		}
	})
}

// sendOddInvalid sends a long table batch by batch, each entry in the
// next frame (recycled after completion).
func (x *xskRun) sendOddInvalid(table []xdesc, kernel bool) error {
	s, u := x.tx, x.txU
	x.setInFlight([]xpkt{{len: xskMinPkt}})
	deadline := time.Now().Add(xskThreadTmout)
	for i := 0; i < len(table); {
		if time.Now().After(deadline) {
			return fmt.Errorf("sent %d of %d in %v", i, len(table), xskThreadTmout)
		}
		if x.mustPace(int64(i)) {
			s.Complete()
			time.Sleep(20 * time.Microsecond)
			continue
		}
		a, ok := u.Alloc()
		if !ok {
			s.Complete()
			_ = s.WaitTX(time.Millisecond)
			continue
		}
		e := table[i]
		copy(u.Frame(a), x.xskPacket(x.v.HostMAC, x.v.PeerMAC, uint32(i), int(min(e.len, xskMinPkt))))
		d := []unix.XDPDesc{{Addr: a, Len: e.len}}
		var n int
		var err error
		if kernel {
			x.unchecked = true
			n, err = s.TransmitUncheckedForTest(d)
		} else {
			n, err = s.Transmit(d)
		}
		switch {
		case errors.Is(err, afxdp.ErrInvalidDescriptor):
			_ = u.Free(a)
			i++
		case err != nil:
			return err
		case n == 0:
			_ = u.Free(a)
			s.Complete()
		default:
			i++
		}
	}
	return s.Flush(xskThreadTmout)
}

// STAT_RX_FULL: with a 1024-slot RX ring nobody reads, the kernel drops
// what does not fit and counts it; then the 1024 arrive.
// STAT_FILL_EMPTY: with the receiver holding every frame (1024 of them),
// the fill ring runs empty and the kernel counts it.
func TestXSKStatRXFullFillEmpty(t *testing.T) {
	xskModes(t, func(t *testing.T, mode redirect.Mode) {
		t.Run("STAT_RX_FULL", func(t *testing.T) {
			x := newXSKRun(t, xskOpts{mode: mode, rxRing: 1024, rxFill: 2048, rxFrames: 4096, noPace: true})
			if err := x.sendStreamSync(stream(1536, xskMinPkt), false, nil); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond)
			st, _ := x.rx.Stats()
			if st.RXRingFull == 0 {
				t.Errorf("rx_ring_full = 0 after 1536 frames into a 1024-slot ring nobody read")
			}
			x.receive(stream(1024, xskMinPkt), recvOpts{})
			x.finish()
		})
		t.Run("STAT_FILL_EMPTY", func(t *testing.T) {
			x := newXSKRun(t, xskOpts{mode: mode, rxRing: 1024, rxFrames: 1024, noPace: true})
			errc := x.sendStream(stream(1536, xskMinPkt), false, nil)
			descs := make([]unix.XDPDesc, 2048)
			held := 0
			deadline := time.Now().Add(xskThreadTmout)
			for held < 1024 && time.Now().Before(deadline) {
				_ = x.rx.Wait(100 * time.Millisecond)
				n, err := x.rx.Receive(descs[held:])
				if err != nil {
					t.Fatal(err)
				}
				for i, d := range descs[held : held+n] {
					x.checkPacket([]unix.XDPDesc{d}, xpkt{nb: uint32(held + i), len: xskMinPkt})
				}
				held += n // and keep them: the fill ring gets nothing back
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			st, _ := x.rx.Stats()
			if held != 1024 || st.RXFillRingEmptyDescs == 0 {
				t.Errorf("held %d frames, rx_fill_ring_empty_descs = %d; want 1024 and some", held, st.RXFillRingEmptyDescs)
			}
			if err := x.rx.Release(descs[:held]); err != nil {
				t.Fatal(err)
			}
			x.finish()
		})
	})
}

// TX_QUEUE_CONSUMER: copy mode sends at most 32 descriptors per sendto
// (the kernel's default budget), so 33 take two kicks.
func TestXSKTXQueueConsumer(t *testing.T) {
	xskModes(t, func(t *testing.T, mode redirect.Mode) {
		x := newXSKRun(t, xskOpts{mode: mode})
		before, _ := x.tx.Stats()
		errc := x.sendStream(stream(33, xskMinPkt), false, nil)
		x.receive(stream(33, xskMinPkt), recvOpts{})
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		after, _ := x.tx.Stats()
		if kicks := after.Kicks - before.Kicks; kicks < 2 {
			t.Errorf("33 descriptors went out in %d sendto calls; the kernel sends 32 per call", kicks)
		}
		x.finish()
	})
}
