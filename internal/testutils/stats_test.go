//go:build linux

package testutils

import (
	"strings"
	"testing"
)

// Each end reports the other's ifindex (veth's peer_ifindex), read in its
// own namespace.
func TestEthtoolStatsHelpers(t *testing.T) {
	v := NewVeth(t, VethOptions{Queues: 2})
	host, peer := EthtoolStats(t, v.Host), v.PeerEthtoolStats(t)
	if got := host.Get(t, "peer_ifindex"); got != uint64(v.PeerIndex) {
		t.Errorf("host's peer_ifindex %d, want %d", got, v.PeerIndex)
	}
	if got := peer.Get(t, "peer_ifindex"); got != uint64(v.HostIndex) {
		t.Errorf("peer's peer_ifindex %d, want %d", got, v.HostIndex)
	}
	host.Get(t, "rx_queue_1_xdp_redirect")
	g := gate(t, func(tb testing.TB) { host.Get(tb, "rx_queue_2_xdp_redirect") })
	if !strings.Contains(g.failed, `no statistic "rx_queue_2_xdp_redirect"`) || !strings.Contains(g.failed, "rx_queue_1_xdp_redirect") {
		t.Errorf("Get of a statistic the device lacks: failed %q, skipped %q; want a failure listing the names", g.failed, g.skipped)
	}
}
