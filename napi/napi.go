package napi

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Settings are the per-device NAPI values [Apply] writes. Both are always
// written: the zero Settings writes 0 and 0, the kernel's defaults, so a
// caller that does not want to tune the device should not call Apply.
type Settings struct {
	// DeferHardIRQs is written to napi_defer_hard_irqs: how many
	// consecutive polls that find no work the device's interrupts stay
	// masked for, while the application busy-polls. Range 0 to
	// math.MaxInt32 (the kernel refuses more). Zero: interrupts are not
	// deferred.
	DeferHardIRQs int
	// GROFlushTimeout is written to gro_flush_timeout, in nanoseconds: how
	// long the kernel waits for a poll before it brings interrupts back.
	// Must not be negative. Zero: no timer.
	GROFlushTimeout time.Duration
}

// String gives the settings as the sysfs files name them, e.g.
// "napi_defer_hard_irqs=2 gro_flush_timeout=200µs".
func (s Settings) String() string {
	return fmt.Sprintf("napi_defer_hard_irqs=%d gro_flush_timeout=%v", s.DeferHardIRQs, s.GROFlushTimeout)
}

func (s Settings) validate() error {
	if s.DeferHardIRQs < 0 || s.DeferHardIRQs > math.MaxInt32 {
		return fmt.Errorf("invalid DeferHardIRQs %d: must be 0 to %d", s.DeferHardIRQs, math.MaxInt32)
	}
	if s.GROFlushTimeout < 0 {
		return fmt.Errorf("invalid GROFlushTimeout %v: must not be negative", s.GROFlushTimeout)
	}
	return nil
}

// values gives the settings as the strings written to sysfs.
func (s Settings) values() values {
	return values{
		DeferHardIRQs:   strconv.Itoa(s.DeferHardIRQs),
		GROFlushTimeout: strconv.FormatInt(s.GROFlushTimeout.Nanoseconds(), 10),
	}
}

// values holds the contents of the two sysfs files, as read or written.
type values struct {
	DeferHardIRQs   string `json:"napi_defer_hard_irqs"`
	GROFlushTimeout string `json:"gro_flush_timeout"`
}

// settings parses v back; values that are not numbers give zero.
func (v values) settings() Settings {
	d, _ := strconv.Atoi(v.DeferHardIRQs)
	ns, _ := strconv.ParseInt(v.GROFlushTimeout, 10, 64)
	return Settings{DeferHardIRQs: d, GROFlushTimeout: time.Duration(ns)}
}

func (v values) valid() bool { return isUint(v.DeferHardIRQs) && isUint(v.GROFlushTimeout) }

func isUint(s string) bool {
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

// ErrConflict is matched (with [errors.Is]) by the error of [Apply] when
// the interface is already in use with other settings; the error is a
// [*ConflictError].
var ErrConflict = errors.New("NAPI settings in use with other values")

// User is a process that applied the settings of an interface and has not
// restored them yet.
type User struct {
	PID int
	// StartTime is field 22 of /proc/PID/stat (clock ticks after boot): a
	// PID that is reused by a later process has another start time.
	StartTime uint64
	// Comm is the process's name, from /proc/PID/comm.
	Comm string
}

// ConflictError is the error of [Apply] when the interface's settings were
// set, with other values, by users that are still alive.
type ConflictError struct {
	Ifname  string
	Current Settings // the values in force
	Want    Settings // the values the refused caller asked for
	Users   []User   // who set Current; one entry per Apply, so a PID can repeat
}

func (e *ConflictError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "napi: %s has %s, set by ", e.Ifname, e.Current)
	type proc struct {
		comm string
		n    int
	}
	var order []int
	procs := map[int]*proc{}
	for _, u := range e.Users {
		if p := procs[u.PID]; p != nil {
			p.n++
			continue
		}
		procs[u.PID] = &proc{comm: u.Comm, n: 1}
		order = append(order, u.PID)
	}
	for i, pid := range order {
		if i > 0 {
			b.WriteString(", ")
		}
		p := procs[pid]
		fmt.Fprintf(&b, "pid %d (%s", pid, p.comm)
		if p.n > 1 {
			fmt.Fprintf(&b, ", %d users", p.n)
		}
		b.WriteString(")")
	}
	if len(order) == 0 {
		b.WriteString("nobody")
	}
	fmt.Fprintf(&b, "; refusing %s", e.Want)
	return b.String()
}

// Is makes errors.Is(err, ErrConflict) match.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// checkName refuses what the kernel refuses as an interface name (see
// dev_valid_name), so a name can never reach outside the sysfs root or the
// state directory.
func checkName(name string) error {
	if name == "" || len(name) >= 16 || name == "." || name == ".." ||
		strings.ContainsFunc(name, func(r rune) bool {
			return r == '/' || r == ':' || r == ' ' || r == '\t' || r == '\n' || r == '\v' || r == '\f' || r == '\r'
		}) {
		return fmt.Errorf("napi: invalid interface name %q", name)
	}
	return nil
}
