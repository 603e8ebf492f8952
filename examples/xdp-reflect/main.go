//go:build linux

// Command xdp-reflect sends every redirected frame back where it came from:
// it swaps the MAC addresses and, with -swap-ip (the default), the IP
// addresses and UDP/TCP ports too, so a UDP client on the other side gets
// its datagrams echoed back to its own socket. ICMP echo requests get echo
// replies. Linux 5.10+, root.
//
//	sudo xdp-reflect -i eth0 -filter 'udp port 7'
//
// On a veth pair, turn TX checksum offload off on the sending side
// (ethtool -K PEER tx off) or pass -recompute-csum: with offload the peer's
// frames carry partial UDP/TCP checksums, and the reflected frames would
// be dropped as corrupt.
package main

import (
	"github.com/xdpkit/xdpkit/examples/internal/app"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/stages"
)

func main() {
	a := app.New("xdp-reflect", "send every redirected frame back to its sender", "udp")
	swapIP := a.Flags.Bool("swap-ip", true, "also swap IP addresses and UDP/TCP ports (a valid reply); false swaps MACs only")
	recompute := a.Flags.Bool("recompute-csum", false, "recompute UDP/TCP checksums (for senders with checksum offload, e.g. veth)")
	budget := a.Flags.Int("tx-budget", 0, "frames per sendto in copy mode (XDP_MAX_TX_SKB_BUDGET, Linux 6.16+; 0: kernel default)")
	app.Main(a, func(a *app.App) error {
		a.SocketConfig.TXBudget = *budget
		return a.RunBuilder(func(int) (pipeline.Config, func() map[string]any, error) {
			var st pipeline.Stage = stages.NewMACSwap()
			if *swapIP {
				st = stages.NewAddrSwap(&stages.AddrSwapOptions{RecomputeL4Checksum: *recompute})
			}
			return pipeline.Config{Stages: []pipeline.Stage{st}, Final: pipeline.Drop}, nil, nil
		}, nil)
	})
}
