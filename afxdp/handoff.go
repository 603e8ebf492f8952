package afxdp

import (
	"net"
	"time"
)

// NewSocketFD makes an AF_XDP socket for another process to set up and
// use (Config.SocketFD): the privileged half of a hand-off, which needs
// CAP_NET_RAW. The caller owns the fd; send it with SendSocket and close
// it. A process that makes sockets for less privileged ones (a helper, a
// device plugin) needs nothing else from this package.
func NewSocketFD() (int, error) { return newSocketFD() }

// SendSocket sends fd (an AF_XDP socket, from NewSocketFD) over a unix
// socket, as SCM_RIGHTS: the receiver gets its own fd for the same
// socket. fd stays the caller's.
func SendSocket(conn *net.UnixConn, fd int) error { return sendSocket(conn, fd) }

// ReceiveSocket receives one AF_XDP socket SendSocket sent, within
// timeout (0: no limit), and returns its fd for Config.SocketFD. A
// message without an fd, or with one that is not an AF_XDP socket, is
// an error wrapping ErrInvalidConfig (the fd is closed then).
func ReceiveSocket(conn *net.UnixConn, timeout time.Duration) (int, error) {
	return receiveSocket(conn, timeout)
}
