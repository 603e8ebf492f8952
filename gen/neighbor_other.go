//go:build !linux

package gen

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"time"
)

// ErrNoNeighbor means the kernel could not resolve a destination's
// link-layer address.
var ErrNoNeighbor = errors.New("gen: no neighbour entry")

// ResolveMAC is only implemented on Linux.
func ResolveMAC(ifc *net.Interface, ip netip.Addr, timeout time.Duration) (net.HardwareAddr, error) {
	return nil, fmt.Errorf("gen: resolve %s: not supported on %s: %w", ip, runtime.GOOS, errors.ErrUnsupported)
}
