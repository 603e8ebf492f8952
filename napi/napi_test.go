//go:build linux

package napi_test

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xdpkit/xdpkit/napi"
)

var defaults = [2]string{"0", "0"}

// TestLifecycle: the first user records the originals and writes its
// values, a second user with the same values joins, other values are
// refused, and the last restore writes the originals back.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addLink(t, "eth0", 2, [2]string{"1", "7"})

	r1 := mustApply(t, e.cfg, "eth0", settingsA)
	if got := e.values(t, "eth0"); got != valuesA {
		t.Fatalf("after Apply: %v, want %v", got, valuesA)
	}
	fi, err := os.Stat(e.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("state directory mode %v, want 0700", fi.Mode().Perm())
	}
	fi, err = os.Stat(statePath(t, e.cfg, "eth0"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
	st := readState(t, e.cfg, "eth0")
	if got := vals(st, "original"); got != [2]string{"1", "7"} {
		t.Errorf("originals %v, want [1 7]", got)
	}
	if got := vals(st, "applied"); got != valuesA {
		t.Errorf("applied %v, want %v", got, valuesA)
	}
	if st.Version != 1 || st.Ifname != "eth0" || st.Ifindex != 2 || st.NetNS == 0 {
		t.Errorf("state header %+v", st)
	}
	if len(st.Users) != 1 || st.Users[0].PID != os.Getpid() || st.Users[0].Start == 0 || st.Users[0].Comm == "" {
		t.Errorf("users %+v, want this process", st.Users)
	}

	r2 := mustApply(t, e.cfg, "eth0", settingsA)
	if n := len(readState(t, e.cfg, "eth0").Users); n != 2 {
		t.Errorf("%d users after a join, want 2", n)
	}

	_, err = e.cfg.Apply("eth0", settingsB)
	var ce *napi.ConflictError
	if !errors.Is(err, napi.ErrConflict) || !errors.As(err, &ce) {
		t.Fatalf("conflicting Apply: %v, want a ConflictError", err)
	}
	if ce.Current != settingsA || ce.Want != settingsB || len(ce.Users) != 2 || ce.Users[0].PID != os.Getpid() {
		t.Errorf("ConflictError %+v", ce)
	}
	for _, s := range []string{"eth0", "napi_defer_hard_irqs=2 gro_flush_timeout=200µs", fmt.Sprintf("pid %d (", os.Getpid()), "2 users", "refusing napi_defer_hard_irqs=5"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("conflict error %q does not say %q", err, s)
		}
	}
	t.Log(err)
	if got := e.values(t, "eth0"); got != valuesA {
		t.Fatalf("after the refused Apply: %v, want %v", got, valuesA)
	}

	mustRestore(t, r1)
	mustRestore(t, r1) // idempotent: does not remove the other user
	if got := e.values(t, "eth0"); got != valuesA {
		t.Errorf("restored with a user left: %v", got)
	}
	if n := len(readState(t, e.cfg, "eth0").Users); n != 1 {
		t.Errorf("%d users after one restore, want 1", n)
	}
	mustRestore(t, r2)
	e.checkRestored(t, "eth0", [2]string{"1", "7"}, "after the last restore")
	mustRestore(t, r2)

	// Free again: other values are fine now.
	r3 := mustApply(t, e.cfg, "eth0", settingsB)
	if got := e.values(t, "eth0"); got != valuesB {
		t.Errorf("after Apply B: %v", got)
	}
	mustRestore(t, r3)
	if ents, _ := os.ReadDir(e.stateDir); len(ents) != 0 {
		t.Errorf("state directory not empty: %v", ents)
	}
}

// TestInterfaces: two interfaces have separate state.
func TestInterfaces(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addLink(t, "eth0", 2, defaults)
	e.addLink(t, "eth1", 3, defaults)
	r0 := mustApply(t, e.cfg, "eth0", settingsA)
	r1 := mustApply(t, e.cfg, "eth1", settingsB)
	if e.values(t, "eth0") != valuesA || e.values(t, "eth1") != valuesB {
		t.Fatalf("values %v %v", e.values(t, "eth0"), e.values(t, "eth1"))
	}
	mustRestore(t, r0)
	if e.values(t, "eth0") != defaults || e.values(t, "eth1") != valuesB {
		t.Fatalf("after restoring eth0: %v %v", e.values(t, "eth0"), e.values(t, "eth1"))
	}
	mustRestore(t, r1)
	if e.values(t, "eth1") != defaults {
		t.Fatalf("after restoring eth1: %v", e.values(t, "eth1"))
	}
}

func TestInvalid(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addLink(t, "eth0", 2, defaults)
	for _, name := range []string{"", ".", "..", "../eth0", "a/b", "a:b", "a b", "0123456789abcdef"} {
		if _, err := e.cfg.Apply(name, settingsA); err == nil || !strings.Contains(err.Error(), "invalid interface name") {
			t.Errorf("Apply(%q): %v", name, err)
		}
		if err := e.cfg.RestoreStale(name); err == nil {
			t.Errorf("RestoreStale(%q) accepted", name)
		}
	}
	for _, s := range []napi.Settings{{DeferHardIRQs: -1}, {DeferHardIRQs: 1 << 31}, {GROFlushTimeout: -time.Microsecond}} {
		if _, err := e.cfg.Apply("eth0", s); err == nil || !strings.Contains(err.Error(), "invalid") {
			t.Errorf("Apply(%+v): %v", s, err)
		}
	}
	_, err := e.cfg.Apply("eth9", settingsA)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "no interface eth9") {
		t.Errorf("Apply on a missing interface: %v", err)
	}
	if e.values(t, "eth0") != defaults {
		t.Errorf("values changed: %v", e.values(t, "eth0"))
	}
	if _, err := os.Stat(e.stateDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("refused calls created the state directory: %v", err)
	}
}

// TestWriteFails: when the device refuses the second value, the first is
// rolled back and no state is left.
func TestWriteFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addLink(t, "eth0", 2, [2]string{"1", "7"})
	p := filepath.Join(e.sysRoot, "eth0", "gro_flush_timeout")
	// The read follows a symlink and the write (O_NOFOLLOW) refuses it:
	// a file that reads but does not write, even for root.
	if err := os.Rename(p, p+".real"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(p+".real", p); err != nil {
		t.Fatal(err)
	}
	_, err := e.cfg.Apply("eth0", settingsA)
	if err == nil || !strings.Contains(err.Error(), "set "+p+" to 200000") {
		t.Fatalf("Apply with an unwritable file: %v", err)
	}
	t.Log(err)
	e.checkRestored(t, "eth0", [2]string{"1", "7"}, "after a failed Apply")
}

// TestStaleUser: a user whose process is gone (here: a start time that does
// not match the PID's, as after PID reuse) is dropped; as it was the only
// one, its values are undone before the next user starts over, so the
// originals stay the device's own.
func TestStaleUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addLink(t, "eth0", 2, [2]string{"1", "7"})
	mustApply(t, e.cfg, "eth0", settingsA)
	editState(t, e.cfg, "eth0", func(st *stateFile) { st.Users[0].Start++ })

	r := mustApply(t, e.cfg, "eth0", settingsB)
	if got := e.values(t, "eth0"); got != valuesB {
		t.Fatalf("after Apply over a dead user: %v, want %v", got, valuesB)
	}
	st := readState(t, e.cfg, "eth0")
	if got := vals(st, "original"); got != [2]string{"1", "7"} {
		t.Errorf("originals %v, want the device's own [1 7]", got)
	}
	if len(st.Users) != 1 {
		t.Errorf("users %+v, want only the new one", st.Users)
	}
	mustRestore(t, r)
	if got := e.values(t, "eth0"); got != [2]string{"1", "7"} {
		t.Errorf("after restore: %v", got)
	}
}

// TestStaleJoin: dead users are dropped but a live one with the same
// values is joined, and other values are still refused.
func TestStaleJoin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addLink(t, "eth0", 2, defaults)
	mustApply(t, e.cfg, "eth0", settingsA)
	r2 := mustApply(t, e.cfg, "eth0", settingsA)
	editState(t, e.cfg, "eth0", func(st *stateFile) { st.Users[0].PID = 1 << 30 }) // no such PID
	if _, err := e.cfg.Apply("eth0", settingsB); !errors.Is(err, napi.ErrConflict) {
		t.Fatalf("Apply B with a live user of A: %v", err)
	}
	if n := len(readState(t, e.cfg, "eth0").Users); n != 1 {
		t.Errorf("%d users after the conflict, want the dead one dropped", n)
	}
	if err := e.cfg.RestoreStale("eth0"); err != nil {
		t.Fatal(err)
	}
	if got := e.values(t, "eth0"); got != valuesA {
		t.Errorf("RestoreStale restored under a live user: %v", got)
	}
	mustRestore(t, r2)
	if got := e.values(t, "eth0"); got != defaults {
		t.Errorf("after the last live user: %v", got)
	}
}

// TestRestoreStale restores an interface whose only user died, and
// leaves alone one in use.
func TestRestoreStale(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addLink(t, "eth0", 2, [2]string{"1", "7"})
	e.addLink(t, "eth1", 3, defaults)
	mustApply(t, e.cfg, "eth0", settingsA)
	mustApply(t, e.cfg, "eth1", settingsB)
	editState(t, e.cfg, "eth0", func(st *stateFile) { st.Users[0].Start++ })
	// A temporary file left by a process killed while saving.
	tmp := filepath.Join(e.stateDir, "."+filepath.Base(statePath(t, e.cfg, "eth0"))+".tmp")
	if err := os.WriteFile(tmp, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}

	if err := e.cfg.RestoreStale("eth1"); err != nil {
		t.Fatal(err)
	}
	if got := e.values(t, "eth0"); got != valuesA {
		t.Errorf("RestoreStale(eth1) touched eth0: %v", got)
	}
	if err := e.cfg.RestoreAllStale(); err != nil {
		t.Fatal(err)
	}
	e.checkRestored(t, "eth0", [2]string{"1", "7"}, "after RestoreAllStale")
	if _, err := os.Stat(tmp); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("temporary file left: %v", err)
	}
	if got := e.values(t, "eth1"); got != valuesB {
		t.Errorf("eth1, in use, after RestoreAllStale: %v", got)
	}
	if err := napi.NewConfig(e.sysRoot, filepath.Join(e.stateDir, "none")).RestoreAllStale(); err != nil {
		t.Errorf("RestoreAllStale without a state directory: %v", err)
	}
}

// TestVanished: the state of an interface that went away is dropped, by
// the last restore and by RestoreStale, without error.
func TestVanished(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addLink(t, "eth0", 2, defaults)
	e.addLink(t, "eth1", 3, defaults)
	r := mustApply(t, e.cfg, "eth0", settingsA)
	mustApply(t, e.cfg, "eth1", settingsA)
	p0, p1 := statePath(t, e.cfg, "eth0"), statePath(t, e.cfg, "eth1")
	editState(t, e.cfg, "eth1", func(st *stateFile) { st.Users[0].Start++ })
	for _, n := range []string{"eth0", "eth1"} {
		if err := os.RemoveAll(filepath.Join(e.sysRoot, n)); err != nil {
			t.Fatal(err)
		}
	}
	mustRestore(t, r)
	if err := e.cfg.RestoreStale("eth1"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{p0, p1} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("state of a vanished interface left: %v", err)
		}
	}
}

// TestRecreated: an interface deleted while in use and re-created with the
// same name has another index, so the dead users' originals are not
// written to it, and their state is dropped.
func TestRecreated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addLink(t, "eth0", 2, [2]string{"1", "7"})
	mustApply(t, e.cfg, "eth0", settingsA)
	old := statePath(t, e.cfg, "eth0")
	editState(t, e.cfg, "eth0", func(st *stateFile) { st.Users[0].Start++ })
	if err := os.RemoveAll(filepath.Join(e.sysRoot, "eth0")); err != nil {
		t.Fatal(err)
	}
	e.addLink(t, "eth0", 9, [2]string{"3", "4"})

	r := mustApply(t, e.cfg, "eth0", settingsB)
	if got := vals(readState(t, e.cfg, "eth0"), "original"); got != [2]string{"3", "4"} {
		t.Errorf("originals of the new interface %v, want [3 4]", got)
	}
	mustRestore(t, r)
	if err := e.cfg.RestoreStale("eth0"); err != nil {
		t.Fatal(err)
	}
	if got := e.values(t, "eth0"); got != [2]string{"3", "4"} {
		t.Errorf("new interface %v, want its own [3 4]", got)
	}
	if _, err := os.Stat(old); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("state of the old interface left: %v", err)
	}
}

// TestEarlierBoot: state from before a reboot is dropped without being
// restored (the reboot did that), even with a user whose PID runs now.
func TestEarlierBoot(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addLink(t, "eth0", 2, [2]string{"1", "7"})
	mustApply(t, e.cfg, "eth0", settingsA)
	editState(t, e.cfg, "eth0", func(st *stateFile) {
		st.BootID = "00000000-0000-0000-0000-000000000000"
		st.Original = map[string]string{"napi_defer_hard_irqs": "8", "gro_flush_timeout": "8"}
	})
	r := mustApply(t, e.cfg, "eth0", settingsB)
	if got := vals(readState(t, e.cfg, "eth0"), "original"); got != valuesA {
		t.Errorf("originals %v, want the current values %v", got, valuesA)
	}
	mustRestore(t, r)
	if got := e.values(t, "eth0"); got != valuesA {
		t.Errorf("after restore %v, want %v", got, valuesA)
	}
}

// TestConcurrentJoin: many goroutines join and leave at once; the count
// stays right and the last one restores.
func TestConcurrentJoin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addLink(t, "eth0", 2, [2]string{"1", "7"})
	const goroutines, each = 16, 8
	restores := make(chan func() error, goroutines*each)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				r, err := e.cfg.Apply("eth0", settingsA)
				if err != nil {
					t.Error(err)
					return
				}
				restores <- r
			}
		})
	}
	wg.Wait()
	close(restores)
	if n := len(readState(t, e.cfg, "eth0").Users); n != goroutines*each {
		t.Fatalf("%d users, want %d", n, goroutines*each)
	}
	if got := e.values(t, "eth0"); got != valuesA {
		t.Fatalf("values %v", got)
	}
	for range goroutines {
		wg.Go(func() {
			for r := range restores {
				if err := r(); err != nil {
					t.Error(err)
				}
				if err := r(); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	e.checkRestored(t, "eth0", [2]string{"1", "7"}, "after all restores")
}

// TestConcurrentConflict: two groups of goroutines ask for different
// values. While any of one group holds the settings, none of the other
// gets them, and the device shows the holder's values.
func TestConcurrentConflict(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addLink(t, "eth0", 2, [2]string{"1", "7"})
	groups := [2]struct {
		s    napi.Settings
		v    [2]string
		hold atomic.Int32
		wins atomic.Int32
	}{{s: settingsA, v: valuesA}, {s: settingsB, v: valuesB}}
	var wg sync.WaitGroup
	for i := range 12 {
		g, other := &groups[i%2], &groups[1-i%2]
		wg.Go(func() {
			for range 30 {
				r, err := e.cfg.Apply("eth0", g.s)
				if errors.Is(err, napi.ErrConflict) {
					time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				g.hold.Add(1)
				g.wins.Add(1)
				if n := other.hold.Load(); n != 0 {
					t.Errorf("%v applied while %d users hold other values", g.s, n)
				}
				if got := e.values(t, "eth0"); got != g.v {
					t.Errorf("device has %v while a user holds %v", got, g.v)
				}
				time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
				g.hold.Add(-1)
				if err := r(); err != nil {
					t.Error(err)
				}
				// Leave gaps, so that the other group gets its turns.
				time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	t.Logf("successful Apply calls: A %d, B %d", groups[0].wins.Load(), groups[1].wins.Load())
	if groups[0].wins.Load()+groups[1].wins.Load() == 0 {
		t.Error("no Apply succeeded")
	}
	e.checkRestored(t, "eth0", [2]string{"1", "7"}, "after all restores")
}

func ExampleSettings_String() {
	fmt.Println(napi.Settings{DeferHardIRQs: 2, GROFlushTimeout: 200 * time.Microsecond})
	// Output: napi_defer_hard_irqs=2 gro_flush_timeout=200µs
}
