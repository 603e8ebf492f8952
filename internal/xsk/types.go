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
	// TXMetadata reserves TXMetadataLen bytes for a struct
	// xsk_tx_metadata in front of every TX descriptor's data
	// (tx_metadata_len, Linux 6.8+).
	TXMetadata bool
	// TXSoftwareChecksum registers with XDP_UMEM_TX_SW_CSUM: in copy
	// mode the kernel computes requested checksums itself. Needs
	// TXMetadata.
	TXSoftwareChecksum bool
	// SocketFD, when > 0, is an AF_XDP socket made elsewhere to register
	// the area on instead of opening one; New owns it from then on.
	SocketFD int
}

// TX metadata: struct xsk_tx_metadata (include/uapi/linux/if_xdp.h),
// which the kernel reads at a TX descriptor's data address less the
// UMEM's tx_metadata_len when the descriptor has XDP_TX_METADATA in its
// options:
//
//	__u64 flags;                  // 0: XDP_TXMD_FLAGS_*
//	union {
//		struct {
//			__u16 csum_start;     // 8
//			__u16 csum_offset;    // 10
//			__u64 launch_time;    // 16, Linux 6.15+
//		} request;
//		struct {
//			__u64 tx_timestamp;   // 8, written at completion
//		} completion;
//	};
const (
	// TXMetadataLen is the tx_metadata_len a UMEM with TX metadata
	// registers: sizeof(struct xsk_tx_metadata) since Linux 6.15 (16
	// before, without launch_time; the kernel finds the struct at the
	// start of the reserved bytes either way), a multiple of 8 below 256
	// as XDP_UMEM_REG requires.
	TXMetadataLen = 24

	// Offsets in the struct.
	TXMDFlagsOff      = 0
	TXMDCsumStartOff  = 8
	TXMDCsumOffsetOff = 10
	TXMDLaunchTimeOff = 16
	TXMDTimestampOff  = 8

	// Its flags (XDP_TXMD_FLAGS_*).
	TXMDTimestamp  = 1 << 0 // write a TX timestamp at completion
	TXMDChecksum   = 1 << 1 // compute the checksum csum_start and csum_offset describe
	TXMDLaunchTime = 1 << 2 // send at launch_time (Linux 6.15+)
)

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
