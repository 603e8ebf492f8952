//go:build linux

package afxdp

import "time"

// CheckStallForTest runs the stall detector as Transmit does when the TX
// ring is full and nothing completed.
func (s *Socket) CheckStallForTest(timeout time.Duration) error {
	s.cfg.TXStallTimeout = timeout
	return s.checkStall()
}

var SocketErrorForTest = socketError
