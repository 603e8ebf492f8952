//go:build linux

package redirect_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/filter"
	"github.com/xdpkit/xdpkit/internal/netlink"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/redirect"
)

var pinSeq atomic.Uint32

// pinFixture returns options with the PinDir to use and a name unique to
// the test, whose pins are removed at cleanup (also when the test fails).
// The pins go to DefaultPinDir when /sys/fs/bpf is a BPF filesystem, and
// otherwise (or with XDPKIT_TEST_PRIVATE_BPFFS=1 in the environment) to a
// private bpffs instance mounted for the test. It does not let
// AttachPinned mount bpffs on /sys/fs/bpf, which would change the host's
// mounts for good: TestAttachPinnedMountsBPFFS tests that in a mount
// namespace of its own.
func pinFixture(t *testing.T) (redirect.Options, string) {
	t.Helper()
	testutils.RequirePrivileged(t)
	var opts redirect.Options
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/bpf", &st); err == nil && uint32(st.Type) == uint32(unix.BPF_FS_MAGIC) &&
		os.Getenv("XDPKIT_TEST_PRIVATE_BPFFS") == "" {
		if _, err := os.Stat(redirect.DefaultPinDir); errors.Is(err, fs.ErrNotExist) {
			// Remove the base directory again if we create it and leave
			// it empty (fails harmlessly if another user has pins there).
			t.Cleanup(func() { _ = os.Remove(redirect.DefaultPinDir) })
		}
	} else {
		opts.PinDir = filepath.Join(privateBPFFS(t), "xdpkit")
	}
	name := fmt.Sprintf("test-%d-%d", os.Getpid(), pinSeq.Add(1))
	t.Cleanup(func() {
		// The kernel frees an unpinned link, and so detaches its program,
		// from a work queue: wait until the program is gone, so the next
		// test finds the interface free.
		var progID ebpf.ProgramID
		if l, err := link.LoadPinnedLink(filepath.Join(pinDirOf(opts, name), "link"), nil); err == nil {
			if info, err := l.Info(); err == nil {
				progID = info.Program
			}
			l.Close()
		}
		if err := redirect.Unpin(name, &opts); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for deadline := time.Now().Add(5 * time.Second); progID != 0; time.Sleep(10 * time.Millisecond) {
			p, err := ebpf.NewProgramFromID(progID)
			if err != nil {
				break
			}
			p.Close()
			if time.Now().After(deadline) {
				t.Errorf("cleanup: program %d still exists 5s after Unpin", progID)
				break
			}
		}
		if _, err := os.Stat(pinDirOf(opts, name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("cleanup: pin directory %s still there (%v)", pinDirOf(opts, name), err)
		}
	})
	return opts, name
}

func pinDirOf(opts redirect.Options, name string) string {
	base := opts.PinDir
	if base == "" {
		base = redirect.DefaultPinDir
	}
	return filepath.Join(base, name)
}

func attachPinned(t *testing.T, ifindex int, name string, opts redirect.Options) *redirect.Program {
	t.Helper()
	p, err := redirect.AttachPinned(ifindex, name, &opts)
	if err != nil {
		t.Fatalf("AttachPinned(%d, %q): %v", ifindex, name, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// wantIncompatible checks that err matches ErrPinIncompatible, names the
// difference and says how to remove the pin.
func wantIncompatible(t *testing.T, err error, name string, substrs ...string) {
	t.Helper()
	if !errors.Is(err, redirect.ErrPinIncompatible) {
		t.Errorf("err = %v, want ErrPinIncompatible", err)
		return
	}
	for _, s := range append(substrs, "redirect.Unpin(\""+name+"\"", "rm -r ") {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("err = %v\ndoes not mention %q", err, s)
		}
	}
	t.Logf("error text: %v", err)
}

func TestPinNameValidation(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"", "a.b", "a/b", "..", "é", strings.Repeat("x", 65)} {
		if p, err := redirect.AttachPinned(1, name, nil); err == nil || !strings.Contains(err.Error(), "invalid pin name") {
			p.Close()
			t.Errorf("AttachPinned(%q) = %v, want an invalid pin name error", name, err)
		}
		if err := redirect.Unpin(name, nil); err == nil || !strings.Contains(err.Error(), "invalid pin name") {
			t.Errorf("Unpin(%q) = %v, want an invalid pin name error", name, err)
		}
	}
	if p, err := redirect.AttachPinned(1, "ok", &redirect.Options{PinDir: "relative/dir"}); err == nil || !strings.Contains(err.Error(), "must be an absolute path") {
		p.Close()
		t.Errorf("relative PinDir: %v", err)
	}
}

// A PinDir that is not on a BPF filesystem is refused before anything is
// created there; Unpin of a name that was never pinned is not an error.
func TestPinDirNotBPFFS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := &redirect.Options{PinDir: filepath.Join(dir, "xdpkit")}
	p, err := redirect.AttachPinned(1, "workers", opts) // ifindex 1 is lo
	if err == nil {
		p.Close()
		t.Fatal("AttachPinned on a non-BPF filesystem succeeded")
	}
	if !errors.Is(err, redirect.ErrPinUntrusted) || !strings.Contains(err.Error(), "not on a BPF filesystem") ||
		!strings.Contains(err.Error(), "mount -t bpf -o mode=0700 bpf "+opts.PinDir) {
		t.Errorf("err = %v, want ErrPinUntrusted saying how to mount bpffs there", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("AttachPinned created %v in a non-BPF directory", ents)
	}
	if err := redirect.Unpin("workers", opts); err != nil {
		t.Errorf("Unpin of a missing name: %v", err)
	}
	var np *redirect.Program
	if np.Pinned() != "" {
		t.Error("nil Program has a pin path")
	}
	if err := np.Unpin(); err == nil {
		t.Error("Unpin of a nil Program succeeded")
	}
}

func TestAttachPinnedLifecycle(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 2})
	opts, name := pinFixture(t)
	dir := pinDirOf(opts, name)

	p, err := redirect.AttachPinned(v.HostIndex, name, &opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Pinned() != dir {
		t.Errorf("Pinned() = %q, want %q", p.Pinned(), dir)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("pin directory mode %v, want 0700", fi.Mode().Perm())
	}
	for _, f := range []string{"link", "prog", "xsks"} {
		if _, err := os.Lstat(filepath.Join(dir, f)); err != nil {
			t.Errorf("pin %s: %v", f, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "counters")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("counters pinned without Options.Counters: %v", err)
	}
	if p.Queues() != 2 || p.Ifindex() != v.HostIndex || p.Mode() != redirect.ModeDriver {
		t.Errorf("Queues %d, Ifindex %d, Mode %v; want 2, %d, driver", p.Queues(), p.Ifindex(), p.Mode(), v.HostIndex)
	}
	wantAttached(t, v.HostIndex, p.XDPProgram(), netlink.XDPAttachedDrv)
	id := progID(t, p.XDPProgram())

	// A second attach uses the pinned objects.
	p2, err := redirect.AttachPinned(v.HostIndex, name, &opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := progID(t, p2.XDPProgram()); got != id {
		t.Errorf("second AttachPinned: program %d, want the pinned %d", got, id)
	}
	if p2.Pinned() != dir || p2.Queues() != 2 || p2.Mode() != redirect.ModeDriver || p2.Ifindex() != v.HostIndex {
		t.Errorf("second AttachPinned: Pinned %q, Queues %d, Mode %v, Ifindex %d", p2.Pinned(), p2.Queues(), p2.Mode(), p2.Ifindex())
	}

	// Closing every Program, twice, leaves the program attached.
	for i := range 2 {
		if err := p.Close(); err != nil {
			t.Errorf("Close #%d: %v", i+1, err)
		}
		if err := p2.Close(); err != nil {
			t.Errorf("second Program, Close #%d: %v", i+1, err)
		}
	}
	if got := xdpInfo(t, v.HostIndex); got.DrvProgID != id {
		t.Fatalf("after Close: XDP = %s, want the pinned program %d to stay", got, id)
	}
	if err := p.Register(0, 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Register after Close = %v, want os.ErrClosed", err)
	}

	// Unpin after Close detaches it, and is idempotent.
	if err := p.Unpin(); err != nil {
		t.Fatal(err)
	}
	waitDetached(t, v.HostIndex, 5*time.Second)
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pin directory after Unpin: %v", err)
	}
	if err := p.Unpin(); err != nil {
		t.Errorf("second Unpin: %v", err)
	}
	if err := redirect.Unpin(name, &opts); err != nil {
		t.Errorf("Unpin of a removed name: %v", err)
	}

	// A Program from Attach is not pinned.
	a, err := redirect.Attach(v.HostIndex, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Pinned() != "" {
		t.Errorf("Attach: Pinned() = %q", a.Pinned())
	}
	if err := a.Unpin(); err == nil || !strings.Contains(err.Error(), "not attached by AttachPinned") {
		t.Errorf("Unpin of an unpinned Program = %v", err)
	}
	// An interface taken by an unpinned program cannot be pinned to.
	if q, err := redirect.AttachPinned(v.HostIndex, name, &opts); !errors.Is(err, redirect.ErrAlreadyAttached) {
		q.Close()
		t.Errorf("AttachPinned to an occupied interface = %v, want ErrAlreadyAttached", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "link")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("failed AttachPinned left a link pin: %v", err)
	}
}

// Processes started together attach the program once: the lock around
// check-or-create serializes them (flock also separates the open files of
// one process, so goroutines stand in for processes here).
func TestAttachPinnedConcurrent(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 2})
	opts, name := pinFixture(t)
	const n = 8
	progs := make([]*redirect.Program, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			progs[i], errs[i] = redirect.AttachPinned(v.HostIndex, name, &opts)
		})
	}
	close(start)
	wg.Wait()
	ids := map[uint32]int{}
	for i, p := range progs {
		if errs[i] != nil {
			t.Errorf("attach #%d: %v", i, errs[i])
			continue
		}
		ids[progID(t, p.XDPProgram())]++
		defer p.Close()
	}
	if len(ids) != 1 {
		t.Fatalf("concurrent AttachPinned made programs %v, want one", ids)
	}
	for id := range ids {
		if got := xdpInfo(t, v.HostIndex); got.DrvProgID != id {
			t.Errorf("XDP = %s, want program %d", got, id)
		}
	}
}

// AttachPinned waits for the lock another process holds on the pin
// directory; if that process removes the directory meanwhile (an Unpin),
// it starts over on a new one.
func TestAttachPinnedWaitsForLock(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 2})
	opts, name := pinFixture(t)
	dir := pinDirOf(opts, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	type result struct {
		p   *redirect.Program
		err error
	}
	done := make(chan result, 1)
	go func() {
		p, err := redirect.AttachPinned(v.HostIndex, name, &opts)
		done <- result{p, err}
	}()
	select {
	case r := <-done:
		r.p.Close()
		t.Fatalf("AttachPinned did not wait for the lock: %v", r.err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd) // releases the lock
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		defer r.p.Close()
		if _, err := os.Lstat(filepath.Join(dir, "link")); err != nil {
			t.Errorf("link pin in the new directory: %v", err)
		}
		wantAttached(t, v.HostIndex, r.p.XDPProgram(), netlink.XDPAttachedDrv)
	case <-time.After(10 * time.Second):
		t.Fatal("AttachPinned still waiting 10s after the lock was released")
	}
}

func TestAttachPinnedIncompatible(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 2})

	t.Run("foreign map", func(t *testing.T) {
		opts, name := pinFixture(t)
		dir := pinDirOf(opts, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "foreign", Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if err := m.Pin(filepath.Join(dir, "xsks")); err != nil {
			t.Fatal(err)
		}
		_, err = redirect.AttachPinned(v.HostIndex, name, &opts)
		wantIncompatible(t, err, name, "Hash", "xsks")
		wantDetached(t, v.HostIndex)
		if _, err := os.Lstat(filepath.Join(dir, "xsks")); err != nil {
			t.Errorf("foreign map pin removed: %v", err)
		}
	})

	t.Run("not a link", func(t *testing.T) {
		opts, name := pinFixture(t)
		dir := pinDirOf(opts, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if err := m.Pin(filepath.Join(dir, "link")); err != nil {
			t.Fatal(err)
		}
		_, err = redirect.AttachPinned(v.HostIndex, name, &opts)
		wantIncompatible(t, err, name, "as a BPF link")
	})

	t.Run("too few queues", func(t *testing.T) {
		opts, name := pinFixture(t)
		one := opts
		one.Queues = 1
		attachPinned(t, v.HostIndex, name, one).Close()
		_, err := redirect.AttachPinned(v.HostIndex, name, &opts)
		wantIncompatible(t, err, name, "the pinned XSKMAP has MaxEntries 1", v.Host+" has 2 RX queues")
		three := opts
		three.Queues = 3
		_, err = redirect.AttachPinned(v.HostIndex, name, &three)
		wantIncompatible(t, err, name, "Options.Queues is 3")
		if p := attachPinned(t, v.HostIndex, name, one); p.Queues() != 1 {
			t.Errorf("Queues() = %d, want 1", p.Queues())
		}
	})

	t.Run("other interface", func(t *testing.T) {
		other := testutils.NewVeth(t, testutils.VethOptions{Queues: 2})
		opts, name := pinFixture(t)
		attachPinned(t, v.HostIndex, name, opts)
		_, err := redirect.AttachPinned(other.HostIndex, name, &opts)
		wantIncompatible(t, err, name, fmt.Sprintf("attached to ifindex %d (%s)", v.HostIndex, v.Host), other.Host)
		wantDetached(t, other.HostIndex)
	})

	t.Run("interface gone", func(t *testing.T) {
		gone := testutils.NewVeth(t, testutils.VethOptions{})
		opts, name := pinFixture(t)
		attachPinned(t, gone.HostIndex, name, opts).Close()
		testutils.MustRun(t, "ip", "link", "del", gone.Host)
		_, err := redirect.AttachPinned(v.HostIndex, name, &opts)
		wantIncompatible(t, err, name, "no longer attached")
		wantDetached(t, v.HostIndex)
	})

	t.Run("filter", func(t *testing.T) {
		opts, name := pinFixture(t)
		attachPinned(t, v.HostIndex, name, opts)
		f, err := filter.Compile("udp port 9999", filter.Redirect, filter.Pass)
		if err != nil {
			t.Fatal(err)
		}
		withFilter := opts
		withFilter.Filter = f
		_, err = redirect.AttachPinned(v.HostIndex, name, &withFilter)
		wantIncompatible(t, err, name, `Options.Filter "udp port 9999"`, "another filter")
	})

	t.Run("same filter", func(t *testing.T) {
		opts, name := pinFixture(t)
		compile := func() *filter.Program {
			f, err := filter.Compile("udp port 9999", filter.Redirect, filter.Pass)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
		a, b := opts, opts
		a.Filter, b.Filter = compile(), compile()
		first := attachPinned(t, v.HostIndex, name, a)
		second := attachPinned(t, v.HostIndex, name, b)
		if progID(t, first.XDPProgram()) != progID(t, second.XDPProgram()) {
			t.Error("the same filter made a second program")
		}
		if second.Filter() != b.Filter {
			t.Error("Filter() is not the options' filter")
		}
		_, err := redirect.AttachPinned(v.HostIndex, name, &opts)
		wantIncompatible(t, err, name, "no Options.Filter")
	})

	t.Run("mode", func(t *testing.T) {
		opts, name := pinFixture(t)
		generic := opts
		generic.Mode = redirect.ModeGeneric
		attachPinned(t, v.HostIndex, name, generic)
		driver := opts
		driver.Mode = redirect.ModeDriver
		_, err := redirect.AttachPinned(v.HostIndex, name, &driver)
		wantIncompatible(t, err, name, "runs in generic mode", "asks for driver")
		if p := attachPinned(t, v.HostIndex, name, opts); p.Mode() != redirect.ModeGeneric {
			t.Errorf("ModeAuto on a generic pin: Mode() = %v", p.Mode())
		}
	})

	t.Run("counters", func(t *testing.T) {
		opts, name := pinFixture(t)
		counted := opts
		counted.Counters = true
		first := attachPinned(t, v.HostIndex, name, counted)
		_, err := redirect.AttachPinned(v.HostIndex, name, &opts)
		wantIncompatible(t, err, name, "counts its verdicts")
		second := attachPinned(t, v.HostIndex, name, counted)
		frame := make([]byte, 60)
		run(t, first.XDPProgram(), frame, v.HostIndex, 0)
		c, err := second.Counters()
		if err != nil {
			t.Fatal(err)
		}
		if c.Passed < 1 {
			t.Errorf("counters through the second Program: %+v, want at least the 1 passed test frame", c)
		}
	})

	// The remains of a creation killed before it pinned the link are our
	// objects and attached nowhere: the next attach replaces them.
	t.Run("interrupted creation", func(t *testing.T) {
		opts, name := pinFixture(t)
		dir := pinDirOf(opts, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		prog, xsks, err := redirect.Load(2)
		if err != nil {
			t.Fatal(err)
		}
		defer prog.Close()
		defer xsks.Close()
		if err := xsks.Pin(filepath.Join(dir, "xsks")); err != nil {
			t.Fatal(err)
		}
		if err := prog.Pin(filepath.Join(dir, "prog")); err != nil {
			t.Fatal(err)
		}
		p := attachPinned(t, v.HostIndex, name, opts)
		if progID(t, p.XDPProgram()) == progID(t, prog) {
			t.Error("the leftover program was attached")
		}
		wantAttached(t, v.HostIndex, p.XDPProgram(), netlink.XDPAttachedDrv)
	})
}

// A worker process for one queue of eth0: the first worker to start
// attaches the program and pins it under /sys/fs/bpf/xdpkit/eth0-workers,
// the others (and restarted ones) join it. Needs root.
func ExampleAttachPinned() {
	iface, err := net.InterfaceByName("eth0")
	if err != nil {
		log.Fatal(err)
	}
	prog, err := redirect.AttachPinned(iface.Index, "eth0-workers", nil)
	if err != nil {
		log.Fatal(err) // errors.Is(err, redirect.ErrPinIncompatible): the pin is for something else
	}
	defer prog.Close() // closes this process's handles; the program stays attached

	queue := 0 // this worker's queue
	sock, err := afxdp.Open("eth0", queue, &afxdp.Config{Steering: prog})
	if err != nil {
		log.Fatal(err)
	}
	defer sock.Close() // leaves the XSKMAP; so does the process dying

	// ... receive on sock ...

	// At shutdown, once every worker is stopped, the supervisor removes
	// the pin, and with it the program:
	//
	//	redirect.Unpin("eth0-workers", nil)
}

// Worker processes for TestPinnedWorkers.
const (
	pinWorkerEnv = "XDPKIT_PIN_WORKER_IFNAME"
	pinPort      = 9999
)

var pinMagic = []byte("xdpkit-pin-test")

func pinFrame(v *testutils.Veth, seq uint32) []byte {
	payload := binary.BigEndian.AppendUint32(bytes.Clone(pinMagic), seq)
	return testutils.UDPFrame(v.HostMAC, v.PeerMAC, v.PeerIP.As4(), v.HostIP.As4(), uint16(20000+seq%64), pinPort, payload)
}

func pinSeqOf(frame []byte) (uint32, bool) {
	const off = 42
	if len(frame) < off+len(pinMagic)+4 || !bytes.Equal(frame[off:off+len(pinMagic)], pinMagic) {
		return 0, false
	}
	return binary.BigEndian.Uint32(frame[off+len(pinMagic):]), true
}

// TestHelperPinnedWorker is a worker process: it attaches to the pinned
// program, opens a socket on its queue and prints "rx SEQ" for every test
// frame it receives, until its stdin is closed.
func TestHelperPinnedWorker(t *testing.T) {
	ifname := os.Getenv(pinWorkerEnv)
	if ifname == "" {
		t.Skip("helper process for TestPinnedWorkers")
	}
	fail := func(format string, args ...any) {
		fmt.Printf("error: "+format+"\n", args...)
		os.Exit(2)
	}
	queue, err := strconv.Atoi(os.Getenv("XDPKIT_PIN_QUEUE"))
	if err != nil {
		fail("queue: %v", err)
	}
	iface, err := net.InterfaceByName(ifname)
	if err != nil {
		fail("%v", err)
	}
	p, err := redirect.AttachPinned(iface.Index, os.Getenv("XDPKIT_PIN_NAME"), &redirect.Options{PinDir: os.Getenv("XDPKIT_PIN_DIR")})
	if err != nil {
		fail("%v", err)
	}
	info, err := p.XDPProgram().Info()
	if err != nil {
		fail("%v", err)
	}
	id, _ := info.ID()
	fmt.Println("attached", id)
	s, err := afxdp.Open(ifname, queue, &afxdp.Config{Steering: p})
	if err != nil {
		fail("%v", err)
	}
	fmt.Println("ready")

	var stop atomic.Bool
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop.Store(true)
	}()
	out := bufio.NewWriter(os.Stdout)
	descs := make([]unix.XDPDesc, 64)
	for !stop.Load() {
		if err := s.Wait(50 * time.Millisecond); errors.Is(err, afxdp.ErrTimeout) {
			continue
		} else if err != nil {
			fail("wait: %v", err)
		}
		n, err := s.Receive(descs)
		if err != nil {
			fail("receive: %v", err)
		}
		for _, d := range descs[:n] {
			if seq, ok := pinSeqOf(s.Frame(d)); ok {
				fmt.Fprintf(out, "rx %d\n", seq)
			}
		}
		if err := s.Release(descs[:n]); err != nil {
			fail("release: %v", err)
		}
		out.Flush()
	}
	if err := errors.Join(s.Close(), p.Close()); err != nil {
		fail("close: %v", err)
	}
	fmt.Println("bye")
	os.Exit(0)
}

// pinWorker is a running TestHelperPinnedWorker process.
type pinWorker struct {
	queue  int
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan string   // output lines other than "rx"
	exited chan struct{} // closed once the process is reaped
	stderr bytes.Buffer  // read only after exited
	err    error         // exit status, set before exited is closed

	mu   sync.Mutex
	seqs map[uint32]int // received test frames
}

func startPinWorker(t *testing.T, v *testutils.Veth, queue int, opts redirect.Options, name string) *pinWorker {
	t.Helper()
	w := &pinWorker{queue: queue, events: make(chan string, 64), exited: make(chan struct{}), seqs: map[uint32]int{}}
	w.cmd = exec.Command(os.Args[0], "-test.run=^TestHelperPinnedWorker$", "-test.count=1", "-test.timeout=2m")
	w.cmd.Env = append(os.Environ(), pinWorkerEnv+"="+v.Host, "XDPKIT_PIN_QUEUE="+strconv.Itoa(queue),
		"XDPKIT_PIN_NAME="+name, "XDPKIT_PIN_DIR="+opts.PinDir)
	w.cmd.Stderr = &w.stderr
	var err error
	if w.stdin, err = w.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if s, ok := strings.CutPrefix(line, "rx "); ok {
				if seq, err := strconv.ParseUint(s, 10, 32); err == nil {
					w.mu.Lock()
					w.seqs[uint32(seq)]++
					w.mu.Unlock()
					continue
				}
			}
			select {
			case w.events <- line:
			default: // nobody listens any more
			}
		}
		w.err = w.cmd.Wait()
		close(w.exited)
	}()
	t.Cleanup(func() {
		_ = w.cmd.Process.Kill()
		select {
		case <-w.exited:
		case <-time.After(10 * time.Second):
			t.Errorf("worker on queue %d did not exit after SIGKILL", queue)
		}
	})
	return w
}

// ready waits for the worker to attach and open its socket and returns
// the ID of the program it attached to.
func (w *pinWorker) ready(t *testing.T) uint32 {
	t.Helper()
	var id uint32
	timeout := time.After(20 * time.Second)
	for {
		select {
		case line := <-w.events:
			switch {
			case strings.HasPrefix(line, "attached "):
				x, err := strconv.ParseUint(strings.TrimPrefix(line, "attached "), 10, 32)
				if err != nil {
					t.Fatalf("worker %d: %q", w.queue, line)
				}
				id = uint32(x)
			case line == "ready":
				return id
			default:
				t.Fatalf("worker %d: %s", w.queue, line)
			}
		case <-w.exited:
			t.Fatalf("worker %d exited before it was ready: %v; stderr: %s", w.queue, w.err, w.stderr.String())
		case <-timeout:
			t.Fatalf("worker %d not ready within 20s", w.queue)
		}
	}
}

// received counts the distinct test frames in [lo, hi) the worker got.
func (w *pinWorker) received(lo, hi uint32) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for seq := range w.seqs {
		if seq >= lo && seq < hi {
			n++
		}
	}
	return n
}

// duplicates returns the frames received more than once.
func (w *pinWorker) duplicates() []uint32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	var d []uint32
	for seq, n := range w.seqs {
		if n > 1 {
			d = append(d, seq)
		}
	}
	return d
}

func (w *pinWorker) kill(t *testing.T) {
	t.Helper()
	if err := w.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("worker %d did not exit within 10s of SIGKILL", w.queue)
	}
}

// stop asks the worker to close its socket and Program and exit.
func (w *pinWorker) stop(t *testing.T) {
	t.Helper()
	w.stdin.Close()
	select {
	case <-w.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("worker %d did not stop within 10s", w.queue)
	}
	bye := false
	for len(w.events) > 0 {
		line := <-w.events
		bye = bye || line == "bye"
		if strings.HasPrefix(line, "error:") {
			t.Errorf("worker %d: %s", w.queue, line)
		}
	}
	if w.err != nil || !bye {
		t.Errorf("worker %d: exit %v, said bye: %v; stderr: %s", w.queue, w.err, bye, w.stderr.String())
	}
}

// TestPinnedWorkers runs one worker process per queue on one pinned
// program: killing a worker leaves the others receiving, the kernel takes
// the killed worker's socket out of the XSKMAP, a restarted worker joins
// the same program, and Unpin after the last worker detaches it.
func TestPinnedWorkers(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 2})
	opts, name := pinFixture(t)
	peer := v.OpenPeerPacketSocket(t)
	const perRound = 640 // 64 flows (source ports) of 10 frames
	send := func(round uint32) (lo, hi uint32) {
		lo, hi = round*perRound, (round+1)*perRound
		for seq := lo; seq < hi; seq++ {
			if err := peer.Send(pinFrame(v, seq)); err != nil {
				t.Fatal(err)
			}
		}
		return lo, hi
	}
	// waitFor polls cond for at most 10s.
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10s", what)
			}
		}
	}

	// Two workers started at once: one creates the pins, the other waits
	// for the lock and uses them.
	w0 := startPinWorker(t, v, 0, opts, name)
	w1 := startPinWorker(t, v, 1, opts, name)
	id := w0.ready(t)
	if id1 := w1.ready(t); id1 != id {
		t.Fatalf("workers attached to programs %d and %d, want one", id, id1)
	}
	if got := xdpInfo(t, v.HostIndex); got.AnyProgID() != id {
		t.Fatalf("XDP = %s, want the workers' program %d", got, id)
	}
	prog, err := ebpf.LoadPinnedProgram(filepath.Join(pinDirOf(opts, name), "prog"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	frame := make([]byte, 60)
	for q := range 2 {
		if got := run(t, prog, frame, v.HostIndex, q); got != xdpRedirect {
			t.Errorf("queue %d with its worker: action %d, want XDP_REDIRECT", q, got)
		}
	}

	// Round 0: both queues get traffic, every frame reaches a worker.
	lo, hi := send(0)
	waitFor("round 0 received by the workers", func() bool { return w0.received(lo, hi)+w1.received(lo, hi) == perRound })
	n0, n1 := w0.received(lo, hi), w1.received(lo, hi)
	t.Logf("round 0: queue 0 got %d, queue 1 got %d", n0, n1)
	if n0 == 0 || n1 == 0 {
		t.Fatalf("64 flows did not reach both queues: %d and %d frames", n0, n1)
	}

	// SIGKILL worker 1: the program stays attached, the kernel removes the
	// dead socket from the XSKMAP (queue 1 falls back to XDP_PASS), and
	// worker 0 keeps receiving.
	w1.kill(t)
	killed := time.Now()
	if got := xdpInfo(t, v.HostIndex); got.AnyProgID() != id {
		t.Fatalf("after killing worker 1: XDP = %s, want program %d still attached", got, id)
	}
	for deadline := time.Now().Add(5 * time.Second); run(t, prog, frame, v.HostIndex, 1) != xdpPass; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the killed worker's socket is still in the XSKMAP after 5s")
		}
	}
	t.Logf("queue 1's XSKMAP entry gone %v after the killed worker was reaped", time.Since(killed))
	if got := run(t, prog, frame, v.HostIndex, 0); got != xdpRedirect {
		t.Errorf("queue 0 after worker 1 died: action %d, want XDP_REDIRECT", got)
	}
	stack := testutils.OpenPacketSocket(t, v.HostIndex) // sees what XDP passes to the kernel stack
	lo, hi = send(1)
	passed := map[uint32]bool{}
	buf := make([]byte, 2048)
	for deadline := time.Now().Add(10 * time.Second); w0.received(lo, hi)+len(passed) < perRound; {
		if time.Now().After(deadline) {
			t.Fatalf("round 1: worker 0 got %d and the stack %d of %d frames within 10s", w0.received(lo, hi), len(passed), perRound)
		}
		n, err := stack.Recv(buf, 100*time.Millisecond)
		if err != nil {
			continue
		}
		if seq, ok := pinSeqOf(buf[:n]); ok && seq >= lo && seq < hi {
			passed[seq] = true
		}
	}
	t.Logf("round 1, worker 1 dead: queue 0 got %d, the kernel stack %d", w0.received(lo, hi), len(passed))
	if w0.received(lo, hi) == 0 || len(passed) == 0 {
		t.Errorf("round 1: worker 0 got %d frames, the stack %d: want both > 0", w0.received(lo, hi), len(passed))
	}

	// A restarted worker 1 joins the pinned program; its queue is
	// redirected to it again.
	w1 = startPinWorker(t, v, 1, opts, name)
	if got := w1.ready(t); got != id {
		t.Fatalf("restarted worker attached to program %d, want the pinned %d", got, id)
	}
	if got := xdpInfo(t, v.HostIndex); got.AnyProgID() != id {
		t.Fatalf("after the restart: XDP = %s, want program %d", got, id)
	}
	lo, hi = send(2)
	waitFor("round 2 received by the workers", func() bool { return w0.received(lo, hi)+w1.received(lo, hi) == perRound })
	n0, n1 = w0.received(lo, hi), w1.received(lo, hi)
	t.Logf("round 2, worker 1 restarted: queue 0 got %d, queue 1 got %d", n0, n1)
	if n0 == 0 || n1 == 0 {
		t.Errorf("round 2: queue 0 got %d, queue 1 got %d: want both > 0", n0, n1)
	}
	for _, w := range []*pinWorker{w0, w1} {
		if d := w.duplicates(); len(d) > 0 {
			t.Errorf("worker %d received frames more than once: %v", w.queue, d)
		}
	}

	// Both stop: the program outlives them; Unpin then detaches it.
	w0.stop(t)
	w1.stop(t)
	if got := xdpInfo(t, v.HostIndex); got.AnyProgID() != id {
		t.Fatalf("after all workers stopped: XDP = %s, want the pinned program %d", got, id)
	}
	for q := range 2 {
		if got := run(t, prog, frame, v.HostIndex, q); got != xdpPass {
			t.Errorf("queue %d after its worker stopped: action %d, want XDP_PASS", q, got)
		}
	}
	if err := redirect.Unpin(name, &opts); err != nil {
		t.Fatal(err)
	}
	waitDetached(t, v.HostIndex, 5*time.Second)
}
