//go:build linux

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

func (m BindMode) String() string {
	switch m {
	case BindAuto:
		return "auto"
	case BindZeroCopy:
		return "zerocopy"
	case BindCopy:
		return "copy"
	}
	return fmt.Sprintf("BindMode(%d)", int(m))
}

// Ring size defaults.
const (
	DefaultRXRingSize = 2048
	DefaultTXRingSize = 2048
)

// Steering says how frames of the socket's queue are steered to it.
type Steering struct {
	// Program is a redirect program, shared by several sockets, whose
	// XSKMAP the socket registers in (and leaves on Close). Nil means a
	// private program, attached by Open and detached by Close.
	Program *redirect.Program
	// XDPMode is the attach mode of the private program. Zero value:
	// redirect.ModeAuto (driver mode where the driver supports XDP).
	XDPMode redirect.Mode
	// None leaves steering to the caller: no program is attached and the
	// socket is registered nowhere (register [Socket.FD] yourself).
	None bool
}

// BusyPoll configures the socket's busy-poll options (kernel 5.11+ for
// PreferBusyPoll and Budget). The zero value leaves busy polling off.
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
	// DeferHardIRQs and GROFlushTimeout, when either is set, write the
	// interface's /sys/class/net/IF/napi_defer_hard_irqs and
	// gro_flush_timeout (Linux 5.11+) at Open, and restore the previous
	// values when the last socket that set them closes, in this process
	// or any other. The previous values are kept in /run/xdpkit/napi, so
	// the next process to set them (or to open such a socket) restores
	// them if their last user was killed. Busy polling on a real NIC
	// wants both (e.g. 2 and 200µs): the device's interrupts stay off
	// while the application polls, and the timeout brings them back if it
	// stops. Sockets asking for other values than those in force get an
	// error. Zero values: the settings are left alone.
	DeferHardIRQs   int
	GROFlushTimeout time.Duration
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
	// Steering is where the socket is registered so the queue's frames
	// reach it; see the Steering fields. The zero value attaches a private
	// redirect program to the interface, in auto mode, owned by the socket.
	Steering Steering
	// MultiBuffer binds with XDP_USE_SG (Linux 6.6+): a packet larger than
	// one UMEM frame arrives as several descriptors chained with
	// XDP_PKT_CONTD, and one can be sent from several frames (see
	// ReceivePackets and TransmitPacket). The redirect program must
	// declare fragment support to get jumbo frames in driver mode: the
	// private one does (redirect.Options.MultiBuffer); load a
	// Steering.Program with it too. Sockets sharing a UMEM inherit the
	// first socket's setting. Open fails with ErrNotSupported on kernels
	// or zero-copy drivers without it. Zero value: off; frames larger than
	// a UMEM frame are dropped.
	MultiBuffer bool
}

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
	if r.BusyPoll.Timeout < 0 || r.BusyPoll.Budget < 0 || r.BusyPoll.DeferHardIRQs < 0 || r.BusyPoll.GROFlushTimeout < 0 {
		return fmt.Errorf("invalid busy-poll settings %+v: must not be negative: %w", r.BusyPoll, ErrInvalidConfig)
	}
	if r.TXStallTimeout < 0 || r.BindRetryTimeout < 0 {
		return fmt.Errorf("invalid timeouts: must not be negative: %w", ErrInvalidConfig)
	}
	return nil
}
