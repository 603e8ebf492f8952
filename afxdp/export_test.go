//go:build linux

package afxdp

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/xsk"
	"github.com/xdpkit/xdpkit/ring"
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
// frames the application holds count as in transmission until completed
// or reclaimed; descriptors of others (listed twice, outside the UMEM)
// change no count, and their completions, if the kernel sends any, are
// recorded as ownership errors.
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
	staged := 0
	for i, d := range descs {
		if s.pool.StageUncheckedLocked(s.pair, d.Addr) {
			staged++
		}
		s.tx.Set(idx+uint32(i), d)
	}
	s.tx.Submit(n)
	s.pool.CommitTXLocked(s.pair, staged)
	return len(descs), s.kickLocked()
}

// WholePacketsForTest is wholePackets: how many descriptors at the front
// of descs make up whole packets (where ReceivePackets and Transmit cut).
var WholePacketsForTest = wholePackets

// The errors checkPackets returns, to tell them apart.
var (
	ErrIncompleteForTest       = errIncomplete
	ErrTooManyFramesForTest    = errTooManyFrames
	ErrLongerThanTXRingForTest = errLongerThanTXRing
)

// CheckPacketsForTest runs checkPackets for a socket that takes at most
// maxFrags descriptors per packet and has a TX ring of txSize slots, over
// Go memory: no kernel, no socket.
func CheckPacketsForTest(descs []unix.XDPDesc, maxFrags int, txSize uint32) (int, error) {
	off := ring.Offsets{Producer: 0, Consumer: 64, Flags: 128, Desc: 192}
	w := make([]uint64, (off.Desc+uint64(txSize)*16)/8)
	tx, err := ring.NewTX(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(w))), len(w)*8), off, txSize)
	if err != nil {
		return 0, err
	}
	s := &sock{maxFrags: maxFrags, tx: tx}
	return s.checkPackets(descs)
}
