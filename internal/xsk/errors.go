package xsk

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
)

// MinKernel is the oldest Linux xdpkit supports: XDP_SHARED_UMEM with a
// fill and completion ring per queue, BPF links for XDP and the full
// XDP_STATISTICS. It is stated here once; docs and hints refer to it.
const MinKernel = "5.10"

// minMajor and minMinor are MinKernel as numbers.
const minMajor, minMinor = 5, 10

// Sentinels shared by umem and afxdp, so errors.Is works whichever
// package an error came from.
var (
	// ErrNotSupported is cilium/ebpf's: the kernel or driver lacks a feature.
	ErrNotSupported = ebpf.ErrNotSupported
	// ErrPermission matches os.ErrPermission too.
	// Each error wrapping it says which step needs which capability.
	ErrPermission = fmt.Errorf("missing privilege: %w", os.ErrPermission)
	// ErrMemlock: registering the UMEM pinned more memory than allowed.
	ErrMemlock = errors.New("locked-memory limit too low for the UMEM: raise RLIMIT_MEMLOCK (github.com/cilium/ebpf/rlimit.RemoveMemlock, or ulimit -l unlimited) or run with CAP_IPC_LOCK")

	// ErrInvalidConfig is afxdp's: a socket's configuration does not fit.
	ErrInvalidConfig = errors.New("invalid configuration")
	ErrNoHugePages   = errors.New("no free hugepages")
	ErrTooSmall      = errors.New("UMEM too small for its rings")
	ErrFrameState    = errors.New("frame ownership violated")
	ErrClosed        = os.ErrClosed
)
