package pipeline_test

import (
	"context"
	"log"
	"os/signal"
	"syscall"
	"time"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/fastpath"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/redirect"
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

// heavyHitters looks at every flow in user space until it has sent limit
// packets, then offloads it: the XDP program drops the rest of the flow,
// which never reaches the socket again.
type heavyHitters struct {
	limit int
	seen  map[fastpath.Flow]int
}

func (h *heavyHitters) Handle(p *pipeline.Packet) pipeline.Verdict {
	f, ok := p.Flow()
	if !ok {
		return pipeline.Continue
	}
	h.seen[f]++
	if h.seen[f] < h.limit {
		return pipeline.Continue
	}
	// From now on the kernel decides, without a trip to user space.
	if err := p.Offload(fastpath.Entry{Action: fastpath.Drop}); err != nil {
		log.Printf("offload %s: %v", f, err)
		return pipeline.Drop
	}
	delete(h.seen, f)
	return pipeline.Drop
}

func (h *heavyHitters) Name() string { return "heavy-hitters" }

// ExamplePacket_Offload shows a stage that hands its decision for a flow
// to the XDP program: a detector installs "drop" for flows over a packet
// budget. The socket's redirect program carries the fast path; the
// Runner lets its stages install entries into it.
func ExamplePacket_Offload() {
	fp, err := fastpath.New(&fastpath.Config{IdleTimeout: time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	defer fp.Close()
	sock, err := afxdp.Open("eth0", 0, &afxdp.Config{Redirect: &redirect.Options{FastPath: fp}})
	if err != nil {
		log.Fatal(err)
	}
	defer sock.Close() // before fp.Close: it detaches the program
	r, err := pipeline.New(pipeline.Config{
		Socket:   sock,
		FastPath: fp,
		Stages:   []pipeline.Stage{&heavyHitters{limit: 1000, seen: map[fastpath.Flow]int{}}},
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
	kernel, err := fp.Counters()
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("user space saw %d packets and offloaded %d flows; the kernel dropped %d more",
		st.RXPackets, st.Offloaded, kernel.FlowDropped)
}
