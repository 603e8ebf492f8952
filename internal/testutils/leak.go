//go:build linux

package testutils

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
)

// LeakCheckMain runs the tests and then fails the run if they left file
// descriptors open (sockets, BPF objects, files) that were not open before.
// The Go runtime's own poller descriptors are ignored. The after
// functions run once the tests are done, before the check (to remove what
// the whole package shared, such as built binaries). Use it as
//
//	func TestMain(m *testing.M) { testutils.LeakCheckMain(m) }
func LeakCheckMain(m *testing.M, after ...func()) {
	before := openFDs()
	code := m.Run()
	for _, f := range after {
		f()
	}
	if code == 0 {
		var leaked []string
		for fd, target := range openFDs() {
			if before[fd] != target && !runtimeFD(target) {
				leaked = append(leaked, fmt.Sprintf("fd %s -> %s", fd, target))
			}
		}
		if len(leaked) > 0 {
			sort.Strings(leaked)
			fmt.Fprintf(os.Stderr, "FAIL: tests leaked %d file descriptors:\n  %s\n", len(leaked), strings.Join(leaked, "\n  "))
			code = 1
		}
	}
	os.Exit(code)
}

func runtimeFD(target string) bool {
	return strings.Contains(target, "eventpoll") || strings.Contains(target, "eventfd") ||
		strings.HasPrefix(target, "pipe:") || strings.HasPrefix(target, "/dev/") || strings.Contains(target, "/proc/")
}

func openFDs() map[string]string {
	fds := map[string]string{}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fds
	}
	for _, e := range ents {
		if t, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			fds[e.Name()] = t
		}
	}
	return fds
}
