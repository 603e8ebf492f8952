//go:build linux

package napi

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// user is one entry of a state file's user list: one successful Apply
// that has not been restored.
type user struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start_time"` // field 22 of /proc/PID/stat
	PIDNS uint64 `json:"pidns"`      // inode of the process's /proc/self/ns/pid
	Seq   uint64 `json:"seq"`        // tells apart the users of one process
	Comm  string `json:"comm"`
}

func (u user) public() User { return User{PID: u.PID, StartTime: u.Start, Comm: u.Comm} }

// same reports whether u and v are the same Apply.
func (u user) same(v user) bool {
	return u.PID == v.PID && u.Start == v.Start && u.PIDNS == v.PIDNS && u.Seq == v.Seq
}

var (
	// self is the calling process, without Seq.
	self = sync.OnceValues(func() (user, error) {
		pid := os.Getpid()
		_, start, err := procStat(pid)
		if err != nil {
			return user{}, fmt.Errorf("napi: identify this process: %w", err)
		}
		pidns, err := nsInode("pid")
		if err != nil {
			return user{}, fmt.Errorf("napi: identify this process: %w", err)
		}
		comm, _ := os.ReadFile("/proc/self/comm")
		return user{PID: pid, Start: start, PIDNS: pidns, Comm: strings.TrimSpace(string(comm))}, nil
	})
	userSeq atomic.Uint64

	// bootID tells state written before the last reboot (when the state
	// directory is not on a tmpfs); "" when the kernel does not say.
	bootID = sync.OnceValue(func() string {
		b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
		return strings.TrimSpace(string(b))
	})
)

// newUser returns an entry for one Apply of this process.
func newUser() (user, error) {
	u, err := self()
	u.Seq = userSeq.Add(1)
	return u, err
}

// nsInode returns the inode of the calling process's namespace of the
// given kind ("net", "pid"), which identifies the namespace while it lives.
func nsInode(kind string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/"+kind, &st); err != nil {
		return 0, fmt.Errorf("stat /proc/self/ns/%s: %w", kind, err)
	}
	return st.Ino, nil
}

// procStat returns the state (field 3) and the start time (field 22) of
// process pid from /proc/PID/stat.
func procStat(pid int) (state byte, start uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The name (field 2) is in parentheses and may itself hold spaces and
	// parentheses: the fields after it start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3
	if len(f) < 20 || len(f[0]) != 1 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat: %d fields after the name", pid, len(f))
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat: start time: %w", pid, err)
	}
	return f[0][0], start, nil
}

// alive reports whether u's process still runs. A zombie (killed, not yet
// reaped) is dead; so is a PID now used by a process with another start
// time. When it cannot tell — u is in another PID namespace, or /proc hides
// the PID — it says alive: restoring the settings under a live user is
// worse than keeping them a little longer.
func (u user) alive(pidns uint64) bool {
	if u.PIDNS != pidns {
		return true
	}
	state, start, err := procStat(u.PID)
	switch {
	case err == nil:
		return start == u.Start && state != 'Z' && state != 'X'
	case errors.Is(err, fs.ErrNotExist):
		// /proc mounted with hidepid hides other users' processes too.
		return !errors.Is(unix.Kill(u.PID, 0), unix.ESRCH)
	default:
		return true
	}
}

// liveUsers returns the users of us whose processes run, in order.
func liveUsers(us []user) ([]user, error) {
	pidns, err := nsInode("pid")
	if err != nil {
		return nil, fmt.Errorf("napi: %w", err)
	}
	live := us[:0:0]
	for _, u := range us {
		if u.alive(pidns) {
			live = append(live, u)
		}
	}
	return live, nil
}
