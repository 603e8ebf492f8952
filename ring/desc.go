package ring

// Options bits of a [Desc] (struct xdp_desc's options).
const (
	// PktContd (XDP_PKT_CONTD) marks a descriptor whose packet continues
	// in the next one: multi-buffer packets.
	PktContd = 0x1
	// TXMetadata (XDP_TX_METADATA) says a TX descriptor's frame carries
	// TX metadata in front of the packet.
	TXMetadata = 0x2
)

// ringNeedWakeup is XDP_RING_NEED_WAKEUP, the flag the kernel sets in a
// ring's flags word when it wants a syscall.
const ringNeedWakeup = 0x1
