//go:build linux

package testutils

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/sys"
)

// outcome is how a gate ended a test: "" (it returned), "skip" or "fail",
// with the message.
func outcome(g *gateTB) (string, string) {
	switch {
	case g.failed != "":
		return "fail", g.failed
	case g.skipped != "":
		return "skip", g.skipped
	}
	return "", ""
}

func TestSkipOnOldKernelVersions(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		release, min string
		want         string // "", "skip" or "fail"
		msg          string // in the message
	}{
		{"6.1.0-18-amd64", "6.6", "skip", "needs Linux 6.6 or later for XDP_USE_SG; this kernel is 6.1.0-18-amd64"},
		{"5.15.0", "6.6", "skip", "this kernel is 5.15.0"},
		{"6.5.13", "6.6", "skip", ""},
		{"6.6.0", "6.6", "", ""},
		{"6.6-rc1", "6.6", "", ""},
		{"6.18.44-fc-v657", "6.6", "", ""}, // 18 > 6, not "18" < "6"
		{"7.0.1", "6.6", "", ""},
		{"6.18.0", "6.20", "skip", ""},
		{"unknown", "6.6", "", ""}, // unreadable: the test runs
		{"6.18.0", "6", "fail", `invalid kernel version "6"`},
		{"6.18.0", "6.6.1", "fail", "want major.minor"},
		{"6.18.0", "", "fail", "want major.minor"},
		{"6.18.0", "+6.6", "fail", "want major.minor"},
		{"6.18.0", "6.x", "fail", "want major.minor"},
	} {
		g := gate(t, func(tb testing.TB) { skipOnOldKernel(tb, c.release, c.min, "XDP_USE_SG") })
		if got, msg := outcome(g); got != c.want || !strings.Contains(msg, c.msg) {
			t.Errorf("kernel %s, minimum %q: %q %q; want %q containing %q", c.release, c.min, got, msg, c.want, c.msg)
		}
	}
}

func TestSkipIfNotSupportedVersions(t *testing.T) {
	t.Parallel()
	unsupported := fmt.Errorf("afxdp: open: %w", ebpf.ErrNotSupported)
	for _, c := range []struct {
		release string
		err     error
		want    string
		msg     string
	}{
		{"6.1.0", nil, "", ""},
		{"6.18.0", nil, "", ""},
		{"6.1.0", unsupported, "skip", "needs Linux 6.6 or later for multi-buffer; this kernel is 6.1.0: afxdp: open: not supported"},
		{"6.18.0", unsupported, "fail", "multi-buffer is not supported on kernel 6.18.0, though it is in Linux 6.6 and later: afxdp: open: not supported"},
		{"unknown", unsupported, "fail", "kernel unknown"}, // unreadable: a regression until shown otherwise
		{"6.1.0", ebpf.ErrNotSupported, "skip", ""},
		{"6.1.0", fmt.Errorf("setsockopt: %w", unix.ENOPROTOOPT), "skip", ""},
		{"6.18.0", fmt.Errorf("setsockopt: %w", unix.ENOPROTOOPT), "fail", ""},
		{"6.1.0", unix.EOPNOTSUPP, "skip", ""},
		{"6.18.0", unix.EOPNOTSUPP, "fail", ""},
		{"6.1.0", fmt.Errorf("x: %w", errors.ErrUnsupported), "skip", ""},
		// Errors that are not about support are the caller's to check.
		{"6.1.0", unix.EINVAL, "", ""},
		{"6.18.0", unix.EPERM, "", ""},
		{"6.18.0", errors.New("boom"), "", ""},
	} {
		g := gate(t, func(tb testing.TB) { skipIfNotSupported(tb, c.release, c.err, "6.6", "multi-buffer") })
		if got, msg := outcome(g); got != c.want || !strings.Contains(msg, c.msg) {
			t.Errorf("kernel %s, err %v: %q %q; want %q containing %q", c.release, c.err, got, msg, c.want, c.msg)
		}
	}
	// A bad minimum fails even when err is nil, so the typo shows at once.
	g := gate(t, func(tb testing.TB) { skipIfNotSupported(tb, "6.18.0", nil, "6", "multi-buffer") })
	if got, msg := outcome(g); got != "fail" || !strings.Contains(msg, "invalid kernel version") {
		t.Errorf("minimum \"6\", nil err: %q %q; want a failure", got, msg)
	}
}

// TestKernelGatesHere runs the exported gates on this machine's kernel.
func TestKernelGatesHere(t *testing.T) {
	t.Parallel()
	rel := kernelRelease()
	if rel == "unknown" || !digits(strings.SplitN(rel, ".", 2)[0]) {
		t.Fatalf("kernel release %q", rel)
	}
	if releaseBefore(rel, 6, 6) != sys.KernelBefore(6, 6) {
		t.Errorf("release %s: releaseBefore and sys.KernelBefore disagree about 6.6", rel)
	}
	if got, msg := outcome(gate(t, func(tb testing.TB) { SkipOnOldKernel(tb, "2.6", "anything") })); got != "" {
		t.Errorf("SkipOnOldKernel(2.6) on %s: %s %q", rel, got, msg)
	}
	if got, msg := outcome(gate(t, func(tb testing.TB) { SkipOnOldKernel(tb, "999.0", "the future") })); got != "skip" || !strings.Contains(msg, rel) {
		t.Errorf("SkipOnOldKernel(999.0) on %s: %q %q; want a skip naming the kernel", rel, got, msg)
	}
	err := fmt.Errorf("wrapped: %w", ebpf.ErrNotSupported)
	if got, _ := outcome(gate(t, func(tb testing.TB) { SkipIfNotSupported(tb, err, "2.6", "anything") })); got != "fail" {
		t.Errorf("SkipIfNotSupported(2.6) on %s: %q, want a failure", rel, got)
	}
	if got, _ := outcome(gate(t, func(tb testing.TB) { SkipIfNotSupported(tb, err, "999.0", "the future") })); got != "skip" {
		t.Errorf("SkipIfNotSupported(999.0) on %s: %q, want a skip", rel, got)
	}
}
