package doctor

import (
	"fmt"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
)

// The netdev generic netlink family (Documentation/netlink/specs/netdev.yaml,
// linux/netdev.h): commands and attributes doctor reads.
const (
	netdevCmdDevGet   = 1
	netdevCmdQueueGet = 10 // Linux 6.8
	netdevCmdNAPIGet  = 11 // Linux 6.8

	netdevADevIfindex     = 1
	netdevADevXDPFeatures = 3
	netdevADevXDPZCSegs   = 4
	netdevADevRXMetadata  = 5
	netdevADevXSKFeatures = 6

	netdevAQueueID      = 1
	netdevAQueueIfindex = 2
	netdevAQueueType    = 3
	netdevAQueueNAPIID  = 4
	netdevAQueueXSK     = 7 // Linux 6.14: an AF_XDP socket's pool is bound to the queue

	netdevANAPIIfindex           = 1
	netdevANAPIID                = 2
	netdevANAPIIRQ               = 3
	netdevANAPIPID               = 4
	netdevANAPIDeferHardIRQs     = 5
	netdevANAPIGROFlushTimeout   = 6
	netdevANAPIIRQSuspendTimeout = 7 // Linux 6.13
	netdevANAPIThreaded          = 8 // Linux 6.18

	queueTypeRX = 0
	queueTypeTX = 1
)

// netdev runs one netdev family command, a dump when dump is set, with
// ifindex in the attribute attr, and returns the answers' attributes.
func netdev(cmd uint8, attr uint16, ifindex int, dump bool) ([][]byte, error) {
	c, err := genetlink.Dial(nil)
	if err != nil {
		return nil, fmt.Errorf("generic netlink: %w", err)
	}
	defer c.Close()
	fam, err := c.GetFamily("netdev")
	if err != nil {
		return nil, fmt.Errorf("the netdev netlink family (Linux 6.3+): %w", err)
	}
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(attr, uint32(ifindex))
	data, err := ae.Encode()
	if err != nil {
		return nil, err
	}
	flags := netlink.Request
	if dump {
		flags |= netlink.Dump
	}
	msgs, err := c.Execute(genetlink.Message{Header: genetlink.Header{Command: cmd, Version: fam.Version}, Data: data}, fam.ID, flags)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		out[i] = m.Data
	}
	return out, nil
}

// Features is what the netdev netlink family says a device can do.
type Features struct {
	XDP         uint64 // NETDEV_A_DEV_XDP_FEATURES: netdev_xdp_act bits
	ZCMaxSegs   uint32 // NETDEV_A_DEV_XDP_ZC_MAX_SEGS
	RXMetadata  uint64 // NETDEV_A_DEV_XDP_RX_METADATA_FEATURES
	XSKFeatures uint64 // NETDEV_A_DEV_XSK_FEATURES
}

// netdev_xdp_act, netdev_xdp_rx_metadata and netdev_xsk_flags bits
// (linux/netdev.h).
const (
	xdpBasic       = 1 << 0
	xdpRedirect    = 1 << 1
	xdpNdoXmit     = 1 << 2
	xdpZeroCopy    = 1 << 3
	xdpHWOffload   = 1 << 4
	xdpRXSG        = 1 << 5
	xdpNdoXmitSG   = 1 << 6
	rxmdTimestamp  = 1 << 0
	rxmdHash       = 1 << 1
	rxmdVLAN       = 1 << 2
	xskTXTimestamp = 1 << 0
	xskTXChecksum  = 1 << 1
	xskLaunchTime  = 1 << 2
)

// DeviceFeatures asks the netdev generic netlink family (Linux 6.3+)
// about ifindex.
func DeviceFeatures(ifindex int) (Features, error) {
	msgs, err := netdev(netdevCmdDevGet, netdevADevIfindex, ifindex, false)
	if err != nil {
		return Features{}, fmt.Errorf("netdev dev-get: %w", err)
	}
	var f Features
	for _, m := range msgs {
		ad, err := netlink.NewAttributeDecoder(m)
		if err != nil {
			return Features{}, err
		}
		for ad.Next() {
			switch ad.Type() {
			case netdevADevXDPFeatures:
				f.XDP = ad.Uint64()
			case netdevADevXDPZCSegs:
				f.ZCMaxSegs = ad.Uint32()
			case netdevADevRXMetadata:
				f.RXMetadata = ad.Uint64()
			case netdevADevXSKFeatures:
				f.XSKFeatures = ad.Uint64()
			}
		}
		if err := ad.Err(); err != nil {
			return Features{}, err
		}
	}
	return f, nil
}

// Queue is one of a device's queues as the netdev family lists it.
type Queue struct {
	ID     int
	TX     bool   // a TX queue; an RX queue otherwise
	NAPIID uint32 // the NAPI instance serving it, 0 if none
	XSK    bool   // an AF_XDP socket is bound to it (Linux 6.14+)
}

// DeviceQueues lists ifindex's queues (netdev queue-get, Linux 6.8+).
func DeviceQueues(ifindex int) ([]Queue, error) {
	msgs, err := netdev(netdevCmdQueueGet, netdevAQueueIfindex, ifindex, true)
	if err != nil {
		return nil, fmt.Errorf("netdev queue-get: %w", err)
	}
	var out []Queue
	for _, m := range msgs {
		q, err := parseQueue(m)
		if err != nil {
			return nil, fmt.Errorf("netdev queue-get: %w", err)
		}
		out = append(out, q)
	}
	return out, nil
}

func parseQueue(b []byte) (Queue, error) {
	var q Queue
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return q, err
	}
	for ad.Next() {
		switch ad.Type() {
		case netdevAQueueID:
			q.ID = int(ad.Uint32())
		case netdevAQueueType:
			q.TX = ad.Uint32() == queueTypeTX
		case netdevAQueueNAPIID:
			q.NAPIID = ad.Uint32()
		case netdevAQueueXSK:
			q.XSK = true
		}
	}
	return q, ad.Err()
}

// NAPI is one NAPI instance's settings (netdev napi-get, Linux 6.8+).
type NAPI struct {
	ID                uint32
	IRQ               int // -1 when it has none
	PID               int // the kthread's, when threaded; 0 otherwise
	DeferHardIRQs     uint32
	GROFlushTimeout   uint64 // ns
	IRQSuspendTimeout uint64 // ns
	Threaded          bool
}

// DeviceNAPIs lists ifindex's NAPI instances.
func DeviceNAPIs(ifindex int) ([]NAPI, error) {
	msgs, err := netdev(netdevCmdNAPIGet, netdevANAPIIfindex, ifindex, true)
	if err != nil {
		return nil, fmt.Errorf("netdev napi-get: %w", err)
	}
	var out []NAPI
	for _, m := range msgs {
		n, err := parseNAPI(m)
		if err != nil {
			return nil, fmt.Errorf("netdev napi-get: %w", err)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseNAPI(b []byte) (NAPI, error) {
	n := NAPI{IRQ: -1}
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return n, err
	}
	for ad.Next() {
		switch ad.Type() {
		case netdevANAPIID:
			n.ID = ad.Uint32()
		case netdevANAPIIRQ:
			n.IRQ = int(ad.Uint32())
		case netdevANAPIPID:
			n.PID = int(ad.Uint32())
		case netdevANAPIDeferHardIRQs:
			n.DeferHardIRQs = ad.Uint32()
		case netdevANAPIGROFlushTimeout:
			n.GROFlushTimeout = uintAttr(ad)
		case netdevANAPIIRQSuspendTimeout:
			n.IRQSuspendTimeout = uintAttr(ad)
		case netdevANAPIThreaded:
			n.Threaded = ad.Uint32() != 0
		}
	}
	return n, ad.Err()
}

// uintAttr reads a netlink "uint" attribute, 4 or 8 bytes long.
func uintAttr(ad *netlink.AttributeDecoder) uint64 {
	if len(ad.Bytes()) == 4 {
		return uint64(ad.Uint32())
	}
	return ad.Uint64()
}
