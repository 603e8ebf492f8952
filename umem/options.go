package umem

import (
	"errors"
	"fmt"

	"github.com/xdpkit/xdpkit/internal/xsk"
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

// TXMetadataLen is how many bytes Options.TXMetadata reserves in front of
// every transmitted packet: sizeof(struct xsk_tx_metadata) since Linux
// 6.15 added launch_time (older kernels read their 16-byte struct at the
// start of the same bytes), a multiple of 8 as XDP_UMEM_REG requires.
const TXMetadataLen = xsk.TXMetadataLen

// Sentinel errors; match them with errors.Is.
var (
	// ErrInvalidOptions is wrapped by every option validation error.
	ErrInvalidOptions = errors.New("invalid UMEM options")
	// ErrNoHugePages means HugePages was asked for and none are free.
	ErrNoHugePages = xsk.ErrNoHugePages
	// ErrTooSmall means the UMEM has fewer frames than its rings need.
	ErrTooSmall = xsk.ErrTooSmall
	// ErrClosed is returned by operations on a closed UMEM. It is
	// os.ErrClosed, as afxdp.ErrClosed is.
	ErrClosed = xsk.ErrClosed
	// ErrFrameState is wrapped by ownership errors: a frame freed twice,
	// sent while in the kernel, another pool's, or returned by the kernel
	// from the wrong place.
	ErrFrameState = xsk.ErrFrameState
	// ErrMemlock: registering the UMEM needs more locked memory than the
	// process may lock.
	ErrMemlock = xsk.ErrMemlock
	// ErrNotSupported: the kernel lacks AF_XDP or a feature asked for. It
	// is cilium/ebpf's ErrNotSupported, as afxdp.ErrNotSupported is.
	ErrNotSupported = xsk.ErrNotSupported
)

// Options configure a UMEM. A nil *Options means all defaults.
type Options struct {
	// FrameCount is the number of frames. Zero means 4096. It must be at
	// least FillRingSize, so the fill ring can be stocked completely.
	FrameCount uint32
	// FrameSize is the size of one frame (chunk) in bytes: 2048 or 4096,
	// or, with Unaligned, any size from 2048 to 4096. Zero means 4096. A
	// packet must fit in one frame unless the socket is multi-buffer.
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
	// Unaligned registers the UMEM in unaligned chunk mode
	// (XDP_UMEM_UNALIGNED_CHUNK_FLAG): frames need not be a power of two
	// in size, and descriptors may point anywhere in a frame (RX
	// descriptors carry the packet's offset in the top 16 bits of Addr;
	// see DataAddr). Zero value: aligned mode.
	Unaligned bool
	// TXMetadata reserves TXMetadataLen bytes in front of every
	// transmitted packet for a struct xsk_tx_metadata (XDP_UMEM_REG's
	// tx_metadata_len, Linux 6.8+): a TX descriptor with XDP_TX_METADATA
	// (ring.TXMetadata) in its Options then asks the kernel or the driver
	// for a checksum, a TX timestamp or a launch time (see package
	// afxdp, # TX metadata). The kernel then takes a TX descriptor only
	// if its data starts at least TXMetadataLen bytes into its frame, so
	// build packets to send at that offset (UMEM.TXMetadataLen), not at a
	// frame's start: received frames, and afxdp's TransmitBytes and
	// WritePacket, already do. The setting is the UMEM's: every socket
	// sharing it has it. New fails with ErrNotSupported on kernels before
	// 6.8. Zero value: off; afxdp's Transmit then refuses descriptors
	// with XDP_TX_METADATA, which the kernel would fail.
	TXMetadata bool
	// TXSoftwareChecksum registers the UMEM with XDP_UMEM_TX_SW_CSUM
	// (Linux 6.8+): in copy mode the kernel computes the checksums that
	// descriptors request through TX metadata itself, on the CPU, before
	// the packet reaches the driver, instead of leaving the packet
	// CHECKSUM_PARTIAL for the device (or the stack) to finish. It is
	// for testing and for working around a device's checksum offload;
	// it costs CPU per packet. Zero-copy sockets ignore it. It needs
	// TXMetadata. Zero value: off.
	TXSoftwareChecksum bool
	// SocketFD, when > 0, is an AF_XDP socket made elsewhere — handed
	// over a unix socket by a more privileged process (SCM_RIGHTS,
	// afxdp.ReceiveSocket), or inherited — to register the UMEM on
	// instead of opening one: New then needs no CAP_NET_RAW, and the
	// first socket opened on the UMEM is that one. New owns the fd from
	// the call on, also when it fails.
	SocketFD int
	// Checked is kept for compatibility and has no effect: every frame's
	// owner is always recorded and checked.
	//
	// Deprecated: ownership checks are always on.
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
	switch {
	case r.Unaligned && (r.FrameSize < 2048 || r.FrameSize > 4096):
		return fmt.Errorf("invalid frame size %d: unaligned frames must be 2048 to 4096 bytes: %w", r.FrameSize, ErrInvalidOptions)
	case !r.Unaligned && r.FrameSize != 2048 && r.FrameSize != 4096:
		return fmt.Errorf("invalid frame size %d: must be 2048 or 4096 (or set Unaligned): %w", r.FrameSize, ErrInvalidOptions)
	}
	if r.FrameCount > 1<<24 {
		return fmt.Errorf("invalid frame count %d: at most %d: %w", r.FrameCount, 1<<24, ErrInvalidOptions)
	}
	// FrameSize is at least 2048 here; subtracting from it cannot wrap, as
	// adding to a Headroom near 1<<32 would.
	if r.Headroom > r.FrameSize-xdpPacketHeadroom-minPacketRoom {
		return fmt.Errorf("invalid headroom %d: %d-byte frames leave room for at most %d: %w",
			r.Headroom, r.FrameSize, r.FrameSize-xdpPacketHeadroom-minPacketRoom, ErrInvalidOptions)
	}
	if r.TXSoftwareChecksum && !r.TXMetadata {
		return fmt.Errorf("TXSoftwareChecksum computes checksums requested through TX metadata: set TXMetadata too: %w", ErrInvalidOptions)
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
