//go:build linux

package afxdp

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/sys"
)

// BusyPollOnce makes one non-blocking recvfrom on the socket. With busy
// polling configured (Config.BusyPoll), the kernel runs the device's NAPI
// poll in this call, on this CPU: a busy-polling loop calls it instead of
// sleeping in Wait when the RX ring is empty, and the driver's interrupts
// stay deferred (napi_defer_hard_irqs) while it does. Without busy polling
// it only wakes a zero-copy driver that asked for it.
func (s *Socket) BusyPollOnce() {
	s.stats.RXWakeups++
	_ = sys.WakeupRX(s.fd)
}

// BusyPolling reports whether the socket was opened with busy-poll options.
func (s *Socket) BusyPolling() bool {
	bp := s.cfg.BusyPoll
	return bp.Prefer || bp.Timeout > 0 || bp.Budget > 0
}

// napiRoot is where the per-device NAPI settings live (a variable for tests).
var napiRoot = "/sys/class/net"

// napiUsers counts the sockets per interface that asked for NAPI settings,
// and keeps the values to restore when the last one closes.
var napiUsers = struct {
	sync.Mutex
	m map[string]*napiState
}{m: map[string]*napiState{}}

type napiState struct {
	refs             int
	deferIRQs, flush string // the values before we changed them
}

// applyNAPI sets napi_defer_hard_irqs and gro_flush_timeout of ifname, as
// busy polling on a real NIC wants (see BusyPoll), and returns the function
// that restores the previous values once the last socket that set them
// closes. Two sockets asking for different values get an error.
func applyNAPI(ifname string, deferIRQs int, flush time.Duration) (restore func() error, err error) {
	want := [2]string{strconv.Itoa(deferIRQs), strconv.FormatInt(flush.Nanoseconds(), 10)}
	files := [2]string{
		filepath.Join(napiRoot, ifname, "napi_defer_hard_irqs"),
		filepath.Join(napiRoot, ifname, "gro_flush_timeout"),
	}
	napiUsers.Lock()
	defer napiUsers.Unlock()
	st := napiUsers.m[ifname]
	if st == nil {
		var old [2]string
		for i, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", f, err)
			}
			old[i] = strings.TrimSpace(string(b))
		}
		for i, f := range files {
			if err := os.WriteFile(f, []byte(want[i]), 0); err != nil {
				if i == 1 {
					_ = os.WriteFile(files[0], []byte(old[0]), 0)
				}
				return nil, fmt.Errorf("set %s to %s: %w", f, want[i], err)
			}
		}
		st = &napiState{deferIRQs: old[0], flush: old[1]}
		napiUsers.m[ifname] = st
	} else {
		for i, f := range files {
			b, _ := os.ReadFile(f)
			if got := strings.TrimSpace(string(b)); got != want[i] {
				return nil, fmt.Errorf("%s is %s, set by another socket; this one asks for %s", f, got, want[i])
			}
		}
	}
	st.refs++
	var once sync.Once
	return func() error {
		var err error
		once.Do(func() {
			napiUsers.Lock()
			defer napiUsers.Unlock()
			if st.refs--; st.refs > 0 {
				return
			}
			delete(napiUsers.m, ifname)
			err = errors.Join(
				os.WriteFile(files[0], []byte(st.deferIRQs), 0),
				os.WriteFile(files[1], []byte(st.flush), 0))
		})
		return err
	}, nil
}

// WaitAny blocks until one of the sockets has received frames or timeout
// passes (ErrTimeout), for one goroutine that drives several sockets, e.g.
// forwarding in both directions between two interfaces. It returns at
// once when frames are already waiting. It blocks the OS thread in poll(2),
// so a Close from another goroutine does not wake it: keep the timeout
// short.
func WaitAny(timeout time.Duration, socks ...*Socket) error {
	fds := make([]unix.PollFd, 0, len(socks))
	for _, s := range socks {
		if s.closed {
			return ErrClosed
		}
		if s.rx.Available() > 0 {
			return nil
		}
		if s.needWakeup && s.tx.Pending() > 0 {
			_ = s.kick()
		}
		fds = append(fds, unix.PollFd{Fd: int32(s.fd), Events: unix.POLLIN})
	}
	for _, s := range socks {
		s.stats.Waits++
	}
	n, err := sys.Poll(fds, int(timeout/time.Millisecond))
	switch {
	case err != nil:
		return err
	case n == 0:
		return ErrTimeout
	}
	return nil
}
