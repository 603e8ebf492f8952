package umem

import (
	"errors"
	"fmt"

	"github.com/xdpkit/xdpkit/ring"
)

// Defaults used for zero fields of Options.
const (
	DefaultFrameCount         = 4096
	DefaultFrameSize          = 4096
	DefaultFillRingSize       = 2048
	DefaultCompletionRingSize = 2048
)

// xdpPacketHeadroom is XDP_PACKET_HEADROOM: the kernel keeps this much in
// front of every received packet, in addition to Options.Headroom.
const xdpPacketHeadroom = 256

// minPacketRoom is the least room a frame must leave for packet data.
const minPacketRoom = 1024

// Sentinel errors; match them with errors.Is.
var (
	// ErrInvalidOptions is wrapped by every option validation error.
	ErrInvalidOptions = errors.New("invalid UMEM options")
	// ErrNoHugePages means HugePages was asked for and none are free.
	ErrNoHugePages = errors.New("no free hugepages")
	// ErrTooSmall means the UMEM has fewer frames than its rings need.
	ErrTooSmall = errors.New("UMEM too small for its rings")
	// ErrClosed is returned by operations on a closed UMEM.
	ErrClosed = errors.New("UMEM closed")
	// ErrFrameState is wrapped by the ownership errors of checked mode:
	// a frame handed out twice, freed twice, or returned from the wrong place.
	ErrFrameState = errors.New("frame ownership violated")
)

// Options configure a UMEM. A nil *Options means all defaults.
type Options struct {
	// FrameCount is the number of frames. Zero means 4096. It must be at
	// least FillRingSize, so the fill ring can be stocked completely.
	FrameCount uint32
	// FrameSize is the size of one frame in bytes: 2048 or 4096. Zero
	// means 4096. A packet must fit in one frame.
	FrameSize uint32
	// Headroom is the room, in bytes, the kernel leaves in front of every
	// received packet, on top of its own 256 (XDP_PACKET_HEADROOM), for
	// headers the application prepends. Zero means none. At least 1024
	// bytes of each frame must remain for the packet.
	Headroom uint32
	// FillRingSize is the number of fill ring slots, a power of two.
	// Zero means 2048.
	FillRingSize uint32
	// CompletionRingSize is the number of completion ring slots, a power
	// of two. Zero means 2048.
	CompletionRingSize uint32
	// HugePages maps the frames on hugepages (MAP_HUGETLB), which saves
	// TLB misses. If no hugepages are free, New fails with ErrNoHugePages
	// unless HugePageFallback is set. Zero value: normal pages.
	HugePages bool
	// HugePageFallback makes New use normal pages when HugePages is set
	// and none are free, instead of failing. [UMEM.HugePages] tells which
	// it got.
	HugePageFallback bool
	// Checked records the owner of every frame and catches ownership
	// errors (see the package doc). Zero value: off.
	Checked bool
}

// withDefaults returns a copy of o with zero fields set to their defaults.
func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.FrameCount == 0 {
		r.FrameCount = DefaultFrameCount
	}
	if r.FrameSize == 0 {
		r.FrameSize = DefaultFrameSize
	}
	if r.FillRingSize == 0 {
		r.FillRingSize = DefaultFillRingSize
	}
	if r.CompletionRingSize == 0 {
		r.CompletionRingSize = DefaultCompletionRingSize
	}
	return r
}

// Validate reports whether the options, with defaults applied, are usable.
// The error wraps ErrInvalidOptions or ErrTooSmall.
func (o *Options) Validate() error {
	r := o.withDefaults()
	return r.validate()
}

func (r *Options) validate() error {
	if r.FrameSize != 2048 && r.FrameSize != 4096 {
		return fmt.Errorf("invalid frame size %d: must be 2048 or 4096: %w", r.FrameSize, ErrInvalidOptions)
	}
	if r.FrameCount > 1<<24 {
		return fmt.Errorf("invalid frame count %d: at most %d: %w", r.FrameCount, 1<<24, ErrInvalidOptions)
	}
	if r.Headroom+xdpPacketHeadroom+minPacketRoom > r.FrameSize {
		return fmt.Errorf("invalid headroom %d: %d-byte frames leave room for at most %d: %w",
			r.Headroom, r.FrameSize, r.FrameSize-xdpPacketHeadroom-minPacketRoom, ErrInvalidOptions)
	}
	if !ring.ValidSize(r.FillRingSize) {
		return fmt.Errorf("invalid fill ring size %d: must be a power of 2 up to 1048576: %w", r.FillRingSize, ErrInvalidOptions)
	}
	if !ring.ValidSize(r.CompletionRingSize) {
		return fmt.Errorf("invalid completion ring size %d: must be a power of 2 up to 1048576: %w", r.CompletionRingSize, ErrInvalidOptions)
	}
	if r.FrameCount < r.FillRingSize {
		return fmt.Errorf("%d frames cannot stock a fill ring of %d: raise FrameCount or lower FillRingSize: %w",
			r.FrameCount, r.FillRingSize, ErrTooSmall)
	}
	return nil
}
