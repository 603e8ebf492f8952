//go:build unix

package deviceplugin

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultDir is where the plugin puts each interface's socket and pinned
// map, as DPDK's dp_path assumes.
const DefaultDir = "/tmp/afxdp_dp"

// DefaultTimeout bounds each request and its answer.
const DefaultTimeout = 5 * time.Second

// SocketPath is the plugin's unix socket for netdev under dir.
func SocketPath(dir, netdev string) string { return filepath.Join(dir, netdev, "afxdp.sock") }

// PinnedMapPath is the plugin's pinned XSKMAP for netdev under dir.
func PinnedMapPath(dir, netdev string) string { return filepath.Join(dir, netdev, "xsks_map") }

// ProtocolVersion is the handshake version this package speaks.
const ProtocolVersion = "0.1"

// The plugin's refusals; match them with errors.Is.
var (
	ErrHostRejected = errors.New("the device plugin does not know this pod (/host_nak)")
	ErrNoDevice     = errors.New("the device plugin has no such device for this pod (/fd_nak)")
	ErrBadRequest   = errors.New("the device plugin did not understand the request (/nak)")
	ErrPlugin       = errors.New("the device plugin failed (/error)")
	ErrBusyPoll     = errors.New("the device plugin could not set busy polling (/config_busy_poll_nak)")
	ErrProtocol     = errors.New("unexpected answer from the device plugin")
)

// Client is a connection to the plugin's socket.
type Client struct {
	conn    *net.UnixConn
	path    string
	timeout time.Duration
	broken  bool // a request failed: the exchange cannot go on
}

// Dial connects to the plugin's socket at path (SocketPath). timeout
// bounds every request and answer (0: DefaultTimeout).
func Dial(path string, timeout time.Duration) (*Client, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	d := net.Dialer{Timeout: timeout}
	c, err := d.Dial("unixpacket", path)
	if err != nil {
		hint := ""
		if errors.Is(err, os.ErrNotExist) {
			hint = " (is the device plugin's directory mounted in the pod? it puts one socket per interface there)"
		}
		return nil, fmt.Errorf("deviceplugin: connect to %s: %w%s", path, err, hint)
	}
	return &Client{conn: c.(*net.UnixConn), path: path, timeout: timeout}, nil
}

// request sends req, with fd attached when fd >= 0, and returns the
// answer and the fd attached to it (-1: none).
func (c *Client) request(req string, fd int) (string, int, error) {
	wrap := func(err error) error {
		c.broken = true
		return fmt.Errorf("deviceplugin: %s: %q: %w", c.path, req, err)
	}
	if err := c.conn.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return "", -1, wrap(err)
	}
	var oob []byte
	if fd >= 0 {
		oob = syscall.UnixRights(fd)
	}
	if _, _, err := c.conn.WriteMsgUnix([]byte(req), oob, nil); err != nil {
		return "", -1, wrap(err)
	}
	buf := make([]byte, 128)
	oobBuf := make([]byte, syscall.CmsgSpace(4*2))
	n, oobn, flags, _, err := c.conn.ReadMsgUnix(buf, oobBuf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return "", -1, wrap(fmt.Errorf("no answer within %v: %w", c.timeout, os.ErrDeadlineExceeded))
		}
		if errors.Is(err, io.EOF) {
			return "", -1, wrap(fmt.Errorf("the device plugin closed the connection: %w", err))
		}
		return "", -1, wrap(err)
	}
	got := -1
	if oobn > 0 {
		msgs, err := syscall.ParseSocketControlMessage(oobBuf[:oobn])
		if err != nil {
			return "", -1, wrap(err)
		}
		for _, m := range msgs {
			fds, err := syscall.ParseUnixRights(&m)
			if err != nil {
				continue
			}
			for _, f := range fds {
				if got < 0 {
					got = f
					syscall.CloseOnExec(f)
				} else {
					syscall.Close(f) // only one is expected
				}
			}
		}
	}
	if flags&syscall.MSG_CTRUNC != 0 {
		closeFD(got)
		return "", -1, wrap(fmt.Errorf("%w: more file descriptors than asked for", ErrProtocol))
	}
	if n == 0 {
		closeFD(got)
		return "", -1, wrap(errors.New("the device plugin closed the connection"))
	}
	return strings.TrimRight(string(buf[:n]), "\x00"), got, nil
}

func closeFD(fd int) {
	if fd >= 0 {
		syscall.Close(fd)
	}
}

// refusal maps the plugin's generic refusals to errors.
func refusal(resp string) error {
	switch resp {
	case "/nak":
		return ErrBadRequest
	case "/error":
		return ErrPlugin
	}
	return fmt.Errorf("%w %q", ErrProtocol, resp)
}

// Connect introduces the pod: hostname is the pod's name as the plugin
// knows it (os.Hostname in the pod).
func (c *Client) Connect(hostname string) error {
	resp, fd, err := c.request("/connect,"+hostname, -1)
	closeFD(fd)
	if err != nil {
		return err
	}
	switch resp {
	case "/host_ok":
		return nil
	case "/host_nak":
		return fmt.Errorf("deviceplugin: /connect,%s: %w", hostname, ErrHostRejected)
	}
	return fmt.Errorf("deviceplugin: /connect,%s: %w", hostname, refusal(resp))
}

// Version asks the plugin's handshake version.
func (c *Client) Version() (string, error) {
	resp, fd, err := c.request("/version", -1)
	closeFD(fd)
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(resp, "/") {
		return "", fmt.Errorf("deviceplugin: /version: %w", refusal(resp))
	}
	return resp, nil
}

// XSKMapFD asks for netdev's XSKMAP and returns its fd, which the caller
// owns (ebpf.NewMapFromFD takes it).
func (c *Client) XSKMapFD(netdev string) (int, error) {
	req := "/xsk_map_fd," + netdev
	resp, fd, err := c.request(req, -1)
	if err != nil {
		return -1, err
	}
	switch {
	case resp == "/fd_ack" && fd >= 0:
		return fd, nil
	case resp == "/fd_ack":
		return -1, fmt.Errorf("deviceplugin: %s: %w: /fd_ack without a file descriptor", req, ErrProtocol)
	case resp == "/fd_nak":
		closeFD(fd)
		return -1, fmt.Errorf("deviceplugin: %s: %w", req, ErrNoDevice)
	}
	closeFD(fd)
	return -1, fmt.Errorf("deviceplugin: %s: %w", req, refusal(resp))
}

// ConfigBusyPoll asks the plugin to set busy polling on the AF_XDP socket
// sockFD (SO_PREFER_BUSY_POLL, SO_BUSY_POLL timeout in µs,
// SO_BUSY_POLL_BUDGET budget): options a pod without CAP_NET_ADMIN
// cannot set itself.
func (c *Client) ConfigBusyPoll(sockFD, timeoutUS, budget int) error {
	req := "/config_busy_poll," + strconv.Itoa(timeoutUS) + "," + strconv.Itoa(budget)
	resp, fd, err := c.request(req, sockFD)
	closeFD(fd)
	if err != nil {
		return err
	}
	switch resp {
	case "/config_busy_poll_ack":
		return nil
	case "/config_busy_poll_nak":
		return fmt.Errorf("deviceplugin: %s: %w", req, ErrBusyPoll)
	}
	return fmt.Errorf("deviceplugin: %s: %w", req, refusal(resp))
}

// Close ends the exchange (/fin → /fin_ack) and the connection. The
// connection is closed even when the plugin does not answer; after a
// request failed, Close only closes it.
func (c *Client) Close() error {
	if c.broken {
		return c.conn.Close()
	}
	resp, fd, err := c.request("/fin", -1)
	closeFD(fd)
	cerr := c.conn.Close()
	if err != nil {
		return err
	}
	if resp != "/fin_ack" {
		return fmt.Errorf("deviceplugin: /fin: %w", refusal(resp))
	}
	return cerr
}

// XSKMapFD does the whole exchange DPDK does: connect as this host's
// name, check the version, get netdev's XSKMAP fd, and finish.
func XSKMapFD(dir, netdev string, timeout time.Duration) (int, error) {
	host, err := os.Hostname()
	if err != nil {
		return -1, fmt.Errorf("deviceplugin: hostname: %w", err)
	}
	c, err := Dial(SocketPath(dir, netdev), timeout)
	if err != nil {
		return -1, err
	}
	fail := func(err error) (int, error) {
		c.conn.Close()
		return -1, err
	}
	if err := c.Connect(host); err != nil {
		return fail(err)
	}
	v, err := c.Version()
	if err != nil {
		return fail(err)
	}
	if v != ProtocolVersion {
		return fail(fmt.Errorf("deviceplugin: %s speaks handshake version %q, this package %q: %w", c.path, v, ProtocolVersion, ErrProtocol))
	}
	fd, err := c.XSKMapFD(netdev)
	if err != nil {
		return fail(err)
	}
	if err := c.Close(); err != nil {
		closeFD(fd)
		return -1, err
	}
	return fd, nil
}
