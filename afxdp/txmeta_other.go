//go:build !linux

package afxdp

// Outside Linux no Socket exists (Open fails with ErrNotSupported): the
// TX metadata calls below are never reached through one.

func txMetadataFeatures(string) (TXFeatures, error)           { return 0, errUnsupported }
func (s *sock) requestTXChecksum(*Desc, uint16, uint16) error { return errUnsupported }
func (s *sock) requestL4Checksum(*Desc) error                 { return errUnsupported }
func (s *sock) requestTXTimestamp(*Desc) error                { return errUnsupported }
func (s *sock) requestLaunchTime(*Desc, uint64) error         { return errUnsupported }
func (s *sock) txTimestamps([]TXTimestamp) int                { return 0 }
