package xsk

import "strconv"

// Config is a UMEM's geometry, validated and with defaults applied by
// package umem.
type Config struct {
	FrameCount         uint32
	FrameSize          uint32
	Headroom           uint32
	FillRingSize       uint32
	CompletionRingSize uint32
	HugePages          bool
	HugePageFallback   bool
	Unaligned          bool
}

// State is where a frame is; see the package doc.
type State uint8

// Frame states.
const (
	StateFree State = iota
	StateFill
	StateApp
	StateTX
)

func (s State) String() string {
	switch s {
	case StateFree:
		return "free"
	case StateFill:
		return "fill"
	case StateApp:
		return "app"
	case StateTX:
		return "tx"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Counts is how many frames are in each place. Free+Fill+App+TX == Total.
type Counts struct {
	Total, Free, Fill, App, TX int
}
