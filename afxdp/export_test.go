//go:build linux

package afxdp

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/xsk"
)

// CheckStallForTest runs the stall detector as Transmit does when the TX
// ring is full and nothing completed.
func (s *Socket) CheckStallForTest(timeout time.Duration) error {
	s.cfg.TXStallTimeout = timeout
	return s.checkStall()
}

var SocketErrorForTest = xsk.SocketError

// TransmitUncheckedForTest puts descs on the TX ring as they are, without
// Transmit's checks, to see what the kernel does with invalid ones. Their
// frames must be held by the application; they count as in transmission
// until completed or reclaimed.
func (s *Socket) TransmitUncheckedForTest(descs []unix.XDPDesc) (int, error) {
	s.pool.Lock()
	defer s.pool.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	idx, n := s.tx.Reserve(uint32(len(descs)))
	if int(n) < len(descs) {
		s.tx.Cancel(n)
		return 0, nil
	}
	for i, d := range descs {
		s.pool.StageUncheckedLocked(s.pair, d.Addr)
		s.tx.Set(idx+uint32(i), d)
	}
	s.tx.Submit(n)
	s.pool.CommitTXLocked(s.pair, len(descs))
	return len(descs), s.kickLocked()
}
