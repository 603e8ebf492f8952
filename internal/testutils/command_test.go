package testutils

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
)

// gateTB records how a gate ended the test; like testing.T it stops the
// goroutine that skips or fails.
type gateTB struct {
	testing.TB
	skipped, failed string
}

func (g *gateTB) Helper()           {}
func (g *gateTB) Skip(args ...any)  { g.skipped = fmt.Sprint(args...); runtime.Goexit() }
func (g *gateTB) Fatal(args ...any) { g.failed = fmt.Sprint(args...); runtime.Goexit() }
func (g *gateTB) Skipf(format string, args ...any) {
	g.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (g *gateTB) Fatalf(format string, args ...any) {
	g.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// gate runs fn with a gateTB on its own goroutine.
func gate(t *testing.T, fn func(tb testing.TB)) *gateTB {
	g := &gateTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(g)
	}()
	<-done
	return g
}

func TestNeedCommand(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", "/nonexistent-dir")
	if got := NeedCommand(t, exe, "built by go test"); got != exe {
		t.Errorf("NeedCommand(%s) = %q, want the path", exe, got)
	}
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		var got string
		g := gate(t, func(tb testing.TB) {
			got = NeedCommand(tb, "xdpkit-no-such-tool", "apt-get install xdpkit-no-such-tool")
		})
		msg, other := g.skipped, g.failed
		if ci != "" {
			msg, other = g.failed, g.skipped
		}
		if got != "" || other != "" || !strings.Contains(msg, "xdpkit-no-such-tool") || !strings.Contains(msg, "apt-get install xdpkit-no-such-tool") {
			t.Errorf("CI=%q: returned %q, skipped %q, failed %q; want only the %s, with the install hint",
				ci, got, g.skipped, g.failed, map[bool]string{true: "failure", false: "skip"}[ci != ""])
		}
	}
}
