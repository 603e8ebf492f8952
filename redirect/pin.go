//go:build linux

package redirect

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

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

// pinLockTimeout bounds the wait for another process's check-or-create
// (or Unpin) on the same name.
const pinLockTimeout = 10 * time.Second

// maxPinName is the longest name AttachPinned accepts.
const maxPinName = 64

// errNoPin is returned by lockPinDir when the directory does not exist
// and was not to be created.
var errNoPin = errors.New("no such pin")

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
// BPF filesystem refuses '.'). PinDir must be on a mounted BPF filesystem
// (mount -t bpf bpf /sys/fs/bpf); missing directories are created with
// mode 0700, so only root can use the pins. Attaching needs the privileges
// of [Attach]. Options.MultiBuffer applies when the program is created;
// it is not checked on pinned programs, as the kernel does not report it.
func AttachPinned(ifindex int, name string, opts *Options) (*Program, error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, fmt.Errorf("redirect: attach pinned %q to ifindex %d: %w", name, ifindex, err)
	}
	dir, err := pinPath(name, o.PinDir)
	if err != nil {
		return nil, fmt.Errorf("redirect: attach pinned %q to ifindex %d: %w", name, ifindex, err)
	}
	iface, err := lookup(ifindex)
	if err != nil {
		return nil, err
	}
	c := &pinCtx{
		name:  name,
		dir:   dir,
		iface: iface,
		where: fmt.Sprintf("redirect: attach pinned %q to %s (ifindex %d)", name, iface.Name, ifindex),
	}
	unlock, err := lockPinDir(dir, true)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.where, err)
	}
	defer unlock()

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
func Unpin(name string, opts *Options) error {
	var dir string
	if opts != nil {
		dir = opts.PinDir
	}
	path, err := pinPath(name, dir)
	if err != nil {
		return fmt.Errorf("redirect: unpin %q: %w", name, err)
	}
	return unpinDir(name, path)
}

// Unpin removes the pins p was attached through, like [Unpin] with the
// same name and PinDir. It may be called before or after Close. It fails
// for a Program that did not come from [AttachPinned].
func (p *Program) Unpin() error {
	if p == nil || p.pinned == "" {
		return errors.New("redirect: unpin: program was not attached by AttachPinned")
	}
	return unpinDir(filepath.Base(p.pinned), p.pinned)
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

// pinPath validates name and the base directory (empty: DefaultPinDir)
// and returns the name's pin directory.
func pinPath(name, base string) (string, error) {
	if base == "" {
		base = DefaultPinDir
	}
	if !filepath.IsAbs(base) {
		return "", fmt.Errorf("invalid Options.PinDir %q: must be an absolute path", base)
	}
	valid := name != "" && len(name) <= maxPinName
	for _, r := range name {
		valid = valid && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}
	if !valid {
		return "", fmt.Errorf("invalid pin name %q: must be 1 to %d letters, digits, '_' or '-'", name, maxPinName)
	}
	return filepath.Join(filepath.Clean(base), name), nil
}

// lockPinDir takes an exclusive flock on the pin directory dir, creating
// it (and its parents, mode 0700) if create is set; without create a
// missing directory gives errNoPin. The lock is on the directory itself, so
// a directory removed by Unpin while we waited is noticed (its inode is no
// longer the one at dir) and the lock taken again on its successor. Waits
// at most pinLockTimeout. unlock releases the lock.
func lockPinDir(dir string, create bool) (unlock func(), err error) {
	if create {
		if err := checkBPFFS(dir); err != nil {
			return nil, err
		}
	}
	deadline := time.Now().Add(pinLockTimeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		fd, err := openPinDir(dir, create)
		if err != nil {
			return nil, err
		}
		if fd >= 0 {
			err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
			if err == nil && sameFile(fd, dir) {
				// Closing the descriptor releases the lock.
				return func() { unix.Close(fd) }, nil
			}
			unix.Close(fd)
			if err != nil && !errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("lock pin directory %s: %w", dir, err)
			}
			// Locked by another process, or removed (and maybe created
			// again) while we waited for the lock: try again.
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("lock pin directory %s: still locked by another process after %v: %w", dir, pinLockTimeout, unix.EWOULDBLOCK)
		}
		time.Sleep(delay)
	}
}

// openPinDir opens dir, creating it first if create is set. It returns
// fd -1 (and no error) when the directory was removed between MkdirAll and
// Open, and errNoPin when it is missing and create is not set.
func openPinDir(dir string, create bool) (int, error) {
	if create {
		if err := os.MkdirAll(dir, 0o700); errors.Is(err, fs.ErrNotExist) {
			return -1, nil // a parent removed meanwhile
		} else if err != nil {
			return -1, fmt.Errorf("create pin directory: %w", err)
		}
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ENOENT) && create:
		return -1, nil // removed by Unpin between MkdirAll and Open
	case errors.Is(err, unix.ENOENT):
		return -1, errNoPin
	case err != nil:
		return -1, fmt.Errorf("open pin directory %s: %w", dir, err)
	}
	return fd, nil
}

// sameFile reports whether the open fd is the file now at path.
func sameFile(fd int, path string) bool {
	var a, b unix.Stat_t
	if unix.Fstat(fd, &a) != nil || unix.Stat(path, &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// checkBPFFS checks that dir, or its nearest existing ancestor, is on a
// BPF filesystem, before anything is created there.
func checkBPFFS(dir string) error {
	p := dir
	for {
		var st unix.Statfs_t
		err := unix.Statfs(p, &st)
		if err == nil {
			if uint32(st.Type) != uint32(unix.BPF_FS_MAGIC) {
				return fmt.Errorf("pin directory %s: %s is not on a BPF filesystem (mount one with: mount -t bpf bpf /sys/fs/bpf)", dir, p)
			}
			return nil
		}
		parent := filepath.Dir(p)
		if !errors.Is(err, unix.ENOENT) || parent == p {
			return fmt.Errorf("pin directory %s: statfs %s: %w", dir, p, err)
		}
		p = parent
	}
}

// unpinDir removes the pins in dir and dir itself, under the lock.
func unpinDir(name, dir string) error {
	unlock, err := lockPinDir(dir, false)
	if errors.Is(err, errNoPin) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("redirect: unpin %q: %w", name, err)
	}
	defer unlock()
	for _, f := range pinNames {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("redirect: unpin %q: %w", name, err)
		}
	}
	if err := os.Remove(dir); err != nil {
		if errors.Is(err, unix.ENOTEMPTY) {
			var left []string
			if ents, rerr := os.ReadDir(dir); rerr == nil {
				for _, e := range ents {
					left = append(left, e.Name())
				}
			}
			return fmt.Errorf("redirect: unpin %q: %s holds objects xdpkit did not pin (%s): %w",
				name, dir, strings.Join(left, ", "), err)
		}
		return fmt.Errorf("redirect: unpin %q: %w", name, err)
	}
	return nil
}

// pinCtx is one AttachPinned call, with the pin directory locked.
type pinCtx struct {
	name  string
	dir   string
	iface netlink.Link
	where string // "redirect: attach pinned ..." prefix for errors
}

func (c *pinCtx) path(f string) string { return filepath.Join(c.dir, f) }

// present lists which of the pins exist.
func (c *pinCtx) present() ([]string, error) {
	var names []string
	for _, f := range pinNames {
		_, err := os.Lstat(c.path(f))
		switch {
		case err == nil:
			names = append(names, f)
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("%s: %w", c.where, err)
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
	prog, xsks, counters, err := load(queues, o.Filter, o.Counters, o.MultiBuffer)
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
			if rerr := os.Remove(c.path(f)); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				err = errors.Join(err, fmt.Errorf("%s: remove pin: %w", c.where, rerr))
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
		if err := obj.obj.Pin(c.path(obj.file)); err != nil {
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
	lnk, err := link.LoadPinnedLink(c.path(pinLink), nil)
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
	if p.prog, err = ebpf.LoadPinnedProgram(c.path(pinProg), nil); err != nil {
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
	if p.xsks, err = ebpf.LoadPinnedMap(c.path(pinMap), nil); err != nil {
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
	_, err = os.Lstat(c.path(pinCounters))
	hasCounters := err == nil
	switch {
	case hasCounters && !o.Counters:
		return nil, c.incompatible(nil, "the pinned program counts its verdicts and these options do not set Options.Counters")
	case !hasCounters && o.Counters:
		return nil, c.incompatible(nil, "Options.Counters is set but the pinned program has no counters")
	case hasCounters:
		if p.counters, err = ebpf.LoadPinnedMap(c.path(pinCounters), nil); err != nil {
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
	prog, xsks, counters, err := load(1, o.Filter, o.Counters, o.MultiBuffer)
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
		if err := os.Remove(c.path(f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: remove the remains of an interrupted creation: %w", c.where, err)
		}
	}
	return nil
}

func (c *pinCtx) checkLeftover(f string) error {
	const missing = "the link pin is missing"
	switch f {
	case pinProg:
		prog, err := ebpf.LoadPinnedProgram(c.path(f), nil)
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
		m, err := ebpf.LoadPinnedMap(c.path(f), nil)
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
