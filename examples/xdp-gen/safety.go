package main

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/xdpkit/xdpkit/gen"
)

// resolve finds the destination's MAC in the kernel's neighbour table,
// asking the kernel to resolve it if needed.
func resolve(ifc *net.Interface, ip netip.Addr) (net.HardwareAddr, error) {
	mac, err := gen.ResolveMAC(ifc, ip, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("-dst-mac: %w", err)
	}
	return mac, nil
}

// safeToFlood refuses an interface that carries the default route or the
// SSH session this runs in: flooding it cuts the host (and the user) off.
func safeToFlood(ifname string, force bool) error {
	if force {
		return nil
	}
	if why := floodRisk(ifname); why != "" {
		return fmt.Errorf("refusing to flood %s: %s; pass -force if that is what you want", ifname, why)
	}
	return nil
}

func floodRisk(ifname string) string {
	if defaultRouteV4(ifname) || defaultRouteV6(ifname) {
		return "it carries the default route (the host's traffic would compete with the flood)"
	}
	if c := os.Getenv("SSH_CONNECTION"); c != "" {
		// "client-ip client-port server-ip server-port"
		if f := strings.Fields(c); len(f) == 4 {
			if ip, err := netip.ParseAddr(f[2]); err == nil && hasAddr(ifname, ip) {
				return fmt.Sprintf("it carries this SSH session (to %s)", ip)
			}
		}
	}
	return ""
}

// defaultRouteV4 reads /proc/net/route: destination 00000000, mask 0.
func defaultRouteV4(ifname string) bool {
	return scan("/proc/net/route", func(f []string) bool {
		return len(f) >= 8 && f[0] == ifname && f[1] == "00000000" && f[7] == "00000000"
	})
}

// defaultRouteV6 reads /proc/net/ipv6_route: ::/0, on the interface (the
// last field).
func defaultRouteV6(ifname string) bool {
	return scan("/proc/net/ipv6_route", func(f []string) bool {
		return len(f) >= 10 && f[9] == ifname && f[0] == strings.Repeat("0", 32) && f[1] == "00"
	})
}

func scan(path string, match func([]string) bool) bool {
	fh, err := os.Open(path)
	if err != nil {
		return false
	}
	defer fh.Close()
	s := bufio.NewScanner(fh)
	for s.Scan() {
		if match(strings.Fields(s.Text())) {
			return true
		}
	}
	return false
}

func hasAddr(ifname string, ip netip.Addr) bool {
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return false
	}
	addrs, _ := ifc.Addrs()
	for _, a := range addrs {
		if pn, ok := a.(*net.IPNet); ok {
			if x, ok := netip.AddrFromSlice(pn.IP); ok && x.Unmap() == ip.Unmap() {
				return true
			}
		}
	}
	return false
}
