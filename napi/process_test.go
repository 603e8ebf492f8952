//go:build linux

package napi_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/napi"
)

// The tests below re-run this test binary as a second process; the child
// runs TestHelperProcess, configured by these variables.
const (
	// "hold": Apply, print "ready", restore at EOF on stdin.
	// "churn": Apply and restore churnRounds times, print "done: ERRORS".
	helperEnv   = "XDPKIT_NAPI_HELPER"
	sysRootEnv  = "XDPKIT_NAPI_SYSROOT"
	stateDirEnv = "XDPKIT_NAPI_STATEDIR" // with sysRootEnv; both unset: the package defaults
	ifnameEnv   = "XDPKIT_NAPI_IFNAME"
	settingsEnv = "XDPKIT_NAPI_SETTINGS" // "DEFER,FLUSH_NS"
)

const churnRounds = 40

func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode != "hold" && mode != "churn" {
		t.Skip("only runs as a child of another test")
	}
	var s napi.Settings
	var flush int64
	if _, err := fmt.Sscanf(os.Getenv(settingsEnv), "%d,%d", &s.DeferHardIRQs, &flush); err != nil {
		fmt.Println("error: settings:", err)
		os.Exit(1)
	}
	s.GROFlushTimeout = time.Duration(flush)
	apply := napi.Apply
	if root := os.Getenv(sysRootEnv); root != "" {
		apply = napi.NewConfig(root, os.Getenv(stateDirEnv)).Apply
	}
	if mode == "churn" {
		fmt.Printf("done: %v\n", churn(apply, os.Getenv(ifnameEnv), s, nil))
		os.Exit(0)
	}
	restore, err := apply(os.Getenv(ifnameEnv), s)
	if err != nil {
		fmt.Printf("error: permission=%v %v\n", errors.Is(err, fs.ErrPermission), err)
		os.Exit(0)
	}
	fmt.Println("ready")
	eof := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(eof) }()
	select {
	case <-eof:
	case <-time.After(60 * time.Second): // the parent is gone
	}
	fmt.Printf("restored: %v\n", restore())
	os.Exit(0)
}

// child is a running TestHelperProcess.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // its output; closed at EOF, when it exits or dies
	waited bool
}

// target says where a child works: a fake sysfs or the real one.
type target struct {
	cfg      *napi.Config
	sysRoot  string // "" for the package defaults
	stateDir string
	ifname   string
}

func (tg target) values(t *testing.T) [2]string {
	root := tg.sysRoot
	if root == "" {
		root = "/sys/class/net"
	}
	return readValues(t, root, tg.ifname)
}

// churn applies s and restores it churnRounds times, checking the device
// has s in between (with read, if not nil), and returns the errors.
func churn(apply func(string, napi.Settings) (func() error, error), ifname string, s napi.Settings, read func() [2]string) error {
	var errs []error
	want := [2]string{strconv.Itoa(s.DeferHardIRQs), strconv.FormatInt(s.GROFlushTimeout.Nanoseconds(), 10)}
	for range churnRounds {
		r, err := apply(ifname, s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if read != nil {
			if got := read(); got != want {
				errs = append(errs, fmt.Errorf("device has %v while in use with %v", got, want))
			}
		}
		if err := r(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func startChild(t *testing.T, tg target, s napi.Settings, cred *syscall.Credential, bin string) *child {
	t.Helper()
	return startHelper(t, "hold", tg, s, cred, bin)
}

func startHelper(t *testing.T, mode string, tg target, s napi.Settings, cred *syscall.Credential, bin string) *child {
	t.Helper()
	if bin == "" {
		bin = os.Args[0]
	}
	cmd := exec.Command(bin, "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, ifnameEnv+"="+tg.ifname,
		settingsEnv+"="+fmt.Sprintf("%d,%d", s.DeferHardIRQs, s.GROFlushTimeout.Nanoseconds()))
	if tg.sysRoot != "" {
		cmd.Env = append(cmd.Env, sysRootEnv+"="+tg.sysRoot, stateDirEnv+"="+tg.stateDir)
	}
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Dir = filepath.Dir(bin)
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(func() {
		if !c.waited {
			_ = cmd.Process.Kill()
			c.wait(t)
		}
	})
	return c
}

// expect waits for the child's next line of output with the given prefix,
// skipping the test framework's own lines.
func (c *child) expect(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				t.Fatalf("child exited without printing %q", prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
			if strings.HasPrefix(l, "ready") || strings.HasPrefix(l, "error:") || strings.HasPrefix(l, "restored:") || strings.HasPrefix(l, "done:") {
				t.Fatalf("child printed %q, want %q", l, prefix)
			}
		case <-timeout:
			t.Fatalf("child printed no %q in 20s", prefix)
		}
	}
}

// release makes the child restore and exit.
func (c *child) release(t *testing.T) {
	t.Helper()
	c.stdin.Close()
	if l := c.expect(t, "restored:"); l != "restored: <nil>" {
		t.Errorf("child: %s", l)
	}
}

// kill sends SIGKILL and waits until the child is a zombie: dead, not yet
// reaped, its /proc entry and PID still there.
func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	stat := "/proc/" + strconv.Itoa(c.cmd.Process.Pid) + "/stat"
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		b, err := os.ReadFile(stat)
		if err != nil {
			t.Fatal(err)
		}
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && strings.HasPrefix(string(b[i:]), ") Z") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("child not a zombie 10s after SIGKILL: %s", b)
		}
	}
}

// wait reaps the child, after reading the rest of its output.
func (c *child) wait(t *testing.T) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for eof := false; !eof; {
		select {
		case _, ok := <-c.lines:
			eof = !ok
		case <-timeout:
			_ = c.cmd.Process.Kill()
			t.Fatal("child did not exit")
		}
	}
	c.waited = true
	_ = c.cmd.Wait()
}

// fakeTarget is a fake eth0 with the values [1 7] and a private state
// directory.
func fakeTarget(t *testing.T) target {
	e := newEnv(t)
	e.addLink(t, "eth0", 2, [2]string{"1", "7"})
	return target{cfg: e.cfg, sysRoot: e.sysRoot, stateDir: e.stateDir, ifname: "eth0"}
}

// vethTarget is the host side of a new veth pair, in the real sysfs, with
// the values [1 3000] (not the kernel's defaults, so a restore shows) and
// a private state directory.
func vethTarget(t *testing.T) target {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	for f, val := range map[string]string{"napi_defer_hard_irqs": "1", "gro_flush_timeout": "3000"} {
		if err := os.WriteFile(filepath.Join("/sys/class/net", v.Host, f), []byte(val), 0); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "state")
	return target{cfg: napi.NewConfig("/sys/class/net", dir), sysRoot: "/sys/class/net", stateDir: dir, ifname: v.Host}
}

var targets = []struct {
	name string
	new  func(*testing.T) target
}{{"fake", fakeTarget}, {"veth", vethTarget}}

// TestTwoProcesses: a second process joins the same values, is refused
// other ones, and the settings stay until the last process restores.
func TestTwoProcesses(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			tg := tt.new(t)
			before := tg.values(t)
			r := mustApply(t, tg.cfg, tg.ifname, settingsA)
			c1 := startChild(t, tg, settingsA, nil, "")
			c1.expect(t, "ready")
			c2 := startChild(t, tg, settingsB, nil, "")
			l := c2.expect(t, "error:")
			for _, want := range []string{"refusing napi_defer_hard_irqs=5", fmt.Sprintf("pid %d (", os.Getpid()), fmt.Sprintf("pid %d (", c1.cmd.Process.Pid)} {
				if !strings.Contains(l, want) {
					t.Errorf("second process with other values: %q does not say %q", l, want)
				}
			}
			mustRestore(t, r)
			if got := tg.values(t); got != valuesA {
				t.Errorf("restored while another process uses the settings: %v", got)
			}
			c1.release(t)
			if got := tg.values(t); got != before {
				t.Errorf("after the last process restored: %v, want %v", got, before)
			}
			if st := readState(t, tg.cfg, tg.ifname); st != nil {
				t.Errorf("state left: %+v", st)
			}
		})
	}
}

// TestConcurrentProcesses: processes that join and leave at the same time
// keep a correct count: the device has the values while any uses them, and
// the originals come back after the last one.
func TestConcurrentProcesses(t *testing.T) {
	tg := fakeTarget(t)
	var children []*child
	for range 3 {
		children = append(children, startHelper(t, "churn", tg, settingsA, nil, ""))
	}
	// Hold the settings for a while in the middle, so the children also
	// join a user they did not see arrive.
	time.Sleep(5 * time.Millisecond)
	r := mustApply(t, tg.cfg, tg.ifname, settingsA)
	if err := churn(tg.cfg.Apply, tg.ifname, settingsA, func() [2]string { return tg.values(t) }); err != nil {
		t.Error(err)
	}
	mustRestore(t, r)
	for _, c := range children {
		if l := c.expect(t, "done:"); l != "done: <nil>" {
			t.Errorf("child: %s", l)
		}
		c.wait(t)
	}
	if got := tg.values(t); got != [2]string{"1", "7"} {
		t.Errorf("after all processes: %v, want [1 7]", got)
	}
	if st := readState(t, tg.cfg, tg.ifname); st != nil {
		t.Errorf("state left: %+v", st)
	}
}

// TestKilled: a process that applied the settings is killed with SIGKILL.
// The next Apply, RestoreStale, or the restore of the last live user puts
// the device's own values back.
func TestKilled(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			t.Run("Apply", func(t *testing.T) {
				tg := tt.new(t)
				before := tg.values(t)
				c := startChild(t, tg, settingsA, nil, "")
				c.expect(t, "ready")
				if got := tg.values(t); got != valuesA {
					t.Fatalf("child's values %v, want %v", got, valuesA)
				}
				c.kill(t)
				c.wait(t)
				if got := tg.values(t); got != valuesA {
					t.Fatalf("after the kill: %v, want the dead child's %v still there", got, valuesA)
				}
				r := mustApply(t, tg.cfg, tg.ifname, settingsB)
				if got := tg.values(t); got != valuesB {
					t.Errorf("after Apply over the dead child: %v, want %v", got, valuesB)
				}
				if got := vals(readState(t, tg.cfg, tg.ifname), "original"); got != before {
					t.Errorf("originals %v, want the device's own %v", got, before)
				}
				mustRestore(t, r)
				if got := tg.values(t); got != before {
					t.Errorf("after restore: %v, want %v", got, before)
				}
			})
			t.Run("RestoreStale", func(t *testing.T) {
				tg := tt.new(t)
				before := tg.values(t)
				c := startChild(t, tg, settingsA, nil, "")
				c.expect(t, "ready")
				c.kill(t) // a zombie counts as dead
				if err := tg.cfg.RestoreStale(tg.ifname); err != nil {
					t.Fatal(err)
				}
				if got := tg.values(t); got != before {
					t.Errorf("after RestoreStale: %v, want %v", got, before)
				}
				if st := readState(t, tg.cfg, tg.ifname); st != nil {
					t.Errorf("state left: %+v", st)
				}
				c.wait(t)
			})
			t.Run("last restore", func(t *testing.T) {
				tg := tt.new(t)
				before := tg.values(t)
				c := startChild(t, tg, settingsA, nil, "")
				c.expect(t, "ready")
				r := mustApply(t, tg.cfg, tg.ifname, settingsA)
				c.kill(t)
				c.wait(t)
				mustRestore(t, r)
				if got := tg.values(t); got != before {
					t.Errorf("after the last live user's restore: %v, want %v", got, before)
				}
				if st := readState(t, tg.cfg, tg.ifname); st != nil {
					t.Errorf("state left: %+v", st)
				}
			})
		})
	}
}

// TestDefaultStateDir runs a child with the package defaults
// (/sys/class/net, /run/xdpkit/napi) on a veth, kills it, and restores
// with RestoreStale. (It leaves /run/xdpkit/napi behind, empty.)
func TestDefaultStateDir(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	tg := target{cfg: napi.NewConfig("/sys/class/net", "/run/xdpkit/napi"), ifname: v.Host}
	before := tg.values(t)
	c := startChild(t, tg, settingsA, nil, "")
	c.expect(t, "ready")
	p := statePath(t, tg.cfg, v.Host)
	t.Cleanup(func() { _ = napi.RestoreStale(v.Host) })
	for path, want := range map[string]os.FileMode{"/run/xdpkit/napi": 0o700, p: 0o600} {
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
	if got := tg.values(t); got != valuesA {
		t.Fatalf("child's values %v, want %v", got, valuesA)
	}
	c.kill(t)
	c.wait(t)
	if err := napi.RestoreStale(v.Host); err != nil {
		t.Fatal(err)
	}
	if got := tg.values(t); got != before {
		t.Errorf("after RestoreStale: %v, want %v", got, before)
	}
	if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("state file left: %v", err)
	}
}

// TestUnprivileged: a process that may not write sysfs, or the default
// state directory, gets an error that says what it needs.
func TestUnprivileged(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	const nobody = 65534
	// A directory an unprivileged child can reach, with a copy of the
	// test binary and a state directory of its own.
	dir, err := os.MkdirTemp("", "xdpkit-napi-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "helper.test")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(state, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	cred := &syscall.Credential{Uid: nobody, Gid: nobody}
	before := readValues(t, "/sys/class/net", v.Host)

	c := startChild(t, target{sysRoot: "/sys/class/net", stateDir: state, ifname: v.Host}, settingsA, cred, bin)
	l := c.expect(t, "error:")
	t.Log(l)
	for _, want := range []string{"permission=true", "set /sys/class/net/" + v.Host + "/napi_defer_hard_irqs to 2", "writing sysfs needs root"} {
		if !strings.Contains(l, want) {
			t.Errorf("%q does not say %q", l, want)
		}
	}
	if ents, _ := os.ReadDir(state); len(ents) != 0 {
		t.Errorf("state left after the failed Apply: %v", ents)
	}

	c = startChild(t, target{ifname: v.Host}, settingsA, cred, bin)
	l = c.expect(t, "error:")
	t.Log(l)
	for _, want := range []string{"permission=true", "/run/xdpkit", "needs root"} {
		if !strings.Contains(l, want) {
			t.Errorf("%q does not say %q", l, want)
		}
	}
	if got := readValues(t, "/sys/class/net", v.Host); got != before {
		t.Errorf("values changed: %v, want %v", got, before)
	}
}
