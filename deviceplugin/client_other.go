//go:build !unix

package deviceplugin

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"time"
)

// DefaultDir is where the plugin puts each interface's socket and pinned
// map, as DPDK's dp_path assumes.
const DefaultDir = "/tmp/afxdp_dp"

// DefaultTimeout bounds each request and its answer.
const DefaultTimeout = 5 * time.Second

// ProtocolVersion is the handshake version this package speaks.
const ProtocolVersion = "0.1"

// SocketPath is the plugin's unix socket for netdev under dir.
func SocketPath(dir, netdev string) string { return filepath.Join(dir, netdev, "afxdp.sock") }

// PinnedMapPath is the plugin's pinned XSKMAP for netdev under dir.
func PinnedMapPath(dir, netdev string) string { return filepath.Join(dir, netdev, "xsks_map") }

// The plugin's refusals; match them with errors.Is.
var (
	ErrHostRejected = errors.New("the device plugin does not know this pod (/host_nak)")
	ErrNoDevice     = errors.New("the device plugin has no such device for this pod (/fd_nak)")
	ErrBadRequest   = errors.New("the device plugin did not understand the request (/nak)")
	ErrPlugin       = errors.New("the device plugin failed (/error)")
	ErrBusyPoll     = errors.New("the device plugin could not set busy polling (/config_busy_poll_nak)")
	ErrProtocol     = errors.New("unexpected answer from the device plugin")
)

func errPlatform() error {
	return fmt.Errorf("deviceplugin: not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}

// Client is a connection to the plugin's socket.
type Client struct{}

// Dial is only implemented on Unix.
func Dial(path string, timeout time.Duration) (*Client, error) { return nil, errPlatform() }

// Connect is only implemented on Unix.
func (c *Client) Connect(hostname string) error { return errPlatform() }

// Version is only implemented on Unix.
func (c *Client) Version() (string, error) { return "", errPlatform() }

// XSKMapFD is only implemented on Unix.
func (c *Client) XSKMapFD(netdev string) (int, error) { return -1, errPlatform() }

// ConfigBusyPoll is only implemented on Unix.
func (c *Client) ConfigBusyPoll(sockFD, timeoutUS, budget int) error { return errPlatform() }

// Close is only implemented on Unix.
func (c *Client) Close() error { return errPlatform() }

// XSKMapFD is only implemented on Unix.
func XSKMapFD(dir, netdev string, timeout time.Duration) (int, error) { return -1, errPlatform() }
