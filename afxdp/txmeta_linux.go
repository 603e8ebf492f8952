//go:build linux

package afxdp

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/xdpkit/xdpkit/internal/netlink"
	"github.com/xdpkit/xdpkit/internal/sys"
	"github.com/xdpkit/xdpkit/internal/xsk"
	"github.com/xdpkit/xdpkit/ring"
)

// txMetadataFeatures implements TXMetadataFeatures.
func txMetadataFeatures(ifname string) (TXFeatures, error) {
	opErr := func(err error) error {
		return &OpError{Op: "get TX metadata features of " + ifname, Err: err}
	}
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		if errors.Is(err, netlink.ErrNotFound) {
			err = fmt.Errorf("%w: %w", ErrInterfaceNotFound, err)
		}
		return 0, opErr(err)
	}
	f, ok, err := sys.NetdevXSKFeatures(link.Index)
	switch {
	case errors.Is(err, sys.ErrNoNetdevFamily):
		return 0, opErr(fmt.Errorf("%w (TX metadata needs Linux 6.8+): %w", ErrNotSupported, err))
	case err != nil:
		return 0, opErr(err)
	case !ok:
		return 0, opErr(fmt.Errorf("the kernel reports no xsk-features (Linux 6.8+): %w", ErrNotSupported))
	}
	return TXFeatures(f), nil
}

// initTXMetadata sets the socket up for its UMEM's TX metadata, once
// bound: Transmit accepts XDP_TX_METADATA, and a zero-copy socket learns
// what its driver does with it. A failed query leaves the driver's
// features unknown, and requests unchecked.
func (s *sock) initTXMetadata() {
	if s.txmdLen = s.x.TXMetadataLen(); s.txmdLen == 0 {
		return
	}
	s.txOptions |= ring.TXMetadata
	if s.zeroCopy && s.mem == nil {
		if f, ok, err := sys.NetdevXSKFeatures(s.ifindex); err == nil && ok {
			s.zcTX, s.zcTXKnown = TXFeatures(f), true
		}
	}
}

// txMetadata returns the TX metadata bytes in front of d's data for a
// request that needs feature, after the checks every request makes. It
// changes nothing.
func (s *sock) txMetadata(d *Desc, feature TXFeatures) ([]byte, error) {
	if s.txmdLen == 0 {
		return nil, errNoTXMetadata
	}
	if s.zeroCopy && s.zcTXKnown && !s.zcTX.Has(feature) {
		switch feature {
		case TXFeatureChecksum:
			return nil, errZCNoChecksum
		case TXFeatureTimestamp:
			return nil, errZCNoTimestamp
		}
		return nil, errZCNoLaunchTime
	}
	b := s.x.TXMetadataBytes(d.Addr)
	if b == nil {
		if s.x.DataAddr(d.Addr) >= uint64(s.umem.FrameCount())*uint64(s.umem.FrameSize()) {
			return nil, errOutsideUMEM
		}
		return nil, errNoMetadataRoom
	}
	return b, nil
}

// addTXMetadata adds flag to d's TX metadata b, clearing it first if d
// did not carry metadata yet, and marks d as carrying it.
func addTXMetadata(d *Desc, b []byte, flag uint64) {
	if d.Options&ring.TXMetadata == 0 {
		clear(b)
		d.Options |= ring.TXMetadata
	}
	f := b[xsk.TXMDFlagsOff:]
	binary.NativeEndian.PutUint64(f, binary.NativeEndian.Uint64(f)|flag)
}

// requestTXChecksum implements RequestTXChecksum.
func (s *sock) requestTXChecksum(d *Desc, start, off uint16) error {
	b, err := s.txMetadata(d, TXFeatureChecksum)
	if err != nil {
		return err
	}
	if uint32(start)+uint32(off)+2 > d.Len {
		return errChecksumPastPacket
	}
	addTXMetadata(d, b, xsk.TXMDChecksum)
	binary.NativeEndian.PutUint16(b[xsk.TXMDCsumStartOff:], start)
	binary.NativeEndian.PutUint16(b[xsk.TXMDCsumOffsetOff:], off)
	return nil
}

// requestL4Checksum implements RequestL4Checksum.
func (s *sock) requestL4Checksum(d *Desc) error {
	if _, err := s.txMetadata(d, TXFeatureChecksum); err != nil {
		return err // before the frame is touched
	}
	f := s.x.Frame(d.Addr)
	if uint64(len(f)) < uint64(d.Len) {
		return errCrossesFrame
	}
	start, off, ok := PrepareL4Checksum(f[:d.Len])
	if !ok {
		return errNoL4Checksum
	}
	return s.requestTXChecksum(d, start, off)
}

// requestTXTimestamp implements RequestTXTimestamp.
func (s *sock) requestTXTimestamp(d *Desc) error {
	b, err := s.txMetadata(d, TXFeatureTimestamp)
	if err != nil {
		return err
	}
	addTXMetadata(d, b, xsk.TXMDTimestamp)
	return nil
}

// requestLaunchTime implements RequestLaunchTime.
func (s *sock) requestLaunchTime(d *Desc, t uint64) error {
	b, err := s.txMetadata(d, TXFeatureLaunchTime)
	if err != nil {
		return err
	}
	if s.x.TXMetadataFlags()&xsk.TXMDLaunchTime == 0 {
		return errLaunchTimeKernel
	}
	addTXMetadata(d, b, xsk.TXMDLaunchTime)
	binary.NativeEndian.PutUint64(b[xsk.TXMDLaunchTimeOff:], t)
	return nil
}

// txTimestamps implements TXTimestamps.
func (s *sock) txTimestamps(out []TXTimestamp) int {
	s.pool.Lock()
	defer s.pool.Unlock()
	if s.closed {
		return 0
	}
	s.completeLocked()
	n := 0
	for n < len(out) {
		addr, ts, ok := s.pair.PopTXTimestampLocked()
		if !ok {
			break
		}
		out[n] = TXTimestamp{Addr: addr, Time: ts}
		n++
	}
	return n
}
