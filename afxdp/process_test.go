//go:build linux

package afxdp_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/internal/netlink"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/redirect"
)

// The tests below re-run this test binary as a child process; the child
// runs TestHelperProcess, which does what XDPKIT_HELPER says.
const helperEnv = "XDPKIT_HELPER"

func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("only runs as a child of another test")
	}
	ifname := os.Getenv("XDPKIT_IFNAME")
	switch mode {
	case "hold":
		s, err := afxdp.Open(ifname, 0, nil)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("ready")
		time.Sleep(30 * time.Second) // the parent kills us long before
		_ = s.Close()
	case "open":
		_, err := afxdp.Open(ifname, 0, nil)
		fmt.Printf("permission=%v\nerror: %v\n", errors.Is(err, afxdp.ErrPermission), err)
	case "handoff", "inherit":
		// A process without CAP_NET_RAW (or any other but IPC_LOCK): its
		// AF_XDP socket comes from its parent, over the unix socket on fd
		// 3 (handoff) or as fd 3 itself (inherit); the XSKMAP as fd 4.
		fd := 3
		if mode == "handoff" {
			c, err := net.FileConn(os.NewFile(3, "handoff"))
			if err != nil {
				fmt.Println("error:", err)
				os.Exit(1)
			}
			if fd, err = afxdp.ReceiveSocket(c.(*net.UnixConn), 5*time.Second); err != nil {
				fmt.Println("error:", err)
				os.Exit(1)
			}
			c.Close()
		}
		xsks, err := redirect.XSKMapFromFD(4)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		s, err := afxdp.Open(ifname, 0, &afxdp.Config{SocketFD: fd, Steering: xsks})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("ready")
		descs := make([]afxdp.Desc, 64)
		got := 0
		for deadline := time.Now().Add(10 * time.Second); got < 50 && time.Now().Before(deadline); {
			_ = s.Wait(100 * time.Millisecond)
			n, _ := s.Receive(descs)
			got += n
			_ = s.Release(descs[:n])
		}
		fmt.Printf("received=%d\n", got)
		_ = s.Close()
	case "memlock":
		lim := unix.Rlimit{Cur: 64 << 10, Max: 64 << 10}
		if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &lim); err != nil {
			fmt.Println("setrlimit:", err)
		}
		_, err := afxdp.Open(ifname, 0, &afxdp.Config{Steering: afxdp.NoSteering})
		fmt.Printf("error: %v\n", err)
	}
	os.Exit(0)
}

// helperCommand returns the command that runs TestHelperProcess. The
// binary is copied to a world-readable directory so an unprivileged child
// can execute it.
func helperCommand(t *testing.T, mode, ifname string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "xdpkit-helper-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "helper.test")
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "XDPKIT_IFNAME="+ifname)
	cmd.Dir = dir
	return cmd
}

func runHelper(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatal("helper process timed out")
	}
	if err != nil {
		t.Logf("helper exit: %v", err)
	}
	return string(out)
}

// TestProgramGoneAfterKill opens a socket in a child process, kills it with
// SIGKILL, and checks the kernel detached the XDP program (it is attached
// through a BPF link owned by the process) and that a new socket gets the
// queue, as a restarted process would.
func TestProgramGoneAfterKill(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	cmd := helperCommand(t, "hold", v.Host)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-lines:
		if strings.TrimSpace(line) != "ready" {
			t.Fatalf("child: %q", line)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("child did not open the socket within 20s")
	}
	if l, _ := netlink.LinkByIndex(v.HostIndex); !l.XDP.IsAttached() {
		t.Fatal("child's program not attached")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := netlink.LinkByIndex(v.HostIndex)
		if err != nil {
			t.Fatal(err)
		}
		if !l.XDP.IsAttached() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("XDP program still attached 5s after the owner was killed: %+v", l.XDP)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The restarted process gets the queue back, and traffic with it.
	s := openHost(t, v, 0, nil)
	peer := v.OpenPeerPacketSocket(t)
	if err := peer.Send(testFrame(v, 7, 1000, 100)); err != nil {
		t.Fatal(err)
	}
	got := false
	receiveUntil(t, s, 5*time.Second, func() bool { return got }, func(seq uint32, _ []byte) { got = seq == 7 })
}

// TestUnprivileged runs Open as user nobody: it must fail with
// ErrPermission and say which privileges are missing.
func TestUnprivileged(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	cmd := helperCommand(t, "open", v.Host)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out := runHelper(t, cmd)
	t.Log(out)
	if !strings.Contains(out, "permission=true") || !strings.Contains(out, "CAP_BPF") {
		t.Errorf("unprivileged Open did not report missing privileges:\n%s", out)
	}
}

// TestMemlockLimit registers a UMEM with AF_XDP privileges but without
// CAP_IPC_LOCK and a tiny RLIMIT_MEMLOCK: the error must say how to raise
// the limit.
func TestMemlockLimit(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	cmd := helperCommand(t, "memlock", v.Host)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential:  &syscall.Credential{Uid: 65534, Gid: 65534},
		AmbientCaps: []uintptr{unix.CAP_NET_RAW, unix.CAP_NET_ADMIN},
	}
	out := runHelper(t, cmd)
	t.Log(out)
	if !strings.Contains(out, "RLIMIT_MEMLOCK") || !strings.Contains(out, "register") {
		t.Errorf("memlock failure not explained:\n%s", out)
	}
}

// TestSocketHandOff: the parent (with CAP_NET_RAW) makes AF_XDP sockets
// and attaches the program; a child running as nobody with only
// CAP_IPC_LOCK gets a socket over a unix socket (SCM_RIGHTS) or inherits
// it, and the XSKMAP as an inherited fd, then binds the socket to the
// queue and receives the queue's traffic. Without a socket handed over
// it could not make one.
func TestSocketHandOff(t *testing.T) {
	for _, mode := range []string{"handoff", "inherit"} {
		t.Run(mode, func(t *testing.T) {
			v := testutils.NewVeth(t, testutils.VethOptions{})
			prog, err := redirect.Attach(v.HostIndex, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer prog.Close()
			xsk, err := afxdp.NewSocketFD()
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(xsk)
			mapFD, err := unix.Dup(prog.Map().FD())
			if err != nil {
				t.Fatal(err)
			}
			mapFile := os.NewFile(uintptr(mapFD), "xsks")
			defer mapFile.Close()

			cmd := helperCommand(t, mode, v.Host)
			cmd.SysProcAttr = &syscall.SysProcAttr{
				Credential:  &syscall.Credential{Uid: 65534, Gid: 65534},
				AmbientCaps: []uintptr{unix.CAP_IPC_LOCK},
			}
			var parentEnd *net.UnixConn
			if mode == "handoff" {
				pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					t.Fatal(err)
				}
				childFile := os.NewFile(uintptr(pair[1]), "child")
				defer childFile.Close()
				pf := os.NewFile(uintptr(pair[0]), "parent")
				c, err := net.FileConn(pf)
				pf.Close()
				if err != nil {
					t.Fatal(err)
				}
				parentEnd = c.(*net.UnixConn)
				defer parentEnd.Close()
				cmd.ExtraFiles = []*os.File{childFile, mapFile}
			} else {
				xf, err := unix.Dup(xsk)
				if err != nil {
					t.Fatal(err)
				}
				xskFile := os.NewFile(uintptr(xf), "xsk")
				defer xskFile.Close()
				cmd.ExtraFiles = []*os.File{xskFile, mapFile}
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				select {
				case <-done:
				case <-time.After(5 * time.Second):
				}
			})
			if parentEnd != nil {
				if err := afxdp.SendSocket(parentEnd, xsk); err != nil {
					t.Fatal(err)
				}
			}
			lines := bufio.NewScanner(stdout)
			ready := make(chan string, 1)
			go func() {
				var all []string
				for lines.Scan() {
					all = append(all, lines.Text())
					if lines.Text() == "ready" {
						ready <- "ready"
					}
				}
				ready <- strings.Join(all, "\n")
			}()
			select {
			case l := <-ready:
				if l != "ready" {
					t.Fatalf("child: %s", l)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("the child did not get ready in 15 s")
			}
			peer := v.OpenPeerPacketSocket(t)
			frame := testutils.UDPFrame(v.HostMAC, v.PeerMAC, v.PeerIP.As4(), v.HostIP.As4(), 5000, 7000, []byte("handed over"))
			for range 50 {
				if err := peer.Send(frame); err != nil {
					t.Fatal(err)
				}
			}
			var out string
			select {
			case out = <-ready:
			case <-time.After(15 * time.Second):
				t.Fatal("the child did not end in 15 s")
			}
			if !strings.Contains(out, "received=50") {
				t.Errorf("child output:\n%s\nwant received=50", out)
			}
		})
	}
}
