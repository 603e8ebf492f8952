//go:build linux

package napi_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/napi"
)

// TestStateDirRefused: a state directory that someone else could change
// is refused, and nothing is written to the device.
func TestStateDirRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, want string
		setup      func(t *testing.T, dir string)
	}{
		{"symlink", "is a symlink or not a directory", func(t *testing.T, dir string) {
			real := dir + ".real"
			mkdir(t, real, 0o700)
			if err := os.Symlink(real, dir); err != nil {
				t.Fatal(err)
			}
		}},
		{"symlink parent", "is a symlink or not a directory", func(t *testing.T, dir string) {
			parent := filepath.Dir(dir)
			mkdir(t, parent+".real", 0o700)
			if err := os.Rename(parent, parent+".old"); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(parent+".real", parent); err != nil {
				t.Fatal(err)
			}
		}},
		{"file", "is a symlink or not a directory", func(t *testing.T, dir string) {
			if err := os.WriteFile(dir, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"group-writable", "writable by group or others", func(t *testing.T, dir string) {
			mkdir(t, dir, 0o770)
		}},
		{"world-writable parent", "writable by group or others", func(t *testing.T, dir string) {
			if err := os.Chmod(filepath.Dir(dir), 0o777); err != nil {
				t.Fatal(err)
			}
		}},
		{"state file symlink", "is a symlink", func(t *testing.T, dir string) {
			mkdir(t, dir, 0o700)
			target := filepath.Join(filepath.Dir(dir), "elsewhere")
			if err := os.WriteFile(target, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, stateFileIn(t, dir)); err != nil {
				t.Fatal(err)
			}
		}},
		{"state file mode", "writable by group or others", func(t *testing.T, dir string) {
			mkdir(t, dir, 0o700)
			writeFile(t, stateFileIn(t, dir), "", 0o666)
		}},
		{"corrupt state file", "is invalid", func(t *testing.T, dir string) {
			mkdir(t, dir, 0o700)
			writeFile(t, stateFileIn(t, dir), `{"version": 1, "ifname": "eth0"`, 0o600)
		}},
		{"state of another interface", "not what its name says", func(t *testing.T, dir string) {
			mkdir(t, dir, 0o700)
			writeFile(t, stateFileIn(t, dir), `{"version": 1, "ifname": "eth1", "ifindex": 2}`, 0o600)
		}},
		{"future version", "version 2", func(t *testing.T, dir string) {
			mkdir(t, dir, 0o700)
			writeFile(t, stateFileIn(t, dir), `{"version": 2}`, 0o600)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.stateDir = filepath.Join(filepath.Dir(e.stateDir), "run", "napi")
			mkdir(t, filepath.Dir(e.stateDir), 0o700)
			e.cfg = napi.NewConfig(e.sysRoot, e.stateDir)
			e.addLink(t, "eth0", 2, defaults)
			tc.setup(t, e.stateDir)
			_, err := e.cfg.Apply("eth0", settingsA)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Apply: %v, want an error saying %q", err, tc.want)
			}
			t.Log(err)
			if got := e.values(t, "eth0"); got != defaults {
				t.Errorf("device changed: %v", got)
			}
		})
	}
}

// TestStateDirOwner: a state directory or file of another user is refused.
func TestStateDirOwner(t *testing.T) {
	testutils.RequirePrivileged(t)
	const nobody = 65534
	t.Run("directory", func(t *testing.T) {
		e := newEnv(t)
		e.addLink(t, "eth0", 2, defaults)
		mkdir(t, e.stateDir, 0o700)
		if err := os.Chown(e.stateDir, nobody, nobody); err != nil {
			t.Fatal(err)
		}
		if _, err := e.cfg.Apply("eth0", settingsA); err == nil || !strings.Contains(err.Error(), "is owned by uid 65534, not 0") {
			t.Fatalf("Apply: %v", err)
		}
	})
	t.Run("file", func(t *testing.T) {
		e := newEnv(t)
		e.addLink(t, "eth0", 2, defaults)
		mkdir(t, e.stateDir, 0o700)
		p := statePath(t, e.cfg, "eth0")
		writeFile(t, p, "", 0o600)
		if err := os.Chown(p, nobody, nobody); err != nil {
			t.Fatal(err)
		}
		if _, err := e.cfg.Apply("eth0", settingsA); err == nil || !strings.Contains(err.Error(), "is owned by uid 65534, not 0") {
			t.Fatalf("Apply: %v", err)
		}
		if err := e.cfg.RestoreAllStale(); err == nil {
			t.Error("RestoreAllStale used another user's file")
		}
	})
}

func mkdir(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p, s string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// stateFileIn returns where the state file of eth0 (index 2) goes in dir:
// NETNS-IFINDEX-IFNAME.
func stateFileIn(t *testing.T, dir string) string {
	t.Helper()
	fi, err := os.Stat("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, fmt.Sprintf("%d-2-eth0", fi.Sys().(*syscall.Stat_t).Ino))
}
