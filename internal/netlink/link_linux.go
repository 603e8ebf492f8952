//go:build linux

package netlink

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

const (
	// rtextFilterSkipStats is RTEXT_FILTER_SKIP_STATS (Linux 4.20): leave
	// the interface statistics out of the answer. Older kernels ignore it.
	rtextFilterSkipStats = 1 << 3
	// iflaTargetNetnsid is IFLA_TARGET_NETNSID (Linux 4.20): answer for
	// the namespace with that id, as seen from the caller's.
	iflaTargetNetnsid = 46
	// ifNameMax is IFNAMSIZ minus the terminating NUL.
	ifNameMax = unix.IFNAMSIZ - 1
)

// LinkByIndex returns the interface with index ifindex in the calling
// thread's network namespace. A missing interface gives an error matching
// [ErrNotFound] and unix.ENODEV.
func LinkByIndex(ifindex int) (Link, error) {
	return linkByIndex(ifindex, -1)
}

// LinkByIndexIn returns the interface with index ifindex in the network
// namespace the caller's knows as nsid, e.g. a veth's peer
// ([Link.PeerNetNSID]). It needs CAP_NET_ADMIN over that namespace.
func LinkByIndexIn(nsid int32, ifindex int) (Link, error) {
	if nsid < 0 {
		return Link{}, fmt.Errorf("netlink: get link ifindex %d in netns id %d: invalid id: %w", ifindex, nsid, ErrNotFound)
	}
	return linkByIndex(ifindex, nsid)
}

func linkByIndex(ifindex int, nsid int32) (Link, error) {
	what := fmt.Sprintf("ifindex %d", ifindex)
	if nsid >= 0 {
		what += fmt.Sprintf(" in netns id %d", nsid)
	}
	if ifindex <= 0 || ifindex > int(^uint32(0)>>1) {
		return Link{}, fmt.Errorf("netlink: get link %s: invalid index: %w", what, ErrNotFound)
	}
	return getLink(what, int32(ifindex), "", nsid)
}

// LinkByName returns the interface called name in the calling thread's
// network namespace. A missing interface gives an error matching
// [ErrNotFound] and unix.ENODEV.
func LinkByName(name string) (Link, error) {
	what := fmt.Sprintf("%q", name)
	switch {
	case name == "":
		return Link{}, fmt.Errorf("netlink: get link %s: empty name: %w", what, ErrNotFound)
	case len(name) > ifNameMax:
		return Link{}, fmt.Errorf("netlink: get link %s: name longer than %d bytes: %w", what, ifNameMax, ErrNotFound)
	case strings.IndexByte(name, 0) >= 0:
		return Link{}, fmt.Errorf("netlink: get link %s: name contains NUL: %w", what, ErrNotFound)
	}
	return getLink(what, 0, name, -1)
}

// getLink sends one RTM_GETLINK for index (or, when index is 0, name), in
// the namespace nsid when it is not negative, and parses the RTM_NEWLINK
// answer.
func getLink(what string, index int32, name string, nsid int32) (Link, error) {
	wrap := func(step string, err error) error {
		return fmt.Errorf("netlink: get link %s: %s: %w", what, step, err)
	}
	c, err := netlink.Dial(unix.NETLINK_ROUTE, nil)
	if err != nil {
		return Link{}, wrap("open NETLINK_ROUTE socket", err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(Timeout)); err != nil {
		return Link{}, wrap("set deadline", err)
	}
	// Extended acks carry the kernel's error message; best effort (4.12+).
	_ = c.SetOption(netlink.ExtendedAcknowledge, true)

	req, err := buildGetLink(index, name, nsid)
	if err != nil {
		return Link{}, wrap("encode RTM_GETLINK", err)
	}
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETLINK, Flags: netlink.Request},
		Data:   req,
	})
	if err != nil {
		if errors.Is(err, unix.ENODEV) {
			err = fmt.Errorf("%w (%w)", ErrNotFound, err)
		}
		return Link{}, wrap("RTM_GETLINK", err)
	}
	for _, m := range msgs {
		if m.Header.Type == unix.RTM_NEWLINK {
			l, err := parseLink(m.Data)
			if err != nil {
				return Link{}, wrap("RTM_NEWLINK", err)
			}
			return l, nil
		}
	}
	return Link{}, wrap("RTM_GETLINK", fmt.Errorf("no RTM_NEWLINK in the %d messages of the answer", len(msgs)))
}

// buildGetLink encodes the ifinfomsg and attributes of an RTM_GETLINK.
func buildGetLink(index int32, name string, nsid int32) ([]byte, error) {
	ifi := make([]byte, unix.SizeofIfInfomsg) // family AF_UNSPEC
	binary.NativeEndian.PutUint32(ifi[4:], uint32(index))
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(unix.IFLA_EXT_MASK, rtextFilterSkipStats)
	if name != "" {
		ae.String(unix.IFLA_IFNAME, name)
	}
	if nsid >= 0 {
		ae.Int32(iflaTargetNetnsid, nsid)
	}
	attrs, err := ae.Encode()
	return append(ifi, attrs...), err
}

// parseLink decodes an RTM_NEWLINK body: ifinfomsg, then attributes.
func parseLink(body []byte) (Link, error) {
	if len(body) < unix.SizeofIfInfomsg {
		return Link{}, fmt.Errorf("truncated RTM_NEWLINK (%d bytes)", len(body))
	}
	link := Link{Index: int(int32(binary.NativeEndian.Uint32(body[4:]))), PeerNetNSID: -1}
	ad, err := netlink.NewAttributeDecoder(body[unix.SizeofIfInfomsg:])
	if err != nil {
		return Link{}, fmt.Errorf("attributes: %w", err)
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.IFLA_IFNAME:
			link.Name = ad.String()
		case unix.IFLA_MTU:
			link.MTU = int(u32(ad.Bytes()))
		case unix.IFLA_NUM_RX_QUEUES:
			link.NumRXQueues = int(u32(ad.Bytes()))
		case unix.IFLA_NUM_TX_QUEUES:
			link.NumTXQueues = int(u32(ad.Bytes()))
		case unix.IFLA_LINK:
			link.PeerIndex = int(u32(ad.Bytes()))
		case unix.IFLA_LINK_NETNSID:
			link.PeerNetNSID = int32(u32(ad.Bytes()))
		case unix.IFLA_XDP:
			ad.Nested(func(nd *netlink.AttributeDecoder) error {
				for nd.Next() {
					switch nd.Type() {
					case unix.IFLA_XDP_ATTACHED:
						if b := nd.Bytes(); len(b) >= 1 {
							link.XDP.Attached = b[0]
						}
					case unix.IFLA_XDP_PROG_ID:
						link.XDP.ProgID = u32(nd.Bytes())
					case unix.IFLA_XDP_DRV_PROG_ID:
						link.XDP.DrvProgID = u32(nd.Bytes())
					case unix.IFLA_XDP_SKB_PROG_ID:
						link.XDP.SKBProgID = u32(nd.Bytes())
					case unix.IFLA_XDP_HW_PROG_ID:
						link.XDP.HWProgID = u32(nd.Bytes())
					}
				}
				return nil
			})
		}
	}
	if err := ad.Err(); err != nil {
		return Link{}, fmt.Errorf("attributes: %w", err)
	}
	return link, nil
}

// u32 reads a 4-byte attribute, 0 when it is shorter (a malformed answer
// is not worth failing the whole lookup for).
func u32(b []byte) uint32 {
	if len(b) < 4 {
		return 0
	}
	return binary.NativeEndian.Uint32(b)
}
