//go:build linux

package sys

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The netdev generic netlink family (Documentation/netlink/specs/netdev.yaml,
// include/uapi/linux/netdev.h): the dev-get command and the attributes
// NetdevXSKFeatures reads.
const (
	netdevCmdDevGet       = 1
	netdevADevIfindex     = 1
	netdevADevXSKFeatures = 6 // Linux 6.8
)

// netdevTimeout bounds the dev-get exchange.
const netdevTimeout = 2 * time.Second

// ErrNoNetdevFamily is returned, wrapped, by NetdevXSKFeatures when the
// kernel has no netdev generic netlink family (before Linux 6.3).
var ErrNoNetdevFamily = errors.New("no netdev generic netlink family (Linux 6.3+)")

// NetdevXSKFeatures asks the netdev generic netlink family (dev-get) for
// ifindex's NETDEV_A_DEV_XSK_FEATURES: the netdev_xsk_flags bits of the
// TX metadata offloads its driver performs for zero-copy AF_XDP sockets
// (1 tx-timestamp, 2 tx-checksum, 4 tx-launch-time-fifo). ok is false
// when the kernel does not report the attribute (before Linux 6.8). It
// sees the calling thread's network namespace; it needs no privilege.
func NetdevXSKFeatures(ifindex int) (features uint64, ok bool, err error) {
	c, err := genetlink.Dial(nil)
	if err != nil {
		return 0, false, fmt.Errorf("generic netlink: %w", err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(netdevTimeout)); err != nil {
		return 0, false, fmt.Errorf("generic netlink: %w", err)
	}
	fam, err := c.GetFamily("netdev")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOENT) {
			return 0, false, fmt.Errorf("%w: %w", ErrNoNetdevFamily, err)
		}
		return 0, false, fmt.Errorf("netdev family: %w", err)
	}
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(netdevADevIfindex, uint32(ifindex))
	data, err := ae.Encode()
	if err != nil {
		return 0, false, err
	}
	msgs, err := c.Execute(genetlink.Message{Header: genetlink.Header{Command: netdevCmdDevGet, Version: fam.Version}, Data: data}, fam.ID, netlink.Request)
	if err != nil {
		return 0, false, fmt.Errorf("netdev dev-get ifindex %d: %w", ifindex, err)
	}
	for _, m := range msgs {
		ad, err := netlink.NewAttributeDecoder(m.Data)
		if err != nil {
			return 0, false, fmt.Errorf("netdev dev-get: %w", err)
		}
		for ad.Next() {
			if ad.Type() == netdevADevXSKFeatures {
				features, ok = ad.Uint64(), true
			}
		}
		if err := ad.Err(); err != nil {
			return 0, false, fmt.Errorf("netdev dev-get: %w", err)
		}
	}
	return features, ok, nil
}

// ClockTAI returns CLOCK_TAI in nanoseconds: the clock of the software TX
// timestamps the kernel writes in copy mode (ktime_get_tai_fast_ns). It
// is a vDSO call and does not allocate.
func ClockTAI() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_TAI, &ts); err != nil {
		return 0
	}
	return uint64(ts.Nano())
}
