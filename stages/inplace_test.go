package stages_test

import (
	"bytes"
	"testing"

	"github.com/xdpkit/xdpkit/internal/testframes"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/stages"
)

// TestInPlaceKeepsFrames: the stages that say they are pipeline.InPlace
// (a Runner then trusts them not to move a frame, and does not check)
// leave every frame of a batch the slice they were given, whatever the
// frame: balanced, not for the VIP, malformed or cut short.
func TestInPlaceKeepsFrames(t *testing.T) {
	t.Parallel()
	frames := flowFrames(1024, 40)
	for _, f := range [][]byte{testframes.UDP4[:20], testframes.UDP4[:40], {}, testframes.UDP4, testframes.UDP4VLAN, testframes.TCP6, testframes.UDP6, testframes.ICMP4, testframes.Frag4Rest} {
		frames = append(frames, bytes.Clone(f))
	}
	for name, st := range map[string]pipeline.InPlace{
		"MACSwap":     stages.NewMACSwap(),
		"FlowCounter": newFlowCounter(t, 64),
		"LB DSR":      newLB(t, "198.51.100.2:53", makeBackends(4, false), nil),
		"LB NAT":      newLB(t, "198.51.100.2:53", makeBackends(4, false), &stages.LoadBalancerOptions{Mode: stages.LBModeNAT}),
		"LB no table": newLB(t, "198.51.100.2:53", makeBackends(4, false), &stages.LoadBalancerOptions{Connections: -1}),
	} {
		if c, ok := st.(pipeline.ConditionalFrameStage); ok && !c.TakesFrames() {
			t.Fatalf("%s does not take batches", name)
		}
		for round := range 2 { // the LB's second round hits its connection table
			b := &pipeline.FrameBatch{Verdicts: make([]pipeline.Verdict, len(frames)), Out: make([]int, len(frames))}
			for _, f := range frames {
				b.Frames = append(b.Frames, bytes.Clone(f))
			}
			given := append([][]byte(nil), b.Frames...)
			st.HandleFrames(b)
			for i, f := range b.Frames {
				if len(f) != len(given[i]) || len(f) > 0 && &f[0] != &given[i][0] {
					t.Errorf("%s, round %d: frame %d (%d bytes) came back as another slice (%d bytes)", name, round, i, len(given[i]), len(f))
				}
			}
		}
	}
}
