//go:build linux

package napi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// stateVersion is the version field of the state files this package
// writes; files with another version are refused, not guessed at.
const stateVersion = 1

// lockTimeout bounds the wait for another process's lock on a state file.
// It is only held for a few file operations, so a long wait means a hung
// process.
const lockTimeout = 10 * time.Second

// state is the content of one state file: who uses the NAPI settings of
// one interface, and the values to put back when the last user leaves.
type state struct {
	Version  int    `json:"version"`
	BootID   string `json:"boot_id"`
	NetNS    uint64 `json:"netns"`
	Ifname   string `json:"ifname"`
	Ifindex  int    `json:"ifindex"`
	Original values `json:"original"` // the values before the first user
	Applied  values `json:"applied"`  // the values the users share
	Users    []user `json:"users"`
}

// key names the state of an interface: a namespace can hold an interface
// of the same name, and a re-created interface has another index.
type key struct {
	netns   uint64
	ifindex int
	ifname  string
}

// fileName is "NETNS-IFINDEX-IFNAME". The two numbers come first, so the
// name parses back even though interface names may hold '-'.
func (k key) fileName() string {
	return strconv.FormatUint(k.netns, 10) + "-" + strconv.Itoa(k.ifindex) + "-" + k.ifname
}

// parseFileName reverses fileName; ok is false for other files.
func parseFileName(name string) (k key, ok bool) {
	f := strings.SplitN(name, "-", 3)
	if len(f) != 3 || checkName(f[2]) != nil {
		return key{}, false
	}
	var err1, err2 error
	k.netns, err1 = strconv.ParseUint(f[0], 10, 64)
	k.ifindex, err2 = strconv.Atoi(f[1])
	k.ifname = f[2]
	return k, err1 == nil && err2 == nil && k.ifindex > 0 && k.fileName() == name
}

func (st *state) check(k key) error {
	switch {
	case st.Version != stateVersion:
		return fmt.Errorf("version %d, want %d", st.Version, stateVersion)
	case st.NetNS != k.netns || st.Ifindex != k.ifindex || st.Ifname != k.ifname:
		return fmt.Errorf("it describes %s (index %d, netns %d), not what its name says", st.Ifname, st.Ifindex, st.NetNS)
	case !st.Original.valid() || !st.Applied.valid():
		return errors.New("values that are not numbers")
	}
	for _, u := range st.Users {
		if u.PID <= 0 {
			return fmt.Errorf("a user with pid %d", u.PID)
		}
	}
	return nil
}

// openStateDir opens dir, refusing symlinks anywhere in the path and
// directories that someone other than root and us could change. With
// create it makes the missing parts (mode 0700); without, a missing
// directory gives nil and no error.
func openStateDir(dir string, create bool) (*os.File, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("napi: state directory %q is not an absolute path", dir)
	}
	dir = filepath.Clean(dir)
	euid := os.Geteuid()
	fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("napi: state directory %s: open /: %w", dir, err)
	}
	cur := "/"
	// where names the directory that failed: the state directory itself, or which part of its path.
	where := func() string {
		if cur == dir {
			return "napi: state directory " + dir
		}
		return "napi: state directory " + dir + ": " + cur
	}
	parts := strings.Split(dir, "/")[1:]
	if dir == "/" {
		parts = nil
	}
	for i := -1; i < len(parts); i++ {
		if i >= 0 {
			cur = filepath.Join(cur, parts[i])
			const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
			next, err := unix.Openat(fd, parts[i], flags, 0)
			if errors.Is(err, unix.ENOENT) && create {
				if err = unix.Mkdirat(fd, parts[i], 0o700); err == nil || errors.Is(err, unix.EEXIST) {
					next, err = unix.Openat(fd, parts[i], flags, 0)
				} else {
					unix.Close(fd)
					return nil, fmt.Errorf("napi: create state directory %s: %w%s", cur, err, hint(err, "needs root"))
				}
			}
			unix.Close(fd)
			switch {
			case errors.Is(err, unix.ENOENT) && !create:
				return nil, nil
			case errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR):
				return nil, fmt.Errorf("%s is a symlink or not a directory; refusing it", where())
			case err != nil:
				return nil, fmt.Errorf("napi: state directory %s: open %s: %w%s", dir, cur, err, hint(err, "needs root"))
			}
			fd = next
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("napi: state directory %s: stat %s: %w", dir, cur, err)
		}
		if err := trusted(&st, euid, i == len(parts)-1); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("%s %w; refusing it", where(), err)
		}
	}
	return os.NewFile(uintptr(fd), dir), nil
}

// trusted checks that only root and euid can change what st describes. The
// state directory and its files must belong to euid itself; their parents
// may belong to root and be world-writable with the sticky bit (as /tmp).
func trusted(st *unix.Stat_t, euid int, own bool) error {
	uid, perm := int(st.Uid), st.Mode&0o7777
	switch {
	case own && uid != euid:
		return fmt.Errorf("is owned by uid %d, not %d", uid, euid)
	case !own && uid != euid && uid != 0:
		return fmt.Errorf("is owned by uid %d, neither root nor %d", uid, euid)
	case perm&0o022 != 0 && (own || perm&unix.S_ISVTX == 0):
		return fmt.Errorf("is writable by group or others (mode %04o)", perm)
	}
	return nil
}

// stateFile is a state file locked with flock(LOCK_EX). The lock is on the
// inode: save replaces the file by one it locked before the rename, and a
// waiter that gets the lock on an inode no longer at the path retries.
type stateFile struct {
	dir   *os.File
	name  string
	path  string
	f     *os.File // the locked file
	st    *state   // nil: the file holds nothing to keep
	empty bool     // the file holds nothing to keep: close removes it
}

// lockState opens and locks the state file of k in dir and reads it. With
// create a missing file is created empty; without, it gives nil and no
// error. A file from before the last reboot is read as empty.
func lockState(dir *os.File, k key, create bool) (*stateFile, error) {
	sf := &stateFile{dir: dir, name: k.fileName()}
	sf.path = filepath.Join(dir.Name(), sf.name)
	flags := unix.O_RDWR | unix.O_NOFOLLOW | unix.O_CLOEXEC
	if create {
		flags |= unix.O_CREAT
	}
	deadline := time.Now().Add(lockTimeout)
	for {
		fd, err := unix.Openat(int(dir.Fd()), sf.name, flags, 0o600)
		switch {
		case errors.Is(err, unix.ENOENT) && !create:
			return nil, nil
		case errors.Is(err, unix.ELOOP):
			return nil, fmt.Errorf("napi: state file %s is a symlink; refusing it", sf.path)
		case err != nil:
			return nil, fmt.Errorf("napi: open state file %s: %w%s", sf.path, err, hint(err, "needs root"))
		}
		f := os.NewFile(uintptr(fd), sf.path)
		if err := flock(fd, deadline); err != nil {
			f.Close()
			return nil, fmt.Errorf("napi: lock state file %s: %w", sf.path, err)
		}
		var have, now unix.Stat_t
		if err := unix.Fstat(fd, &have); err != nil {
			f.Close()
			return nil, fmt.Errorf("napi: stat state file %s: %w", sf.path, err)
		}
		err = unix.Fstatat(int(dir.Fd()), sf.name, &now, unix.AT_SYMLINK_NOFOLLOW)
		if err == nil && have.Dev == now.Dev && have.Ino == now.Ino {
			sf.f = f
			break
		}
		f.Close()
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("napi: stat state file %s: %w", sf.path, err)
		}
		// Replaced or removed while we waited: lock the new one.
	}
	var st unix.Stat_t
	err := unix.Fstat(int(sf.f.Fd()), &st)
	if err == nil && st.Mode&unix.S_IFMT != unix.S_IFREG {
		err = errors.New("is not a regular file")
	} else if err == nil {
		err = trusted(&st, os.Geteuid(), true)
	}
	if err != nil {
		sf.f.Close()
		return nil, fmt.Errorf("napi: state file %s %w; refusing it", sf.path, err)
	}
	b, err := io.ReadAll(sf.f)
	if err != nil {
		sf.f.Close()
		return nil, fmt.Errorf("napi: read state file %s: %w", sf.path, err)
	}
	if len(b) == 0 {
		sf.empty = true
		return sf, nil
	}
	var s state
	if err = json.Unmarshal(b, &s); err == nil {
		err = s.check(k)
	}
	if err != nil {
		sf.f.Close()
		return nil, fmt.Errorf("napi: state file %s is invalid (%w); remove it after checking the interface's values", sf.path, err)
	}
	if s.BootID != bootID() {
		// The settings died with the boot.
		sf.empty = true
		return sf, nil
	}
	sf.st = &s
	return sf, nil
}

// flock takes an exclusive lock on fd, polling until deadline.
func flock(fd int, deadline time.Time) error {
	wait := 100 * time.Microsecond
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case !errors.Is(err, unix.EWOULDBLOCK):
			return err
		case time.Now().After(deadline):
			return fmt.Errorf("still held by another process after %v", lockTimeout)
		}
		time.Sleep(wait)
		wait = min(2*wait, 10*time.Millisecond)
	}
}

// save replaces the file with st, atomically: a new file, locked, written
// and synced, is renamed over the old one, and the lock moves with it.
func (sf *stateFile) save(st *state) error {
	st.Version, st.BootID = stateVersion, bootID()
	b, err := json.MarshalIndent(st, "", "\t")
	if err != nil {
		return fmt.Errorf("napi: encode state: %w", err)
	}
	b = append(b, '\n')
	dirfd := int(sf.dir.Fd())
	tmp := "." + sf.name + ".tmp" // only written under the lock
	// A process killed in save leaves its temporary file behind.
	if err := unix.Unlinkat(dirfd, tmp, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("napi: remove %s: %w", filepath.Join(sf.dir.Name(), tmp), err)
	}
	fd, err := unix.Openat(dirfd, tmp, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("napi: create %s: %w", filepath.Join(sf.dir.Name(), tmp), err)
	}
	f := os.NewFile(uintptr(fd), sf.path)
	err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) // nobody else locks temporary files
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = unix.Renameat(dirfd, tmp, dirfd, sf.name)
	}
	if err != nil {
		f.Close()
		_ = unix.Unlinkat(dirfd, tmp, 0)
		return fmt.Errorf("napi: write state file %s: %w", sf.path, err)
	}
	_ = unix.Fsync(dirfd)
	sf.f.Close() // wakes the waiters on the old inode, which retry on this one
	sf.f, sf.st, sf.empty = f, st, false
	return nil
}

// remove deletes the state file; the lock stays held until close.
func (sf *stateFile) remove() error {
	sf.st, sf.empty = nil, false
	if err := unix.Unlinkat(int(sf.dir.Fd()), sf.name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("napi: remove state file %s: %w", sf.path, err)
	}
	return nil
}

// close removes a file that holds nothing to keep, and unlocks.
func (sf *stateFile) close() {
	if sf.empty {
		_ = sf.remove()
	}
	sf.f.Close()
}

// removeTemp removes a temporary file left by a process killed in save.
func (sf *stateFile) removeTemp() {
	_ = unix.Unlinkat(int(sf.dir.Fd()), "."+sf.name+".tmp", 0)
}

// hint explains a permission error: what the operation needs.
func hint(err error, needs string) string {
	switch {
	case errors.Is(err, fs.ErrPermission):
		return " (" + needs + ")"
	case errors.Is(err, unix.EROFS):
		return " (read-only file system: in a container, sysfs and /run must be mounted read-write)"
	}
	return ""
}
