package workers_test

import (
	"context"
	"log"
	"os/signal"
	"syscall"

	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/stages"
	"github.com/xdpkit/xdpkit/workers"
)

// ExampleNew counts flows on every queue of eth0, one pinned worker per
// queue, the workers sharing one UMEM.
func ExampleNew() {
	set, err := workers.New(workers.Config{
		Interface:  "eth0",
		SharedUMEM: true,
		Pipeline: func(queue int) (pipeline.Config, error) {
			flows, err := stages.NewFlowCounter(65536) // one per worker: stages are not shared
			return pipeline.Config{Stages: []pipeline.Stage{flows}}, err
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer set.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT)
	defer stop()
	st, err := set.Run(ctx)
	if err != nil {
		log.Print(err) // the workers that failed; Stats.Failed has them by queue
	}
	for q, s := range st.PerQueue {
		log.Printf("queue %d: %d frames", q, s.RXPackets)
	}
}
