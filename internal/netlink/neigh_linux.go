//go:build linux

package netlink

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// sizeofNdMsg is struct ndmsg: family, pads, ifindex, state, flags, type.
const sizeofNdMsg = 12

// nudValid are the neighbour states with a usable link-layer address.
const nudValid = unix.NUD_REACHABLE | unix.NUD_STALE | unix.NUD_DELAY | unix.NUD_PROBE | unix.NUD_PERMANENT | unix.NUD_NOARP

// Neighbor returns the link-layer address the kernel's neighbour table
// (ARP, IPv6 ND) holds for ip on the interface with index ifindex. An
// entry that is missing, incomplete or failed gives an error matching
// [ErrNotFound].
func Neighbor(ifindex int, ip netip.Addr) (net.HardwareAddr, error) {
	ip = ip.Unmap()
	wrap := func(err error) error { return fmt.Errorf("netlink: neighbour %s on ifindex %d: %w", ip, ifindex, err) }
	c, err := netlink.Dial(unix.NETLINK_ROUTE, nil)
	if err != nil {
		return nil, wrap(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(Timeout)); err != nil {
		return nil, wrap(err)
	}
	req := make([]byte, sizeofNdMsg)
	req[0] = unix.AF_INET
	if ip.Is6() {
		req[0] = unix.AF_INET6
	}
	binary.NativeEndian.PutUint32(req[4:], uint32(ifindex))
	msgs, err := c.Execute(netlink.Message{Header: netlink.Header{Type: unix.RTM_GETNEIGH, Flags: netlink.Request | netlink.Dump}, Data: req})
	if err != nil {
		return nil, wrap(err)
	}
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWNEIGH {
			continue
		}
		dst, mac, idx, state, err := parseNeigh(m.Data)
		if err != nil {
			return nil, wrap(err)
		}
		if idx == ifindex && dst == ip && state&nudValid != 0 && len(mac) > 0 {
			return mac, nil
		}
	}
	return nil, wrap(ErrNotFound)
}

func parseNeigh(b []byte) (dst netip.Addr, mac net.HardwareAddr, ifindex int, state uint16, err error) {
	if len(b) < sizeofNdMsg {
		return dst, nil, 0, 0, fmt.Errorf("truncated RTM_NEWNEIGH (%d bytes)", len(b))
	}
	ifindex = int(int32(binary.NativeEndian.Uint32(b[4:])))
	state = binary.NativeEndian.Uint16(b[8:])
	ad, err := netlink.NewAttributeDecoder(b[sizeofNdMsg:])
	if err != nil {
		return dst, nil, 0, 0, err
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.NDA_DST:
			dst, _ = netip.AddrFromSlice(ad.Bytes())
		case unix.NDA_LLADDR:
			mac = append(net.HardwareAddr(nil), ad.Bytes()...)
		}
	}
	return dst.Unmap(), mac, ifindex, state, ad.Err()
}
