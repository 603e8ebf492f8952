// This file has no build constraint, so tests on any OS may gate on the
// kernel: outside Linux every kernel counts as too old.

package testutils

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
)

// SkipOnOldKernel skips tb when the running kernel is older than
// minVersion, "major.minor" like "6.6", the first release with feature,
// which the skip message names:
//
//	testutils.SkipOnOldKernel(t, "6.6", "AF_XDP multi-buffer (XDP_USE_SG)")
//
// A kernel whose version cannot be read counts as new enough, so the test
// runs. A malformed minVersion fails tb.
func SkipOnOldKernel(tb testing.TB, minVersion, feature string) {
	tb.Helper()
	skipOnOldKernel(tb, kernelRelease(), minVersion, feature)
}

// SkipIfNotSupported is for a test whose feature, new in minVersion,
// shows up missing only when it is used: it checks err, the error of
// that use. On a kernel older than minVersion a not-supported err skips
// tb; on a newer one it fails tb, because the feature should be there (a
// skip would hide the regression). It returns, doing nothing, for a nil
// err or one that is not about support, which the caller checks itself:
//
//	sock, err := afxdp.Open(ifname, 0, &afxdp.Config{MultiBuffer: true})
//	testutils.SkipIfNotSupported(t, err, "6.6", "AF_XDP multi-buffer (XDP_USE_SG)")
//	if err != nil {
//		t.Fatal(err)
//	}
//
// Not supported means an error matching ebpf.ErrNotSupported (which
// xdpkit's ErrNotSupported sentinels are), errors.ErrUnsupported,
// EOPNOTSUPP, or ENOPROTOOPT (a socket option this kernel does not know).
func SkipIfNotSupported(tb testing.TB, err error, minVersion, feature string) {
	tb.Helper()
	skipIfNotSupported(tb, kernelRelease(), err, minVersion, feature)
}

// notSupported reports whether err says a feature is missing.
func notSupported(err error) bool {
	return errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, errors.ErrUnsupported) || errnoNotSupported(err)
}

func skipOnOldKernel(tb testing.TB, release, minVersion, feature string) {
	tb.Helper()
	if olderThan(tb, release, minVersion) {
		tb.Skipf("needs Linux %s or later for %s; this kernel is %s", minVersion, feature, release)
	}
}

func skipIfNotSupported(tb testing.TB, release string, err error, minVersion, feature string) {
	tb.Helper()
	old := olderThan(tb, release, minVersion) // also checks minVersion when err is nil
	if err == nil || !notSupported(err) {
		return
	}
	if old {
		tb.Skipf("needs Linux %s or later for %s; this kernel is %s: %v", minVersion, feature, release, err)
	}
	tb.Fatalf("%s is not supported on kernel %s, though it is in Linux %s and later: %v", feature, release, minVersion, err)
}

// olderThan reports whether the kernel release (uname -r) is older than
// minVersion, and fails tb if minVersion is not "major.minor".
func olderThan(tb testing.TB, release, minVersion string) bool {
	tb.Helper()
	major, minor, err := parseVersion(minVersion)
	if err != nil {
		tb.Fatal(err)
	}
	return releaseBefore(release, major, minor)
}

// parseVersion parses "major.minor".
func parseVersion(v string) (major, minor int, err error) {
	majorS, minorS, ok := strings.Cut(v, ".")
	if ok && digits(majorS) && digits(minorS) {
		major, err1 := strconv.Atoi(majorS)
		minor, err2 := strconv.Atoi(minorS)
		if err1 == nil && err2 == nil {
			return major, minor, nil
		}
	}
	return 0, 0, fmt.Errorf("invalid kernel version %q: want major.minor, like 6.6", v)
}

// digits reports whether s is one or more decimal digits.
func digits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}
