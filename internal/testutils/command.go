// This file has no build constraint: tests on any OS may gate on CI and on
// external programs (stages' tcpdump check runs on macOS too).

package testutils

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// SkipOrFail skips tb with reason outside CI and fails it under CI.
func SkipOrFail(tb testing.TB, reason string) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatal(reason + " (CI is set, so this fails instead of skipping)")
	}
	tb.Skip(reason)
}

// sbinDirs are searched after $PATH: a non-root user's PATH often lacks
// them, and tcpdump lives there.
var sbinDirs = []string{"/usr/local/sbin", "/usr/sbin", "/sbin"}

// NeedCommand returns the path of the program name, which the test runs as
// an oracle or a traffic source (tcpdump, tshark, ping, ...). When it is not
// installed the test skips, saying how to install it (install, like
// "apt-get install tcpdump"); under CI (env CI set) it fails instead,
// since CI installs what the tests need. It looks in $PATH, then in the
// sbin directories.
func NeedCommand(tb testing.TB, name, install string) string {
	tb.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range sbinDirs {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	SkipOrFail(tb, fmt.Sprintf("needs %s, not found in $PATH or %v: install it (%s)", name, sbinDirs, install))
	return ""
}
