//go:build linux

package afxdp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/sys"
)

// waitFor implements Wait.
func (s *sock) waitFor(timeout time.Duration) error {
	poller, rawConn, err := s.waitPoller()
	if err != nil {
		return err
	}
	s.memWaits(1)
	defer s.memWaits(-1)
	socks := [1]*sock{s}
	ready, timeout, err := settleWait(timeout, socks[:])
	if ready || err != nil {
		return s.timedOut(err)
	}
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	return s.timedOut(s.wait(poller, rawConn, deadline))
}

// pollSlice bounds one poll(2) of a WaitPoll or WaitAny, which poll the
// sockets alone: with an eventfd for Close to signal as a second fd per
// socket, every wake-up cost the kernel another file reference and
// wait-queue entry (3-5 ns of DUT CPU per frame in the bench's poll-mode
// rx-drop, at about 70 frames a wake-up). So Close does not wake them;
// they see Close when their slice ends, and Close waits that long at most.
const pollSlice = 10 * time.Millisecond

// waitPoll implements WaitPoll: pollWait on the one socket.
func (s *sock) waitPoll(timeout time.Duration) error {
	socks := [1]*sock{s}
	var fds [1]unix.PollFd
	return pollWait(timeout, socks[:], fds[:])
}

// pollWait is WaitPoll and WaitAny: poll(2) on the sockets' fds in slices
// of pollSlice until one has frames, the timeout passes or one of them is
// closed. Each counts it in its polls, which Close waits to drain before
// it closes the fd, so no slice polls an fd number Close has given back.
// fds has room for one entry per socket.
//
// The first slice keeps the goroutine's P (sys.PollHeld) unless a socket
// has Config.PollYields: under load nearly every wait ends within it, and
// a poll the scheduler knows of loses its P to sysmon and pays to get it
// back (bench poll-mode rx-drop, DUT CPU per frame, 4 alternations:
// 108-135 ns with every slice a plain poll(2), 77-88 with the first one
// held). It is a full slice, not a short one: 200 µs and 1 ms held
// slices cost 107-141 ns, most likely because a poll timeout shorter
// than the kernel's next timer reprograms the CPU's timer on every wait
// and again when the wait ends early, in a VM an exit each time.
func pollWait(timeout time.Duration, socks []*sock, fds []unix.PollFd) error {
	joined := 0
	defer func() {
		for _, s := range socks[:joined] {
			s.memWaits(-1)
			s.polls.Add(-1)
		}
	}()
	for _, s := range socks {
		s.polls.Add(1)
		s.memWaits(1)
		joined++
		if s.closing.Load() {
			return ErrClosed
		}
	}
	ready, left, err := settleWait(timeout, socks)
	switch {
	case ready:
		return nil
	case errors.Is(err, ErrTimeout):
		for _, s := range socks {
			if err := s.timedOut(ErrTimeout); !errors.Is(err, ErrTimeout) {
				return err
			}
		}
		return ErrTimeout
	case err != nil:
		return err
	}
	held := true
	for _, s := range socks {
		held = held && !s.cfg.PollYields
	}
	for i, s := range socks {
		fds[i] = unix.PollFd{Fd: int32(s.fd), Events: unix.POLLIN}
	}
	for ; ; held = false {
		slice := pollSlice
		if left >= 0 && left < pollSlice {
			slice = left
		}
		var got int
		var err error
		if held {
			got, err = sys.PollHeld(fds, slice)
		} else {
			slice = (slice + time.Millisecond - 1).Truncate(time.Millisecond)
			got, err = sys.Poll(fds, int(slice/time.Millisecond))
		}
		if err != nil {
			if len(socks) == 1 {
				return &OpError{Op: "wait: poll", Interface: socks[0].ifname, Queue: socks[0].queue, Err: err}
			}
			return err
		}
		for _, s := range socks {
			if s.closing.Load() {
				return ErrClosed
			}
		}
		switch {
		case got > 0:
			for _, s := range socks {
				if s.mem != nil {
					drainEventfd(s.fd)
				}
			}
			return nil
		case left >= 0 && left <= slice:
			for _, s := range socks {
				if err := s.timedOut(ErrTimeout); !errors.Is(err, ErrTimeout) {
					return err
				}
			}
			return ErrTimeout
		case left >= 0:
			left -= slice
		}
	}
}

// awaitPolls waits, after closing is set, for the WaitPolls and WaitAnys
// in flight to leave: each sees Close within a pollSlice. The bound only
// guards against one that never returns; the fd stays safe even then,
// because they look at closing after every slice.
func (s *sock) awaitPolls() {
	deadline := time.Now().Add(100 * pollSlice)
	for s.polls.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(pollSlice / 20)
	}
}

// waitContext implements WaitContext.
func (s *sock) waitContext(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	poller, rawConn, err := s.waitPoller()
	if err != nil {
		return err
	}
	s.memWaits(1)
	defer s.memWaits(-1)
	deadline, limited := ctx.Deadline()
	timeout := time.Duration(-1)
	if limited {
		timeout = max(time.Until(deadline), 0)
	}
	socks := [1]*sock{s}
	switch ready, _, err := settleWait(timeout, socks[:]); {
	case ready:
		return nil
	case errors.Is(err, ErrTimeout) && ctx.Err() != nil:
		return ctx.Err()
	case err != nil && !errors.Is(err, ErrTimeout):
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = poller.SetReadDeadline(time.Unix(1, 0)) })
	err = s.wait(poller, rawConn, deadline)
	if !stop() && ctx.Err() != nil {
		return ctx.Err()
	}
	return s.timedOut(err)
}

// timedOut passes err on, unless it is a timeout and the socket's device
// is gone: a socket whose interface was unregistered is unbound by the
// kernel and never has frames again, but nothing wakes its waits (poll
// reports nothing), so a loop that only receives would wait for ever.
// recvfrom tells: ENXIO when unbound, at once and harmlessly when bound.
// One syscall per idle timeout; ENETDOWN (the link is only down) is not
// an error here.
func (s *sock) timedOut(err error) error {
	if !errors.Is(err, ErrTimeout) || s.mem != nil {
		return err
	}
	s.pool.Lock()
	defer s.pool.Unlock()
	if s.closed { // Close has taken or will take the fd
		return err
	}
	s.stats.RXWakeups++
	if e := sys.WakeupRX(s.fd); errors.Is(e, unix.ENXIO) {
		return &OpError{Op: "wait", Interface: s.ifname, Queue: s.queue, Err: fmt.Errorf("the interface is gone: %w", e)}
	}
	return err
}

// prepareWait reports whether frames are waiting; if not, it makes sure
// the kernel is not waiting for us before the caller sleeps: it restocks
// the fill ring, wakes a driver that asked for it, and kicks frames left
// on the TX ring. coalesce is how long the caller is to sleep first,
// without a wake-up, when the socket has Config.Coalesce and received a
// burst since its last wait; 0 to wait for the kernel at once (counted
// in Waits).
func (s *sock) prepareWait() (ready bool, coalesce time.Duration, err error) {
	s.pool.Lock()
	defer s.pool.Unlock()
	if s.closed {
		return false, 0, ErrClosed
	}
	if s.rx.Available() > 0 {
		return true, 0, nil
	}
	burst := s.sinceWait >= CoalesceBurst
	s.sinceWait = 0
	if burst && s.cfg.Coalesce > 0 {
		coalesce = s.cfg.Coalesce
		s.stats.Coalesced++
	} else {
		s.stats.Waits++
	}
	s.pool.RefillLocked(s.pair, s.fill.Size())
	if s.needWakeup && s.fill.NeedWakeup() {
		s.stats.RXWakeups++
		_ = sys.WakeupRX(s.fd)
	}
	if s.tx.Pending() > 0 {
		_ = s.kickLocked()
	}
	return s.rx.Available() > 0, coalesce, nil
}

// coalesceSleep sleeps d for Config.Coalesce, keeping the goroutine's P
// if held (as WaitPoll's first slice does): unless a socket waited on
// has PollYields.
func coalesceSleep(d time.Duration, held bool) {
	if held {
		sys.SleepHeld(d)
		return
	}
	sys.Sleep(d)
}

// rxWaiting reports whether frames are waiting on the RX ring.
func (s *sock) rxWaiting() (bool, error) {
	s.pool.Lock()
	defer s.pool.Unlock()
	if s.closed {
		return false, ErrClosed
	}
	return s.rx.Available() > 0, nil
}

// settleWait is prepareWait on each of socks and, when one of them says
// to coalesce, the sleep (within timeout; negative: no limit) and a
// second look, which waits at once (the burst is counted). It reports
// whether frames are waiting on one of them and how much of timeout is
// left for the wait that follows if not, with ErrTimeout if the sleep
// took all of it, or ErrClosed if Close began meanwhile.
func settleWait(timeout time.Duration, socks []*sock) (ready bool, left time.Duration, err error) {
	var co time.Duration
	held := true
	for _, s := range socks {
		ready, c, err := s.prepareWait()
		if ready || err != nil {
			return ready, timeout, err
		}
		co = max(co, c)
		held = held && !s.cfg.PollYields
	}
	if co == 0 {
		return false, timeout, nil
	}
	if timeout >= 0 {
		co = min(co, timeout)
		timeout -= co
	}
	if co > 0 {
		coalesceSleep(co, held)
	}
	for _, s := range socks {
		if s.closing.Load() {
			return false, 0, ErrClosed
		}
		if timeout == 0 {
			ready, err = s.rxWaiting()
		} else {
			ready, _, err = s.prepareWait()
		}
		if ready || err != nil {
			return ready, timeout, err
		}
	}
	if timeout == 0 {
		return false, 0, ErrTimeout
	}
	return false, timeout, nil
}

func (s *sock) wait(poller *os.File, rawConn syscall.RawConn, deadline time.Time) error {
	if err := poller.SetReadDeadline(deadline); err != nil {
		return s.pollErr(err)
	}
	// Close closes the poller, which waits for this call to leave the
	// callback, before it unmaps the RX ring the callback reads.
	return s.pollErr(rawConn.Read(s.readyFn))
}

// waitTX implements WaitTX.
func (s *sock) waitTX(timeout time.Duration) error {
	poller, rawConn, err := s.waitPoller()
	if err != nil {
		return err
	}
	if room, err := s.prepareWaitTX(); room || err != nil {
		return err
	}
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	if err := poller.SetWriteDeadline(deadline); err != nil {
		return s.pollErr(err)
	}
	return s.pollErr(rawConn.Write(s.txRoomFn))
}

func (s *sock) prepareWaitTX() (room bool, err error) {
	s.pool.Lock()
	defer s.pool.Unlock()
	if s.closed {
		return false, ErrClosed
	}
	s.completeLocked()
	if s.tx.Room() {
		return true, nil
	}
	s.stats.Waits++
	if err := s.kickLocked(); err != nil && !errors.Is(err, unix.ENETDOWN) {
		return false, err
	}
	s.completeLocked()
	return s.tx.Room(), nil
}

// txRoom is WaitTX's poller callback, made once like readyFn.
func (s *sock) txRoom(uintptr) bool { return s.tx.Room() }

// rxReady is Wait's poller callback: true when the kernel has produced
// RX descriptors we have not released. It reads the ring's shared indices
// only, so it does not race with a Receive on another goroutine. It is a
// method value made once in Open, so a Wait allocates nothing.
func (s *sock) rxReady(uintptr) bool { return s.rx.Ready() }

// waitPoller returns the socket's poller file, registering a dup of the
// socket with Go's runtime poller on first use. Only sockets that wait
// register: once in the runtime's epoll set, the kernel wakes the epoll
// for every transmitted frame (sock_wfree), a cost a busy-looping socket
// should not pay.
func (s *sock) waitPoller() (*os.File, syscall.RawConn, error) {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closing.Load() { // set under closeMu: no poller is made after Close took it
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

// pollErr maps the poller's errors to ours. RawConn reports a closed file
// as an internal error value, not os.ErrClosed, so Close leaves a mark.
func (s *sock) pollErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ErrTimeout
	}
	if s.closing.Load() || errors.Is(err, os.ErrClosed) {
		return ErrClosed
	}
	return err
}

// busyPollOnce implements BusyPollOnce.
func (s *sock) busyPollOnce() {
	s.pool.Lock()
	defer s.pool.Unlock()
	if s.closed || s.mem != nil {
		return
	}
	s.stats.RXWakeups++
	_ = sys.WakeupRX(s.fd)
}

// waitAny implements WaitAny: pollWait on the sockets, with room for a
// few on the stack.
func waitAny(timeout time.Duration, socks ...*Socket) error {
	var sbuf [8]*sock
	var fbuf [8]unix.PollFd
	ss, fds := sbuf[:0], fbuf[:]
	if len(socks) > len(sbuf) {
		ss, fds = make([]*sock, 0, len(socks)), make([]unix.PollFd, len(socks))
	}
	for _, s := range socks {
		ss = append(ss, s.sock)
	}
	return pollWait(timeout, ss, fds[:len(ss)])
}
