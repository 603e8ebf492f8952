//go:build linux

package afxdp_test

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/internal/testutils"
)

func unixPair(t *testing.T) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "pair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.(*net.UnixConn)
	}
	return conn(fds[0]), conn(fds[1])
}

// What is not an AF_XDP socket is refused, and closed.
func TestHandOffRefusals(t *testing.T) {
	testutils.RequirePrivileged(t)
	a, b := unixPair(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if err := afxdp.SendSocket(a, int(r.Fd())); err != nil {
		t.Fatal(err)
	}
	if _, err := afxdp.ReceiveSocket(b, time.Second); !errors.Is(err, afxdp.ErrInvalidConfig) {
		t.Errorf("a pipe handed over: %v, want ErrInvalidConfig", err)
	}
	if _, err := a.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := afxdp.ReceiveSocket(b, time.Second); !errors.Is(err, afxdp.ErrInvalidConfig) {
		t.Errorf("a message without an fd: %v, want ErrInvalidConfig", err)
	}
	if _, err := afxdp.ReceiveSocket(b, 50*time.Millisecond); !errors.Is(err, afxdp.ErrTimeout) {
		t.Errorf("nothing sent: %v, want ErrTimeout", err)
	}

	v := testutils.NewVeth(t, testutils.VethOptions{})
	udp, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = afxdp.Open(v.Host, 0, &afxdp.Config{SocketFD: udp, Steering: afxdp.NoSteering})
	if !errors.Is(err, afxdp.ErrInvalidConfig) {
		t.Errorf("Open with a UDP socket as SocketFD: %v, want ErrInvalidConfig", err)
	}
	if _, err := unix.FcntlInt(uintptr(udp), unix.F_GETFD, 0); !errors.Is(err, unix.EBADF) {
		t.Errorf("the refused fd is still open (%v): Open owns it", err)
		unix.Close(udp)
	}
}
