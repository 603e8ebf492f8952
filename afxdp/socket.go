//go:build linux

package afxdp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/netlink"
	"github.com/xdpkit/xdpkit/internal/sys"
	"github.com/xdpkit/xdpkit/redirect"
	"github.com/xdpkit/xdpkit/ring"
	"github.com/xdpkit/xdpkit/umem"
)

// Socket is an AF_XDP socket bound to one queue of one interface.
//
// One goroutine receives and one transmits (they may be the same); the
// methods are not safe for other concurrent use, except Close, which may
// be called from any goroutine, also while Wait is blocked.
type Socket struct {
	cfg     Config
	ifname  string
	ifindex int
	queue   int

	fd      int  // the AF_XDP socket
	ownFD   bool // false when fd is the UMEM's own socket, which the UMEM closes
	umem    *umem.UMEM
	pool    *umem.Pool // the frames this socket's accounting uses: Config.Pool or the UMEM's main pool
	ownUMEM bool
	rings   *umem.Rings // fill and completion rings this socket uses
	fill    *ring.Fill
	comp    *ring.Completion
	rx      *ring.RX
	tx      *ring.TX

	prog       *redirect.Program // where the socket is registered, nil if nowhere
	ownProg    bool
	registered bool

	poller      *os.File // a dup of fd, registered with the runtime poller on the first Wait; guarded by closeMu
	rawConn     syscall.RawConn
	waitReady   func(uintptr) bool // s.waitCheck, bound once
	peekReady   func(uintptr) bool // s.peekCheck, bound once
	framesReady bool               // set by peekCheck
	waitBlocked bool               // within one Wait: the callback already prepared to sleep

	zeroCopy    bool
	needWakeup  bool
	restoreNAPI func() error // puts back the interface's NAPI settings; nil if untouched

	stats      Stats
	stallSince time.Time // first time Transmit found the TX ring full with nothing completed

	closeOnce sync.Once
	closeErr  error
	closed    bool       // set by Close; read by the other methods, which must not race with it
	closeMu   sync.Mutex // guards closing, which a blocked Wait reads
	closing   bool
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

	// From the kernel (XDP_STATISTICS). The last three need Linux 5.9.
	RXDropped            uint64 // frames dropped for other reasons than the ones below
	RXInvalidDescs       uint64 // invalid descriptors on the fill ring
	TXInvalidDescs       uint64 // invalid descriptors on the TX ring
	RXRingFull           uint64 // frames dropped because the RX ring was full
	RXFillRingEmptyDescs uint64 // times the fill ring was empty when a frame arrived
	TXRingEmptyDescs     uint64 // times the TX ring was empty when the kernel looked
}

// Open opens an AF_XDP socket on queue of the named interface. A nil cfg
// means all defaults: a private UMEM of 4096 x 4096-byte frames, 2048-slot
// rings, bind mode auto, need_wakeup on, and a private redirect program
// attached in auto mode. It needs CAP_NET_RAW, and for the program CAP_BPF
// and CAP_NET_ADMIN.
func Open(ifname string, queue int, cfg *Config) (*Socket, error) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return nil, linkError(ifname, queue, err)
	}
	return open(link, queue, cfg)
}

// OpenIndex is Open with an interface index.
func OpenIndex(ifindex, queue int, cfg *Config) (*Socket, error) {
	link, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return nil, linkError(fmt.Sprintf("ifindex %d", ifindex), queue, err)
	}
	return open(link, queue, cfg)
}

func linkError(name string, queue int, err error) error {
	if errors.Is(err, netlink.ErrNotFound) {
		err = fmt.Errorf("%w (check the name with 'ip link'; is it in this network namespace?): %w", ErrInterfaceNotFound, err)
	}
	return &OpError{Op: "open", Interface: name, Queue: queue, Err: err}
}

func open(link netlink.Link, queue int, cfg *Config) (_ *Socket, err error) {
	c := cfg.withDefaults()
	opErr := func(op string, err error) error {
		return &OpError{Op: op, Interface: link.Name, Queue: queue, Err: err}
	}
	if err := c.validate(); err != nil {
		return nil, opErr("open", err)
	}
	nq := max(link.NumRXQueues, link.NumTXQueues)
	if queue < 0 || nq > 0 && queue >= nq {
		return nil, opErr("open", fmt.Errorf("%w: queue %d, but %s has %d queues (0-%d)", ErrQueueOutOfRange, queue, link.Name, nq, nq-1))
	}
	s := &Socket{cfg: c, ifname: link.Name, ifindex: link.Index, queue: queue, fd: -1, needWakeup: !c.DisableNeedWakeup}
	defer func() {
		if err != nil {
			_ = s.teardown()
		}
	}()

	// Steering first: an interface taken by someone else's program is the
	// most likely failure, and the cheapest to find out.
	switch {
	case c.Steering.None:
	case c.Steering.Program != nil:
		s.prog = c.Steering.Program
	default:
		s.prog, err = redirect.Attach(link.Index, &redirect.Options{Mode: c.Steering.XDPMode, MultiBuffer: c.MultiBuffer})
		if err != nil {
			return nil, opErr("attach XDP program", permissionHint(err))
		}
		s.ownProg = true
	}

	s.umem = c.UMEM
	if s.umem == nil {
		if s.umem, err = umem.New(c.UMEMOptions); err != nil {
			return nil, opErr("create UMEM", permissionHint(err))
		}
		s.ownUMEM = true
	} else if s.umem.Closed() {
		return nil, opErr("open", fmt.Errorf("UMEM: %w", umem.ErrClosed))
	}
	s.pool = s.umem.Pool
	if c.Pool != nil {
		if c.Pool.UMEM() != s.umem {
			return nil, opErr("open", fmt.Errorf("Config.Pool belongs to another UMEM: %w", ErrInvalidConfig))
		}
		s.pool = c.Pool
	}

	var bindFlags uint16
	if s.umem.ClaimPrimary(link.Index, queue) {
		// The first socket of a UMEM is the socket it is registered on.
		s.fd = s.umem.FD()
		s.rings = s.umem.PrimaryRings()
		switch c.Bind {
		case BindZeroCopy:
			bindFlags |= unix.XDP_ZEROCOPY
		case BindCopy:
			bindFlags |= unix.XDP_COPY
		}
		if s.needWakeup {
			bindFlags |= unix.XDP_USE_NEED_WAKEUP
		}
		if c.MultiBuffer {
			bindFlags |= unix.XDP_USE_SG // see multibuf.go
		}
	} else {
		if s.fd, err = sys.Socket(); err != nil {
			return nil, opErr("open socket", socketError(err))
		}
		s.ownFD = true
		pi, pq, _ := s.umem.Primary()
		if pi == link.Index && pq == queue {
			s.rings = s.umem.PrimaryRings() // same queue: the kernel shares the ring pair
		} else if s.rings, err = s.umem.NewRings(s.fd); err != nil {
			return nil, opErr("map fill/completion rings", err)
		}
		bindFlags = unix.XDP_SHARED_UMEM // mode and need_wakeup come from the UMEM's first socket
	}
	s.fill, s.comp = s.rings.Fill, s.rings.Completion

	if err = sys.SetRingSize(s.fd, unix.XDP_RX_RING, c.RXRingSize); err != nil {
		return nil, opErr("set RX ring size", err)
	}
	if err = sys.SetRingSize(s.fd, unix.XDP_TX_RING, c.TXRingSize); err != nil {
		return nil, opErr("set TX ring size", err)
	}
	off, err := sys.MmapOffsets(s.fd)
	if err != nil {
		return nil, opErr("get ring offsets", err)
	}
	if s.rx, err = ring.MapRX(s.fd, off.Rx, c.RXRingSize); err != nil {
		return nil, opErr("map RX ring", err)
	}
	if s.tx, err = ring.MapTX(s.fd, off.Tx, c.TXRingSize); err != nil {
		return nil, opErr("map TX ring", err)
	}
	if err = s.setBusyPoll(); err != nil {
		return nil, opErr("set busy-poll options", err)
	}
	if bp := c.BusyPoll; bp.DeferHardIRQs > 0 || bp.GROFlushTimeout > 0 {
		if s.restoreNAPI, err = applyNAPI(link.Name, bp.DeferHardIRQs, bp.GROFlushTimeout); err != nil {
			return nil, opErr("set NAPI options", err)
		}
	}
	if c.TXBudget > 0 {
		if err = sys.SetsockoptInt(s.fd, unix.SOL_XDP, unix.XDP_MAX_TX_SKB_BUDGET, c.TXBudget); err != nil {
			if errors.Is(err, unix.ENOPROTOOPT) {
				err = fmt.Errorf("%w (XDP_MAX_TX_SKB_BUDGET needs Linux 6.16+): %w", ErrNotSupported, err)
			}
			return nil, opErr("set TX budget", err)
		}
	}

	// Stock the fill ring before bind, so the first frames find buffers.
	s.pool.Refill(s.fill, s.fill.Size())

	if err = s.bind(bindFlags); err != nil {
		return nil, opErr("bind", err)
	}
	opts, err := sys.Options(s.fd)
	if err != nil {
		return nil, opErr("get XDP options", err)
	}
	s.zeroCopy = opts&unix.XDP_OPTIONS_ZEROCOPY != 0
	if bindFlags&unix.XDP_SHARED_UMEM != 0 {
		// need_wakeup is inherited; the TX ring flag tells whether it is on.
		s.needWakeup = !c.DisableNeedWakeup
	}

	s.waitReady, s.peekReady = s.waitCheck, s.peekCheck

	if s.prog != nil {
		if err = s.prog.Register(queue, s.fd); err != nil {
			return nil, opErr("register in XSKMAP", err)
		}
		s.registered = true
	}
	return s, nil
}

// bind binds the socket, retrying for a while on EBUSY, which the kernel
// returns while a socket just closed on the same queue is being released.
func (s *Socket) bind(flags uint16) error {
	deadline := time.Now().Add(s.cfg.BindRetryTimeout)
	for delay := time.Millisecond; ; delay = min(delay*2, 50*time.Millisecond) {
		err := sys.Bind(s.fd, s.ifindex, s.queue, flags, s.umem.FD())
		if err == nil {
			return nil
		}
		if errors.Is(err, unix.EBUSY) && time.Now().Before(deadline) {
			time.Sleep(delay)
			continue
		}
		if mbErr := multiBufferBindError(flags, err); mbErr != nil {
			return mbErr // see multibuf.go
		}
		switch {
		case errors.Is(err, unix.EBUSY):
			return fmt.Errorf("%w: another AF_XDP socket holds the queue", err)
		case flags&unix.XDP_ZEROCOPY != 0 && (errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EPROTONOSUPPORT)):
			return fmt.Errorf("%w: %w", ErrZeroCopyNotSupported, err)
		case errors.Is(err, unix.EINVAL) && flags&unix.XDP_SHARED_UMEM == 0 && s.cfg.Bind == BindAuto:
			return fmt.Errorf("%w (is queue %d active? check 'ethtool -l %s')", err, s.queue, s.ifname)
		}
		return permissionHint(err)
	}
}

func (s *Socket) setBusyPoll() error {
	bp := s.cfg.BusyPoll
	if bp.Prefer {
		if err := sys.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_PREFER_BUSY_POLL, 1); err != nil {
			return notSupportedHint(fmt.Errorf("SO_PREFER_BUSY_POLL: %w", err))
		}
	}
	if bp.Timeout > 0 {
		if err := sys.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_BUSY_POLL, int(bp.Timeout/time.Microsecond)); err != nil {
			return notSupportedHint(fmt.Errorf("SO_BUSY_POLL: %w", err))
		}
	}
	if bp.Budget > 0 {
		if err := sys.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_BUSY_POLL_BUDGET, bp.Budget); err != nil {
			return notSupportedHint(fmt.Errorf("SO_BUSY_POLL_BUDGET: %w", err))
		}
	}
	return nil
}

// FD returns the socket's file descriptor, e.g. to register it in an
// XSKMAP of your own. It stays owned by the Socket.
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
// Config.Pool, or the UMEM's main pool. Allocate frames to transmit with
// Pool().Alloc() when the socket has a pool of its own.
func (s *Socket) Pool() *umem.Pool { return s.pool }

// Program returns the redirect program the socket is registered in, or nil.
func (s *Socket) Program() *redirect.Program { return s.prog }

// Frame returns the bytes of a received (or to-be-sent) descriptor, in
// the UMEM, without copying. They may be modified in place. They are valid
// while the application owns the frame: until it is released, transmitted
// or the socket is closed.
func (s *Socket) Frame(d unix.XDPDesc) []byte { return s.umem.Bytes(d.Addr, d.Len) }

// Receive fills descs with up to len(descs) received frames and returns
// how many. It never blocks (see Wait). The frames belong to the caller
// until it hands them back with Release, or sends them with Transmit.
// Before reading, it restocks the fill ring from free frames.
func (s *Socket) Receive(descs []unix.XDPDesc) (int, error) {
	if s.closed {
		return 0, ErrClosed
	}
	s.pool.Refill(s.fill, s.fill.Size())
	idx, n := s.rx.Peek(uint32(len(descs)))
	if n == 0 {
		if s.needWakeup && s.fill.NeedWakeup() {
			// Zero-copy drivers sleep on an empty fill ring until woken.
			s.stats.RXWakeups++
			_ = sys.WakeupRX(s.fd)
		}
		return 0, nil
	}
	var bytes uint64
	for i := uint32(0); i < n; i++ {
		d := *s.rx.Desc(idx + i)
		descs[i] = d
		bytes += uint64(d.Len)
	}
	s.rx.Release(n)
	s.pool.MarkReceived(descs[:n])
	s.stats.RXPackets += uint64(n)
	s.stats.RXBytes += bytes
	return int(n), nil
}

// Release hands received (or allocated) frames back to the UMEM; the next
// Receive puts them on the fill ring.
func (s *Socket) Release(descs []unix.XDPDesc) error {
	return s.pool.ReleaseDescs(descs)
}

// Transmit puts up to len(descs) frames on the TX ring, makes the kernel
// send them, and returns how many it took. The frames must be held by the
// application (received, or from UMEM().Alloc()); the taken ones belong to
// the kernel until they come back through the completion ring, which
// Transmit and Complete reap. Frames not taken (the ring was full) stay
// the caller's. If the ring stays full with no completions for
// Config.TXStallTimeout, Transmit returns ErrTXStalled.
func (s *Socket) Transmit(descs []unix.XDPDesc) (int, error) {
	if s.closed {
		return 0, ErrClosed
	}
	if len(descs) == 0 {
		return 0, nil
	}
	s.Complete()
	idx, n := s.tx.Reserve(uint32(len(descs)))
	if n == 0 {
		// Full: the kernel may simply not have been kicked yet.
		if err := s.kick(); err != nil {
			return 0, err
		}
		if s.Complete() > 0 {
			idx, n = s.tx.Reserve(uint32(len(descs)))
		}
		if n == 0 {
			return 0, s.checkStall()
		}
	}
	s.stallSince = time.Time{}
	var bytes uint64
	for i := uint32(0); i < n; i++ {
		s.tx.Set(idx+i, descs[i])
		bytes += uint64(descs[i].Len)
	}
	s.tx.Submit(n)
	s.pool.MarkTransmit(descs[:n])
	s.stats.TXPackets += uint64(n)
	s.stats.TXBytes += bytes
	return int(n), s.kick()
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

// kick makes the kernel process the TX ring, if it needs a syscall for
// that. EAGAIN and EBUSY (budget used up, completion ring full, a frame the
// driver dropped) are retried within a bound after reaping completions; the
// frames left stay on the ring for the next kick.
func (s *Socket) kick() error {
	if s.needWakeup && !s.tx.NeedWakeup() {
		return nil
	}
	for range maxKicks {
		s.stats.Kicks++
		switch err := sys.Kick(s.fd); err {
		case nil:
			return nil
		case unix.EAGAIN, unix.EBUSY, unix.ENOBUFS:
			s.Complete()
			if s.tx.Pending() == 0 {
				return nil
			}
		case unix.ENETDOWN, unix.ENXIO:
			return err // the link went down: the caller must know
		default:
			return err
		}
	}
	return nil
}

// Complete reaps the completion ring: frames the kernel finished sending
// go back to the UMEM's free list. It returns how many.
func (s *Socket) Complete() int {
	n := s.pool.Reap(s.comp, s.comp.Size())
	s.stats.TXCompleted += uint64(n)
	return int(n)
}

// PendingTX returns how many transmitted frames have not come back through
// the completion ring yet.
func (s *Socket) PendingTX() int { return s.pool.Counts().TX }

// Flush kicks and reaps until every frame this socket's pool has in
// transmission has completed, or timeout passes (ErrTXStalled).
func (s *Socket) Flush(timeout time.Duration) error {
	if s.closed {
		return ErrClosed
	}
	deadline := time.Now().Add(timeout)
	for s.pool.Counts().TX > 0 {
		if err := s.kick(); err != nil && !errors.Is(err, unix.EAGAIN) {
			return err
		}
		if s.Complete() == 0 {
			if time.Now().After(deadline) {
				s.stats.TXStalls++
				return ErrTXStalled
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	return nil
}

// Wait blocks until the RX ring has frames, the timeout passes
// (ErrTimeout, which is os.ErrDeadlineExceeded), or the socket is closed
// (ErrClosed). A negative timeout waits without limit. It returns at once,
// without a syscall, when frames are already there. It waits in Go's
// runtime poller, so it parks the goroutine, not the thread.
func (s *Socket) Wait(timeout time.Duration) error {
	_, rawConn, err := s.waitPoller()
	if err != nil {
		return err
	}
	// Frames already there: return without reading the clock or arming a
	// deadline. (The check runs inside the poller, like the wait, so Close
	// cannot unmap the ring under it; it fails harmlessly while an earlier
	// Wait's deadline has expired.)
	if rawConn.Read(s.peekReady) == nil && s.framesReady {
		return nil
	}
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	return s.wait(deadline)
}

// peekCheck records whether frames are waiting, without blocking.
func (s *Socket) peekCheck(uintptr) bool {
	s.framesReady = s.rx.Available() > 0
	return true
}

// WaitContext is Wait until ctx is done; then it returns ctx.Err().
func (s *Socket) WaitContext(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	deadline, _ := ctx.Deadline()
	poller, _, err := s.waitPoller()
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = poller.SetReadDeadline(time.Unix(1, 0)) })
	err = s.wait(deadline)
	if !stop() && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func (s *Socket) wait(deadline time.Time) error {
	poller, rawConn, err := s.waitPoller()
	if err != nil {
		return err
	}
	// Everything that touches the rings runs inside the RawConn callback:
	// Close waits for it to return before unmapping them.
	if err := poller.SetReadDeadline(deadline); err != nil {
		return s.pollErr(err)
	}
	s.waitBlocked = false
	return s.pollErr(rawConn.Read(s.waitReady))
}

// waitPoller returns the socket's poller file, registering a dup of the
// socket with Go's runtime poller on first use. Only sockets that wait
// register: once in the runtime's epoll set, the kernel wakes the epoll
// for every transmitted frame (sock_wfree), a cost a busy-looping socket
// should not pay.
func (s *Socket) waitPoller() (*os.File, syscall.RawConn, error) {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closing {
		return nil, nil, ErrClosed
	}
	if s.poller == nil {
		pfd, err := sys.Dup(s.fd)
		if err != nil {
			return nil, nil, &OpError{Op: "dup socket", Interface: s.ifname, Queue: s.queue, Err: err}
		}
		f := os.NewFile(uintptr(pfd), fmt.Sprintf("xsk:%s:%d", s.ifname, s.queue))
		rc, err := f.SyscallConn()
		if err != nil {
			f.Close()
			return nil, nil, &OpError{Op: "register with the poller", Interface: s.ifname, Queue: s.queue, Err: err}
		}
		s.poller, s.rawConn = f, rc
	}
	return s.poller, s.rawConn, nil
}

// waitCheck is Wait's poller callback: true when frames are there. The
// first time it finds none it wakes whatever the kernel waits for before
// the goroutine sleeps. It is a method value made once in Open, so a Wait
// allocates nothing.
func (s *Socket) waitCheck(uintptr) bool {
	if s.rx.Available() > 0 {
		return true
	}
	if s.waitBlocked {
		return false
	}
	s.waitBlocked = true
	s.stats.Waits++
	// Before sleeping, make sure the kernel is not waiting for us.
	if s.needWakeup && s.fill.NeedWakeup() {
		s.stats.RXWakeups++
		_ = sys.WakeupRX(s.fd)
	}
	if s.tx.Pending() > 0 {
		_ = s.kick()
	}
	return s.rx.Available() > 0
}

// pollErr maps the poller's errors to ours. RawConn reports a closed file
// as an internal error value, not os.ErrClosed, so Close leaves a mark.
func (s *Socket) pollErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ErrTimeout
	}
	s.closeMu.Lock()
	closing := s.closing
	s.closeMu.Unlock()
	if closing || errors.Is(err, os.ErrClosed) {
		return ErrClosed
	}
	return err
}

// Stats returns the socket's counters, reading the kernel's with one
// getsockopt.
func (s *Socket) Stats() (Stats, error) {
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

// Close removes the socket from the XSKMAP (before anything else, so the
// program stops redirecting to it), wakes a blocked Wait, unmaps the rings,
// closes the socket, and closes the private program and UMEM if the socket
// owns them. A shared UMEM's first socket stays bound in the kernel until
// the UMEM is closed. Close is idempotent and safe to call from another
// goroutine while Wait is blocked.
func (s *Socket) Close() error {
	if s == nil {
		return nil
	}
	s.closeOnce.Do(func() {
		if err := s.teardown(); err != nil {
			s.closeErr = &OpError{Op: "close", Interface: s.ifname, Queue: s.queue, Err: err}
		}
	})
	return s.closeErr
}

func (s *Socket) teardown() error {
	s.closeMu.Lock()
	s.closing = true
	poller := s.poller // no Wait creates one from now on
	s.closeMu.Unlock()
	var errs []error
	if s.registered {
		errs = append(errs, s.prog.Unregister(s.queue))
		s.registered = false
	}
	if s.ownProg {
		// Detaching now also stops redirection for a socket that failed to register.
		errs = append(errs, s.prog.Close())
	}
	if poller != nil {
		// Waits for a Wait in progress to leave the poller.
		errs = append(errs, poller.Close())
	}
	s.closed = true
	if s.rx != nil {
		errs = append(errs, s.rx.Close())
	}
	if s.tx != nil {
		errs = append(errs, s.tx.Close())
	}
	if s.rings != nil {
		errs = append(errs, s.rings.Close())
	}
	if s.ownFD && s.fd >= 0 {
		errs = append(errs, sys.Close(s.fd))
	}
	if s.ownUMEM {
		errs = append(errs, s.umem.Close())
	}
	if s.restoreNAPI != nil {
		errs = append(errs, s.restoreNAPI())
	}
	return errors.Join(errs...)
}

func socketError(err error) error {
	if errors.Is(err, unix.EAFNOSUPPORT) {
		return fmt.Errorf("AF_XDP is not supported by this kernel (needs CONFIG_XDP_SOCKETS, Linux 5.4+): %w: %w", ErrNotSupported, err)
	}
	return permissionHint(err)
}

func permissionHint(err error) error {
	if errors.Is(err, os.ErrPermission) && !errors.Is(err, ErrPermission) {
		return fmt.Errorf("%w: %w", ErrPermission, err)
	}
	return err
}

func notSupportedHint(err error) error {
	if errors.Is(err, unix.ENOPROTOOPT) || errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("%w (busy-poll options need Linux 5.11+): %w", ErrNotSupported, err)
	}
	return permissionHint(err)
}
