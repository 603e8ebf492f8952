package netlink

import (
	"errors"
	"fmt"
	"time"
)

// ErrNotFound is matched (with [errors.Is]) by the error of [LinkByIndex]
// and [LinkByName] when the interface does not exist in the caller's network
// namespace.
var ErrNotFound = errors.New("link not found")

// Timeout bounds every send and receive on the netlink socket.
const Timeout = 2 * time.Second

// Values of [XDPInfo.Attached], mirroring the kernel's XDP_ATTACHED_*
// (include/uapi/linux/if_link.h).
const (
	XDPAttachedNone  uint8 = 0 // no program
	XDPAttachedDrv   uint8 = 1 // one program, native (driver) mode
	XDPAttachedSKB   uint8 = 2 // one program, generic (skb) mode
	XDPAttachedHW    uint8 = 3 // one program, offloaded to the NIC
	XDPAttachedMulti uint8 = 4 // programs in more than one mode (e.g. driver and offload)
)

// XDPInfo is the kernel's IFLA_XDP report for an interface. Zero IDs mean
// no program in that mode.
type XDPInfo struct {
	// Attached is one of the XDPAttached* constants.
	Attached uint8
	// ProgID is the program's ID when exactly one mode is in use
	// (Attached is Drv, SKB or HW); 0 for none or multi.
	ProgID uint32
	// DrvProgID, SKBProgID and HWProgID are the program IDs per mode.
	DrvProgID, SKBProgID, HWProgID uint32
}

// IsAttached reports whether any XDP program is attached, in any mode.
func (x XDPInfo) IsAttached() bool {
	return x.Attached != XDPAttachedNone || x.AnyProgID() != 0
}

// AnyProgID returns ProgID, or else the first non-zero of DrvProgID,
// SKBProgID and HWProgID, or 0 when nothing is attached.
func (x XDPInfo) AnyProgID() uint32 {
	for _, id := range [...]uint32{x.ProgID, x.DrvProgID, x.SKBProgID, x.HWProgID} {
		if id != 0 {
			return id
		}
	}
	return 0
}

// Mode names the attach mode as iproute2 does: "none", "driver",
// "generic", "offload" or "multi" ("unknown(N)" for future values).
func (x XDPInfo) Mode() string {
	switch x.Attached {
	case XDPAttachedNone:
		return "none"
	case XDPAttachedDrv:
		return "driver"
	case XDPAttachedSKB:
		return "generic"
	case XDPAttachedHW:
		return "offload"
	case XDPAttachedMulti:
		return "multi"
	}
	return fmt.Sprintf("unknown(%d)", x.Attached)
}

// String describes the attachment, e.g. "none", "driver prog 42" or
// "multi (driver prog 42, offload prog 43)".
func (x XDPInfo) String() string {
	if !x.IsAttached() {
		return "none"
	}
	if x.Attached != XDPAttachedMulti && x.ProgID != 0 {
		return fmt.Sprintf("%s prog %d", x.Mode(), x.ProgID)
	}
	s := x.Mode() + " ("
	sep := ""
	for _, m := range [...]struct {
		name string
		id   uint32
	}{{"driver", x.DrvProgID}, {"generic", x.SKBProgID}, {"offload", x.HWProgID}} {
		if m.id != 0 {
			s += fmt.Sprintf("%s%s prog %d", sep, m.name, m.id)
			sep = ", "
		}
	}
	return s + ")"
}

// Link is what the kernel reports about one interface.
type Link struct {
	Index       int     // ifindex, > 0
	Name        string  // IFLA_IFNAME
	MTU         int     // IFLA_MTU; 0 if the kernel did not report it
	NumRXQueues int     // IFLA_NUM_RX_QUEUES; 0 if not reported (kernels before 3.x)
	NumTXQueues int     // IFLA_NUM_TX_QUEUES; 0 if not reported
	XDP         XDPInfo // IFLA_XDP; zero if nothing is attached or not reported
	// PeerIndex is IFLA_LINK: the ifindex of the device this one is
	// tied to (a veth's peer, a macvlan's lower device), 0 if none. It
	// is an index in PeerNetNSID's namespace when that is not negative.
	PeerIndex int
	// PeerNetNSID is IFLA_LINK_NETNSID: the id, in the caller's
	// namespace, of the namespace PeerIndex lives in; -1 when it is the
	// caller's own (or the kernel did not say).
	PeerNetNSID int32
}
