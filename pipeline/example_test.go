package pipeline_test

import (
	"context"
	"log"
	"os/signal"
	"syscall"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/stages"
)

// ExampleNew reflects every UDP packet back to its sender, counting flows
// on the way, until SIGINT.
func ExampleNew() {
	sock, err := afxdp.Open("eth0", 0, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sock.Close()
	flows, err := stages.NewFlowCounter(65536)
	if err != nil {
		log.Fatal(err)
	}
	onlyUDP := pipeline.Func(func(p *pipeline.Packet) pipeline.Verdict {
		if p.ParseErr != nil || p.Headers.IPProto != 17 {
			return pipeline.Drop
		}
		return pipeline.Continue
	})
	r, err := pipeline.New(pipeline.Config{
		Socket: sock,
		Stages: []pipeline.Stage{onlyUDP, flows, stages.NewAddrSwap(nil)},
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT)
	defer stop()
	st, err := r.Run(ctx)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("received %d, sent back %d, %d flows", st.RXPackets, st.TXPackets, flows.Len())
}
