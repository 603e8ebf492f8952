//go:build linux

// Command xdp-count counts the redirected traffic per protocol and per flow
// (5-tuple, in a fixed-size table) and shows the top flows live. Linux
// 5.10+, root.
//
//	sudo xdp-count -i eth0 -top 10 -duration 30s -json
package main

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/xdpkit/xdpkit/examples/internal/app"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/stages"
)

func main() {
	a := app.New("xdp-count", "count redirected packets per protocol and per flow", "")
	top := a.Flags.Int("top", 10, "how many top flows to show and report")
	flows := a.Flags.Int("flows", 65536, "flow table size (fixed; flows beyond it are counted as overflow)")
	app.Main(a, func(a *app.App) error {
		if *top < 0 {
			return fmt.Errorf("-top must not be negative")
		}
		// The live top-N line shows the last worker built (all of them
		// with -q); the summary merges the workers'.
		var mu sync.Mutex
		var shown []stages.Flow
		var protos map[string]uint64
		var flowCount int
		live := func() string {
			mu.Lock()
			defer mu.Unlock()
			var b strings.Builder
			fmt.Fprintf(&b, "flows %d  %v", flowCount, protos)
			for i, f := range shown {
				if i == 3 {
					break
				}
				fmt.Fprintf(&b, "\n    %s %s:%d -> %s:%d  %d pkts %d bytes", stages.ProtoName(f.Proto), f.Src, f.SrcPort, f.Dst, f.DstPort, f.Packets, f.Bytes)
			}
			return b.String()
		}
		return a.RunBuilder(func(int) (pipeline.Config, func() map[string]any, error) {
			counter, err := stages.NewFlowCounter(*flows)
			if err != nil {
				return pipeline.Config{}, nil, err
			}
			// The table belongs to the worker's goroutine: copy what the
			// live line shows there, once per tick, off the per-packet path.
			snap := func(time.Time) {
				t, p, n := counter.TopN(*top), counter.Protocols(), counter.Len()
				mu.Lock()
				shown, protos, flowCount = t, p, n
				mu.Unlock()
			}
			cfg := pipeline.Config{Stages: []pipeline.Stage{counter}, Final: pipeline.Drop, Tick: snap, TickInterval: time.Second}
			return cfg, func() map[string]any {
				return map[string]any{
					"protocols":      counter.Protocols(),
					"top_flows":      counter.TopN(*top),
					"flows":          counter.Len(),
					"flow_overflow":  counter.Overflow(),
					"flow_malformed": counter.Malformed(),
				}
			}, nil
		}, live)
	})
}
