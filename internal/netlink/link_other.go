//go:build !linux

package netlink

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
)

// LinkByIndex is only implemented on Linux.
func LinkByIndex(ifindex int) (Link, error) {
	return Link{}, fmt.Errorf("netlink: not supported on %s/%s: %w", runtime.GOOS, runtime.GOARCH, errors.ErrUnsupported)
}

// LinkByName is only implemented on Linux.
func LinkByName(name string) (Link, error) {
	return Link{}, fmt.Errorf("netlink: not supported on %s/%s: %w", runtime.GOOS, runtime.GOARCH, errors.ErrUnsupported)
}

// LinkByIndexIn is only implemented on Linux.
func LinkByIndexIn(nsid int32, ifindex int) (Link, error) {
	return Link{}, fmt.Errorf("netlink: not supported on %s/%s: %w", runtime.GOOS, runtime.GOARCH, errors.ErrUnsupported)
}

// Neighbor is only implemented on Linux.
func Neighbor(ifindex int, ip netip.Addr) (net.HardwareAddr, error) {
	return nil, fmt.Errorf("netlink: not supported on %s/%s: %w", runtime.GOOS, runtime.GOARCH, errors.ErrUnsupported)
}
