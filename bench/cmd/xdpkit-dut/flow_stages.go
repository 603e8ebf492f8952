//go:build linux && !xbnostages

package main

import (
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/stages"
)

// flowStageImpl names the flow counter used by -mode count.
const flowStageImpl = "stages.FlowCounter"

func newFlowStage(capacity int) (pipeline.Stage, error) { return stages.NewFlowCounter(capacity) }
