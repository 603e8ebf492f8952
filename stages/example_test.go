package stages_test

import (
	"bytes"
	"fmt"

	"github.com/xdpkit/xdpkit/internal/testframes"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/stages"
)

// Example chains stages the way a pipeline.Runner does: each packet goes
// through them in order until one returns a verdict other than Continue.
// With a socket, the chain is pipeline.Config{Socket: sock, Stages: chain,
// Tick: limiter.Tick}.
func Example() {
	counter, err := stages.NewFlowCounter(0)
	if err != nil {
		panic(err)
	}
	limiter, err := stages.NewRateLimiter(stages.RateLimitOptions{Rate: 1000, Burst: 2})
	if err != nil {
		panic(err)
	}
	chain := []pipeline.Stage{counter, limiter, stages.NewAddrSwap(nil)}

	limiter.SetNow(0) // the Runner's Tick sets the time; here it stands still
	for range 3 {
		p := &pipeline.Packet{Data: bytes.Clone(testframes.UDP4)} // 192.0.2.1:40000 -> 198.51.100.2:53
		p.Reparse()
		v := pipeline.Continue
		for _, s := range chain {
			if v = s.Handle(p); v != pipeline.Continue {
				break
			}
		}
		fmt.Println(v, "to", p.Headers.DstIP)
	}
	fmt.Println(counter.Packets(), "packets counted")
	// Output:
	// transmit to 192.0.2.1
	// transmit to 192.0.2.1
	// drop to 198.51.100.2
	// 3 packets counted
}
