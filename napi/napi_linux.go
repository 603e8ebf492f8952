//go:build linux

package napi

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// config says where the package looks. Only tests use other values than
// std (see export_test.go).
type config struct {
	sysRoot  string // per-interface sysfs directories
	stateDir string // state files; must be absolute
}

var std = config{sysRoot: "/sys/class/net", stateDir: "/run/xdpkit/napi"}

// The sysfs files of an interface that Apply writes, in the order it writes them.
const (
	deferFile = "napi_defer_hard_irqs"
	flushFile = "gro_flush_timeout"
)

// Apply sets napi_defer_hard_irqs and gro_flush_timeout of the interface
// ifname (in the caller's network namespace) to s, or joins the users that
// already set the same values, and returns the function that leaves again.
// When the last user — of any process — leaves, the values from before the
// first one are written back.
//
// Users that asked for other values and are still alive make Apply fail
// with a [*ConflictError]. Users whose processes died (killed, crashed)
// are dropped first; when none is left, their values are undone before
// this call starts over as the first user.
//
// restore is idempotent: calls after the first do nothing and return nil.
// If the first one fails, the entry stays until this process exits, and
// the next Apply or [RestoreStale] after that cleans it up.
func Apply(ifname string, s Settings) (restore func() error, err error) {
	return std.Apply(ifname, s)
}

// RestoreStale restores the NAPI settings of ifname if every process that
// set them has died without restoring them, and drops their state. State
// of an interface that no longer exists (or whose name now belongs to a
// re-created interface) is dropped without writing anything. Settings with
// a live user are left alone; that is not an error.
func RestoreStale(ifname string) error { return std.RestoreStale(ifname) }

// RestoreAllStale is [RestoreStale] for every interface of the caller's
// network namespace that has state, for a daemon's start-up or a tool. It
// also drops state written before the last reboot.
func RestoreAllStale() error { return std.RestoreAllStale() }

// Apply is [Apply] with c's directories.
func (c *config) Apply(ifname string, s Settings) (restore func() error, err error) {
	if err := checkName(ifname); err != nil {
		return nil, err
	}
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("napi: %s: %w", ifname, err)
	}
	me, err := newUser()
	if err != nil {
		return nil, err
	}
	k, err := c.key(ifname)
	if err != nil {
		return nil, err
	}
	dir, err := openStateDir(c.stateDir, true)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	sf, err := lockState(dir, k, true)
	if err != nil {
		return nil, err
	}
	defer sf.close()
	if err := c.join(sf, k, s, me); err != nil {
		return nil, err
	}
	var once sync.Once
	return func() error {
		var err error
		once.Do(func() { err = c.leave(k, me) })
		return err
	}, nil
}

// join adds me to the users of the locked state file sf.
func (c *config) join(sf *stateFile, k key, s Settings, me user) error {
	want := s.values()
	if st := sf.st; st != nil {
		live, err := liveUsers(st.Users)
		if err != nil {
			return err
		}
		if len(live) > 0 {
			if st.Applied != want {
				if len(live) != len(st.Users) {
					st.Users = live
					_ = sf.save(st) // only tidies up; the conflict is the news
				}
				e := &ConflictError{Ifname: k.ifname, Current: st.Applied.settings(), Want: s}
				for _, u := range live {
					e.Users = append(e.Users, u.public())
				}
				return e
			}
			st.Users = append(live, me)
			return sf.save(st)
		}
		// Everyone who set the values died without restoring them. Put
		// the device's own values back before starting over, so they, not
		// the dead users', are the originals.
		if _, err := c.write(k.ifname, st.Original); err != nil {
			return fmt.Errorf("napi: %s: restore the values of dead users: %w", k.ifname, err)
		}
	}
	orig, err := c.read(k.ifname)
	if err != nil {
		return err
	}
	// The state goes to disk before the device changes: if this process
	// dies in between, the next user finds the originals.
	st := &state{NetNS: k.netns, Ifname: k.ifname, Ifindex: k.ifindex, Original: orig, Applied: want, Users: []user{me}}
	if err := sf.save(st); err != nil {
		return err
	}
	if n, err := c.write(k.ifname, want); err != nil {
		_, rerr := c.writeN(k.ifname, orig, n)
		return errors.Join(err, rerr, sf.remove())
	}
	return nil
}

// leave removes me from the users of k and restores the originals if no
// live user remains.
func (c *config) leave(k key, me user) error {
	dir, err := openStateDir(c.stateDir, false)
	if err != nil || dir == nil {
		return err
	}
	defer dir.Close()
	sf, err := lockState(dir, k, false)
	if err != nil || sf == nil {
		return err
	}
	defer sf.close()
	st := sf.st
	if st == nil {
		return nil
	}
	i := -1
	for j, u := range st.Users {
		if u.same(me) {
			i = j
		}
	}
	if i < 0 {
		return nil // dropped already: the interface went away
	}
	st.Users = append(st.Users[:i:i], st.Users[i+1:]...)
	live, err := liveUsers(st.Users)
	if err != nil {
		return err
	}
	if st.Users = live; len(live) > 0 {
		return sf.save(st)
	}
	return c.finish(sf, st)
}

// finish writes back the originals of st, which has no live user left, and
// removes its file. If that fails the file stays, without users, so that
// RestoreStale or the next Apply try again.
func (c *config) finish(sf *stateFile, st *state) error {
	if !c.exists(st) {
		return sf.remove()
	}
	if _, err := c.write(st.Ifname, st.Original); err != nil {
		if !c.exists(st) {
			return sf.remove()
		}
		st.Users = nil
		return errors.Join(err, sf.save(st))
	}
	return sf.remove()
}

// RestoreStale is [RestoreStale] with c's directories.
func (c *config) RestoreStale(ifname string) error {
	if err := checkName(ifname); err != nil {
		return err
	}
	return c.restoreStale(func(k key) bool { return k.ifname == ifname })
}

// RestoreAllStale is [RestoreAllStale] with c's directories.
func (c *config) RestoreAllStale() error {
	return c.restoreStale(func(key) bool { return true })
}

// restoreStale restores the state files of the caller's network namespace
// that match, and drops those of any namespace that are from an earlier
// boot (lockState reads them as empty, and close removes them).
func (c *config) restoreStale(match func(key) bool) error {
	netns, err := nsInode("net")
	if err != nil {
		return fmt.Errorf("napi: %w", err)
	}
	dir, err := openStateDir(c.stateDir, false)
	if err != nil || dir == nil {
		return err
	}
	defer dir.Close()
	ents, err := dir.ReadDir(-1)
	if err != nil {
		return fmt.Errorf("napi: read state directory %s: %w", dir.Name(), err)
	}
	var errs []error
	for _, e := range ents {
		k, ok := parseFileName(e.Name())
		if !ok || !match(k) {
			continue
		}
		errs = append(errs, c.restoreFile(dir, k, k.netns == netns))
	}
	return errors.Join(errs...)
}

// restoreFile restores (if ours, i.e. in our namespace) the state of k
// when none of its users is alive.
func (c *config) restoreFile(dir *os.File, k key, ours bool) error {
	sf, err := lockState(dir, k, false)
	if err != nil || sf == nil {
		return err
	}
	defer sf.close()
	sf.removeTemp()
	st := sf.st
	if st == nil || !ours {
		return nil
	}
	live, err := liveUsers(st.Users)
	if err != nil {
		return err
	}
	if len(live) > 0 {
		if len(live) < len(st.Users) {
			st.Users = live
			return sf.save(st)
		}
		return nil
	}
	return c.finish(sf, st)
}

// key finds the state file name of ifname.
func (c *config) key(ifname string) (key, error) {
	netns, err := nsInode("net")
	if err != nil {
		return key{}, fmt.Errorf("napi: %w", err)
	}
	idx, err := c.ifindex(ifname)
	if err != nil {
		return key{}, err
	}
	return key{netns: netns, ifindex: idx, ifname: ifname}, nil
}

func (c *config) ifindex(ifname string) (int, error) {
	p := filepath.Join(c.sysRoot, ifname, "ifindex")
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("napi: no interface %s in this network namespace (%s): %w", ifname, p, err)
	}
	if err != nil {
		return 0, fmt.Errorf("napi: read %s: %w", p, err)
	}
	idx, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || idx <= 0 {
		return 0, fmt.Errorf("napi: read %s: not an interface index: %q", p, b)
	}
	return idx, nil
}

// exists reports whether the interface of st is still there, with the same
// index.
func (c *config) exists(st *state) bool {
	idx, err := c.ifindex(st.Ifname)
	return err == nil && idx == st.Ifindex
}

func (c *config) read(ifname string) (values, error) {
	var v values
	for _, f := range [...]struct {
		name string
		dst  *string
	}{{deferFile, &v.DeferHardIRQs}, {flushFile, &v.GROFlushTimeout}} {
		p := filepath.Join(c.sysRoot, ifname, f.name)
		b, err := os.ReadFile(p)
		if err != nil {
			why := ""
			if errors.Is(err, fs.ErrNotExist) {
				why = " (the file needs Linux 5.11+)"
			}
			return values{}, fmt.Errorf("napi: read %s: %w%s", p, err, why)
		}
		if *f.dst = strings.TrimSpace(string(b)); !isUint(*f.dst) {
			return values{}, fmt.Errorf("napi: read %s: not a number: %q", p, b)
		}
	}
	return v, nil
}

// write writes v to the files of ifname, stopping at the first error, and
// returns how many it wrote.
func (c *config) write(ifname string, v values) (int, error) { return c.writeN(ifname, v, 2) }

// writeN is write of the first n files only.
func (c *config) writeN(ifname string, v values, n int) (int, error) {
	files := [...][2]string{{deferFile, v.DeferHardIRQs}, {flushFile, v.GROFlushTimeout}}
	for i, f := range files[:n] {
		p := filepath.Join(c.sysRoot, ifname, f[0])
		if err := writeFile(p, f[1]); err != nil {
			return i, fmt.Errorf("napi: set %s to %s: %w%s", p, f[1], err,
				hint(err, "writing sysfs needs root, with CAP_NET_ADMIN in the interface's network namespace"))
		}
	}
	return n, nil
}

// writeFile writes an existing file, as sysfs wants it: one write.
func writeFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	return errors.Join(err, f.Close())
}
