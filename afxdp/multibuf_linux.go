//go:build linux

package afxdp

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/sys"
)

// receivePackets implements ReceivePackets.
func (s *sock) receivePackets(descs []unix.XDPDesc) (int, error) {
	s.pool.Lock()
	defer s.pool.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	// Look at the waiting descriptors without taking them, then take the
	// whole packets among them: the ring only grows meanwhile, as nobody
	// else consumes it.
	idx, got := s.rx.Peek(uint32(len(descs)))
	for i := range got {
		descs[i] = *s.rx.Desc(idx + i)
	}
	n := uint32(wholePackets(descs[:got]))
	s.rx.Unpeek(got)
	if n == 0 && got > 0 && got == uint32(len(descs)) {
		s.dropPacketLocked()
		s.receiveLocked(descs[:0]) // still restock the fill ring
		return 0, errPacketTooLong
	}
	// n == 0 with got < len(descs) cannot happen, as the kernel publishes
	// whole packets; receiveLocked(descs[:0]) then restocks and wakes as usual.
	return s.receiveLocked(descs[:n]), nil
}

// dropPacketLocked takes the packet at the head of the RX ring off it and
// gives its frames back to the pool.
func (s *sock) dropPacketLocked() {
	for range s.rx.Size() {
		idx, got := s.rx.Peek(1)
		if got == 0 {
			break
		}
		d := *s.rx.Desc(idx)
		s.rx.Release(1)
		s.pool.ReclaimLocked([]unix.XDPDesc{d})
		if d.Options&unix.XDP_PKT_CONTD == 0 {
			break
		}
	}
	s.stats.RXTooLong++
}

// writePacket implements WritePacket.
func (s *sock) writePacket(descs []unix.XDPDesc, pkt []byte) (int, error) {
	s.pool.Lock()
	defer s.pool.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	if len(pkt) == 0 {
		return 0, errEmptyPacket
	}
	off := uint64(s.txmdLen) // every descriptor leaves room for TX metadata
	fs := int(s.umem.FrameSize()) - int(off)
	n := (len(pkt) + fs - 1) / fs
	switch {
	case n > 1 && !s.cfg.MultiBuffer:
		return 0, errNeedMultiBuffer
	case n > len(descs):
		return 0, errPacketTooLong
	case n > s.pool.FreeFramesLocked():
		return 0, errNoFrames
	}
	for i := range n {
		addr, _ := s.pool.AllocLocked() // cannot fail: enough frames are free
		chunk := pkt[i*fs : min((i+1)*fs, len(pkt))]
		copy(s.x.Frame(addr+off), chunk)
		descs[i] = unix.XDPDesc{Addr: addr + off, Len: uint32(len(chunk)), Options: unix.XDP_PKT_CONTD}
	}
	descs[n-1].Options = 0
	return n, nil
}

// checkPackets returns how many descriptors at the front of descs form
// complete packets of at most MaxPacketFrames (and TX ring size)
// descriptors, and, if that is not all of them, why the next packet is
// not one. Transmit checks each descriptor itself.
func (s *sock) checkPackets(descs []unix.XDPDesc) (whole int, bad error) {
	start := 0
	for i := range descs {
		if i-start+1 > s.maxFrags {
			if s.maxFrags == int(s.tx.Size()) {
				return start, errLongerThanTXRing
			}
			return start, errTooManyFrames
		}
		if descs[i].Options&unix.XDP_PKT_CONTD == 0 {
			start = i + 1
		}
	}
	if start < len(descs) {
		return start, errIncomplete
	}
	return start, nil
}

// multiBufferBindError explains a bind error caused by XDP_USE_SG in
// flags, or returns nil if err is not one. Kernels before 6.6 reject the
// unknown flag with EINVAL; zero-copy drivers without multi-buffer support
// (NETDEV_A_DEV_XDP_ZC_MAX_SEGS of 1) answer EOPNOTSUPP.
func multiBufferBindError(flags uint16, err error) error {
	if flags&unix.XDP_USE_SG == 0 {
		return nil
	}
	const hint = "multi-buffer AF_XDP needs Linux 6.6+ and driver support (bind flag XDP_USE_SG, Config.MultiBuffer)"
	switch {
	case errors.Is(err, unix.EOPNOTSUPP) && flags&unix.XDP_ZEROCOPY != 0:
		return fmt.Errorf("%w; with MultiBuffer it must support zero-copy multi-buffer too: %w", ErrZeroCopyNotSupported, err)
	case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EINVAL) && sys.KernelBefore(6, 6):
		return fmt.Errorf("%s: %w: %w", hint, ErrNotSupported, err)
	}
	return nil
}
