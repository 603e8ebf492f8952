package afxdp

import (
	"fmt"
	"time"

	"github.com/xdpkit/xdpkit/redirect"
	"github.com/xdpkit/xdpkit/ring"
	"github.com/xdpkit/xdpkit/umem"
)

// BindMode selects how the socket exchanges frames with the driver.
type BindMode int

const (
	// BindAuto lets the kernel use zero-copy when the driver supports it
	// and copy mode otherwise.
	BindAuto BindMode = iota
	// BindZeroCopy requires zero-copy (XDP_ZEROCOPY); Open fails with
	// ErrZeroCopyNotSupported on drivers without it (veth, for one).
	BindZeroCopy
	// BindCopy forces copy mode (XDP_COPY), which every driver supports.
	BindCopy
)

var bindModeNames = [...]string{BindAuto: "auto", BindZeroCopy: "zerocopy", BindCopy: "copy"}

func (m BindMode) String() string {
	if m >= 0 && int(m) < len(bindModeNames) {
		return bindModeNames[m]
	}
	return fmt.Sprintf("BindMode(%d)", int(m))
}

// MarshalText returns the mode's name: auto, zerocopy or copy.
func (m BindMode) MarshalText() ([]byte, error) {
	if m < 0 || int(m) >= len(bindModeNames) {
		return nil, fmt.Errorf("invalid bind mode %d: %w", int(m), ErrInvalidConfig)
	}
	return []byte(bindModeNames[m]), nil
}

// UnmarshalText sets the mode from its name (auto, zerocopy, copy), so a
// BindMode works with flag.TextVar and encoding/json.
func (m *BindMode) UnmarshalText(text []byte) error {
	for i, name := range bindModeNames {
		if string(text) == name {
			*m = BindMode(i)
			return nil
		}
	}
	return fmt.Errorf("invalid bind mode %q: want auto, zerocopy or copy: %w", text, ErrInvalidConfig)
}

// Ring size defaults.
const (
	DefaultRXRingSize = 2048
	DefaultTXRingSize = 2048
)

// Registrar registers a socket for its queue in an XDP program's XSKMAP,
// so that the queue's frames reach the socket, and unregisters it.
// *redirect.Program is one; so is anything that manages an XSKMAP of its
// own (a pinned map, a map another process loaded).
type Registrar interface {
	Register(queue, socketFD int) error
	Unregister(queue int) error
}

// NoSteering registers a socket nowhere: the caller steers frames to it,
// e.g. by putting Socket.FD in an XSKMAP of its own.
var NoSteering Registrar = noSteering{}

type noSteering struct{}

func (noSteering) Register(int, int) error { return nil }
func (noSteering) Unregister(int) error    { return nil }

// BusyPoll configures the socket's busy-poll options (Linux 5.11+ for
// Prefer and Budget). The zero value leaves busy polling off. With any of
// them set, Receive and Discard run the device's NAPI poll (one
// non-blocking recvfrom) when they find the RX ring empty, so that a loop
// that spins on Receive drives the device. A real NIC also wants its
// interrupts deferred while the application polls: that is a setting of
// the device, made with package napi.
type BusyPoll struct {
	// Prefer sets SO_PREFER_BUSY_POLL: the kernel defers the interrupt
	// path to the application's polling. Zero value: off.
	Prefer bool
	// Timeout sets SO_BUSY_POLL, in microseconds of the given duration:
	// how long a poll may spin on the device queue. Zero: not set.
	Timeout time.Duration
	// Budget sets SO_BUSY_POLL_BUDGET: frames per busy-poll round. Zero:
	// not set (the kernel's default of 8).
	Budget int
}

// Config configures a socket. A nil *Config means all defaults.
type Config struct {
	// UMEM is the packet buffer area to use, shared with other sockets.
	// Nil means a private UMEM made from UMEMOptions, owned and closed by
	// the socket.
	UMEM *umem.UMEM
	// UMEMOptions configure the private UMEM when UMEM is nil. Nil means
	// umem's defaults: 4096 frames of 4096 bytes.
	UMEMOptions *umem.Options
	// Pool is the set of UMEM frames this socket allocates from and
	// accounts in (umem.UMEM.NewPool), for sockets that share a UMEM but
	// are driven by different goroutines. The socket receives into,
	// transmits and releases only this pool's frames; sockets of one UMEM
	// bound to the same queue share its fill and completion rings and
	// must use the same pool. Nil means the UMEM's main pool.
	Pool *umem.Pool
	// SocketFD, when > 0, is an AF_XDP socket made elsewhere to use as
	// this one: handed over a unix socket by a process with CAP_NET_RAW
	// (ReceiveSocket; the helper makes it with NewSocketFD and sends it
	// with SendSocket), or inherited across exec. Open then makes no
	// socket of its own, so it needs no CAP_NET_RAW: it registers the
	// UMEM on it (a private UMEM, or a shared one no socket is bound to
	// yet) or binds it sharing the UMEM, and binds it to the queue. It
	// must be a fresh, unbound socket. Open owns it from the call on: Close
	// closes it, and so does a failed Open.
	SocketFD int
	// RXRingSize is the number of RX ring slots, a power of two.
	// Zero means 2048.
	RXRingSize uint32
	// TXRingSize is the number of TX ring slots, a power of two.
	// Zero means 2048.
	TXRingSize uint32
	// Bind selects zero-copy or copy mode. Zero value: BindAuto. Ignored
	// for sockets that share another socket's UMEM, which inherit its mode.
	Bind BindMode
	// DisableNeedWakeup turns off XDP_USE_NEED_WAKEUP, so every transmit
	// makes a syscall. Zero value: need_wakeup on (kernel 5.4+).
	DisableNeedWakeup bool
	// BusyPoll sets the busy-poll socket options. Zero value: off.
	BusyPoll BusyPoll
	// PollYields makes WaitPoll and WaitAny give the goroutine's P (its
	// slot in the Go scheduler) back whenever they sleep. By default the
	// first 10 ms of each such wait keep it: to the scheduler the
	// goroutine is running, as a busy-polling loop is, so the wake-up that
	// ends the wait costs no scheduler hand-off. Other goroutines still
	// get the P when the runtime preempts the waiter (the GC, or after
	// 10 ms), but with GOMAXPROCS=1, or as many waiters as Ps, they may
	// wait that long for it. Set PollYields for a socket whose waits must
	// never delay other goroutines; it costs CPU per wake-up (in the
	// bench's poll-mode rx-drop, 13-41 ns per frame). Zero value: off.
	PollYields bool
	// Coalesce is interrupt moderation for a loop that waits when idle,
	// in user space: a wait (Wait, WaitContext, WaitPoll, WaitAny, and so
	// pipeline.Runner.Run) that follows CoalesceBurst or more frames
	// received since the last one first sleeps Coalesce on its thread,
	// without asking the kernel to wake it, and returns if frames came
	// meanwhile. Under load the frames of each Coalesce then arrive as one
	// batch instead of waking the loop one burst at a time: fewer
	// wake-ups (in the bench's poll-mode rx-drop on veth they were most
	// of the DUT CPU's cost per frame) for up to Coalesce more latency,
	// the trade a NIC's rx-usecs makes. Light traffic, whose wake-ups
	// bring fewer frames, waits as without it. The sleep lasts Coalesce
	// plus the wake-up (a few µs): the thread's timer slack, which the
	// kernel would add to it (50 µs unless changed with prctl
	// PR_SET_TIMERSLACK), is lowered to 1 µs for the sleep and put back
	// after. It keeps the goroutine's P like the first slice of a WaitPoll
	// unless PollYields is set; the RX ring must
	// hold what arrives in that time (RXRingSize). At most MaxCoalesce;
	// zero value: off.
	Coalesce time.Duration
	// TXBudget sets XDP_MAX_TX_SKB_BUDGET (Linux 6.16+): how many frames
	// one sendto sends in copy mode, instead of the kernel's 32. Fewer
	// syscalls per frame; a larger value holds the CPU longer per call.
	// Zero: the kernel's default. Open fails with ErrNotSupported on
	// kernels without the option.
	TXBudget int
	// TXStallTimeout is how long the TX ring may stay full with no
	// completion before Transmit reports ErrTXStalled. Zero means 1s.
	TXStallTimeout time.Duration
	// BindRetryTimeout bounds how long Open retries a bind that fails with
	// EBUSY because the kernel is still releasing a socket just closed on
	// the same queue. Zero means 2s.
	BindRetryTimeout time.Duration
	// Steering is where the socket registers itself for its queue (and
	// leaves it on Close): a *redirect.Program shared by several sockets,
	// or NoSteering. Nil means a private redirect program made with
	// Redirect, attached by Open and detached by Close.
	Steering Registrar
	// Redirect configures the private program when Steering is nil: mode,
	// filter, counters. Nil means redirect's defaults (auto mode, every
	// frame of the queue to the socket). Its MultiBuffer is set when
	// Config.MultiBuffer is.
	Redirect *redirect.Options
	// MultiBuffer binds with XDP_USE_SG (Linux 6.6+): a packet larger than
	// one UMEM frame arrives as several descriptors chained with
	// XDP_PKT_CONTD, and one can be sent from several frames (see
	// ReceivePackets and TransmitPacket). The redirect program must
	// declare fragment support to get jumbo frames in driver mode: the
	// private one does (redirect.Options.MultiBuffer); attach a shared
	// program with it too. Sockets sharing a UMEM inherit the
	// first socket's setting. Open fails with ErrNotSupported on kernels
	// or zero-copy drivers without it. Zero value: off; frames larger than
	// a UMEM frame are dropped.
	MultiBuffer bool
}

// MaxCoalesce is the longest Config.Coalesce: a longer sleep under load
// is a latency few want and, at rates that would need it, more frames
// than an RX ring holds.
const MaxCoalesce = time.Millisecond

// CoalesceBurst is how many frames received since a socket's last wait
// make its next wait coalesce (Config.Coalesce): half the Runner's
// default batch, so that a loop whose wake-ups bring less than that
// (light traffic) is never delayed.
const CoalesceBurst = 32

func (c *Config) withDefaults() Config {
	var r Config
	if c != nil {
		r = *c
	}
	if r.RXRingSize == 0 {
		r.RXRingSize = DefaultRXRingSize
	}
	if r.TXRingSize == 0 {
		r.TXRingSize = DefaultTXRingSize
	}
	if r.TXStallTimeout == 0 {
		r.TXStallTimeout = time.Second
	}
	if r.BindRetryTimeout == 0 {
		r.BindRetryTimeout = 2 * time.Second
	}
	return r
}

// Validate reports whether the configuration, with defaults applied, is
// usable. Its errors wrap ErrInvalidConfig.
func (c *Config) Validate() error {
	r := c.withDefaults()
	return r.validate()
}

func (r *Config) validate() error {
	if r.SocketFD > 0 && r.UMEMOptions != nil && r.UMEMOptions.SocketFD > 0 {
		return fmt.Errorf("SocketFD and UMEMOptions.SocketFD both name a socket; give one: %w", ErrInvalidConfig)
	}
	if !ring.ValidSize(r.RXRingSize) {
		return fmt.Errorf("invalid RX ring size %d: must be a power of 2 up to 1048576: %w", r.RXRingSize, ErrInvalidConfig)
	}
	if !ring.ValidSize(r.TXRingSize) {
		return fmt.Errorf("invalid TX ring size %d: must be a power of 2 up to 1048576: %w", r.TXRingSize, ErrInvalidConfig)
	}
	if r.Bind < BindAuto || r.Bind > BindCopy {
		return fmt.Errorf("invalid bind mode %d: %w", int(r.Bind), ErrInvalidConfig)
	}
	if r.TXBudget < 0 {
		return fmt.Errorf("invalid TX budget %d: must not be negative: %w", r.TXBudget, ErrInvalidConfig)
	}
	if r.BusyPoll.Timeout < 0 || r.BusyPoll.Budget < 0 {
		return fmt.Errorf("invalid busy-poll settings %+v: must not be negative: %w", r.BusyPoll, ErrInvalidConfig)
	}
	if r.Coalesce < 0 || r.Coalesce > MaxCoalesce {
		return fmt.Errorf("invalid Coalesce %v: must be between 0 and %v: %w", r.Coalesce, MaxCoalesce, ErrInvalidConfig)
	}
	if r.TXStallTimeout < 0 || r.BindRetryTimeout < 0 {
		return fmt.Errorf("invalid timeouts: must not be negative: %w", ErrInvalidConfig)
	}
	if r.UMEMOptions != nil {
		if err := r.UMEMOptions.Validate(); err != nil {
			return fmt.Errorf("UMEMOptions: %w: %w", err, ErrInvalidConfig)
		}
	}
	if err := r.Redirect.Validate(); err != nil {
		return fmt.Errorf("Redirect: %w: %w", err, ErrInvalidConfig)
	}
	if r.Steering != nil && r.Redirect != nil {
		return fmt.Errorf("Redirect configures the private program, which a Steering replaces: set one of them: %w", ErrInvalidConfig)
	}
	if r.UMEM != nil && r.UMEMOptions != nil {
		return fmt.Errorf("UMEMOptions configure the private UMEM, which UMEM replaces: set one of them: %w", ErrInvalidConfig)
	}
	if r.Pool != nil && r.Pool.UMEM() != r.UMEM {
		return fmt.Errorf("Config.Pool belongs to another UMEM than Config.UMEM: %w", ErrInvalidConfig)
	}
	return nil
}
