//go:build linux

package testutils

import (
	"sort"
	"strings"
	"testing"

	"github.com/xdpkit/xdpkit/internal/sys"
)

// DeviceStats are a network device's driver statistics by name, what
// `ethtool -S` prints. A name the driver reports twice keeps its last value.
type DeviceStats map[string]uint64

// EthtoolStats reads ifname's driver statistics in the test process's
// network namespace, with the SIOCETHTOOL ioctls (no ethtool binary). It
// fails tb if they cannot be read.
func EthtoolStats(tb testing.TB, ifname string) DeviceStats {
	tb.Helper()
	st, err := sys.EthtoolStats(ifname)
	if err != nil {
		tb.Fatal(err)
	}
	return deviceStats(st)
}

// PeerEthtoolStats is [EthtoolStats] of v.Peer, read inside v.NS.
func (v *Veth) PeerEthtoolStats(tb testing.TB) DeviceStats {
	tb.Helper()
	var st []sys.EthtoolStat
	v.InPeer(tb, func() (err error) {
		st, err = sys.EthtoolStats(v.Peer)
		return err
	})
	return deviceStats(st)
}

func deviceStats(st []sys.EthtoolStat) DeviceStats {
	m := make(DeviceStats, len(st))
	for _, s := range st {
		m[s.Name] = s.Value
	}
	return m
}

// Get returns the statistic name. It fails tb, listing the names there
// are, when the driver does not report it: a renamed counter must not read
// as zero.
func (s DeviceStats) Get(tb testing.TB, name string) uint64 {
	tb.Helper()
	v, ok := s[name]
	if !ok {
		names := make([]string, 0, len(s))
		for n := range s {
			names = append(names, n)
		}
		sort.Strings(names)
		tb.Fatalf("the device has no statistic %q; it has: %s", name, strings.Join(names, ", "))
	}
	return v
}
