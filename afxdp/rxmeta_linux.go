//go:build linux

package afxdp

import "github.com/xdpkit/xdpkit/redirect"

// rxMetadata reads the area FrameHeadroom puts in front of the data: the
// frame of d and the data's offset in it, which in unaligned mode comes
// from the offset bits of d.Addr.
func (s *sock) rxMetadata(d Desc) (RXMetadata, bool) {
	if s.prog != nil && !s.prog.RXMetadata() {
		return RXMetadata{}, false
	}
	frame, off := s.x.FrameHead(d.Addr)
	if frame == nil || off < redirect.RXMetadataSize {
		return RXMetadata{}, false
	}
	return redirect.ParseRXMetadata(frame[off-redirect.RXMetadataSize : off])
}
