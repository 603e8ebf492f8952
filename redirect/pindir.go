//go:build linux

package redirect

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The pin directories: PinDir (by default DefaultPinDir) holds one
// directory per name, PinDir/name, which holds the pins and carries the
// lock. Both are opened without following symbolic links and checked on
// the open descriptor (fstat, fstatfs), and the pins are reached through
// that descriptor, so nothing can be swapped in between the check and the
// use. The ancestors of PinDir are used as the path says (they may be
// symbolic links, like /var/run): once PinDir is a checked directory only
// root or this process's user can change what is inside it, whoever owns
// its parent.

// bpffsRoot is where the BPF filesystem is conventionally mounted, and
// where AttachPinned mounts one if there is none (as bpftool and libxdp
// do). Only a PinDir at or under it triggers the mount.
const bpffsRoot = "/sys/fs/bpf"

// pinLockTimeout bounds the wait for another process's check-or-create
// (or Unpin) on the same name, and for another process mounting bpffs.
const pinLockTimeout = 10 * time.Second

// maxPinName is the longest name AttachPinned accepts.
const maxPinName = 64

// errNoPin is returned by lockPinDir when the directory does not exist
// and was not to be created.
var errNoPin = errors.New("no such pin")

// pinPath validates name and the base directory (empty: DefaultPinDir)
// and returns the cleaned base.
func pinPath(name, base string) (string, error) {
	if base == "" {
		base = DefaultPinDir
	}
	if !filepath.IsAbs(base) {
		return "", fmt.Errorf("invalid Options.PinDir %q: must be an absolute path: %w", base, ErrInvalidOptions)
	}
	valid := name != "" && len(name) <= maxPinName
	for _, r := range name {
		valid = valid && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}
	if !valid {
		return "", fmt.Errorf("invalid pin name %q: must be 1 to %d letters, digits, '_' or '-': %w", name, maxPinName, ErrInvalidOptions)
	}
	return filepath.Clean(base), nil
}

// pinDir is a name's pin directory PinDir/name, opened, checked and
// locked. The pins in it are reached through its descriptor (obj), never
// through a path that could lead elsewhere.
type pinDir struct {
	path   string // PinDir/name, for messages
	name   string
	baseFD int // PinDir
	fd     int // PinDir/name, holding the flock
}

// obj returns the path of pin f through the directory's descriptor, for
// the calls (BPF_OBJ_GET, BPF_OBJ_PIN) that take a path and no dirfd.
// Check f with has first: the kernel follows a symbolic link there.
func (d *pinDir) obj(f string) string { return fmt.Sprintf("/proc/self/fd/%d/%s", d.fd, f) }

// file returns the path of pin f, for messages.
func (d *pinDir) file(f string) string { return filepath.Join(d.path, f) }

// unlock releases the lock and closes the descriptors.
func (d *pinDir) unlock() {
	unix.Close(d.fd) // releases the flock
	unix.Close(d.baseFD)
}

// has reports whether pin f exists. A symbolic link there is refused:
// loading through it would use an object outside the checked directory.
func (d *pinDir) has(f string) (bool, error) {
	var st unix.Stat_t
	err := unix.Fstatat(d.fd, f, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("stat pin %s: %w", d.file(f), err)
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return false, untrusted(d.file(f), "is a symbolic link"+linkTarget(d.fd, f)+", not a pinned object",
			fmt.Sprintf("remove it with rm %s", d.file(f)))
	}
	return true, nil
}

// remove removes pin f (never what a symbolic link there points to); a
// missing pin is not an error.
func (d *pinDir) remove(f string) error {
	if err := unix.Unlinkat(d.fd, f, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove pin %s: %w", d.file(f), err)
	}
	return nil
}

// removeDir removes the (empty) directory itself. If it is not empty, the
// error names what is left.
func (d *pinDir) removeDir() error {
	err := unix.Unlinkat(d.baseFD, d.name, unix.AT_REMOVEDIR)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ENOTEMPTY):
		var left []string
		if ents, rerr := os.ReadDir(d.obj("")); rerr == nil {
			for _, e := range ents {
				left = append(left, e.Name())
			}
		}
		return fmt.Errorf("%s holds objects xdpkit did not pin (%s): %w", d.path, strings.Join(left, ", "), err)
	}
	return fmt.Errorf("remove pin directory %s: %w", d.path, err)
}

// lockPinDir opens the pin directory base/name and takes an exclusive
// flock on it. With create it makes sure base is on a BPF filesystem
// (mounting one on /sys/fs/bpf if base is there, see ensureBPFFS) and
// creates the missing directories with mode 0700; without create a
// missing directory gives errNoPin. base and base/name must pass
// checkDir, else the error matches ErrPinUntrusted. The lock is on the
// directory itself, so a directory removed by Unpin while we waited is
// noticed (its inode is no longer the one at base/name) and the lock taken
// again on its successor. Waits at most pinLockTimeout.
func lockPinDir(base, name string, create bool) (*pinDir, error) {
	if create {
		if err := ensureBPFFS(base); err != nil {
			return nil, err
		}
	}
	path := filepath.Join(base, name)
	deadline := time.Now().Add(pinLockTimeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		d, err := tryLockPinDir(base, name, create)
		if d != nil || err != nil {
			return d, err
		}
		// Locked by another process, or removed (and maybe created again)
		// while we opened or waited for it.
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("lock pin directory %s: still locked by another process after %v: %w", path, pinLockTimeout, unix.EWOULDBLOCK)
		}
		time.Sleep(delay)
	}
}

// tryLockPinDir is one attempt of lockPinDir. It returns nil and no error
// when the directory is locked by another process or was removed
// meanwhile: try again.
func tryLockPinDir(base, name string, create bool) (*pinDir, error) {
	bfd, err := openPinBase(base, create)
	if err != nil || bfd < 0 {
		return nil, err
	}
	path := filepath.Join(base, name)
	fd, err := openDirAt(bfd, name, path, create)
	if err != nil || fd < 0 {
		unix.Close(bfd)
		return nil, err
	}
	d := &pinDir{path: path, name: name, baseFD: bfd, fd: fd}
	locked := false
	defer func() {
		if !locked {
			d.unlock()
		}
	}()
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); errors.Is(err, unix.EWOULDBLOCK) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("lock pin directory %s: %w", path, err)
	}
	var ours, now unix.Stat_t
	if err := unix.Fstat(fd, &ours); err != nil {
		return nil, fmt.Errorf("stat pin directory %s: %w", path, err)
	}
	if err := unix.Fstatat(bfd, name, &now, unix.AT_SYMLINK_NOFOLLOW); err != nil || now.Dev != ours.Dev || now.Ino != ours.Ino {
		return nil, nil // removed or replaced while we waited
	}
	// The pins are loaded and made through /proc/self/fd/N: make sure
	// that path leads to this directory.
	if err := unix.Stat(d.obj(""), &now); err != nil || now.Dev != ours.Dev || now.Ino != ours.Ino {
		if err == nil {
			err = errors.New("it leads to another directory")
		}
		return nil, fmt.Errorf("pin directory %s: the pins are reached through %s (is /proc mounted?): %w", path, d.obj(""), err)
	}
	locked = true
	return d, nil
}

// openPinBase opens PinDir (base) and checks it. Its ancestors are opened
// as the path says; missing ones (with create) are created with mode 0700
// and checked like base. It returns -1 and no error when a directory was
// removed while it was being created (try again), errNoPin when one is
// missing and create is not set.
func openPinBase(base string, create bool) (int, error) {
	pfd, err := openAncestor(filepath.Dir(base), create)
	if err != nil || pfd < 0 {
		return -1, err
	}
	defer unix.Close(pfd)
	return openDirAt(pfd, filepath.Base(base), base, create)
}

// openAncestor opens dir, an ancestor of PinDir. An existing one is
// opened as its path says; a missing one is created, when create is set,
// in its own parent, and checked.
func openAncestor(dir string, create bool) (int, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	switch {
	case err == nil:
		return fd, nil
	case !errors.Is(err, unix.ENOENT):
		return -1, fmt.Errorf("open %s: %w", dir, err)
	case !create:
		return -1, errNoPin
	}
	pfd, err := openAncestor(filepath.Dir(dir), create)
	if err != nil || pfd < 0 {
		return -1, err
	}
	defer unix.Close(pfd)
	return openDirAt(pfd, filepath.Base(dir), dir, create)
}

// openDirAt opens the directory name in the directory parent without
// following a symbolic link, creating it (mode 0700) first if it is
// missing and create is set, and checks it with checkDir. path is its
// full path, for messages. It returns -1 and no error when the directory
// or its parent was removed in between (try again), and errNoPin when it
// is missing and create is not set.
func openDirAt(parent int, name, path string, create bool) (int, error) {
	made, created := false, false // mkdir tried, mkdir succeeded
	for {
		fd, err := unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		switch {
		case err == nil:
			if err := checkNewDir(fd, path, created); err != nil {
				unix.Close(fd)
				return -1, err
			}
			return fd, nil
		case errors.Is(err, unix.ENOENT) && create && !made:
			made = true
			switch err := unix.Mkdirat(parent, name, 0o700); {
			case err == nil:
				created = true
			case errors.Is(err, unix.EEXIST):
				// Made by another process meanwhile: open and check it.
			case errors.Is(err, unix.ENOENT):
				return -1, nil // the parent was removed
			default:
				return -1, fmt.Errorf("create pin directory %s: %w", path, err)
			}
		case errors.Is(err, unix.ENOENT) && create:
			return -1, nil // removed right after it was made
		case errors.Is(err, unix.ENOENT):
			return -1, errNoPin
		case errors.Is(err, unix.ELOOP), errors.Is(err, unix.ENOTDIR):
			// O_NOFOLLOW|O_DIRECTORY on a symbolic link gives one or the
			// other: say which it is.
			var st unix.Stat_t
			if unix.Fstatat(parent, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
				return -1, untrusted(path, "is a symbolic link"+linkTarget(parent, name)+", not a directory",
					fmt.Sprintf("remove it with rm %s (pins are never made or loaded through a symbolic link)", path))
			}
			return -1, untrusted(path, "is not a directory", "remove it, or choose another Options.PinDir")
		default:
			return -1, fmt.Errorf("open pin directory %s: %w", path, err)
		}
	}
}

// checkNewDir checks the open directory fd with checkDir. A directory we
// just created gets mode 0700 first: mkdir applies the umask, which may
// have taken bits from the owner.
func checkNewDir(fd int, path string, created bool) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat pin directory %s: %w", path, err)
	}
	if created && st.Uid == uint32(os.Geteuid()) && st.Mode&0o7777 != 0o700 {
		if err := unix.Fchmod(fd, 0o700); err != nil {
			return fmt.Errorf("chmod 0700 pin directory %s: %w", path, err)
		}
		st.Mode = st.Mode&^0o7777 | 0o700
	}
	return checkDir(fd, path, &st)
}

// checkDir checks that the open directory fd (path, with st from fstat)
// is one to trust with pins: on a BPF filesystem, owned by root or by
// this process's user, with no permission bits for group or others.
// Otherwise another user could have created it, or could open it, to use
// our pins or plant their own. The error matches ErrPinUntrusted.
func checkDir(fd int, path string, st *unix.Stat_t) error {
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return untrusted(path, "is not a directory", "remove it, or choose another Options.PinDir")
	}
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil {
		return fmt.Errorf("statfs pin directory %s: %w", path, err)
	}
	if uint32(fs.Type) != uint32(unix.BPF_FS_MAGIC) {
		return notBPFFS(path, path)
	}
	if euid := os.Geteuid(); st.Uid != 0 && int(st.Uid) != euid {
		return untrusted(path, fmt.Sprintf("is owned by uid %d, not by root or by this process's user (uid %d): another user may have made it to reach the pins", st.Uid, euid),
			fmt.Sprintf("remove it with rm -r %s, or if you trust it, chown %d %s", path, euid, path))
	}
	if perm := st.Mode & 0o7777; perm&0o077 != 0 {
		return untrusted(path, fmt.Sprintf("has mode %#o, which lets group or others in; want 0700", perm),
			fmt.Sprintf("chmod 0700 %s, or remove it with rm -r %s", path, path))
	}
	return nil
}

// untrusted returns an error matching ErrPinUntrusted: path, what is
// wrong with it, and fix, how to fix it.
func untrusted(path, what, fix string) error {
	return fmt.Errorf("%w: %s %s; %s", ErrPinUntrusted, path, what, fix)
}

// notBPFFS is the error for a pin directory (base) whose path at (itself
// or its nearest existing ancestor) is not on a BPF filesystem.
func notBPFFS(base, at string) error {
	what := "is not on a BPF filesystem"
	if at != base {
		what = fmt.Sprintf("is not on a BPF filesystem (%s is not)", at)
	}
	return untrusted(base, what, fmt.Sprintf("mount one with: mount -t bpf -o mode=0700 bpf %s, or set Options.PinDir to a directory on one", mountHint(base)))
}

// mountHint returns where to mount bpffs for base: /sys/fs/bpf for a
// PinDir under it, otherwise base itself.
func mountHint(base string) string {
	if underBPFFSRoot(base) {
		return bpffsRoot
	}
	return base
}

// linkTarget returns " (to TARGET)" for the symbolic link name in dirfd,
// or "" if it cannot be read.
func linkTarget(dirfd int, name string) string {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dirfd, name, buf)
	if err != nil {
		return ""
	}
	return fmt.Sprintf(" (to %s)", buf[:n])
}

// underBPFFSRoot reports whether base is /sys/fs/bpf or below it.
func underBPFFSRoot(base string) bool {
	return base == bpffsRoot || strings.HasPrefix(base, bpffsRoot+"/")
}

// ensureBPFFS checks that base, or its nearest existing ancestor, is on a
// BPF filesystem, before anything is created there. If not and base is
// under /sys/fs/bpf, it mounts a BPF filesystem on /sys/fs/bpf first.
func ensureBPFFS(base string) error {
	at, ok, err := onBPFFS(base)
	if err != nil || ok {
		return err
	}
	if !underBPFFSRoot(base) {
		return notBPFFS(base, at)
	}
	if err := mountBPFFS(); err != nil {
		return err
	}
	// Something other than bpffs may still be mounted between
	// /sys/fs/bpf and base.
	if at, ok, err = onBPFFS(base); err != nil || ok {
		return err
	}
	return notBPFFS(base, at)
}

// onBPFFS reports whether path, or its nearest existing ancestor (at), is
// on a BPF filesystem.
func onBPFFS(path string) (at string, ok bool, err error) {
	for at = path; ; {
		var st unix.Statfs_t
		err := unix.Statfs(at, &st)
		if err == nil {
			return at, uint32(st.Type) == uint32(unix.BPF_FS_MAGIC), nil
		}
		parent := filepath.Dir(at)
		if !errors.Is(err, unix.ENOENT) || parent == at {
			return at, false, fmt.Errorf("pin directory %s: statfs %s: %w", path, at, err)
		}
		at = parent
	}
}

// mountBPFFS mounts a BPF filesystem on /sys/fs/bpf, with mode 0700, as
// bpftool and libxdp do when none is mounted. It creates /sys/fs/bpf
// first if it is missing and /sys is sysfs. Concurrent callers are
// serialized by a flock on /sys/fs/bpf, so that only one mounts: a second
// bpffs stacked on the first would hide the pins made there. Nothing is
// mounted if a BPF filesystem is there by the time the lock is held.
func mountBPFFS() error {
	var st unix.Statfs_t
	switch err := unix.Statfs(bpffsRoot, &st); {
	case errors.Is(err, unix.ENOENT):
		var sys unix.Statfs_t
		if err := unix.Statfs("/sys", &sys); err != nil || uint32(sys.Type) != uint32(unix.SYSFS_MAGIC) {
			return fmt.Errorf("no BPF filesystem for the pins: %s does not exist and /sys is not sysfs; mount one with: mount -t bpf -o mode=0700 bpf DIR, and set Options.PinDir to DIR", bpffsRoot)
		}
		if err := unix.Mkdir(bpffsRoot, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create %s to mount a BPF filesystem on: %w", bpffsRoot, err)
		}
	case err != nil:
		return fmt.Errorf("statfs %s: %w", bpffsRoot, err)
	}
	fd, err := unix.Open(bpffsRoot, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", bpffsRoot, err)
	}
	defer unix.Close(fd) // releases the flock
	deadline := time.Now().Add(pinLockTimeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("lock %s to mount a BPF filesystem on it: %w", bpffsRoot, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lock %s to mount a BPF filesystem on it: still locked by another process after %v: %w", bpffsRoot, pinLockTimeout, err)
		}
		time.Sleep(delay)
	}
	if err := unix.Statfs(bpffsRoot, &st); err == nil && uint32(st.Type) == uint32(unix.BPF_FS_MAGIC) {
		return nil // mounted by another process while we waited
	}
	if err := unix.Mount("bpf", bpffsRoot, "bpf", 0, "mode=0700"); err != nil {
		if errors.Is(err, os.ErrPermission) {
			return fmt.Errorf("no BPF filesystem is mounted on %s, and mounting one needs CAP_SYS_ADMIN: run with it, or mount it first with: mount -t bpf -o mode=0700 bpf %s: %w", bpffsRoot, bpffsRoot, err)
		}
		return fmt.Errorf("mount a BPF filesystem on %s: %w", bpffsRoot, err)
	}
	return nil
}
