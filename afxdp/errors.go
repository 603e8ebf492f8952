package afxdp

import (
	"errors"
	"fmt"
	"os"

	"github.com/xdpkit/xdpkit/internal/xsk"
)

// Sentinel errors; match them with errors.Is. Errors from Open and the
// other setup calls are *OpError values that wrap one of these, or the
// kernel's errno (errors.Is(err, unix.EBUSY) works).
var (
	// ErrNotSupported: the kernel or driver lacks a feature. It is the
	// same value as cilium/ebpf's ErrNotSupported, and umem's.
	ErrNotSupported = xsk.ErrNotSupported
	// ErrZeroCopyNotSupported: BindZeroCopy was asked for and the driver
	// cannot do it. It also matches ErrNotSupported.
	ErrZeroCopyNotSupported = fmt.Errorf("zero-copy not supported by the driver (use BindAuto or BindCopy): %w", ErrNotSupported)
	// ErrClosed: the socket was closed.
	ErrClosed = os.ErrClosed
	// ErrInvalidConfig is wrapped by every Config validation error.
	ErrInvalidConfig = xsk.ErrInvalidConfig
	// ErrInterfaceNotFound: no interface has that name or index.
	ErrInterfaceNotFound = errors.New("interface not found")
	// ErrQueueOutOfRange: the queue id is not below the interface's queue count.
	ErrQueueOutOfRange = errors.New("queue id out of range")
	// ErrPermission: the process lacks a privilege. It matches
	// os.ErrPermission too.
	ErrPermission = xsk.ErrPermission
	// ErrInvalidDescriptor: Transmit refused a descriptor the kernel would
	// drop without completing its frame (zero length, past its frame's
	// end, outside the UMEM, unknown Options bits), or one for a frame the
	// application does not hold in the socket's pool. The frame stays the
	// caller's.
	ErrInvalidDescriptor = errors.New("afxdp: invalid descriptor")
	// ErrTXStalled: transmitted frames stopped coming back through the
	// completion ring for longer than Config.TXStallTimeout (a driver reset
	// or a link that went down), so the TX ring stays full.
	ErrTXStalled = errors.New("afxdp: transmit stalled: no completions")
	// ErrTimeout is returned by Wait when the timeout passed with nothing
	// received. It is os.ErrDeadlineExceeded.
	ErrTimeout = os.ErrDeadlineExceeded
)

// OpError is the error of a setup or teardown operation on a socket.
type OpError struct {
	Op        string // what failed: "open", "bind", "map rings", ...
	Interface string // interface name, when known
	Queue     int    // queue id
	Err       error  // the cause
}

func (e *OpError) Error() string {
	if e.Interface == "" {
		return "afxdp: " + e.Op + ": " + e.Err.Error()
	}
	return fmt.Sprintf("afxdp: %s %s queue %d: %s", e.Op, e.Interface, e.Queue, e.Err)
}

func (e *OpError) Unwrap() error { return e.Err }

var _ error = (*OpError)(nil)
