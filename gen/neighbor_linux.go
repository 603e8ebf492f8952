package gen

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	xnl "github.com/xdpkit/xdpkit/internal/netlink"
)

// ErrNoNeighbor means the kernel could not resolve a destination's
// link-layer address.
var ErrNoNeighbor = errors.New("gen: no neighbour entry")

// ResolveMAC returns the MAC address the kernel's neighbour table holds
// for ip on ifc. When it holds none yet, it makes the kernel resolve it
// (one UDP datagram to ip's discard port through the kernel's own stack,
// which sends the ARP request or neighbour solicitation) and waits up to
// timeout for the answer. ip must be on ifc's link: for a destination
// behind a router, pass the router's address.
func ResolveMAC(ifc *net.Interface, ip netip.Addr, timeout time.Duration) (net.HardwareAddr, error) {
	if mac, err := xnl.Neighbor(ifc.Index, ip); err == nil {
		return mac, nil
	}
	d := net.Dialer{Timeout: timeout}
	if c, err := d.Dial("udp", netip.AddrPortFrom(ip, 9).String()); err == nil {
		_, _ = c.Write([]byte{0})
		c.Close()
	}
	for deadline := time.Now().Add(timeout); ; {
		if mac, err := xnl.Neighbor(ifc.Index, ip); err == nil {
			return mac, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w for %s on %s after %v: is it on that link and up? (ip neigh show dev %s; or give the MAC)", ErrNoNeighbor, ip, ifc.Name, timeout, ifc.Name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
