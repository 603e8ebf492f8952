//go:build linux

package redirect

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/filter"
	"github.com/xdpkit/xdpkit/internal/netlink"
	"github.com/xdpkit/xdpkit/internal/sys"
)

// Program is an XDP redirect program with its XSKMAP, attached to one
// interface by [Attach] or [AttachProgram], or attached by the caller and
// wrapped by [Use].
//
// Its methods may be called from any goroutine. Close detaches and releases
// what the Program owns; Register and Unregister fail after Close.
type Program struct {
	mu     sync.RWMutex
	closed bool // guarded by mu

	prog *ebpf.Program
	xsks *ebpf.Map
	lnk  link.Link // nil for Use: the caller owns the attachment
	own  bool      // prog and xsks were created by Attach and are closed by Close

	ifindex int    // 0 for Use
	ifname  string // "" for Use
	mode    Mode   // ModeAuto for Use (unknown)
	queues  int
	filter  *filter.Program // nil: no filter, or not known (AttachProgram, Use)

	counters *ebpf.Map // per-CPU verdict counts; nil without Options.Counters

	rxMeta bool // the program stores RX metadata in front of each frame (Options.RXMetadata; rxmeta_linux.go)

	pinned string // pin directory for AttachPinned (see pin.go), "" otherwise
}

// Attach loads the redirect program and an XSKMAP and attaches them to the
// interface with index ifindex, in the calling thread's network namespace.
// A nil opts means automatic mode and one XSKMAP entry per RX queue.
//
// With Options.Filter set, the filter runs first for every frame and
// decides between the socket, the kernel stack and dropping it.
//
// The attachment is a BPF link (Linux 5.9+): it is removed by Close or when
// the process exits. If the interface already has an XDP program, Attach
// fails with [ErrAlreadyAttached] and leaves that program alone.
func Attach(ifindex int, opts *Options) (*Program, error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, fmt.Errorf("redirect: attach to ifindex %d: %w", ifindex, err)
	}
	iface, err := lookup(ifindex)
	if err != nil {
		return nil, err
	}
	queues := o.Queues
	if queues == 0 {
		queues = max(iface.NumRXQueues, 1)
	}
	prog, xsks, counters, err := loadFor(ifindex, queues, o)
	if err != nil {
		return nil, fmt.Errorf("redirect: attach to %s (ifindex %d): %w", iface.Name, ifindex, err)
	}
	p := &Program{prog: prog, xsks: xsks, own: true, ifindex: ifindex, ifname: iface.Name, queues: queues, filter: o.Filter, counters: counters}
	mode := o.Mode
	if o.RXMetadata {
		// A device-bound program runs in driver mode only.
		p.rxMeta, mode = true, ModeDriver
	}
	if err := p.attach(mode); err != nil {
		if cerr := p.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, err
	}
	return p, nil
}

// AttachProgram attaches the caller's XDP program prog, which redirects to
// the XSKMAP xsks, to the interface with index ifindex. Register and
// Unregister then manage xsks. Options.Queues must be 0 or equal to the
// map's MaxEntries. Close detaches prog but leaves prog and xsks open: they
// stay the caller's to close.
func AttachProgram(ifindex int, prog *ebpf.Program, xsks *ebpf.Map, opts *Options) (*Program, error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, fmt.Errorf("redirect: attach program to ifindex %d: %w", ifindex, err)
	}
	if err := checkObjects(prog, xsks); err != nil {
		return nil, fmt.Errorf("redirect: attach program to ifindex %d: %w", ifindex, err)
	}
	if o.Filter != nil {
		return nil, fmt.Errorf("redirect: attach program to ifindex %d: Options.Filter is only for Attach: "+
			"splice filter.Program.Instructions into your own program instead", ifindex)
	}
	if o.FastPath != nil {
		return nil, fmt.Errorf("redirect: attach program to ifindex %d: Options.FastPath is only for Attach: "+
			"splice fastpath.FastPath.Instructions into your own program instead: %w", ifindex, ErrInvalidOptions)
	}
	if o.Counters {
		return nil, fmt.Errorf("redirect: attach to ifindex %d: Options.Counters needs a program built by Attach", ifindex)
	}
	if o.RXMetadata {
		return nil, fmt.Errorf("redirect: attach program to ifindex %d: Options.RXMetadata needs a program built by Attach: %w", ifindex, ErrInvalidOptions)
	}
	if o.Queues != 0 && uint32(o.Queues) != xsks.MaxEntries() {
		return nil, fmt.Errorf("redirect: attach program to ifindex %d: Options.Queues %d does not match the XSKMAP's %d entries: leave it 0",
			ifindex, o.Queues, xsks.MaxEntries())
	}
	iface, err := lookup(ifindex)
	if err != nil {
		return nil, err
	}
	p := &Program{prog: prog, xsks: xsks, ifindex: ifindex, ifname: iface.Name, queues: int(xsks.MaxEntries())}
	if err := p.attach(o.Mode); err != nil {
		return nil, err
	}
	return p, nil
}

// Use wraps an XDP program the caller has already attached, together with
// the XSKMAP it redirects to, so Register and Unregister can manage the
// map. Close detaches nothing and closes neither object. Ifindex returns 0
// and Mode returns ModeAuto, as the attachment is not known.
func Use(prog *ebpf.Program, xsks *ebpf.Map) (*Program, error) {
	if err := checkObjects(prog, xsks); err != nil {
		return nil, fmt.Errorf("redirect: use program: %w", err)
	}
	return &Program{prog: prog, xsks: xsks, queues: int(xsks.MaxEntries())}, nil
}

// checkObjects validates caller-supplied objects.
func checkObjects(prog *ebpf.Program, xsks *ebpf.Map) error {
	switch {
	case prog == nil:
		return errors.New("nil program")
	case prog.FD() < 0:
		return fmt.Errorf("program is closed: %w", os.ErrClosed)
	case prog.Type() != ebpf.XDP:
		return fmt.Errorf("program type is %s, want XDP", prog.Type())
	case xsks == nil:
		return errors.New("nil XSKMAP")
	case xsks.FD() < 0:
		return fmt.Errorf("XSKMAP is closed: %w", os.ErrClosed)
	case xsks.Type() != ebpf.XSKMap:
		return fmt.Errorf("map type is %s, want XSKMap", xsks.Type())
	case xsks.KeySize() != 4 || xsks.ValueSize() != 4:
		return fmt.Errorf("XSKMAP key and value sizes are %d and %d, want 4 and 4", xsks.KeySize(), xsks.ValueSize())
	case xsks.MaxEntries() == 0:
		return errors.New("XSKMAP has no entries")
	}
	return nil
}

// lookup returns the interface, with an error naming ifindex.
func lookup(ifindex int) (netlink.Link, error) {
	iface, err := netlink.LinkByIndex(ifindex)
	if errors.Is(err, netlink.ErrNotFound) {
		return iface, fmt.Errorf("redirect: attach to ifindex %d: no such interface in this network namespace: %w", ifindex, err)
	}
	if err != nil {
		return iface, fmt.Errorf("redirect: attach to ifindex %d: %w", ifindex, err)
	}
	return iface, nil
}

// attach links p.prog to the interface in mode and records the mode used.
func (p *Program) attach(mode Mode) error {
	switch mode {
	case ModeDriver, ModeGeneric:
		l, err := p.attachMode(mode)
		if err != nil {
			return p.attachError(mode, mode.String(), err)
		}
		p.lnk, p.mode = l, mode
		return nil
	}

	// ModeAuto: driver first, generic when the driver cannot do XDP.
	l, err := p.attachMode(ModeDriver)
	if err == nil {
		p.lnk, p.mode = l, ModeDriver
		return nil
	}
	if !driverOnly(err) {
		return p.attachError(ModeDriver, "auto (driver)", err)
	}
	l, gerr := p.attachMode(ModeGeneric)
	if gerr != nil {
		return fmt.Errorf("%w (driver mode failed first: %w)", p.attachError(ModeGeneric, "auto (generic fallback)", gerr), err)
	}
	p.lnk, p.mode = l, ModeGeneric
	return nil
}

func (p *Program) attachMode(mode Mode) (link.Link, error) {
	flags := link.XDPDriverMode
	if mode == ModeGeneric {
		flags = link.XDPGenericMode
	}
	return link.AttachXDP(link.XDPOptions{Program: p.prog, Interface: p.ifindex, Flags: flags})
}

// driverOnly reports whether a driver-mode attach error may go away in
// generic mode: anything except an occupied interface, missing privileges
// or missing kernel support.
func driverOnly(err error) bool {
	for _, e := range []error{unix.EBUSY, unix.EEXIST, unix.EPERM, unix.EACCES, unix.ENODEV, ErrNotSupported} {
		if errors.Is(err, e) {
			return false
		}
	}
	return !(errors.Is(err, unix.EINVAL) && sys.KernelBefore(5, 9))
}

// attachError explains a failed link creation in mode; label names the
// mode for the message.
func (p *Program) attachError(mode Mode, label string, err error) error {
	where := fmt.Sprintf("redirect: attach to %s (ifindex %d) in %s mode", p.ifname, p.ifindex, label)
	switch {
	case errors.Is(err, unix.EBUSY), errors.Is(err, unix.EEXIST):
		return fmt.Errorf("%s: %w: %s (%w); %s", where, ErrAlreadyAttached, p.occupant(), err, p.detachHint())
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("%s: %w (attaching the XDP program needs CAP_BPF and CAP_NET_ADMIN; without them, register the sockets in an XSKMAP a privileged process attached: xdpkit attach, redirect.OpenXSKMap)", where, err)
	case errors.Is(err, ErrNotSupported):
		return fmt.Errorf("%s: %w (XDP BPF links need Linux 5.9 or later)", where, err)
	case errors.Is(err, unix.EINVAL) && sys.KernelBefore(5, 9):
		return fmt.Errorf("%s: XDP BPF links need Linux 5.9 or later: %w (%w)", where, ErrNotSupported, err)
	case errors.Is(err, unix.EINVAL):
		if _, lerr := netlink.LinkByIndex(p.ifindex); errors.Is(lerr, netlink.ErrNotFound) {
			return fmt.Errorf("%s: interface is gone: %w (%w)", where, lerr, err)
		}
	case errors.Is(err, unix.EOPNOTSUPP) && mode == ModeDriver:
		return fmt.Errorf("%s: %w (the driver has no native XDP support: use ModeGeneric, or ModeAuto to fall back automatically)", where, err)
	}
	return fmt.Errorf("%s: %w", where, err)
}

// occupant describes the XDP program already on the interface.
func (p *Program) occupant() string {
	l, err := netlink.LinkByIndex(p.ifindex)
	switch {
	case err != nil:
		return "another XDP program is attached (querying it failed: " + err.Error() + ")"
	case !l.XDP.IsAttached():
		return "another XDP program is attached (to an upper device such as a bond, or detached meanwhile)"
	case l.XDP.Attached == netlink.XDPAttachedMulti:
		return "XDP programs are attached: " + l.XDP.String()
	}
	return fmt.Sprintf("program %d is attached in %s mode", l.XDP.AnyProgID(), l.XDP.Mode())
}

// detachHint says how to free the interface, with the iproute2 command for
// the modes in use.
func (p *Program) detachHint() string {
	var cmds []string
	if l, err := netlink.LinkByIndex(p.ifindex); err == nil {
		for _, m := range []struct {
			id  uint32
			arg string
		}{{l.XDP.DrvProgID, "xdpdrv"}, {l.XDP.SKBProgID, "xdpgeneric"}, {l.XDP.HWProgID, "xdpoffload"}} {
			if m.id != 0 {
				cmds = append(cmds, fmt.Sprintf("ip link set dev %s %s off", p.ifname, m.arg))
			}
		}
	}
	if len(cmds) == 0 {
		cmds = []string{fmt.Sprintf("ip link set dev %s xdp off", p.ifname)}
	}
	return "detach it first (" + strings.Join(cmds, "; ") +
		"; a program held by a BPF link goes away when its owner closes it, or with bpftool link detach), " +
		"or, if it already redirects to your XSKMAP, pass it and the map to redirect.Use"
}

// Register puts the AF_XDP socket socketFD in the XSKMAP entry for queue,
// replacing any socket registered there. From then on the program
// redirects the frames of that RX queue to the socket. Register the socket
// after binding it to this interface and queue: older kernels refuse an
// unbound socket, and frames redirected to a socket bound elsewhere are
// dropped.
//
// Errors: queue outside [0, Queues()) matches unix.EINVAL; a negative or
// closed fd matches unix.EBADF; a file that is not a socket matches
// unix.ENOTSOCK; a socket that is not AF_XDP (or, on older kernels, not
// bound yet) matches unix.EOPNOTSUPP; after Close, os.ErrClosed.
func (p *Program) Register(queue int, socketFD int) error {
	op := fmt.Sprintf("redirect: register fd %d for queue %d", socketFD, queue)
	if p == nil {
		return fmt.Errorf("%s: nil Program", op)
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if err := p.check(op, queue); err != nil {
		return err
	}
	if socketFD < 0 {
		return fmt.Errorf("%s: invalid socket fd: %w", op, unix.EBADF)
	}
	err := p.xsks.Update(uint32(queue), uint32(socketFD), ebpf.UpdateAny)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EBADF):
		return fmt.Errorf("%s: fd is not open: %w", op, err)
	case errors.Is(err, unix.ENOTSOCK):
		return fmt.Errorf("%s: fd is not a socket: %w", op, err)
	case errors.Is(err, unix.EOPNOTSUPP):
		return fmt.Errorf("%s: fd is not an AF_XDP socket, or not bound yet (bind it to %s queue %d before registering): %w",
			op, p.describeIface(), queue, err)
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("%s: %w (updating the XSKMAP needs CAP_BPF before Linux 5.19, and a map fd opened read-write)", op, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Unregister removes the socket registered for queue, if any: frames of
// that queue go to the kernel stack again. Removing an empty entry is not
// an error. A queue outside [0, Queues()) matches unix.EINVAL; after Close,
// os.ErrClosed.
func (p *Program) Unregister(queue int) error {
	op := fmt.Sprintf("redirect: unregister queue %d", queue)
	if p == nil {
		return fmt.Errorf("%s: nil Program", op)
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if err := p.check(op, queue); err != nil {
		return err
	}
	err := p.xsks.Delete(uint32(queue))
	if err == nil || errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}

// check validates queue and the open state; mu must be held.
func (p *Program) check(op string, queue int) error {
	if p.closed {
		return fmt.Errorf("%s: %w", op, os.ErrClosed)
	}
	if queue < 0 || queue >= p.queues {
		hint := ""
		if p.own {
			hint = "; set Options.Queues to cover more queues"
		}
		return fmt.Errorf("%s: queue out of range: the XSKMAP has %d entries (queues 0 to %d)%s: %w",
			op, p.queues, p.queues-1, hint, unix.EINVAL)
	}
	return nil
}

func (p *Program) describeIface() string {
	if p.ifindex == 0 {
		return "the program's interface"
	}
	return fmt.Sprintf("%s (ifindex %d)", p.ifname, p.ifindex)
}

// Mode returns the mode the program was attached in: ModeDriver or
// ModeGeneric (ModeAuto is resolved by Attach). It returns ModeAuto for a
// Program from [Use], whose attachment is not known.
func (p *Program) Mode() Mode {
	if p == nil {
		return ModeAuto
	}
	return p.mode
}

// Ifindex returns the interface index the program was attached to, or 0
// for a Program from [Use].
func (p *Program) Ifindex() int {
	if p == nil {
		return 0
	}
	return p.ifindex
}

// Filter returns the filter the program was attached with by [Attach],
// or nil.
func (p *Program) Filter() *filter.Program {
	if p == nil {
		return nil
	}
	return p.filter
}

// Queues returns the number of XSKMAP entries: Register accepts queues 0
// to Queues()-1.
func (p *Program) Queues() int {
	if p == nil {
		return 0
	}
	return p.queues
}

// XDPProgram returns the XDP program. It is owned by p when p came from
// [Attach] (do not close it), by the caller otherwise.
func (p *Program) XDPProgram() *ebpf.Program {
	if p == nil {
		return nil
	}
	return p.prog
}

// Map returns the XSKMAP. It is owned by p when p came from [Attach] (do
// not close it), by the caller otherwise.
func (p *Program) Map() *ebpf.Map {
	if p == nil {
		return nil
	}
	return p.xsks
}

// Close detaches the program (unless it came from [Use]) and closes the
// program and map if [Attach] created them. For a Program from
// [AttachPinned], Close only closes this process's handles: the program
// stays attached through its pinned link until [Unpin]. It is safe to
// call more than once, from any goroutine, and on a nil Program; later
// calls return nil.
func (p *Program) Close() error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true

	var errs []error
	if p.lnk != nil {
		if err := p.lnk.Close(); err != nil {
			errs = append(errs, fmt.Errorf("redirect: detach from %s: %w", p.describeIface(), err))
		}
	}
	if p.own {
		if err := p.prog.Close(); err != nil {
			errs = append(errs, fmt.Errorf("redirect: close program: %w", err))
		}
		if err := p.xsks.Close(); err != nil {
			errs = append(errs, fmt.Errorf("redirect: close XSKMAP: %w", err))
		}
		if p.counters != nil {
			if err := p.counters.Close(); err != nil {
				errs = append(errs, fmt.Errorf("redirect: close counters: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}
