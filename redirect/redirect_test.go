//go:build linux

package redirect_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/netlink"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/redirect"
)

func TestModeString(t *testing.T) {
	t.Parallel()
	for m, want := range map[redirect.Mode]string{
		redirect.ModeAuto: "auto", redirect.ModeDriver: "driver", redirect.ModeGeneric: "generic", 7: "Mode(7)",
	} {
		if got := m.String(); got != want {
			t.Errorf("Mode(%d).String() = %q, want %q", int(m), got, want)
		}
	}
	var zero redirect.Options
	if zero.Mode != redirect.ModeAuto {
		t.Error("the zero Mode is not ModeAuto")
	}
}

func TestInvalidOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opts redirect.Options
		want string
	}{
		{redirect.Options{Mode: 9}, "invalid Options.Mode 9"},
		{redirect.Options{Queues: -1}, "invalid Options.Queues -1"},
	} {
		p, err := redirect.Attach(1, &tc.opts)
		if err == nil {
			p.Close()
			t.Fatalf("Attach(%+v) succeeded", tc.opts)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Attach(%+v) = %v, want %q", tc.opts, err, tc.want)
		}
	}
}

func TestAttachNotFound(t *testing.T) {
	t.Parallel()
	p, err := redirect.Attach(1<<30, nil)
	if err == nil {
		p.Close()
		t.Fatal("Attach to a missing interface succeeded")
	}
	if !errors.Is(err, redirect.ErrNotFound) || !errors.Is(err, unix.ENODEV) {
		t.Errorf("err = %v, want ErrNotFound and ENODEV", err)
	}
	if !strings.Contains(err.Error(), "ifindex 1073741824") {
		t.Errorf("err = %v, does not name the ifindex", err)
	}
}

// The program passes the verifier and, with no socket registered, passes
// every frame to the kernel stack.
func TestProgramPassesWithoutSocket(t *testing.T) {
	testutils.RequirePrivileged(t)
	prog, xsks, err := redirect.Load(4)
	if err != nil {
		t.Fatal(err)
	}
	defer xsks.Close()
	defer prog.Close()

	if got := run(t, prog, make([]byte, 14), 0, 0); got != xdpPass {
		t.Errorf("14-byte frame, no context: action %d, want XDP_PASS", got)
	}

	// With a context naming a real interface and RX queue.
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 4})
	frame := testutils.UDPFrame(v.HostMAC, v.PeerMAC, v.PeerIP.As4(), v.HostIP.As4(), 1000, 2000, []byte("hello"))
	for q := range 4 {
		if got := run(t, prog, frame, v.HostIndex, q); got != xdpPass {
			t.Errorf("queue %d without socket: action %d, want XDP_PASS", q, got)
		}
	}

	// Queue 3 beyond a 2-entry XSKMAP is a missing key too.
	small, smallMap, err := redirect.Load(2)
	if err != nil {
		t.Fatal(err)
	}
	defer smallMap.Close()
	defer small.Close()
	if got := run(t, small, frame, v.HostIndex, 3); got != xdpPass {
		t.Errorf("queue beyond the XSKMAP: action %d, want XDP_PASS", got)
	}
}

// A filter inserted before the redirect decides first; falling through or
// jumping to the redirect label reaches bpf_redirect_map.
func TestFilterInsertionPoint(t *testing.T) {
	testutils.RequirePrivileged(t)
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 2})
	plain, xsks, err := redirect.Load(2)
	if err != nil {
		t.Fatal(err)
	}
	plain.Close() // only the map is used
	defer xsks.Close()
	// Drop queue 1, redirect the rest. R6 holds the context.
	filter := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R6, 16, asm.Word),
		asm.JNE.Imm(asm.R2, 1, redirect.RedirectSymbol),
		asm.Mov.Imm(asm.R0, xdpDrop),
		asm.Return(),
	}
	prog, err := redirect.LoadFiltered(filter, xsks)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	frame := make([]byte, 60)
	if got := run(t, prog, frame, v.HostIndex, 0); got != xdpPass {
		t.Errorf("queue 0: action %d, want XDP_PASS from the redirect", got)
	}
	if got := run(t, prog, frame, v.HostIndex, 1); got != xdpDrop {
		t.Errorf("queue 1: action %d, want XDP_DROP from the filter", got)
	}
}

func TestAttachModes(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 4})
	for _, tc := range []struct {
		mode     redirect.Mode
		want     redirect.Mode
		attached uint8
	}{
		{redirect.ModeDriver, redirect.ModeDriver, netlink.XDPAttachedDrv},
		{redirect.ModeGeneric, redirect.ModeGeneric, netlink.XDPAttachedSKB},
		{redirect.ModeAuto, redirect.ModeDriver, netlink.XDPAttachedDrv}, // veth has native XDP
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			p, err := redirect.Attach(v.HostIndex, &redirect.Options{Mode: tc.mode})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if p.Mode() != tc.want || p.Ifindex() != v.HostIndex || p.Queues() != 4 {
				t.Errorf("Mode %s Ifindex %d Queues %d, want %s %d 4", p.Mode(), p.Ifindex(), p.Queues(), tc.want, v.HostIndex)
			}
			if p.XDPProgram().Type() != ebpf.XDP || p.Map().Type() != ebpf.XSKMap || p.Map().MaxEntries() != 4 {
				t.Errorf("objects: program %v, map %v", p.XDPProgram(), p.Map())
			}
			wantAttached(t, v.HostIndex, p.XDPProgram(), tc.attached)

			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			wantDetached(t, v.HostIndex)
			if err := p.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if err := p.Unregister(0); !errors.Is(err, os.ErrClosed) {
				t.Errorf("Unregister after Close: %v, want os.ErrClosed", err)
			}
		})
	}

	var nilProgram *redirect.Program
	if err := nilProgram.Close(); err != nil {
		t.Errorf("nil Close: %v", err)
	}
}

func TestAttachQueues(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 2})
	p, err := redirect.Attach(v.HostIndex, &redirect.Options{Queues: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Queues() != 8 || p.Map().MaxEntries() != 8 {
		t.Errorf("Queues %d, map entries %d, want 8", p.Queues(), p.Map().MaxEntries())
	}
	if err := p.Unregister(7); err != nil {
		t.Errorf("Unregister(7): %v", err)
	}
}

// lo has no native XDP: ModeDriver fails with a hint, ModeAuto falls back.
// It runs inside the veth's namespace so the host's lo is never touched.
func TestAutoFallsBackToGeneric(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	v.InPeer(t, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		p, err := redirect.Attach(lo.Index, &redirect.Options{Mode: redirect.ModeDriver})
		if err == nil {
			p.Close()
			return errors.New("driver mode on lo succeeded")
		}
		if !errors.Is(err, unix.EOPNOTSUPP) || !strings.Contains(err.Error(), "ModeGeneric") {
			t.Errorf("driver mode on lo: %v, want EOPNOTSUPP with a ModeGeneric hint", err)
		}
		t.Log(err)

		p, err = redirect.Attach(lo.Index, nil)
		if err != nil {
			return err
		}
		defer p.Close()
		if p.Mode() != redirect.ModeGeneric {
			t.Errorf("ModeAuto on lo resolved to %s, want generic", p.Mode())
		}
		wantAttached(t, lo.Index, p.XDPProgram(), netlink.XDPAttachedSKB)
		if err := p.Close(); err != nil {
			return err
		}
		wantDetached(t, lo.Index)
		return nil
	})
}

func TestAlreadyAttached(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 2})

	// refuse checks that Attach in every mode is refused with
	// ErrAlreadyAttached naming the occupant, and that the occupant stays.
	refuse := func(t *testing.T, occupant *ebpf.Program, attached uint8) {
		t.Helper()
		id := progID(t, occupant)
		for _, mode := range []redirect.Mode{redirect.ModeAuto, redirect.ModeDriver, redirect.ModeGeneric} {
			p, err := redirect.Attach(v.HostIndex, &redirect.Options{Mode: mode})
			if err == nil {
				p.Close()
				t.Fatalf("%s: Attach over program %d succeeded", mode, id)
			}
			if !errors.Is(err, redirect.ErrAlreadyAttached) || !(errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EEXIST)) {
				t.Errorf("%s: err = %v, want ErrAlreadyAttached with EBUSY or EEXIST", mode, err)
			}
			if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("program %d ", id)) ||
				!strings.Contains(msg, v.Host) || !strings.Contains(msg, "redirect.Use") {
				t.Errorf("%s: err = %q, want the program id %d, the interface and a hint", mode, msg, id)
			}
			t.Logf("%s: %v", mode, err)
			wantAttached(t, v.HostIndex, occupant, attached)
		}
	}

	t.Run("redirect twice", func(t *testing.T) {
		first, err := redirect.Attach(v.HostIndex, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer first.Close()
		refuse(t, first.XDPProgram(), netlink.XDPAttachedDrv)
		if err := first.Close(); err != nil {
			t.Fatal(err)
		}
		wantDetached(t, v.HostIndex)
	})

	t.Run("foreign link", func(t *testing.T) {
		foreign := passProgram(t)
		l, err := link.AttachXDP(link.XDPOptions{Program: foreign, Interface: v.HostIndex, Flags: link.XDPGenericMode})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		refuse(t, foreign, netlink.XDPAttachedSKB)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		wantDetached(t, v.HostIndex)
	})

	t.Run("foreign netlink", func(t *testing.T) {
		foreign := passProgram(t)
		if err := setLinkXDPFD(v.HostIndex, foreign.FD(), unix.XDP_FLAGS_DRV_MODE|unix.XDP_FLAGS_UPDATE_IF_NOEXIST); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := setLinkXDPFD(v.HostIndex, -1, unix.XDP_FLAGS_DRV_MODE); err != nil {
				t.Errorf("detach foreign program: %v", err)
			}
			wantDetached(t, v.HostIndex)
		})
		refuse(t, foreign, netlink.XDPAttachedDrv)
		_, err := redirect.Attach(v.HostIndex, nil)
		if !strings.Contains(fmt.Sprint(err), "ip link set dev "+v.Host+" xdpdrv off") {
			t.Errorf("err = %v, want the ip link command for driver mode", err)
		}
	})
}

const helperEnv = "XDPKIT_REDIRECT_HELPER_IFINDEX"

// TestHelperProcess is the child of TestKilledProcessDetaches: it attaches
// to the ifindex in its environment, says so, and waits to be killed.
func TestHelperProcess(t *testing.T) {
	s := os.Getenv(helperEnv)
	if s == "" {
		t.Skip("helper process for TestKilledProcessDetaches")
	}
	ifindex, err := strconv.Atoi(s)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	p, err := redirect.Attach(ifindex, &redirect.Options{Mode: redirect.ModeDriver})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	info, err := p.XDPProgram().Info()
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	id, _ := info.ID()
	fmt.Println("attached", id)
	time.Sleep(time.Minute) // the parent kills us long before
	os.Exit(3)
}

func TestKilledProcessDetaches(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), helperEnv+"="+strconv.Itoa(v.HostIndex))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Error("helper process did not exit after SIGKILL")
		}
	})

	var id uint32
	timeout := time.After(20 * time.Second)
wait:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("helper exited before attaching; stderr: %s", stderr.String())
			}
			if n, found := strings.CutPrefix(line, "attached "); found {
				x, err := strconv.ParseUint(n, 10, 32)
				if err != nil {
					t.Fatalf("helper said %q", line)
				}
				id = uint32(x)
				break wait
			}
			if strings.HasPrefix(line, "error:") {
				t.Fatalf("helper: %s", line)
			}
		case <-timeout:
			t.Fatalf("helper did not attach within 20s; stderr: %s", stderr.String())
		}
	}

	if got := xdpInfo(t, v.HostIndex); got.DrvProgID != id {
		t.Fatalf("while the helper runs: XDP = %s, want driver prog %d", got, id)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitDetached(t, v.HostIndex, 5*time.Second)
}

func TestRegisterErrors(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 2})
	p, err := redirect.Attach(v.HostIndex, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pipe[0])
	defer unix.Close(pipe[1])
	udp, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(udp)
	xsk, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(xsk)

	for _, tc := range []struct {
		name      string
		queue, fd int
		errno     unix.Errno
		text      string
	}{
		{"queue too high", 2, udp, unix.EINVAL, "queue out of range"},
		{"negative queue", -1, udp, unix.EINVAL, "queue out of range"},
		{"negative fd", 0, -1, unix.EBADF, "invalid socket fd"},
		{"closed fd", 0, 1 << 30, unix.EBADF, "not open"},
		{"pipe", 0, pipe[0], unix.ENOTSOCK, "not a socket"},
		{"UDP socket", 1, udp, unix.EOPNOTSUPP, "not an AF_XDP socket"},
	} {
		err := p.Register(tc.queue, tc.fd)
		if !errors.Is(err, tc.errno) || !strings.Contains(fmt.Sprint(err), tc.text) {
			t.Errorf("%s: Register(%d, %d) = %v, want %v and %q", tc.name, tc.queue, tc.fd, err, tc.errno, tc.text)
		}
		t.Logf("%s: %v", tc.name, err)
	}

	if err := p.Unregister(1); err != nil {
		t.Errorf("Unregister of an empty entry: %v", err)
	}

	// Older kernels refuse an AF_XDP socket that is not bound yet; newer
	// ones (6.x) accept it, which lets us check that the program really
	// redirects by RX queue.
	frame := make([]byte, 60)
	switch err := p.Register(1, xsk); {
	case errors.Is(err, unix.EOPNOTSUPP) && strings.Contains(err.Error(), "not bound yet"):
		t.Logf("unbound AF_XDP socket refused: %v", err)
	case err != nil:
		t.Errorf("Register(1) of an unbound AF_XDP socket: %v, want nil or EOPNOTSUPP", err)
	default:
		t.Log("unbound AF_XDP socket accepted: checking that queue 1 is redirected")
		if got := run(t, p.XDPProgram(), frame, v.HostIndex, 1); got != xdpRedirect {
			t.Errorf("queue 1 with a socket: action %d, want XDP_REDIRECT", got)
		}
		if got := run(t, p.XDPProgram(), frame, v.HostIndex, 0); got != xdpPass {
			t.Errorf("queue 0 without a socket: action %d, want XDP_PASS", got)
		}
		if err := p.Unregister(1); err != nil {
			t.Errorf("Unregister(1): %v", err)
		}
		if got := run(t, p.XDPProgram(), frame, v.HostIndex, 1); got != xdpPass {
			t.Errorf("queue 1 after Unregister: action %d, want XDP_PASS", got)
		}
	}
	if err := p.Unregister(2); !errors.Is(err, unix.EINVAL) {
		t.Errorf("Unregister(2) = %v, want EINVAL", err)
	}
	p.Close()
	if err := p.Register(0, xsk); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Register after Close = %v, want os.ErrClosed", err)
	}
}

func TestAttachProgram(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 2})
	prog, xsks := userProgram(t, 3)

	p, err := redirect.AttachProgram(v.HostIndex, prog, xsks, &redirect.Options{Mode: redirect.ModeGeneric})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.XDPProgram() != prog || p.Map() != xsks || p.Queues() != 3 || p.Mode() != redirect.ModeGeneric || p.Ifindex() != v.HostIndex {
		t.Errorf("Program reports %v %v queues %d mode %s ifindex %d", p.XDPProgram(), p.Map(), p.Queues(), p.Mode(), p.Ifindex())
	}
	wantAttached(t, v.HostIndex, prog, netlink.XDPAttachedSKB)
	if err := p.Unregister(2); err != nil {
		t.Errorf("Unregister(2): %v", err)
	}
	if err := p.Register(3, 0); !errors.Is(err, unix.EINVAL) {
		t.Errorf("Register(3) on a 3-entry map = %v, want EINVAL", err)
	}

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	wantDetached(t, v.HostIndex)

	// The user's objects are still open: attach them again by hand.
	if _, err := xsks.Info(); err != nil {
		t.Errorf("XSKMAP closed by Close: %v", err)
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: v.HostIndex})
	if err != nil {
		t.Fatalf("program unusable after Close: %v", err)
	}
	defer l.Close()

	// Use: the caller owns the attachment, Close leaves it.
	u, err := redirect.Use(prog, xsks)
	if err != nil {
		t.Fatal(err)
	}
	if u.Queues() != 3 || u.Ifindex() != 0 || u.Mode() != redirect.ModeAuto {
		t.Errorf("Use: queues %d ifindex %d mode %s, want 3 0 auto", u.Queues(), u.Ifindex(), u.Mode())
	}
	if err := u.Unregister(0); err != nil {
		t.Errorf("Use: Unregister(0): %v", err)
	}
	if err := u.Register(0, -1); !errors.Is(err, unix.EBADF) {
		t.Errorf("Use: Register(0, -1) = %v, want EBADF", err)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	wantAttached(t, v.HostIndex, prog, netlink.XDPAttachedDrv)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wantDetached(t, v.HostIndex)
}

func TestAttachProgramInvalid(t *testing.T) {
	testutils.RequirePrivileged(t)
	prog, xsks := userProgram(t, 2)
	filter, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.SocketFilter, License: "MIT",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer filter.Close()
	array, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer array.Close()

	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skip(err)
	}
	for _, tc := range []struct {
		name string
		prog *ebpf.Program
		xsks *ebpf.Map
		opts *redirect.Options
		want string
	}{
		{"nil program", nil, xsks, nil, "nil program"},
		{"socket filter", filter, xsks, nil, "want XDP"},
		{"nil map", prog, nil, nil, "nil XSKMAP"},
		{"array map", prog, array, nil, "want XSKMap"},
		{"queues mismatch", prog, xsks, &redirect.Options{Queues: 4}, "does not match"},
	} {
		p, err := redirect.AttachProgram(lo.Index, tc.prog, tc.xsks, tc.opts)
		if err == nil {
			p.Close()
			t.Fatalf("%s: AttachProgram succeeded", tc.name)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
		if tc.opts == nil {
			if _, err := redirect.Use(tc.prog, tc.xsks); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: Use: err = %v, want %q", tc.name, err, tc.want)
			}
		}
	}
	wantDetached(t, lo.Index)
}

// Without CAP_BPF and CAP_NET_ADMIN, Attach says which capabilities it
// needs. The capabilities are dropped on one locked OS thread only, which
// exits with its goroutine.
func TestPermissionDenied(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	// Run cilium/ebpf's feature probes with privileges first.
	p, err := redirect.Attach(v.HostIndex, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()

	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			errc <- fmt.Errorf("capget: %w", err)
			return
		}
		data[0].Effective, data[1].Effective = 0, 0
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			errc <- fmt.Errorf("capset: %w", err)
			return
		}
		p, err := redirect.Attach(v.HostIndex, nil)
		if err == nil {
			p.Close()
			err = errors.New("Attach without capabilities succeeded")
		}
		errc <- err
	}()
	err = <-errc
	if !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), "CAP_BPF and CAP_NET_ADMIN") {
		t.Fatalf("err = %v, want a permission error naming CAP_BPF and CAP_NET_ADMIN", err)
	}
	t.Log(err)
	wantDetached(t, v.HostIndex)
}
