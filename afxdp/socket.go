//go:build linux

package afxdp

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/sys"
	"github.com/xdpkit/xdpkit/internal/xsk"
	"github.com/xdpkit/xdpkit/redirect"
	"github.com/xdpkit/xdpkit/ring"
	"github.com/xdpkit/xdpkit/umem"
)

// Socket is an AF_XDP socket bound to one queue of one interface.
//
// All its methods are safe for concurrent use, and Close is safe against
// every call in flight: the rings stay mapped until those calls return,
// and calls after Close return ErrClosed. The data path of every socket
// on one frame pool is serialized by the pool's lock, so drive each pool
// from one goroutine (give sockets on other goroutines pools of their own,
// umem.UMEM.NewPool) to keep that lock uncontended.
type Socket struct {
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

	prog       *redirect.Program // where the socket is registered, nil if nowhere
	ownProg    bool
	registered bool

	zeroCopy    bool
	needWakeup  bool
	txOptions   uint32       // descriptor Options bits Transmit accepts
	restoreNAPI func() error // puts back the interface's NAPI settings; nil if untouched

	closed     bool      // (pool) set by Close once no call is in flight
	stats      Stats     // (pool)
	stallSince time.Time // (pool) first time Transmit found the TX ring full with nothing completed

	closeMu  sync.Mutex // guards the fields below, which Close and the waits share
	closing  bool
	poller   *os.File // a dup of fd, registered with the runtime poller on the first Wait
	rawConn  syscall.RawConn
	wakeFD   int            // eventfd Close signals to end a WaitAny; -1 until one runs
	waitAnys sync.WaitGroup // WaitAny calls that may be in poll(2) on fd

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
	RXWakeups   uint64 // recvfrom calls made for a fill ring that needed a wakeup
	Waits       uint64 // Wait calls that blocked in the poller
	TXStalls    uint64 // times Transmit reported ErrTXStalled
	TXRefused   uint64 // descriptors Transmit refused as invalid (ErrInvalidDescriptor)
	RXTooLong   uint64 // packets ReceivePackets dropped because they did not fit the caller's slice

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

// Program returns the redirect program the socket is registered in, or nil.
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
// UMEM. They may be modified in place. They are valid while the
// application holds the frame: until it is released or transmitted.
func (s *Socket) Frame(d unix.XDPDesc) []byte { return s.x.Bytes(d.Addr, d.Len) }

// Receive fills descs with up to len(descs) received frames and returns
// how many. It never blocks (see Wait). The frames belong to the caller
// until it hands them back with Release, or sends them with Transmit.
// Before reading, it restocks the fill ring from the pool's free frames.
func (s *Socket) Receive(descs []unix.XDPDesc) (int, error) {
	s.pool.Lock()
	defer s.pool.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	return s.receiveLocked(descs), nil
}

func (s *Socket) receiveLocked(descs []unix.XDPDesc) int {
	s.pool.RefillLocked(s.pair, s.fill.Size())
	idx, n := s.rx.Peek(uint32(len(descs)))
	if n == 0 {
		if s.needWakeup && s.fill.NeedWakeup() {
			// Zero-copy drivers sleep on an empty fill ring until woken.
			s.stats.RXWakeups++
			_ = sys.WakeupRX(s.fd)
		}
		return 0
	}
	for i := uint32(0); i < n; i++ {
		descs[i] = *s.rx.Desc(idx + i)
	}
	s.rx.Release(n)
	k := s.pool.ReceivedLocked(descs[:n])
	var bytes uint64
	for i := range descs[:k] {
		bytes += uint64(descs[i].Len)
	}
	s.stats.RXPackets += uint64(k)
	s.stats.RXBytes += bytes
	return k
}

// Release hands received (or allocated) frames back to the socket's pool;
// the next Receive puts them on the fill ring. It works after Close too,
// so a caller still holding frames can give them back. Descriptors of
// frames the application does not hold in this pool are skipped, and
// the error (wrapping umem.ErrFrameState) says so.
func (s *Socket) Release(descs []unix.XDPDesc) error {
	s.pool.Lock()
	bad := s.pool.ReleaseLocked(descs)
	s.pool.Unlock()
	if bad > 0 {
		return errReleaseNotHeld
	}
	return nil
}

// Transmit puts up to len(descs) frames on the TX ring, makes the kernel
// send them, and returns how many it took, always the first n. The
// frames must be held by the application in the socket's pool (received,
// or from Pool().Alloc()); the taken ones belong to the kernel until they
// come back through the completion ring, which Transmit and Complete
// reap. Frames not taken stay the caller's: when the ring is full
// (retry later), or from the first descriptor the kernel would drop
// without completing it — zero length, past its frame's end, outside the
// UMEM, a frame not held, Options bits the socket does not use — which is
// refused with an error wrapping ErrInvalidDescriptor. If the ring stays
// full with no completions for Config.TXStallTimeout, Transmit returns
// ErrTXStalled. On a MultiBuffer socket it takes whole packets only.
func (s *Socket) Transmit(descs []unix.XDPDesc) (int, error) {
	s.pool.Lock()
	defer s.pool.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	return s.transmitLocked(descs)
}

func (s *Socket) transmitLocked(descs []unix.XDPDesc) (int, error) {
	if len(descs) == 0 {
		return 0, nil
	}
	var bad error
	if s.cfg.MultiBuffer {
		var whole int
		whole, bad = s.checkPackets(descs)
		descs = descs[:whole]
	}
	s.completeLocked()
	k, why := s.pool.StageTXLocked(s.pair, descs, s.txOptions)
	if why != xsk.OK {
		s.stats.TXRefused++
		bad = reasonError(why, s.cfg.MultiBuffer)
	}
	if s.cfg.MultiBuffer {
		if w := wholePackets(descs[:k]); w < k {
			s.pool.UnstageTXLocked(descs[w:k])
			k = w
		}
	}
	if k == 0 {
		return 0, bad
	}
	idx, n := s.tx.Reserve(uint32(k))
	if n == 0 {
		// Full: the kernel may simply not have been kicked yet.
		err := s.kickLocked()
		if err == nil && s.completeLocked() > 0 {
			idx, n = s.tx.Reserve(uint32(k))
		}
		if n == 0 {
			s.pool.UnstageTXLocked(descs[:k])
			if err == nil {
				err = s.checkStall()
			}
			return 0, err
		}
	}
	m := int(n)
	if s.cfg.MultiBuffer {
		if m = wholePackets(descs[:n]); m < int(n) {
			s.tx.Cancel(n - uint32(m))
		}
	}
	s.stallSince = time.Time{}
	var bytes uint64
	for i := range descs[:m] {
		d := descs[i]
		d.Addr = s.x.TXAddr(d.Addr)
		s.tx.Set(idx+uint32(i), d)
		bytes += uint64(d.Len)
	}
	if m > 0 {
		s.tx.Submit(uint32(m))
		s.pool.CommitTXLocked(s.pair, m)
	}
	s.pool.UnstageTXLocked(descs[m:k])
	s.stats.TXPackets += uint64(m)
	s.stats.TXBytes += bytes
	err := s.kickLocked()
	if err == nil && m == k {
		err = bad // everything before the refused descriptor went out
	}
	return m, err
}

// checkStall is called when the TX ring is full and nothing completed.
func (s *Socket) checkStall() error {
	now := time.Now()
	if s.stallSince.IsZero() {
		s.stallSince = now
		return nil
	}
	if now.Sub(s.stallSince) < s.cfg.TXStallTimeout {
		return nil
	}
	s.stats.TXStalls++
	s.stallSince = now
	return ErrTXStalled
}

// maxKicks bounds the sendto calls of one kick: copy mode sends at most 32
// frames per call (Config.TXBudget raises that) and says EAGAIN when
// frames remain.
const maxKicks = 64

// kickLocked makes the kernel process the TX ring, if it needs a syscall
// for that. EAGAIN and EBUSY (budget used up, completion ring full, a
// frame the driver dropped) are retried within a bound after reaping
// completions; the frames left stay on the ring for the next kick.
// ENETDOWN (link down) and ENXIO (device gone) are returned.
func (s *Socket) kickLocked() error {
	if s.needWakeup && !s.tx.NeedWakeup() {
		return nil
	}
	for range maxKicks {
		s.stats.Kicks++
		switch err := sys.Kick(s.fd); err {
		case nil:
			return nil
		case unix.EAGAIN, unix.EBUSY, unix.ENOBUFS:
			s.completeLocked()
			if s.tx.Pending() == 0 {
				return nil
			}
		default:
			return err
		}
	}
	return nil
}

// Complete reaps the completion ring: frames the kernel finished sending
// go back to the pool's free list. It returns how many (0 after Close).
func (s *Socket) Complete() int {
	s.pool.Lock()
	defer s.pool.Unlock()
	if s.closed {
		return 0
	}
	return s.completeLocked()
}

func (s *Socket) completeLocked() int {
	n := s.pool.ReapLocked(s.pair, s.comp.Size())
	s.stats.TXCompleted += uint64(n)
	return int(n)
}

// PendingTX returns how many transmitted frames have not come back
// through the completion ring yet: this socket's, and those of other
// sockets of the UMEM bound to the same queue, which share its completion
// ring.
func (s *Socket) PendingTX() int {
	s.pool.Lock()
	defer s.pool.Unlock()
	return s.pair.TXFramesLocked()
}

// Flush kicks and reaps until every frame in transmission (PendingTX) has
// completed, or timeout passes (ErrTXStalled), or the socket is closed
// (ErrClosed).
func (s *Socket) Flush(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		done, progress, err := s.flushOnce()
		switch {
		case err != nil || done:
			return err
		case progress:
			continue
		case time.Now().After(deadline):
			s.pool.Lock()
			s.stats.TXStalls++
			s.pool.Unlock()
			return ErrTXStalled
		}
		time.Sleep(50 * time.Microsecond) // without the lock, so Close and other sockets get it
	}
}

func (s *Socket) flushOnce() (done, progress bool, err error) {
	s.pool.Lock()
	defer s.pool.Unlock()
	switch {
	case s.closed:
		return false, false, ErrClosed
	case s.pair.TXFramesLocked() == 0:
		return true, false, nil
	}
	if err := s.kickLocked(); err != nil {
		return false, false, err
	}
	return false, s.completeLocked() > 0, nil
}

// Stats returns the socket's counters, reading the kernel's with one
// getsockopt. After Close it returns the last counters and ErrClosed.
func (s *Socket) Stats() (Stats, error) {
	s.pool.Lock()
	defer s.pool.Unlock()
	st := s.stats
	if s.closed {
		return st, ErrClosed
	}
	k, err := sys.Statistics(s.fd)
	if err != nil {
		return st, &OpError{Op: "get statistics", Interface: s.ifname, Queue: s.queue, Err: err}
	}
	st.RXDropped = k.Rx_dropped
	st.RXInvalidDescs = k.Rx_invalid_descs
	st.TXInvalidDescs = k.Tx_invalid_descs
	st.RXRingFull = k.Rx_ring_full
	st.RXFillRingEmptyDescs = k.Rx_fill_ring_empty_descs
	st.TXRingEmptyDescs = k.Tx_ring_empty_descs
	return st, nil
}

// Errors of Transmit and Release, preallocated so the per-packet path does
// not allocate them.
var (
	errReleaseNotHeld = &descError{"release: frames not held by the application in the socket's pool were skipped", umem.ErrFrameState}
	errZeroLength     = &descError{"zero-length descriptor (the kernel drops it without completing its frame)", nil}
	errOutsideUMEM    = &descError{"descriptor address outside the UMEM", nil}
	errCrossesFrame   = &descError{"descriptor runs past the end of its frame", nil}
	errBadOptions     = &descError{"descriptor Options bits the socket does not use (XDP_PKT_CONTD needs Config.MultiBuffer)", nil}
	errNotHeld        = &descError{"descriptor's frame is not held by the application in the socket's pool (sent or freed already, listed twice, another pool's)", umem.ErrFrameState}
)

// descError is a refused descriptor: it matches ErrInvalidDescriptor and,
// as a packet made of it is refused too, ErrInvalidPacket.
type descError struct {
	msg   string
	cause error // also matched, if set
}

func (e *descError) Error() string { return "afxdp: " + e.msg }

func (e *descError) Is(target error) bool {
	if e == errReleaseNotHeld {
		return target == umem.ErrFrameState
	}
	return target == ErrInvalidDescriptor || target == ErrInvalidPacket || e.cause != nil && errors.Is(e.cause, target)
}

// reasonError maps why xsk refused a descriptor to its error.
func reasonError(r xsk.Reason, multiBuffer bool) error {
	switch r {
	case xsk.ZeroLength:
		return errZeroLength
	case xsk.OutsideUMEM:
		return errOutsideUMEM
	case xsk.CrossesFrame:
		return errCrossesFrame
	case xsk.BadOptions:
		if multiBuffer {
			return errBadOptions
		}
		return errNeedMultiBuffer
	case xsk.NotHeld:
		return errNotHeld
	}
	return nil
}
