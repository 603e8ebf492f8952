//go:build !linux

package afxdp

// rxMetadata reports no metadata: there is no AF_XDP outside Linux.
func (s *sock) rxMetadata(Desc) (RXMetadata, bool) { return RXMetadata{}, false }
