//go:build linux

package redirect

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/xdpkit/xdpkit/internal/netlink"
)

// The objects in a pin directory. The link is pinned last: a directory
// without it is an interrupted creation, not a usable pin.
const (
	pinLink     = "link"
	pinProg     = "prog"
	pinMap      = "xsks"
	pinCounters = "counters"
)

// pinNames lists the pins in the order Unpin removes them: the link first,
// so the program is detached as early as possible.
var pinNames = [...]string{pinLink, pinProg, pinMap, pinCounters}

// AttachPinned attaches the redirect program to the interface with index
// ifindex once for several processes, and returns a Program that registers
// sockets in the shared XSKMAP. It is for one AF_XDP worker per queue,
// each a process of its own that may exit or restart without taking the
// others down.
//
// The program, its XSKMAP and the BPF link attaching it are pinned under
// the directory PinDir/name (Options.PinDir, by default
// [DefaultPinDir]/name, for example /sys/fs/bpf/xdpkit/name) as the files
// link, prog and xsks (and counters with Options.Counters). The first
// caller finds nothing pinned: it loads and attaches the program as
// [Attach] does, with the same options, and pins the three objects. The
// next callers load the pinned objects and check that they fit: the link
// must attach an XDP program to this very interface (in the calling
// thread's network namespace), the map must be an XSKMAP with an entry for
// each queue (Options.Queues, or the interface's RX queue count), the
// program must be the one these options build (same Options.Filter and
// Options.Counters) and, unless Options.Mode is ModeAuto, run in that
// mode. If not, the error matches [ErrPinIncompatible], says what differs
// and how to remove the pin. Callers on the same name are serialized by an
// exclusive lock (flock) on the pin directory, so processes started
// together attach the program only once. A creation interrupted before the
// link was pinned leaves no attached program; the next caller removes its
// remains and starts over.
//
// Because the pinned link holds the attachment, the program stays attached
// when a worker closes its Program, exits or is killed: the other workers
// keep receiving. [Program.Close] closes only this process's handles, and
// a worker's socket leaves the XSKMAP when it is closed; the kernel also
// removes it when a killed process's socket is released. A restarted
// worker attaches to the pinned objects again. To take the program off
// the interface, call [Unpin] (or rm -r the directory): the program is
// detached once the pins are gone and no process holds the link, that is
// when the last worker has closed its Program or exited.
//
// name is one path element of 1 to 64 letters, digits, '_' or '-' (the
// BPF filesystem refuses '.'). Attaching needs the privileges of
// [Attach]. Options.MultiBuffer applies when the program is created; it
// is not checked on pinned programs, as the kernel does not report it.
//
// # Pin directories
//
// PinDir must be on a BPF filesystem (bpffs). If none is mounted on
// /sys/fs/bpf and PinDir is there (as the default is), AttachPinned
// mounts one, with mode 0700, as bpftool and libxdp do; it creates
// /sys/fs/bpf first if it is missing and /sys is sysfs. The mount is made
// in the calling process's mount namespace and stays after the process
// exits. It needs CAP_SYS_ADMIN: without it the error matches
// [os.ErrPermission] and says so; mount bpffs beforehand (mount -t bpf -o
// mode=0700 bpf /sys/fs/bpf) to run without it. A PinDir elsewhere is
// never mounted on: the error says how to mount one there.
//
// Missing directories (PinDir, PinDir/name and missing ancestors) are
// created with mode 0700, whatever the umask. PinDir and PinDir/name are
// opened without following symbolic links and must be directories on a
// BPF filesystem, owned by root or by the calling process's user, with
// no permission bits for group or others: on a bpffs anyone can write to
// (mode 1777), another user could otherwise have created them to take
// over the pins or plant objects of their own. A pin in PinDir/name that
// is a symbolic link is refused too. The error then matches
// [ErrPinUntrusted], names the path and what is wrong, and says how to
// fix it (remove it, or chown or chmod 0700 it); nothing is created or
// loaded there. Ancestors of PinDir that exist are used as they are.
func AttachPinned(ifindex int, name string, opts *Options) (*Program, error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, fmt.Errorf("redirect: attach pinned %q to ifindex %d: %w", name, ifindex, err)
	}
	if o.FastPath != nil {
		return nil, fmt.Errorf("redirect: attach pinned %q to ifindex %d: Options.FastPath is not pinned, so processes sharing the pins could not control it: use Attach: %w",
			name, ifindex, ErrInvalidOptions)
	}
	base, err := pinPath(name, o.PinDir)
	if err != nil {
		return nil, fmt.Errorf("redirect: attach pinned %q to ifindex %d: %w", name, ifindex, err)
	}
	iface, err := lookup(ifindex)
	if err != nil {
		return nil, err
	}
	where := fmt.Sprintf("redirect: attach pinned %q to %s (ifindex %d)", name, iface.Name, ifindex)
	d, err := lockPinDir(base, name, true)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	defer d.unlock()
	c := &pinCtx{name: name, dir: d.path, d: d, iface: iface, where: where}

	queues := o.Queues
	if queues == 0 {
		queues = max(iface.NumRXQueues, 1)
	}
	present, err := c.present()
	if err != nil {
		return nil, err
	}
	switch {
	case slices.Contains(present, pinLink):
		return c.open(o, queues)
	case len(present) > 0:
		if err := c.removeLeftovers(present); err != nil {
			return nil, err
		}
	}
	return c.create(o, queues)
}

// Unpin removes the pins AttachPinned made under name (in opts.PinDir, or
// DefaultPinDir when opts is nil or PinDir is empty) and their directory.
// The program is detached once no process holds the link any more: at
// once if no worker runs (the kernel frees the link from a work queue, so
// allow it a moment), otherwise when the last one closes its Program or
// exits. A worker started in between attaches a new program,
// which fails with [ErrAlreadyAttached] while the old one is still
// attached.
//
// Unpin of a name that is not pinned returns nil, so it can run
// unconditionally at shutdown. Objects of other names in the directory
// are left alone and make Unpin fail, naming them. PinDir itself stays.
// Unpin checks PinDir and PinDir/name as AttachPinned does and removes
// nothing if they, or a pin in PinDir/name, fail the checks (the error
// matches [ErrPinUntrusted]). It never mounts a BPF filesystem: with none
// mounted there are no pins to remove.
func Unpin(name string, opts *Options) error {
	var dir string
	if opts != nil {
		dir = opts.PinDir
	}
	base, err := pinPath(name, dir)
	if err != nil {
		return fmt.Errorf("redirect: unpin %q: %w", name, err)
	}
	return unpinDir(name, base)
}

// Unpin removes the pins p was attached through, like [Unpin] with the
// same name and PinDir. It may be called before or after Close. It fails
// for a Program that did not come from [AttachPinned].
func (p *Program) Unpin() error {
	if p == nil || p.pinned == "" {
		return errors.New("redirect: unpin: program was not attached by AttachPinned")
	}
	return unpinDir(filepath.Base(p.pinned), filepath.Dir(p.pinned))
}

// Pinned returns the directory holding the pins p was attached through,
// such as "/sys/fs/bpf/xdpkit/name", or "" if p did not come from
// [AttachPinned]. It does not check whether the pins still exist.
func (p *Program) Pinned() string {
	if p == nil {
		return ""
	}
	return p.pinned
}

// unpinDir removes the pins of name in base and their directory, under
// the lock. It removes nothing if one of them is a symbolic link.
func unpinDir(name, base string) error {
	d, err := lockPinDir(base, name, false)
	if errors.Is(err, errNoPin) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("redirect: unpin %q: %w", name, err)
	}
	defer d.unlock()
	for _, f := range pinNames {
		if _, err := d.has(f); err != nil {
			return fmt.Errorf("redirect: unpin %q: %w", name, err)
		}
	}
	for _, f := range pinNames {
		if err := d.remove(f); err != nil {
			return fmt.Errorf("redirect: unpin %q: %w", name, err)
		}
	}
	if err := d.removeDir(); err != nil {
		return fmt.Errorf("redirect: unpin %q: %w", name, err)
	}
	return nil
}

// pinCtx is one AttachPinned call, with the pin directory locked.
type pinCtx struct {
	name  string
	dir   string  // PinDir/name
	d     *pinDir // the open, checked, locked dir
	iface netlink.Link
	where string // "redirect: attach pinned ..." prefix for errors
}

// path returns the path of pin f, for messages.
func (c *pinCtx) path(f string) string { return c.d.file(f) }

// obj returns the path to pin and load f through, see pinDir.obj. Only
// for a pin present (or has) found not to be a symbolic link.
func (c *pinCtx) obj(f string) string { return c.d.obj(f) }

// present lists which of the pins exist. It fails, with ErrPinUntrusted,
// if one is a symbolic link.
func (c *pinCtx) present() ([]string, error) {
	var names []string
	for _, f := range pinNames {
		ok, err := c.d.has(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.where, err)
		}
		if ok {
			names = append(names, f)
		}
	}
	return names, nil
}

// incompatible says why the pins do not fit and how to remove them.
func (c *pinCtx) incompatible(cause error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	hint := fmt.Sprintf("if no worker uses these pins any more, remove them with redirect.Unpin(%q, opts) or rm -r %s", c.name, c.dir)
	if cause != nil {
		return fmt.Errorf("%s: %w: %s (%w); %s", c.where, ErrPinIncompatible, what, cause, hint)
	}
	return fmt.Errorf("%s: %w: %s; %s", c.where, ErrPinIncompatible, what, hint)
}

// create loads and attaches the program as Attach does and pins it, the
// link last. On error nothing stays pinned or attached.
func (c *pinCtx) create(o Options, queues int) (_ *Program, err error) {
	prog, xsks, counters, err := load(queues, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.where, err)
	}
	p := &Program{prog: prog, xsks: xsks, own: true, ifindex: c.iface.Index, ifname: c.iface.Name,
		queues: queues, filter: o.Filter, counters: counters}
	var pinned []string
	defer func() {
		if err == nil {
			return
		}
		for _, f := range pinned {
			if rerr := c.d.remove(f); rerr != nil {
				err = errors.Join(err, fmt.Errorf("%s: %w", c.where, rerr))
			}
		}
		if cerr := p.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	if err := p.attach(o.Mode); err != nil {
		return nil, err
	}
	type pinner interface{ Pin(string) error }
	for _, obj := range []struct {
		file string
		what string
		obj  pinner
	}{
		{pinMap, "XSKMAP", xsks},
		{pinCounters, "counters map", counters},
		{pinProg, "program", prog},
		{pinLink, "link", p.lnk},
	} {
		if obj.file == pinCounters && counters == nil {
			continue
		}
		if err := obj.obj.Pin(c.obj(obj.file)); err != nil {
			return nil, fmt.Errorf("%s: pin %s at %s: %w", c.where, obj.what, c.path(obj.file), err)
		}
		pinned = append(pinned, obj.file)
	}
	p.pinned = c.dir
	return p, nil
}

// open loads the pinned objects and checks that they fit the interface
// and the options.
func (c *pinCtx) open(o Options, queues int) (_ *Program, err error) {
	p := &Program{own: true, ifindex: c.iface.Index, ifname: c.iface.Name, filter: o.Filter, pinned: c.dir}
	defer func() {
		if err != nil {
			// Only our handles: the pinned objects stay as they are.
			_ = p.Close()
		}
	}()

	// The link: attached, as XDP, to this interface.
	lnk, err := link.LoadPinnedLink(c.obj(pinLink), nil)
	if err != nil {
		return nil, c.incompatible(err, "cannot load %s as a BPF link", c.path(pinLink))
	}
	p.lnk = lnk
	info, err := lnk.Info()
	if err != nil {
		return nil, fmt.Errorf("%s: pinned link info: %w", c.where, err)
	}
	xi := info.XDP()
	if info.Type != link.XDPType || xi == nil {
		return nil, c.incompatible(nil, "the pinned link is not an XDP link (link type %d)", info.Type)
	}
	switch {
	case xi.Ifindex == 0:
		return nil, c.incompatible(nil, "the pinned link is no longer attached to an interface (its interface was deleted, or the link detached)")
	case int(xi.Ifindex) != c.iface.Index:
		other := ""
		if l, err := netlink.LinkByIndex(int(xi.Ifindex)); err == nil {
			other = " (" + l.Name + ")"
		}
		return nil, c.incompatible(nil, "the pinned program is attached to ifindex %d%s, not to %s (ifindex %d)",
			xi.Ifindex, other, c.iface.Name, c.iface.Index)
	}

	// The program: XDP, the one the link attaches.
	if p.prog, err = ebpf.LoadPinnedProgram(c.obj(pinProg), nil); err != nil {
		return nil, c.incompatible(err, "cannot load %s as a BPF program", c.path(pinProg))
	}
	if t := p.prog.Type(); t != ebpf.XDP {
		return nil, c.incompatible(nil, "the pinned program is of type %s, want XDP", t)
	}
	pinfo, err := p.prog.Info()
	if err != nil {
		return nil, fmt.Errorf("%s: pinned program info: %w", c.where, err)
	}
	progID, _ := pinfo.ID()
	if progID != info.Program {
		return nil, c.incompatible(nil, "the pinned program (ID %d) is not the one the pinned link attaches (ID %d)", progID, info.Program)
	}
	mapIDs, _ := pinfo.MapIDs()

	// The XSKMAP: the right kind and size, used by the program.
	if p.xsks, err = ebpf.LoadPinnedMap(c.obj(pinMap), nil); err != nil {
		return nil, c.incompatible(err, "cannot load %s as a BPF map", c.path(pinMap))
	}
	m := p.xsks
	switch {
	case m.Type() != ebpf.XSKMap:
		return nil, c.incompatible(nil, "the pinned map is a %s map, want XSKMap", m.Type())
	case m.KeySize() != 4 || m.ValueSize() != 4:
		return nil, c.incompatible(nil, "the pinned XSKMAP has key and value sizes %d and %d, want 4 and 4", m.KeySize(), m.ValueSize())
	case int(m.MaxEntries()) < queues:
		why := fmt.Sprintf("%s has %d RX queues", c.iface.Name, queues)
		if o.Queues != 0 {
			why = fmt.Sprintf("Options.Queues is %d", o.Queues)
		}
		return nil, c.incompatible(nil, "the pinned XSKMAP has MaxEntries %d, but %s", m.MaxEntries(), why)
	}
	p.queues = int(m.MaxEntries())
	redirects := o.Filter == nil || o.Filter.Redirects()
	if redirects && !usesMap(m, mapIDs) {
		return nil, c.incompatible(nil, "the pinned program does not redirect to the pinned XSKMAP")
	}

	// The counters, if the program has them.
	hasCounters, err := c.d.has(pinCounters)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s: %w", c.where, err)
	case hasCounters && !o.Counters:
		return nil, c.incompatible(nil, "the pinned program counts its verdicts and these options do not set Options.Counters")
	case !hasCounters && o.Counters:
		return nil, c.incompatible(nil, "Options.Counters is set but the pinned program has no counters")
	case hasCounters:
		if p.counters, err = ebpf.LoadPinnedMap(c.obj(pinCounters), nil); err != nil {
			return nil, c.incompatible(err, "cannot load %s as a BPF map", c.path(pinCounters))
		}
		if !usesMap(p.counters, mapIDs) {
			return nil, c.incompatible(nil, "the pinned program does not use the pinned counters map")
		}
	}

	// The instructions: the program these options build (same filter).
	want, err := programTag(o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.where, err)
	}
	if pinfo.Tag != want {
		filter := "no Options.Filter"
		if o.Filter != nil {
			filter = fmt.Sprintf("Options.Filter %q", o.Filter.String())
		}
		return nil, c.incompatible(nil, "the pinned program is not the one these options build (tag %s, want %s for %s): "+
			"it was attached with another filter, or by another xdpkit version", pinfo.Tag, want, filter)
	}

	// What runs on the interface in this network namespace: the pinned
	// program, in which mode.
	l, err := netlink.LinkByIndex(c.iface.Index)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.where, err)
	}
	switch uint32(progID) {
	case l.XDP.DrvProgID:
		p.mode = ModeDriver
	case l.XDP.SKBProgID:
		p.mode = ModeGeneric
	default:
		return nil, c.incompatible(nil, "%s runs XDP %s, not the pinned program %d: the pin belongs to the interface with this index in another network namespace",
			c.iface.Name, l.XDP, progID)
	}
	if o.Mode != ModeAuto && o.Mode != p.mode {
		return nil, c.incompatible(nil, "the pinned program runs in %s mode, Options.Mode asks for %s", p.mode, o.Mode)
	}
	return p, nil
}

// usesMap reports whether m's ID is among ids.
func usesMap(m *ebpf.Map, ids []ebpf.MapID) bool {
	info, err := m.Info()
	if err != nil {
		return false
	}
	id, ok := info.ID()
	return ok && slices.Contains(ids, id)
}

// programTag returns the kernel's tag (a hash of the instructions, with
// map references zeroed) of the program o builds. It loads the program
// with a one-entry XSKMAP and closes both: the kernel computes the tag the
// same way as for the pinned program, whatever its version.
func programTag(o Options) (string, error) {
	prog, xsks, counters, err := load(1, o)
	if err != nil {
		return "", fmt.Errorf("load program to compare: %w", err)
	}
	defer func() {
		prog.Close()
		xsks.Close()
		counters.Close()
	}()
	info, err := prog.Info()
	if err != nil {
		return "", fmt.Errorf("program info: %w", err)
	}
	return info.Tag, nil
}

// removeLeftovers removes the remains of a creation interrupted before
// the link was pinned, after checking that they are objects this package
// creates and that the program is not attached to the interface.
// Anything else is reported as incompatible and left in place.
func (c *pinCtx) removeLeftovers(present []string) error {
	for _, f := range present {
		if err := c.checkLeftover(f); err != nil {
			return err
		}
	}
	for _, f := range present {
		if err := c.d.remove(f); err != nil {
			return fmt.Errorf("%s: remove the remains of an interrupted creation: %w", c.where, err)
		}
	}
	return nil
}

func (c *pinCtx) checkLeftover(f string) error {
	const missing = "the link pin is missing"
	switch f {
	case pinProg:
		prog, err := ebpf.LoadPinnedProgram(c.obj(f), nil)
		if err != nil {
			return c.incompatible(err, "%s, and %s is not a BPF program", missing, c.path(f))
		}
		defer prog.Close()
		info, err := prog.Info()
		if err != nil {
			return fmt.Errorf("%s: pinned program info: %w", c.where, err)
		}
		if prog.Type() != ebpf.XDP || info.Name != progName {
			return c.incompatible(nil, "%s, and the pinned program is %s program %q, not xdpkit's", missing, prog.Type(), info.Name)
		}
		id, _ := info.ID()
		if l, err := netlink.LinkByIndex(c.iface.Index); err == nil && l.XDP.AnyProgID() == uint32(id) && id != 0 {
			return c.incompatible(nil, "%s, but the pinned program %d is attached to %s", missing, id, c.iface.Name)
		}
		return nil
	case pinMap, pinCounters:
		want, wantName := ebpf.XSKMap, mapName
		if f == pinCounters {
			want, wantName = ebpf.PerCPUArray, countersName
		}
		m, err := ebpf.LoadPinnedMap(c.obj(f), nil)
		if err != nil {
			return c.incompatible(err, "%s, and %s is not a BPF map", missing, c.path(f))
		}
		defer m.Close()
		info, err := m.Info()
		if err != nil {
			return fmt.Errorf("%s: pinned map info: %w", c.where, err)
		}
		if m.Type() != want || info.Name != wantName {
			return c.incompatible(nil, "%s, and %s is %s map %q, want xdpkit's %s map %q", missing, c.path(f), m.Type(), info.Name, want, wantName)
		}
		return nil
	}
	return nil
}
