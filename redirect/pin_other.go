//go:build !linux

package redirect

// AttachPinned is only implemented on Linux.
func AttachPinned(ifindex int, name string, opts *Options) (*Program, error) {
	return nil, errPlatform("attach pinned")
}

// Unpin is only implemented on Linux.
func Unpin(name string, opts *Options) error { return errPlatform("unpin") }

// Unpin is only implemented on Linux.
func (p *Program) Unpin() error { return errPlatform("unpin") }

// Pinned returns "".
func (p *Program) Pinned() string { return "" }
