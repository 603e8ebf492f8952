//go:build linux

package redirect_test

import (
	"fmt"
	"testing"

	"github.com/xdpkit/xdpkit/redirect"
)

// FuzzOptions checks the options check of Attach, AttachProgram and
// AttachPinned: it never panics, accepts exactly the documented modes and
// a Queues of 0 or more, and returns the options as given.
func FuzzOptions(f *testing.F) {
	f.Add(0, 0, false, false, "")
	f.Add(int(redirect.ModeGeneric), 4, true, true, "/sys/fs/bpf/x")
	f.Add(3, 1, false, false, "")
	f.Add(-1, -1, false, true, "relative")
	f.Fuzz(func(t *testing.T, mode, queues int, counters, multiBuffer bool, pinDir string) {
		o := redirect.Options{Mode: redirect.Mode(mode), Queues: queues, Counters: counters, MultiBuffer: multiBuffer, PinDir: pinDir}
		got, err := redirect.ResolveForTest(&o)
		ok := mode >= int(redirect.ModeAuto) && mode <= int(redirect.ModeGeneric) && queues >= 0
		switch {
		case ok && err != nil:
			t.Fatalf("%+v refused: %v", o, err)
		case !ok && err == nil:
			t.Fatalf("%+v accepted", o)
		case ok && got != o:
			t.Fatalf("%+v resolved to %+v", o, got)
		}
		known := mode >= int(redirect.ModeAuto) && mode <= int(redirect.ModeGeneric)
		if s := o.Mode.String(); known != (s == "auto" || s == "driver" || s == "generic") || !known && s != fmt.Sprintf("Mode(%d)", mode) {
			t.Fatalf("Mode(%d).String() = %q", mode, s)
		}
	})
}

func TestResolveNil(t *testing.T) {
	t.Parallel()
	if got, err := redirect.ResolveForTest(nil); err != nil || got != (redirect.Options{}) {
		t.Errorf("nil options resolve to %+v, %v; want the zero value", got, err)
	}
}
