package afxdp

import (
	"errors"
	"fmt"
	"os"

	"github.com/xdpkit/xdpkit/internal/xsk"
	"github.com/xdpkit/xdpkit/umem"
)

// Sentinel errors; match them with errors.Is. Errors from Open and the
// other setup calls are *OpError values that wrap one of these, or the
// kernel's errno (errors.Is(err, unix.EBUSY) works). The per-packet calls
// return preallocated errors that wrap them. The sentinels carry no
// package prefix: the error that wraps one says "afxdp:" once.
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
	// end, outside the UMEM, unknown Options bits; on a UMEM with TX
	// metadata, data less than umem.TXMetadataLen bytes into its frame, or
	// metadata the kernel refuses), or one for a frame the application
	// does not hold in the socket's pool. The frame stays the caller's.
	// The TX metadata requests (RequestTXChecksum, ...) return it too.
	ErrInvalidDescriptor = errors.New("invalid descriptor")
	// ErrTXStalled: transmitted frames stopped coming back through the
	// completion ring for longer than Config.TXStallTimeout (a driver reset
	// or a link that went down), so the TX ring stays full.
	ErrTXStalled = errors.New("transmit stalled: no completions")
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

var (
	_ error                       = (*OpError)(nil)
	_ interface{ Unwrap() error } = (*OpError)(nil)
)

// errTXStalled is what the per-packet calls return for ErrTXStalled.
var errTXStalled = fmt.Errorf("afxdp: %w", ErrTXStalled)

// Errors of Transmit and Release, preallocated so the per-packet path does
// not allocate them.
var (
	errReleaseNotHeld = &descError{"release: frames not held by the application in the socket's pool were skipped", umem.ErrFrameState}
	errZeroLength     = &descError{"zero-length descriptor (the kernel drops it without completing its frame)", nil}
	errOutsideUMEM    = &descError{"descriptor address outside the UMEM", nil}
	errCrossesFrame   = &descError{"descriptor runs past the end of its frame", nil}
	errBadOptions     = &descError{"descriptor Options bits the socket does not use (XDP_PKT_CONTD needs Config.MultiBuffer)", nil}
	errNotHeld        = &descError{"descriptor's frame is not held by the application in the socket's pool (sent or freed already, listed twice, another pool's)", umem.ErrFrameState}
)

// descError is a refused descriptor: it matches ErrInvalidDescriptor and,
// as a packet made of it is refused too, ErrInvalidPacket.
type descError struct {
	msg   string
	cause error // also matched, if set
}

func (e *descError) Error() string { return "afxdp: " + e.msg }

func (e *descError) Is(target error) bool {
	if e == errReleaseNotHeld {
		return target == umem.ErrFrameState
	}
	return target == ErrInvalidDescriptor || target == ErrInvalidPacket || e.cause != nil && errors.Is(e.cause, target)
}
