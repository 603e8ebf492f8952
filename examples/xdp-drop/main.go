//go:build linux

// Command xdp-drop receives every frame the redirect program steers to its
// AF_XDP socket and recycles it: the simplest xdpkit program, and a
// measure of the receive path's cost. Linux 5.10+, root.
//
//	sudo xdp-drop -i eth0 -q 0 -filter 'udp port 9000' -duration 10s -json
package main

import (
	"github.com/xdpkit/xdpkit/examples/internal/app"
	"github.com/xdpkit/xdpkit/pipeline"
)

func main() {
	a := app.New("xdp-drop", "receive and drop every redirected frame", "")
	app.Main(a, func(a *app.App) error {
		return a.RunBuilder(func(int) (pipeline.Config, func() map[string]any, error) {
			return pipeline.Config{Final: pipeline.Drop}, nil, nil
		}, nil)
	})
}
