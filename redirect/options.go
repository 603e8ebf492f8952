package redirect

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/xdpkit/xdpkit/fastpath"
	"github.com/xdpkit/xdpkit/filter"
	"github.com/xdpkit/xdpkit/internal/netlink"
)

var (
	// ErrAlreadyAttached is matched by the error of [Attach] and
	// [AttachProgram] when the interface already has an XDP program that
	// this Program does not own. The error names the program's ID and mode.
	ErrAlreadyAttached = errors.New("XDP program already attached")

	// ErrNotSupported is matched when the kernel or the platform lacks what
	// the package needs (XDP BPF links, XSKMAP). It is
	// [ebpf.ErrNotSupported], so errors from cilium/ebpf match it too.
	ErrNotSupported = ebpf.ErrNotSupported

	// ErrNotFound is matched when the interface does not exist in the
	// calling thread's network namespace.
	ErrNotFound = netlink.ErrNotFound

	// ErrPinIncompatible is matched by the error of [AttachPinned] when
	// objects pinned under the name do not fit the interface or the
	// options: another map type or size, a program for another interface,
	// filter or mode. The error says what differs and how to remove the pin.
	ErrPinIncompatible = errors.New("pinned objects are incompatible")

	// ErrPinUntrusted is matched by the error of [AttachPinned] and
	// [Unpin] when a pin directory (Options.PinDir or PinDir/name) is not
	// one to trust with the pins: a symbolic link or not a directory, not
	// on a BPF filesystem, owned by a user other than root or the calling
	// process's, or with permission bits for group or others; or when a
	// pin inside it is a symbolic link. Another user could have made it to
	// capture the pins or plant their own. The error names the path, what
	// is wrong and how to fix it (remove it, chown or chmod 0700). Nothing
	// is created, loaded or removed there.
	ErrPinUntrusted = errors.New("untrusted pin path")

	// ErrInvalidOptions is matched by the error of every call given
	// Options it cannot use (a mode, queue count, pin directory or name
	// out of range).
	ErrInvalidOptions = errors.New("invalid options")
)

// DefaultPinDir is where [AttachPinned] and [Unpin] keep their pins when
// Options.PinDir is empty: one directory per name, on the BPF filesystem
// mounted at /sys/fs/bpf (AttachPinned mounts it if needed).
const DefaultPinDir = "/sys/fs/bpf/xdpkit"

// Mode selects where the XDP program runs.
type Mode int

const (
	// ModeAuto, the zero value, attaches in driver (native) mode when the
	// driver supports XDP and falls back to generic mode otherwise.
	ModeAuto Mode = iota
	// ModeDriver attaches in the driver's receive path (XDP_FLAGS_DRV_MODE).
	// It fails when the driver has no native XDP support.
	ModeDriver
	// ModeGeneric attaches after skb allocation (XDP_FLAGS_SKB_MODE). It
	// works on every interface but is slower, and AF_XDP sockets bound to
	// it use copy mode.
	ModeGeneric
)

var modeNames = [...]string{ModeAuto: "auto", ModeDriver: "driver", ModeGeneric: "generic"}

// String returns "auto", "driver" or "generic".
func (m Mode) String() string {
	if m >= 0 && int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// MarshalText returns the mode's name: auto, driver or generic.
func (m Mode) MarshalText() ([]byte, error) {
	if m < 0 || int(m) >= len(modeNames) {
		return nil, fmt.Errorf("invalid mode %d: %w", int(m), ErrInvalidOptions)
	}
	return []byte(modeNames[m]), nil
}

// UnmarshalText sets the mode from its name (auto, driver, generic; also
// drv, native and skb, the names ip-link uses), so a Mode works with
// flag.TextVar and encoding/json.
func (m *Mode) UnmarshalText(text []byte) error {
	switch string(text) {
	case "auto":
		*m = ModeAuto
	case "driver", "drv", "native":
		*m = ModeDriver
	case "generic", "skb":
		*m = ModeGeneric
	default:
		return fmt.Errorf("invalid XDP mode %q: want auto, driver or generic: %w", text, ErrInvalidOptions)
	}
	return nil
}

// Options configures [Attach], [AttachProgram] and [AttachPinned]. A nil
// *Options means the zero value: automatic mode and one XSKMAP entry per RX
// queue.
type Options struct {
	// Mode is where to attach. The zero value is ModeAuto: driver mode if
	// the driver supports it, otherwise generic.
	Mode Mode

	// Queues is the number of XSKMAP entries, so Register accepts queues
	// 0 to Queues-1. The zero value means the interface's RX queue count
	// (at least 1). Must not be negative. AttachProgram takes the count
	// from the caller's map: there Queues must be 0 or equal to the map's
	// MaxEntries.
	Queues int

	// Filter, if not nil, decides for every frame, before the redirect,
	// whether it goes to the queue's AF_XDP socket (filter.Redirect), to
	// the kernel stack (filter.Pass) or nowhere (filter.Drop); see
	// package filter. A redirected frame of a queue without a socket
	// still goes to the kernel stack. A filter whose actions are only
	// Pass and Drop makes a program that never redirects (Register then
	// has no effect). The zero value, nil, redirects every frame. Only
	// Attach takes a filter: AttachProgram fails if it is set, as the
	// caller's program is already built.
	Filter *filter.Program

	// FastPath, if not nil, puts a fast path (see package fastpath) in
	// front of the XSKMAP redirect: source policies, a per-source policer
	// and a flow table whose entries drop, pass, rewrite and transmit or
	// encapsulate frames in XDP, controlled from Go through the
	// FastPath's methods while the program runs. It sees the frames the
	// Filter (if any) redirects, so it must be a filter that can
	// redirect; the frames it leaves to the socket (its Config.Default
	// Redirect) then go to the queue's socket. The FastPath stays the
	// caller's: close it after the Program. Attach only: AttachPinned,
	// AttachProgram refuse it (splice FastPath.Instructions into your
	// own program instead).
	FastPath *fastpath.FastPath

	// Counters makes the program count its verdicts (dropped, passed,
	// redirected) in a per-CPU map, read with Program.Counters. It costs
	// a map lookup per frame. Zero value: off. Attach only.
	Counters bool

	// MultiBuffer loads the program with BPF_F_XDP_HAS_FRAGS (Linux
	// 5.18+), declaring that it handles frames larger than a page, split
	// into fragments. The kernel needs it to redirect jumbo frames to a
	// multi-buffer AF_XDP socket (afxdp.Config.MultiBuffer), and veth
	// refuses a driver-mode program without it when the MTU is above
	// about 3500. Zero value: off. For the programs Attach and
	// AttachPinned load: AttachProgram and Use take the caller's program
	// as it was loaded.
	MultiBuffer bool

	// RXMetadata loads a device-bound variant of the program (Linux
	// 6.8+) that asks the driver, through the XDP RX metadata kfuncs,
	// for each frame's RX timestamp, RSS hash and stripped VLAN tag, and
	// stores them in the frame's metadata area, in front of its data,
	// before the redirect: read them with afxdp.Socket.RXMetadata or
	// ParseRXMetadata (see "RX metadata" in the package doc). The
	// program is bound to the interface at load time (prog_ifindex and
	// BPF_F_XDP_DEV_BOUND_ONLY) and runs in driver mode only: ModeAuto
	// then means ModeDriver, and ModeGeneric is refused. Attach fails
	// with an error matching ErrNotSupported when the kernel lacks the
	// kfuncs or the driver implements none of them. Zero value: off.
	// Attach only: AttachPinned and AttachProgram refuse it.
	RXMetadata bool

	// PinDir is the directory, on a BPF filesystem (bpffs), under which
	// AttachPinned and Unpin keep each name's pins: PinDir/<name>/. It
	// must be an absolute path; missing directories are created with
	// mode 0700. It and PinDir/<name> must not be symbolic links and
	// must be owned by root or the process's user with mode 0700 (see
	// ErrPinUntrusted). The zero value means DefaultPinDir, where
	// AttachPinned mounts bpffs on /sys/fs/bpf if none is mounted there
	// (with CAP_SYS_ADMIN). Attach and AttachProgram ignore it.
	PinDir string
}

// Validate reports whether the options are usable; its error wraps
// ErrInvalidOptions. A nil *Options is valid: all defaults.
func (opts *Options) Validate() error {
	_, err := opts.resolve()
	return err
}

// resolve returns a validated copy of opts (nil means defaults).
func (opts *Options) resolve() (Options, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	switch o.Mode {
	case ModeAuto, ModeDriver, ModeGeneric:
	default:
		return o, fmt.Errorf("invalid Options.Mode %d: must be ModeAuto, ModeDriver or ModeGeneric: %w", int(o.Mode), ErrInvalidOptions)
	}
	if o.FastPath != nil && o.Filter != nil && !o.Filter.Redirects() {
		return o, fmt.Errorf("invalid Options: Filter %q never redirects, so the FastPath behind it would see no frame: %w", o.Filter.String(), ErrInvalidOptions)
	}
	if o.RXMetadata && o.Filter != nil && !o.Filter.Redirects() {
		return o, fmt.Errorf("invalid Options: Filter %q never redirects, so RXMetadata would store metadata for no frame: %w", o.Filter.String(), ErrInvalidOptions)
	}
	if o.RXMetadata && o.Mode == ModeGeneric {
		return o, fmt.Errorf("invalid Options: RXMetadata needs driver mode: the kernel does not attach device-bound programs in generic mode: %w", ErrInvalidOptions)
	}
	if o.Queues < 0 {
		return o, fmt.Errorf("invalid Options.Queues %d: must be 0 (the interface's RX queue count) or positive: %w", o.Queues, ErrInvalidOptions)
	}
	return o, nil
}

// Counters are the program's verdicts, summed over CPUs, when it was
// attached with Options.Counters.
type Counters struct {
	Aborted    uint64 `json:"aborted"`
	Dropped    uint64 `json:"dropped"`    // XDP_DROP: dropped in the kernel by the filter
	Passed     uint64 `json:"passed"`     // XDP_PASS: left to the kernel stack
	TX         uint64 `json:"tx"`         // XDP_TX
	Redirected uint64 `json:"redirected"` // XDP_REDIRECT: to the queue's socket (or passed if it has none)
}

// ErrNoCounters is returned by Program.Counters for a program attached
// without Options.Counters.
var ErrNoCounters = errors.New("redirect: program has no counters (set Options.Counters)")
