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
)

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
