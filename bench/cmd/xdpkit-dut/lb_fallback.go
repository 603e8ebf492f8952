//go:build linux && xbnostages

package main

import (
	"errors"
	"net"
	"net/netip"

	"github.com/xdpkit/xdpkit/fastpath"
)

const lbStageImpl = "none (built with -tags xbnostages)"

func newLBStage(netip.AddrPort, []lbBackend, net.HardwareAddr, *fastpath.FastPath) (balancer, error) {
	return nil, errors.New("-mode lb needs package stages, which this build (-tags xbnostages) leaves out")
}
