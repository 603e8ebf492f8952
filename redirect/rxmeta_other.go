//go:build !linux

package redirect

// RXMetadata returns false: programs are only implemented on Linux.
func (p *Program) RXMetadata() bool { return false }
