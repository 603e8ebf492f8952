//go:build linux

package afxdp

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/netlink"
	"github.com/xdpkit/xdpkit/internal/sys"
	"github.com/xdpkit/xdpkit/internal/xsk"
	"github.com/xdpkit/xdpkit/redirect"
	"github.com/xdpkit/xdpkit/ring"
	"github.com/xdpkit/xdpkit/umem"
)

// openName implements Open.
func openName(ifname string, queue int, cfg *Config) (*Socket, error) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		closeHanded(cfg)
		return nil, linkError(ifname, queue, err)
	}
	return openLink(link, queue, cfg)
}

// openIndex implements OpenIndex.
func openIndex(ifindex, queue int, cfg *Config) (*Socket, error) {
	link, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		closeHanded(cfg)
		return nil, linkError(fmt.Sprintf("ifindex %d", ifindex), queue, err)
	}
	return openLink(link, queue, cfg)
}

// closeHanded closes Config.SocketFD for an Open that fails before it
// passed the socket on: Open owns it from the call on.
func closeHanded(cfg *Config) {
	if cfg != nil && cfg.SocketFD > 0 {
		_ = unix.Close(cfg.SocketFD)
	}
}

func linkError(name string, queue int, err error) error {
	if errors.Is(err, netlink.ErrNotFound) {
		err = fmt.Errorf("%w (check the name with 'ip link'; is it in this network namespace?): %w", ErrInterfaceNotFound, err)
	}
	return &OpError{Op: "open", Interface: name, Queue: queue, Err: err}
}

func openLink(link netlink.Link, queue int, cfg *Config) (_ *Socket, err error) {
	c := cfg.withDefaults()
	handed := c.SocketFD // ours to close until passed on to the UMEM or Join
	defer func() {
		if err != nil && handed > 0 {
			_ = unix.Close(handed)
		}
	}()
	opErr := func(op string, err error) error {
		return &OpError{Op: op, Interface: link.Name, Queue: queue, Err: err}
	}
	if err := c.validate(); err != nil {
		return nil, opErr("open", err)
	}
	if err := xsk.CheckKernel(); err != nil {
		return nil, opErr("open", err)
	}
	nq := max(link.NumRXQueues, link.NumTXQueues)
	if queue < 0 || nq > 0 && queue >= nq {
		return nil, opErr("open", fmt.Errorf("%w: queue %d, but %s has %d queues (0-%d)", ErrQueueOutOfRange, queue, link.Name, nq, nq-1))
	}
	s := &sock{cfg: c, ifname: link.Name, ifindex: link.Index, queue: queue, fd: -1, needWakeup: !c.DisableNeedWakeup}
	defer func() {
		if err != nil {
			_ = s.teardown()
		}
	}()

	if c.UMEM != nil && c.UMEM.Closed() {
		return nil, opErr("open", fmt.Errorf("UMEM: %w", umem.ErrClosed))
	}
	// Steering first: an interface taken by someone else's program is the
	// most likely failure, and the cheapest to find out.
	if s.steer = c.Steering; s.steer == nil {
		var ro redirect.Options
		if c.Redirect != nil {
			ro = *c.Redirect
		}
		ro.MultiBuffer = ro.MultiBuffer || c.MultiBuffer
		if s.prog, err = redirect.Attach(link.Index, &ro); err != nil {
			return nil, opErr("attach XDP program", permissionHint(err))
		}
		s.steer, s.ownProg = s.prog, true
	} else if p, ok := s.steer.(*redirect.Program); ok {
		s.prog = p
	}

	s.umem = c.UMEM
	if s.umem == nil {
		uo := c.UMEMOptions
		if handed > 0 {
			// A private UMEM registered on the socket handed over: no
			// socket(2) here, so no CAP_NET_RAW.
			o := umem.Options{}
			if uo != nil {
				o = *uo
			}
			o.SocketFD, handed = handed, 0
			uo = &o
		}
		if s.umem, err = umem.New(uo); err != nil {
			// umem.New says "umem:" in front of its cause; the OpError
			// says "afxdp:" already.
			return nil, opErr("create UMEM", errors.Unwrap(err))
		}
		s.ownUMEM = true
	}
	s.x = xsk.UMEMOf(s.umem)
	s.upool = s.umem.Pool
	if c.Pool != nil {
		if c.Pool.UMEM() != s.umem {
			return nil, opErr("open", fmt.Errorf("Config.Pool belongs to another UMEM: %w", ErrInvalidConfig))
		}
		s.upool = c.Pool
	}
	s.pool = xsk.PoolOf(s.upool)
	s.area, s.areaShift, s.areaMapped = s.x.AlignedArea()

	fd := -1
	if handed > 0 {
		fd, handed = handed, 0 // a socket of a shared UMEM: JoinFD owns it now
	}
	if s.m, err = s.x.JoinFD(link.Index, queue, s.pool, fd); err != nil {
		return nil, opErr("open", err)
	}
	s.fd, s.pair = s.m.FD, s.m.Pair
	s.fill, s.comp = s.pair.Fill, s.pair.Comp

	var bindFlags uint16
	if s.m.SharedFD < 0 {
		// The UMEM is registered on this socket: it sets the mode.
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
			bindFlags |= unix.XDP_USE_SG // see the package doc, # Multi-buffer packets
		}
	} else {
		bindFlags = unix.XDP_SHARED_UMEM // mode, need_wakeup and XDP_USE_SG come from the socket shared with
	}
	if c.MultiBuffer {
		s.txOptions = unix.XDP_PKT_CONTD
	}

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
	if c.TXBudget > 0 {
		if err = sys.SetsockoptInt(s.fd, unix.SOL_XDP, unix.XDP_MAX_TX_SKB_BUDGET, c.TXBudget); err != nil {
			if errors.Is(err, unix.ENOPROTOOPT) {
				err = fmt.Errorf("%w (XDP_MAX_TX_SKB_BUDGET needs Linux 6.16+): %w", ErrNotSupported, err)
			}
			return nil, opErr("set TX budget", err)
		}
	}

	// Stock the fill ring before bind, so the first frames find buffers.
	s.pool.Lock()
	s.pool.RefillLocked(s.pair, s.fill.Size())
	s.pool.Unlock()

	if err = s.bind(bindFlags); err != nil {
		return nil, opErr("bind", err)
	}
	s.m.Bound()
	opts, err := sys.Options(s.fd)
	if err != nil {
		return nil, opErr("get XDP options", err)
	}
	s.zeroCopy = opts&unix.XDP_OPTIONS_ZEROCOPY != 0
	s.initTXMetadata()
	s.readyFn, s.txRoomFn = s.rxReady, s.txRoom
	s.maxFrags = MaxPacketFrames
	if !s.zeroCopy {
		s.maxFrags = maxSKBFrags() + 1
	}
	s.maxFrags = min(s.maxFrags, int(c.TXRingSize))

	if err = s.steer.Register(queue, s.fd); err != nil {
		return nil, opErr("register in XSKMAP", err)
	}
	s.registered = true
	sk := &Socket{sock: s}
	// A Socket dropped without Close is closed when collected: it leaves
	// the XSKMAP and gives its queue and frames back.
	runtime.AddCleanup(sk, func(s *sock) { _ = s.close() }, s)
	return sk, nil
}

// bind binds the socket, retrying for a while on EBUSY, which the kernel
// returns while a socket just closed on the same queue is being released
// (also one of a process just killed).
func (s *sock) bind(flags uint16) error {
	deadline := time.Now().Add(s.cfg.BindRetryTimeout)
	for delay := 250 * time.Microsecond; ; delay = min(delay*2, 5*time.Millisecond) {
		err := sys.Bind(s.fd, s.ifindex, s.queue, flags, s.m.SharedFD)
		if err == nil {
			return nil
		}
		if errors.Is(err, unix.EBUSY) && time.Now().Before(deadline) {
			time.Sleep(delay)
			continue
		}
		if mbErr := multiBufferBindError(flags, err); mbErr != nil {
			return mbErr
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

func (s *sock) setBusyPoll() error {
	bp := s.cfg.BusyPoll
	s.busyPoll = bp != (BusyPoll{})
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

// teardown undoes what open did, also for a socket open left half made.
func (s *sock) teardown() error {
	var errs []error
	if s.mem != nil {
		s.mem.stop() // the kernel side stops before the frames are reclaimed
	}
	s.closeMu.Lock()
	s.closing.Store(true) // no wait starts from now on; a WaitPoll or WaitAny in poll(2) sees it within a slice
	poller := s.poller
	s.closeMu.Unlock()
	if s.registered {
		// A program closed before the socket took its XSKMAP along.
		if err := s.steer.Unregister(s.queue); err != nil && !errors.Is(err, os.ErrClosed) {
			errs = append(errs, err)
		}
		s.registered = false
	}
	if s.ownProg {
		// Detaching now also stops redirection for a socket that failed to register.
		errs = append(errs, s.prog.Close())
	}
	if poller != nil {
		// Wakes a Wait and waits for it to leave the poller.
		errs = append(errs, poller.Close())
	}
	s.awaitPolls()
	if s.mem != nil && s.fd >= 0 {
		errs = append(errs, sys.Close(s.fd)) // a memory socket's eventfd; a socket's own fd is its Member's
	}

	if s.pool != nil {
		s.pool.Lock() // waits for the data-path call in flight
		s.closed = true
		if s.m != nil {
			s.drainLocked()
		}
		if s.rx != nil {
			errs = append(errs, s.rx.Close())
		}
		if s.tx != nil {
			errs = append(errs, s.tx.Close())
		}
		s.pool.Unlock()
	}
	if s.m != nil {
		errs = append(errs, s.m.Leave())
	}
	if s.ownUMEM {
		errs = append(errs, s.umem.Close())
	}
	return errors.Join(errs...)
}

// closeDrainTimeout bounds how long Close lets the kernel take the frames
// left on the TX ring of a socket whose queue stays in use by another.
const closeDrainTimeout = 50 * time.Millisecond

// drainLocked gives the frames on the RX ring back to the pool and, when
// other sockets keep the queue's completion ring, lets the kernel send
// what is on the TX ring, so those frames complete there. (When this is
// the queue's last socket, Leave reclaims them all.)
func (s *sock) drainLocked() {
	if s.rx != nil {
		var buf [64]unix.XDPDesc
		for range s.rx.Size()/64 + 1 {
			idx, n := s.rx.Peek(uint32(len(buf)))
			if n == 0 {
				break
			}
			for i := uint32(0); i < n; i++ {
				buf[i] = *s.rx.Desc(idx + i)
			}
			s.rx.Release(n)
			s.pool.ReclaimLocked(buf[:n])
		}
	}
	if s.tx == nil || s.tx.Pending() == 0 || !s.m.SharesPair() {
		return
	}
	deadline := time.Now().Add(closeDrainTimeout)
	for s.tx.Pending() > 0 && time.Now().Before(deadline) {
		if err := s.kickLocked(); err != nil {
			break
		}
		if s.completeLocked() == 0 {
			time.Sleep(20 * time.Microsecond)
		}
	}
}

func permissionHint(err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		if !errors.Is(err, ErrPermission) {
			return fmt.Errorf("%w: %w", ErrPermission, err)
		}
	}
	return err
}

func notSupportedHint(err error) error {
	if errors.Is(err, unix.ENOPROTOOPT) || errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("%w (busy-poll options need Linux 5.11+): %w", ErrNotSupported, err)
	}
	return permissionHint(err)
}
