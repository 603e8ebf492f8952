//go:build linux

package napi_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xdpkit/xdpkit/napi"
)

// stateFile mirrors the documented state file format.
type stateFile struct {
	Version  int               `json:"version"`
	BootID   string            `json:"boot_id"`
	NetNS    uint64            `json:"netns"`
	Ifname   string            `json:"ifname"`
	Ifindex  int               `json:"ifindex"`
	Original map[string]string `json:"original"`
	Applied  map[string]string `json:"applied"`
	Users    []stateUser       `json:"users"`
}

type stateUser struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start_time"`
	PIDNS uint64 `json:"pidns"`
	Seq   uint64 `json:"seq"`
	Comm  string `json:"comm"`
}

var (
	settingsA = napi.Settings{DeferHardIRQs: 2, GROFlushTimeout: 200 * time.Microsecond}
	settingsB = napi.Settings{DeferHardIRQs: 5, GROFlushTimeout: 50 * time.Microsecond}
	valuesA   = [2]string{"2", "200000"}
	valuesB   = [2]string{"5", "50000"}
)

// env is a configuration with a fake sysfs root and a state directory
// that does not exist yet.
type env struct {
	cfg      *napi.Config
	sysRoot  string
	stateDir string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{sysRoot: filepath.Join(dir, "sys"), stateDir: filepath.Join(dir, "state")}
	e.cfg = napi.NewConfig(e.sysRoot, e.stateDir)
	return e
}

// addLink makes a fake interface with the given index and values.
func (e *env) addLink(t *testing.T, ifname string, ifindex int, vals [2]string) {
	t.Helper()
	d := filepath.Join(e.sysRoot, ifname)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{
		"ifindex": strconv.Itoa(ifindex), "napi_defer_hard_irqs": vals[0], "gro_flush_timeout": vals[1],
	} {
		if err := os.WriteFile(filepath.Join(d, name), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *env) values(t *testing.T, ifname string) [2]string { return readValues(t, e.sysRoot, ifname) }

// checkRestored checks that ifname has its original values back and that
// no state is left for it, when (a phrase: "after the last restore").
func (e *env) checkRestored(t *testing.T, ifname string, orig [2]string, when string) {
	t.Helper()
	if got := e.values(t, ifname); got != orig {
		t.Errorf("%s %s: values %v, want the originals %v", ifname, when, got, orig)
	}
	if st := readState(t, e.cfg, ifname); st != nil {
		t.Errorf("%s %s: state left: %+v", ifname, when, st)
	}
}

func readValues(t *testing.T, sysRoot, ifname string) [2]string {
	t.Helper()
	var v [2]string
	for i, f := range []string{"napi_defer_hard_irqs", "gro_flush_timeout"} {
		b, err := os.ReadFile(filepath.Join(sysRoot, ifname, f))
		if err != nil {
			t.Fatal(err)
		}
		v[i] = strings.TrimSpace(string(b))
	}
	return v
}

func statePath(t *testing.T, cfg *napi.Config, ifname string) string {
	t.Helper()
	p, err := cfg.StatePath(ifname)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// readState reads the state file of ifname; nil if there is none.
func readState(t *testing.T, cfg *napi.Config, ifname string) *stateFile {
	t.Helper()
	b, err := os.ReadFile(statePath(t, cfg, ifname))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("state file: %v\n%s", err, b)
	}
	return &st
}

// editState rewrites the state file of ifname after edit.
func editState(t *testing.T, cfg *napi.Config, ifname string, edit func(*stateFile)) {
	t.Helper()
	st := readState(t, cfg, ifname)
	if st == nil {
		t.Fatal("no state file to edit")
	}
	edit(st)
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(statePath(t, cfg, ifname), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustApply(t *testing.T, cfg *napi.Config, ifname string, s napi.Settings) func() error {
	t.Helper()
	restore, err := cfg.Apply(ifname, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = restore() })
	return restore
}

func mustRestore(t *testing.T, restore func() error) {
	t.Helper()
	if err := restore(); err != nil {
		t.Fatalf("restore: %v", err)
	}
}

func vals(st *stateFile, m string) [2]string {
	var v map[string]string
	if m == "original" {
		v = st.Original
	} else {
		v = st.Applied
	}
	return [2]string{v["napi_defer_hard_irqs"], v["gro_flush_timeout"]}
}
