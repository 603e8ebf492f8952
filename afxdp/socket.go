package afxdp

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/xdpkit/xdpkit/internal/xsk"
	"github.com/xdpkit/xdpkit/redirect"
	"github.com/xdpkit/xdpkit/ring"
	"github.com/xdpkit/xdpkit/umem"
)

// Desc describes one frame on a ring: its address in the UMEM, the
// packet's length, and option bits (PktContd). It is ring.Desc, which is
// unix.XDPDesc on Linux.
type Desc = ring.Desc

// PktContd (XDP_PKT_CONTD) in Desc.Options marks a descriptor whose packet
// continues in the next one.
const PktContd = ring.PktContd

// Open opens an AF_XDP socket on queue of the named interface. A nil cfg
// means all defaults: a private UMEM of 4096 x 4096-byte frames, 2048-slot
// rings, bind mode auto, need_wakeup on, and a private redirect program
// attached in auto mode. It needs CAP_NET_RAW, and for the program CAP_BPF
// and CAP_NET_ADMIN. When it fails it leaves nothing behind: the frames it
// put on rings are back in their pool, and a UMEM passed in Config can be
// used for another Open (the "zero-copy, else copy" pattern).
func Open(ifname string, queue int, cfg *Config) (*Socket, error) {
	return openName(ifname, queue, cfg)
}

// OpenIndex is Open with an interface index.
func OpenIndex(ifindex, queue int, cfg *Config) (*Socket, error) {
	return openIndex(ifindex, queue, cfg)
}

// WaitAny blocks until one of the sockets has received frames, timeout
// passes (ErrTimeout; a negative timeout waits without limit), or one of
// them is closed (ErrClosed), for one goroutine that drives several
// sockets, e.g. forwarding in both directions between two interfaces. It
// returns at once when frames are already waiting. It blocks the OS thread
// in poll(2), in slices of at most 10 ms: it sees Close of any of the
// sockets within a slice. It allocates nothing for up to 8 sockets.
func WaitAny(timeout time.Duration, socks ...*Socket) error { return waitAny(timeout, socks...) }

// Socket is an AF_XDP socket bound to one queue of one interface.
//
// All its methods are safe for concurrent use, and Close is safe against
// every call in flight: the rings stay mapped until those calls return,
// and calls after Close return ErrClosed. The data path of every socket
// on one frame pool is serialized by the pool's lock, so drive each pool
// from one goroutine (give sockets on other goroutines pools of their own,
// umem.UMEM.NewPool) to keep that lock uncontended.
type Socket struct{ *sock }

// sock is a Socket's state, apart from the Socket so that a Socket
// dropped without Close can be closed by the garbage collector (the
// cleanup holds the sock, never the Socket).
type sock struct {
	cfg     Config
	ifname  string
	ifindex int
	queue   int

	umem    *umem.UMEM  // the user's view of the UMEM
	x       *xsk.UMEM   // its implementation
	upool   *umem.Pool  // the pool the socket allocates from and accounts in
	pool    *xsk.Pool   // its implementation; its mutex guards the fields marked (pool)
	m       *xsk.Member // the socket's fd and ring pair in the UMEM
	fd      int
	ownUMEM bool
	pair    *xsk.Pair
	fill    *ring.Fill // the pair's, shared with sockets on the same queue
	comp    *ring.Completion
	rx      *ring.RX
	tx      *ring.TX

	steer      Registrar         // where the socket is registered
	prog       *redirect.Program // the private program, or Steering if it is a redirect program
	ownProg    bool
	registered bool

	mem *memKernel // a memory socket's kernel side (NewMemory); nil for a socket on a device

	// The UMEM's area in aligned mode, for Frame without calls (see
	// xsk.UMEM.AlignedArea); areaShift 0 otherwise.
	area       []byte
	areaShift  uint
	areaMapped *atomic.Bool

	zeroCopy   bool
	needWakeup bool
	busyPoll   bool   // Config.BusyPoll set: an empty RX ring makes Receive run the NAPI poll
	txOptions  uint32 // descriptor Options bits Transmit accepts
	txmdLen    uint32 // TX metadata the UMEM reserves in front of every packet (umem.TXMetadataLen or 0)
	// The TX metadata offloads of a zero-copy socket's driver, if the
	// kernel said (zcTXKnown): requests for others are refused.
	zcTX      TXFeatures
	zcTXKnown bool

	closed     bool      // (pool) set by Close once no call is in flight
	stats      Stats     // (pool)
	sinceWait  uint32    // (pool) RX descriptors taken since the last wait, for Coalesce
	stallSince time.Time // (pool) first time Transmit found the TX ring full with nothing completed

	closeMu sync.Mutex // guards poller and rawConn, which Close and Wait share
	poller  *os.File   // a dup of fd, registered with the runtime poller on the first Wait
	rawConn syscall.RawConn

	// closing is set by Close (under closeMu, for Wait's poller). WaitPoll
	// and WaitAny register with two atomic adds a wake-up: a wait counts
	// itself in polls, then looks at closing; Close sets closing, then
	// waits for polls to drop to 0. Sequentially consistent, so one of the
	// two sees the other.
	closing atomic.Bool
	polls   atomic.Int32

	readyFn   func(uintptr) bool // s.rxReady, bound once so a Wait does not allocate
	txRoomFn  func(uintptr) bool // s.txRoom, likewise for WaitTX
	maxFrags  int                // most descriptors of one packet the kernel takes
	closeOnce sync.Once
	closeErr  error
}

// Stats are a socket's counters: its own, counted by xdpkit, and the
// kernel's XDP_STATISTICS.
type Stats struct {
	RXPackets   uint64 // frames received
	RXBytes     uint64 // bytes received
	TXPackets   uint64 // frames put on the TX ring
	TXBytes     uint64 // bytes put on the TX ring
	TXCompleted uint64 // frames the kernel returned through the completion ring
	Kicks       uint64 // sendto calls made to start transmission
	RXWakeups   uint64 // recvfrom calls made for a fill ring that needed a wakeup, or to busy-poll (Receive, Discard, BusyPollOnce)
	Waits       uint64 // Wait calls that blocked in the poller
	Coalesced   uint64 // waits that first slept Config.Coalesce after a burst of frames
	TXStalls    uint64 // times Transmit reported ErrTXStalled
	TXRefused   uint64 // descriptors Transmit refused as invalid (ErrInvalidDescriptor)
	RXTooLong   uint64 // packets ReceivePackets dropped because they did not fit the caller's slice
	// TX timestamps lost because the log TXTimestamps reads was full; the
	// sockets of a queue's completion ring share the log and the count.
	TXTimestampsLost uint64

	// From the kernel (XDP_STATISTICS).
	RXDropped            uint64 // frames dropped for other reasons than the ones below
	RXInvalidDescs       uint64 // invalid descriptors on the fill ring
	TXInvalidDescs       uint64 // invalid descriptors on the TX ring
	RXRingFull           uint64 // frames dropped because the RX ring was full
	RXFillRingEmptyDescs uint64 // times the fill ring was empty when a frame arrived
	TXRingEmptyDescs     uint64 // times the TX ring was empty when the kernel looked
}

// FD returns the socket's file descriptor, e.g. to register it in an
// XSKMAP of your own. It stays owned by the Socket and is closed by Close.
func (s *Socket) FD() int { return s.fd }

// RingSizes are the slot counts of a socket's rings; 0 for a ring it does
// not have.
type RingSizes struct {
	RX, TX, Fill, Completion uint32
}

// RingSizes returns the sizes of the socket's four rings.
func (s *Socket) RingSizes() RingSizes {
	var r RingSizes
	if s.rx != nil {
		r.RX = s.rx.Size()
	}
	if s.tx != nil {
		r.TX = s.tx.Size()
	}
	if s.fill != nil {
		r.Fill = s.fill.Size()
	}
	if s.comp != nil {
		r.Completion = s.comp.Size()
	}
	return r
}

// Interface returns the interface name the socket is bound to.
func (s *Socket) Interface() string { return s.ifname }

// Ifindex returns the interface index the socket is bound to.
func (s *Socket) Ifindex() int { return s.ifindex }

// Queue returns the queue id the socket is bound to.
func (s *Socket) Queue() int { return s.queue }

// ZeroCopy reports whether the kernel bound the socket in zero-copy mode
// (XDP_OPTIONS); false means copy mode.
func (s *Socket) ZeroCopy() bool { return s.zeroCopy }

// UMEM returns the socket's UMEM, to allocate frames for Transmit or to
// read its frame counts.
func (s *Socket) UMEM() *umem.UMEM { return s.umem }

// Pool returns the frame pool the socket allocates from and accounts in:
// Config.Pool, or the UMEM's main pool. The socket receives into,
// transmits and releases only frames of this pool.
func (s *Socket) Pool() *umem.Pool { return s.upool }

// Program returns the redirect program the socket is registered in: the
// private one, or Config.Steering if that is a *redirect.Program; nil
// otherwise.
func (s *Socket) Program() *redirect.Program { return s.prog }

// MaxPacketFrames returns the most descriptors one packet may have on
// this socket: in copy mode the kernel's limit, MAX_SKB_FRAGS+1 (read
// from /proc/sys/net/core/max_skb_frags, or the package's MaxPacketFrames
// when that cannot be read); in zero-copy mode MaxPacketFrames, as the
// driver's own limit (NETDEV_A_DEV_XDP_ZC_MAX_SEGS) may be lower. It is
// capped by the TX ring size. Transmit refuses longer packets.
func (s *Socket) MaxPacketFrames() int { return s.maxFrags }

// MultiBuffer reports whether the socket was opened with
// Config.MultiBuffer: a packet may then span several descriptors.
func (s *Socket) MultiBuffer() bool { return s.cfg.MultiBuffer }

// Frame returns the bytes of a received (or to-be-sent) descriptor, in
// the UMEM, without copying, or nil if the descriptor is not inside the
// UMEM or runs past its frame. Their length is d.Len and their capacity
// reaches to the end of the frame, so a packet can grow in place. They
// may be modified. They are valid while the application holds the frame:
// until it is released or transmitted.
func (s *Socket) Frame(d Desc) []byte {
	if s.areaShift == 0 || !s.areaMapped.Load() {
		return s.frameSlow(d)
	}
	return alignedFrame(s.area, 1<<(s.areaShift&63)-1, d)
}

// Frames sets out[i] to Frame(descs[i]) for each descriptor (out must be
// at least as long): the batch form of Frame, a few ns cheaper per frame
// in aligned mode, where it is a shift and a slice.
func (s *Socket) Frames(descs []Desc, out [][]byte) {
	out = out[:len(descs)]
	if s.areaShift == 0 || !s.areaMapped.Load() {
		for i, d := range descs {
			out[i] = s.frameSlow(d)
		}
		return
	}
	area, mask := s.area, uint64(1)<<(s.areaShift&63)-1
	for i, d := range descs {
		out[i] = alignedFrame(area, mask, d)
	}
}

// alignedFrame is d's bytes in an aligned area of frames of mask+1
// bytes, capped at the frame's end, or nil if d runs past its frame or the
// area: an or and a slice, inlined into Frame and Frames.
func alignedFrame(area []byte, mask uint64, d Desc) []byte {
	a := d.Addr
	end := a | mask + 1 // of a's frame; 0 if a is in the last frame below 2^64
	if a >= end || end > uint64(len(area)) {
		return nil
	}
	// Sliced in two steps, each of which the checks above (and the
	// second's own) prove in bounds, so the compiler adds none.
	room := area[a:end:end]
	if uint64(d.Len) > uint64(len(room)) {
		return nil
	}
	return room[:d.Len]
}

func (s *Socket) frameSlow(d Desc) []byte {
	f := s.x.Frame(d.Addr)
	if uint32(len(f)) < d.Len {
		return nil
	}
	return f[:d.Len]
}

// FrameHeadroom returns the whole UMEM frame of d and the offset of d's
// data in it, or nil if d is not inside the UMEM. The bytes before the
// offset are the frame's headroom, at least XDP_PACKET_HEADROOM (256) in
// a received frame, plus umem.Options.Headroom: a packet can grow there
// at the front, to prepend a tunnel header say, and be transmitted from
// its new start (the descriptor of the new start is in the same frame).
func (s *Socket) FrameHeadroom(d Desc) (frame []byte, off int) {
	return s.x.FrameHead(d.Addr)
}

// TransmitBytes copies each packet of pkts into a frame of the socket's
// pool and transmits them, and returns how many it sent, always the first
// n: a generator's or a test's send, when the packets are not built in
// the UMEM. Frames not sent (the ring or the pool ran out) go back to the
// pool. A packet longer than a frame is refused with ErrPacketTooLong
// (send those with WritePacket on a MultiBuffer socket). It allocates
// nothing, taking the pool's lock once per batch of up to 64. On a UMEM
// with TX metadata each packet goes umem.TXMetadataLen bytes into its
// frame, which leaves that much less room.
func (s *Socket) TransmitBytes(pkts [][]byte) (int, error) {
	var addrs [64]uint64
	var descs [64]Desc
	off := uint64(s.txmdLen) // the packet's offset in its frame
	sent := 0
	for len(pkts) > 0 {
		batch := pkts[:min(len(pkts), len(addrs))]
		n := s.upool.AllocInto(addrs[:len(batch)])
		if n == 0 {
			return sent, nil
		}
		for i := range n {
			addrs[i] += off
			f := s.x.Frame(addrs[i])
			if len(batch[i]) > len(f) || len(batch[i]) == 0 {
				for j := range n {
					descs[j] = Desc{Addr: addrs[j]}
				}
				_ = s.release(descs[:n], false)
				if len(batch[i]) == 0 {
					return sent, errEmptyPacket
				}
				return sent, errPacketTooLong
			}
			descs[i] = Desc{Addr: addrs[i], Len: uint32(copy(f, batch[i]))}
		}
		k, err := s.Transmit(descs[:n])
		sent += k
		if k < n {
			_ = s.release(descs[k:n], false)
			return sent, err
		}
		if err != nil {
			return sent, err
		}
		pkts = pkts[n:]
	}
	return sent, nil
}

// Receive fills descs with up to len(descs) received frames and returns
// how many. It never blocks (see Wait). The frames belong to the caller
// until it hands them back with Release, or sends them with Transmit.
// Before reading, it restocks the fill ring from the pool's free frames.
// Finding the RX ring empty, it makes one non-blocking recvfrom if the
// driver asked to be woken (need_wakeup) or the socket busy-polls
// (Config.BusyPoll): the kernel then runs the device's NAPI poll in that
// call, on this CPU, as in BusyPollOnce, so a busy-polling loop is
// Receive alone (counted in Stats.RXWakeups).
func (s *Socket) Receive(descs []Desc) (int, error) { return s.receive(descs) }

// Release hands received (or allocated) frames back to the socket's pool;
// the next Receive puts them on the fill ring. It works after Close too,
// so a caller still holding frames can give them back. Descriptors of
// frames the application does not hold in this pool are skipped, and
// the error (wrapping umem.ErrFrameState) says so.
func (s *Socket) Release(descs []Desc) error { return s.release(descs, false) }

// Recycle is Release for a receive loop: the frames go straight back onto
// the socket's fill ring while it has room, for the kernel to fill again,
// and only the rest onto the free list, where Pool().Alloc finds them.
// It does in one pass what Release and the next Receive's refill do in
// two, as C programs hand received frames back to the fill ring. Use
// Release for frames you want to allocate again (to transmit, say).
// After Close it is Release.
func (s *Socket) Recycle(descs []Desc) error { return s.release(descs, true) }

// Discard takes up to len(descs) frames off the RX ring and puts them
// straight back on the fill ring, unread: Receive and Recycle in one
// call and one pass, with Receive's checks, for a loop that drops what it
// receives (a sink, a drop counter: pipeline.Runner with no stage and
// Final Drop). It returns how many frames it took and their bytes, 0
// when the ring is empty, and ErrClosed after Close. descs is scratch
// space: its length bounds the batch and its contents afterwards are
// unspecified. The frames never become the application's, so there is
// nothing to release. It allocates nothing.
func (s *Socket) Discard(descs []Desc) (frames int, bytes uint64, err error) {
	return s.discard(descs)
}

// Transmit puts up to len(descs) frames on the TX ring, makes the kernel
// send them, and returns how many it took, always the first n. The
// frames must be held by the application in the socket's pool (received,
// or from Pool().Alloc()); the taken ones belong to the kernel until they
// come back through the completion ring, which Transmit and Complete
// reap. Frames not taken stay the caller's: when the ring is full
// (retry later), or from the first descriptor the kernel would drop
// without completing it — zero length, past its frame's end, outside the
// UMEM, a frame not held, Options bits the socket does not use, and on a
// UMEM with TX metadata no room for it in front of the data or metadata
// the kernel would refuse (see the package doc, # TX metadata) — which is
// refused with an error wrapping ErrInvalidDescriptor. If the ring stays
// full with no completions for Config.TXStallTimeout, Transmit returns
// ErrTXStalled. On a MultiBuffer socket it takes whole packets only.
func (s *Socket) Transmit(descs []Desc) (int, error) { return s.transmit(descs) }

// Complete reaps the completion ring: frames the kernel finished sending
// go back to the pool's free list. It returns how many (0 after Close).
func (s *Socket) Complete() int { return s.complete() }

// PendingTX returns how many transmitted frames have not come back
// through the completion ring yet: this socket's, and those of other
// sockets of the UMEM bound to the same queue, which share its completion
// ring.
func (s *Socket) PendingTX() int { return s.pendingTX() }

// Flush kicks and reaps until every frame in transmission (PendingTX) has
// completed, or timeout passes (ErrTXStalled), or the socket is closed
// (ErrClosed).
func (s *Socket) Flush(timeout time.Duration) error { return s.flush(timeout) }

// Stats returns the socket's counters, reading the kernel's with one
// getsockopt. After Close it returns the last counters and ErrClosed.
func (s *Socket) Stats() (Stats, error) { return s.readStats() }

// Wait blocks until the RX ring has frames, the timeout passes
// (ErrTimeout, which is os.ErrDeadlineExceeded), or the socket is closed
// (ErrClosed). A negative timeout waits without limit. A wait that times
// out on a socket whose interface was deleted returns an error wrapping
// ENXIO instead: such a socket never receives again, and nothing else
// would tell a loop that only receives. It returns at once,
// without a syscall, when frames are already there. It waits in Go's
// runtime poller, so it parks the goroutine, not the thread.
func (s *Socket) Wait(timeout time.Duration) error { return s.waitFor(timeout) }

// WaitPoll is Wait in poll(2) on the calling thread instead of Go's
// runtime poller: it blocks the thread, not just the goroutine. Use it
// from a goroutine locked to its thread (runtime.LockOSThread, as
// package workers and pipeline.Config.LockOSThread do): the runtime
// poller would wake such a goroutine by handing it from the poller's
// thread to its own, two thread switches per wake-up, where poll(2)
// returns on the thread that waits. It polls the socket alone, so that
// a wake-up costs the kernel one file and one wait queue, and sleeps in
// slices of at most 10 ms: Close ends it (ErrClosed) within a slice. The
// first slice keeps the goroutine's place in the scheduler (its P), so
// that the wake-up costs no hand-off; see Config.PollYields for what that
// means for other goroutines and how to turn it off. It allocates nothing.
func (s *Socket) WaitPoll(timeout time.Duration) error { return s.waitPoll(timeout) }

// WaitContext is Wait until ctx is done; then it returns ctx.Err().
func (s *Socket) WaitContext(ctx context.Context) error { return s.waitContext(ctx) }

// WaitTX blocks until the TX ring has room for a descriptor, the timeout
// passes (ErrTimeout; negative waits without limit), or the socket is
// closed (ErrClosed). It first reaps completions and kicks the kernel,
// which in copy mode is what makes room; a ring that stays full (the link
// is down, the driver stalled) makes it wait in the runtime poller for
// the kernel's write-space wake-up. A transmitter that finds the ring
// full waits here instead of spinning.
func (s *Socket) WaitTX(timeout time.Duration) error { return s.waitTX(timeout) }

// BusyPollOnce makes one non-blocking recvfrom on the socket. With busy
// polling configured (Config.BusyPoll), the kernel runs the device's NAPI
// poll in this call, on this CPU, and the driver's interrupts stay
// deferred (napi_defer_hard_irqs) while the application polls. Receive
// and Discard make the same call when they find the RX ring empty, so a
// busy-polling receive loop needs no BusyPollOnce; a loop that only
// transmits, or that polls before it receives, calls it. Without busy
// polling it only wakes a zero-copy driver that asked for it. After Close
// it does nothing.
func (s *Socket) BusyPollOnce() { s.busyPollOnce() }

// BusyPolling reports whether the socket was opened with busy-poll options.
func (s *Socket) BusyPolling() bool {
	bp := s.cfg.BusyPoll
	return bp.Prefer || bp.Timeout > 0 || bp.Budget > 0
}

// Close removes the socket from the XSKMAP (first, so the program stops
// redirecting to it), wakes a blocked Wait, waits for the calls in flight
// to return (a WaitPoll or WaitAny sees Close when its poll slice ends,
// so Close may wait up to 10 ms for one), gives the frames on its RX ring
// back to the pool, unmaps its rings and closes it; frames the kernel
// still had for this queue return to the pool once the queue's last
// socket of the UMEM is closed. Then it detaches the private program and closes the private
// UMEM, if the socket owns them. Frames the application holds stay its
// own: Release still takes them back after Close. Close is idempotent and
// safe to call from any goroutine, at any time.
func (s *Socket) Close() error {
	if s == nil || s.sock == nil {
		return nil
	}
	return s.close()
}

// close is Close, once; the garbage collector's cleanup calls it too.
func (s *sock) close() error {
	s.closeOnce.Do(func() {
		if err := s.teardown(); err != nil {
			s.closeErr = &OpError{Op: "close", Interface: s.ifname, Queue: s.queue, Err: err}
		}
	})
	return s.closeErr
}
