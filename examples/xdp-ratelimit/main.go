//go:build linux

// Command xdp-ratelimit polices each source address to -rate packets per
// second (a token bucket with -burst): frames over the rate are dropped and
// counted (rate_dropped), frames within it are counted as passed. The
// source table has a fixed size, so a flood of spoofed sources cannot grow
// memory. It shows the policing stage on its own; in a real service the
// passed frames go on to the next stage. Linux 5.10+, root.
//
//	sudo xdp-ratelimit -i eth0 -rate 1000 -burst 100 -filter 'udp port 53'
package main

import (
	"github.com/xdpkit/xdpkit/examples/internal/app"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/stages"
)

func main() {
	a := app.New("xdp-ratelimit", "police each source address to a packet rate", "")
	rate := a.Flags.Float64("rate", 1000, "packets per second allowed per source address")
	burst := a.Flags.Int("burst", 0, "packets a source may send back to back (0: rate/10)")
	sources := a.Flags.Int("sources", 65536, "source table size (fixed)")
	app.Main(a, func(a *app.App) error {
		// With -queues each worker polices the sources its queue sees: RSS
		// keeps a source's flows on one queue, but a source spread over
		// several queues gets the rate on each.
		return a.RunBuilder(func(int) (pipeline.Config, func() map[string]any, error) {
			rl, err := stages.NewRateLimiter(stages.RateLimitOptions{Rate: *rate, Burst: *burst, Capacity: *sources})
			if err != nil {
				return pipeline.Config{}, nil, err
			}
			return pipeline.Config{Stages: []pipeline.Stage{rl}, Final: pipeline.Drop}, func() map[string]any {
				st := rl.Stats()
				return map[string]any{
					"passed":        st.Passed,
					"rate_dropped":  st.Dropped,
					"non_ip":        st.NonIP,
					"evicted":       st.Evicted,
					"sources":       st.Sources,
					"rate_pps":      *rate,
					"burst_packets": *burst,
				}
			}, nil
		}, nil)
	})
}
