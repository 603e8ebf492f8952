package afxdp

import (
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/sys"
	"github.com/xdpkit/xdpkit/internal/xsk"
)

// handoffMsg is the payload a socket travels with, so that a receiver
// reading anything else says so.
const handoffMsg = "xdpkit-xsk"

func newSocketFD() (int, error) {
	fd, err := sys.Socket()
	if err != nil {
		return -1, fmt.Errorf("afxdp: make a socket to hand over: %w", xsk.SocketError(err))
	}
	return fd, nil
}

func sendSocket(conn *net.UnixConn, fd int) error {
	if _, _, err := conn.WriteMsgUnix([]byte(handoffMsg), unix.UnixRights(fd), nil); err != nil {
		return fmt.Errorf("afxdp: send socket fd %d: %w", fd, err)
	}
	return nil
}

func receiveSocket(conn *net.UnixConn, timeout time.Duration) (int, error) {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	if err := conn.SetReadDeadline(deadline); err != nil {
		return -1, fmt.Errorf("afxdp: receive a socket: %w", err)
	}
	buf, oob := make([]byte, 64), make([]byte, unix.CmsgSpace(4*4))
	n, oobn, flags, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return -1, fmt.Errorf("afxdp: receive a socket: none within %v: %w", timeout, ErrTimeout)
		}
		return -1, fmt.Errorf("afxdp: receive a socket: %w", err)
	}
	var fds []int
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, m := range msgs {
			if got, err := unix.ParseUnixRights(&m); err == nil {
				fds = append(fds, got...)
			}
		}
	}
	closeAll := func() {
		for _, f := range fds {
			_ = unix.Close(f)
		}
	}
	switch {
	case flags&unix.MSG_CTRUNC != 0 || len(fds) > 1:
		closeAll()
		return -1, fmt.Errorf("afxdp: receive a socket: more than one fd came: %w", ErrInvalidConfig)
	case len(fds) == 0:
		return -1, fmt.Errorf("afxdp: receive a socket: a message of %d bytes without an fd: %w", n, ErrInvalidConfig)
	case string(buf[:n]) != handoffMsg:
		closeAll()
		return -1, fmt.Errorf("afxdp: receive a socket: unexpected message %q: %w", buf[:n], ErrInvalidConfig)
	}
	if err := sys.AdoptSocket(fds[0]); err != nil {
		closeAll()
		return -1, fmt.Errorf("afxdp: receive a socket: %w: %w", ErrInvalidConfig, err)
	}
	return fds[0], nil
}
