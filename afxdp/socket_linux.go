//go:build linux

package afxdp

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/sys"
	"github.com/xdpkit/xdpkit/internal/xsk"
	"github.com/xdpkit/xdpkit/ring"
)

// receive implements Receive.
func (s *sock) receive(descs []unix.XDPDesc) (int, error) {
	s.pool.Lock()
	defer s.pool.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	return s.receiveLocked(descs), nil
}

func (s *sock) receiveLocked(descs []unix.XDPDesc) int {
	a, b, n := s.peekRX(len(descs))
	if n == 0 {
		return 0
	}
	k, bytes := s.pool.ReceiveLocked(s.pair, a, b, descs)
	s.rx.Release(n)
	s.stats.RXPackets += uint64(k)
	s.stats.RXBytes += bytes
	return k
}

// discard implements Discard: receiveLocked's ring work, with the frames
// put straight back on the fill ring instead of handed out.
func (s *sock) discard(descs []unix.XDPDesc) (int, uint64, error) {
	s.pool.Lock()
	defer s.pool.Unlock()
	if s.closed {
		return 0, 0, ErrClosed
	}
	a, b, n := s.peekRX(len(descs))
	if n == 0 {
		return 0, 0, nil
	}
	k, bytes := s.pool.DiscardLocked(s.pair, a, b, descs)
	s.rx.Release(n) // after DiscardLocked has read the descriptors
	s.stats.RXPackets += uint64(k)
	s.stats.RXBytes += bytes
	return k, bytes, nil
}

// peekRX restocks the fill ring if it is due and returns up to max
// descriptors waiting on the RX ring, in the ring's two runs; with none
// waiting it wakes a driver that asked for it.
func (s *sock) peekRX(max int) (a, b []unix.XDPDesc, n uint32) {
	if s.pair.RefillDueLocked() {
		s.pool.RefillLocked(s.pair, s.fill.Size())
	}
	idx, n := s.rx.Peek(uint32(max))
	s.sinceWait = min(s.sinceWait+n, CoalesceBurst) // saturating: only the threshold matters
	if n == 0 {
		// Zero-copy drivers sleep on an empty fill ring until woken; with
		// busy polling the recvfrom runs the device's NAPI poll on this
		// CPU (what BusyPollOnce does), so a busy-polling loop makes one
		// call, not two, and takes the pool's lock once, per empty look.
		if s.busyPoll && max > 0 || s.needWakeup && s.fill.NeedWakeup() {
			s.stats.RXWakeups++
			_ = sys.WakeupRX(s.fd)
		}
		return nil, nil, 0
	}
	a, b = s.rx.Descs(idx, n)
	return a, b, n
}

// release implements Release, and Recycle with toFill.
func (s *sock) release(descs []unix.XDPDesc, toFill bool) error {
	s.pool.Lock()
	var bad int
	if toFill && !s.closed { // once closed, the rings are gone
		bad = s.pool.RecycleLocked(s.pair, descs)
	} else {
		bad = s.pool.ReleaseLocked(descs)
	}
	s.pool.Unlock()
	if bad > 0 {
		return errReleaseNotHeld
	}
	return nil
}

// transmit implements Transmit.
func (s *sock) transmit(descs []unix.XDPDesc) (int, error) {
	s.pool.Lock()
	defer s.pool.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	return s.transmitLocked(descs)
}

func (s *sock) transmitLocked(descs []unix.XDPDesc) (int, error) {
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
	k, bytes, why := s.pool.StageTXLocked(s.pair, descs, s.txOptions)
	if why != xsk.OK {
		s.stats.TXRefused++
		bad = s.reasonError(why, descs[k].Options)
	}
	if s.cfg.MultiBuffer {
		if w := wholePackets(descs[:k]); w < k {
			s.pool.UnstageTXLocked(descs[w:k])
			for _, d := range descs[w:k] {
				bytes -= uint64(d.Len)
			}
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
	a, b := s.tx.Slots(idx, uint32(m))
	if s.x.Unaligned() {
		for i := range a {
			a[i] = descs[i]
			a[i].Addr = s.x.TXAddr(descs[i].Addr)
		}
		for i, d := range descs[len(a):m] {
			b[i] = d
			b[i].Addr = s.x.TXAddr(d.Addr)
		}
	} else { // the descriptors go on the ring as they are
		copy(b, descs[copy(a, descs[:m]):m])
	}
	for _, d := range descs[m:k] { // not sent: the ring had room for m
		bytes -= uint64(d.Len)
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
func (s *sock) checkStall() error {
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
	return errTXStalled
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
func (s *sock) kickLocked() error {
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

// complete implements Complete.
func (s *sock) complete() int {
	s.pool.Lock()
	defer s.pool.Unlock()
	if s.closed {
		return 0
	}
	return s.completeLocked()
}

func (s *sock) completeLocked() int {
	n := s.pool.ReapLocked(s.pair, s.comp.Size())
	s.stats.TXCompleted += uint64(n)
	return int(n)
}

// pendingTX implements PendingTX.
func (s *sock) pendingTX() int {
	s.pool.Lock()
	defer s.pool.Unlock()
	return s.pair.TXFramesLocked()
}

// flush implements Flush.
func (s *sock) flush(timeout time.Duration) error {
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
			return errTXStalled
		}
		time.Sleep(50 * time.Microsecond) // without the lock, so Close and other sockets get it
	}
}

func (s *sock) flushOnce() (done, progress bool, err error) {
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

// readStats implements Stats.
func (s *sock) readStats() (Stats, error) {
	s.pool.Lock()
	defer s.pool.Unlock()
	st := s.stats
	if s.closed {
		return st, ErrClosed
	}
	st.TXTimestampsLost = s.pair.TXTimestampsLostLocked()
	if k := s.mem; k != nil {
		k.mu.Lock()
		st.RXDropped, st.RXRingFull, st.RXFillRingEmptyDescs = k.stats.TooLong, k.stats.RXRingFull, k.stats.FillEmpty
		k.mu.Unlock()
		return st, nil
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

// reasonError maps why xsk refused a descriptor, with options opts, to
// its error.
func (s *sock) reasonError(r xsk.Reason, opts uint32) error {
	switch r {
	case xsk.ZeroLength:
		return errZeroLength
	case xsk.OutsideUMEM:
		return errOutsideUMEM
	case xsk.CrossesFrame:
		return errCrossesFrame
	case xsk.BadOptions:
		switch {
		case opts&ring.TXMetadata != 0 && s.txmdLen == 0:
			return errNoTXMetadata
		case s.cfg.MultiBuffer:
			return errBadOptions
		}
		return errNeedMultiBuffer
	case xsk.NotHeld:
		return errNotHeld
	case xsk.NoMetadataRoom:
		return errNoMetadataRoom
	case xsk.BadMetadata:
		return errBadMetadata
	}
	return nil
}
