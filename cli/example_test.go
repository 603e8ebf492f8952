package cli_test

import (
	"context"
	"fmt"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/cli"
	"github.com/xdpkit/xdpkit/pipeline"
)

// A tool's own flags go on Flags next to the common ones; Parse reads
// both, and WorkerQueues turns -queues into workers.Config's lists.
func ExampleTool_Parse() {
	tool := cli.New("xdp-tool", "an example tool", "udp")
	rate := tool.Flags.Float64("rate", 1000, "packets per second")
	if err := tool.Parse([]string{"-i", "eth0", "-queues", "0-3", "-xdp-mode", "skb", "-rate", "500"}); err != nil {
		fmt.Println(err)
		return
	}
	queues, cpus, err := tool.WorkerQueues(8)
	fmt.Println(tool.Iface, tool.XDPMode, tool.Filter, queues, cpus == nil, err, *rate)
	// Output: eth0 generic udp [0 1 2 3] true <nil> 500
}

// The whole of a tool: Main parses os.Args, runs until Ctrl-C or
// -duration, and exits with one line on stderr if run fails.
func ExampleTool_Main() {
	tool := cli.New("xdp-drop", "receive and drop every redirected frame", "")
	tool.Main(func(ctx context.Context) error {
		opts, err := tool.RedirectOptions() // -xdp-mode, -filter, -keep-mgmt
		if err != nil {
			return err
		}
		sock, err := afxdp.Open(tool.Iface, tool.Queue, &afxdp.Config{Bind: tool.Bind, Redirect: opts})
		if err != nil {
			return err
		}
		defer sock.Close()
		r, err := pipeline.New(pipeline.Config{Socket: sock, Final: pipeline.Drop})
		if err != nil {
			return err
		}
		stop := tool.LiveRate(r.Snapshot, nil)
		st, err := r.Run(ctx)
		stop()
		if err != nil {
			return err
		}
		return tool.Summary(st, sock, nil)
	})
}
