package afxdp

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/xdpkit/xdpkit/packet"
)

// TXFeatures are TX metadata offloads, as a bit set: what a device's
// driver performs for zero-copy sockets ([TXMetadataFeatures]). The bits
// are the kernel's netdev_xsk_flags (include/uapi/linux/netdev.h).
type TXFeatures uint64

// TX metadata offloads.
const (
	// TXFeatureTimestamp (tx-timestamp): the driver writes a TX timestamp
	// at completion ([Socket.RequestTXTimestamp]).
	TXFeatureTimestamp TXFeatures = 1 << 0
	// TXFeatureChecksum (tx-checksum): the device computes a requested
	// L4 checksum ([Socket.RequestTXChecksum]).
	TXFeatureChecksum TXFeatures = 1 << 1
	// TXFeatureLaunchTime (tx-launch-time-fifo, Linux 6.15+): the device
	// sends a packet at a requested time ([Socket.RequestLaunchTime]).
	TXFeatureLaunchTime TXFeatures = 1 << 2
)

var txFeatureNames = [...]string{"tx-timestamp", "tx-checksum", "tx-launch-time-fifo"}

// Has reports whether f has every bit of want.
func (f TXFeatures) Has(want TXFeatures) bool { return f&want == want }

// String lists the features by their names in the kernel's netdev
// netlink spec, "tx-timestamp,tx-checksum" say, or "none".
func (f TXFeatures) String() string {
	if f == 0 {
		return "none"
	}
	var names []string
	for i, n := range txFeatureNames {
		if f&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	if rest := f &^ (1<<len(txFeatureNames) - 1); rest != 0 {
		names = append(names, fmt.Sprintf("%#x", uint64(rest)))
	}
	return strings.Join(names, ",")
}

// TXMetadataFeatures asks the kernel (netdev netlink dev-get,
// NETDEV_A_DEV_XSK_FEATURES, Linux 6.8+) which TX metadata offloads the
// named device's driver performs for zero-copy sockets. It needs no
// privilege and looks in the calling thread's network namespace. A
// missing interface gives an error wrapping ErrInterfaceNotFound, a
// kernel without the attribute one wrapping ErrNotSupported.
//
// The bits describe zero-copy mode only. In copy mode the kernel builds
// an skb and does the work itself, on any device, veth included, which
// reports none of them: a requested checksum is computed by the device's
// ordinary checksum offload or by the stack (or by the kernel at once with
// umem.Options.TXSoftwareChecksum), a TX timestamp is a software one, and
// a launch time goes into the skb for the driver to honour or ignore.
func TXMetadataFeatures(ifname string) (TXFeatures, error) { return txMetadataFeatures(ifname) }

// TXTimestamp is the TX timestamp of one frame sent with a timestamp
// request ([Socket.RequestTXTimestamp]), taken when it completed.
type TXTimestamp struct {
	// Addr is where the frame's packet started: the UMEM offset of the
	// descriptor's data (its Addr in aligned mode; umem.UMEM.DataAddr of
	// it in unaligned mode).
	Addr uint64
	// Time is the timestamp the kernel or the driver wrote, in
	// nanoseconds. In copy mode it is a software one, CLOCK_TAI when
	// the kernel freed the packet's skb, after the driver sent it (for
	// veth, when the peer's stack took the packet). In zero-copy mode it
	// is the device's, on its PTP hardware clock, if the driver has
	// TXFeatureTimestamp; a driver without it writes nothing, so Time
	// holds the request's bytes (0 if no checksum or launch time was
	// asked for too).
	Time uint64
}

// RequestTXChecksum asks, through d's TX metadata, that the L4 checksum of
// d's packet be computed when it is sent (XDP_TXMD_FLAGS_CHECKSUM), as for
// any CHECKSUM_PARTIAL packet: the one's complement sum from csumStart to
// the end of the packet, stored at csumStart+csumOffset. csumStart is
// relative to the start of d's data (34 for UDP in an untagged IPv4
// frame), csumOffset to csumStart (6 for UDP, 16 for TCP). The checksum
// field must hold the folded pseudo-header sum, not complemented, as
// Linux's own CHECKSUM_PARTIAL packets do; [PrepareL4Checksum] writes it
// and returns both offsets, and [Socket.RequestL4Checksum] does it all.
// The packet must end where the checksum ends: bytes after the segment
// (padding) would be summed too, so they must be zero.
//
// d must describe a frame the application holds, with its Len set. The
// UMEM must have umem.Options.TXMetadata, and d's data must start at
// least umem.TXMetadataLen bytes into its frame. The first request on a
// descriptor (one without XDP_TX_METADATA in its Options) clears the
// metadata and sets the option; later ones add to it. It allocates
// nothing and makes no syscall. Errors: the UMEM has no TX metadata or no
// room for it in front of d's data, or the checksum field is not inside
// the packet (all match ErrInvalidDescriptor); on a zero-copy socket, the
// driver does not compute checksums (ErrNotSupported).
//
// In copy mode the kernel leaves the packet CHECKSUM_PARTIAL for the
// device's checksum offload, or computes it in software if the device has
// none; with umem.Options.TXSoftwareChecksum it computes it at once.
func (s *Socket) RequestTXChecksum(d *Desc, csumStart, csumOffset uint16) error {
	return s.requestTXChecksum(d, csumStart, csumOffset)
}

// RequestL4Checksum finds the UDP or TCP header of d's packet (over IPv4
// or IPv6, with up to two VLAN tags), writes the pseudo-header sum into
// its checksum field ([PrepareL4Checksum]) and asks for the checksum with
// RequestTXChecksum. A packet without such a header, a fragment, or one
// with non-zero bytes after its segment is refused with an error matching
// ErrInvalidDescriptor. It allocates nothing.
func (s *Socket) RequestL4Checksum(d *Desc) error { return s.requestL4Checksum(d) }

// RequestTXTimestamp asks, through d's TX metadata, for a TX timestamp
// when d's frame completes (XDP_TXMD_FLAGS_TIMESTAMP); [Socket.TXTimestamps]
// returns it. d's requirements and the errors are RequestTXChecksum's. In
// copy mode the kernel always writes one (a software CLOCK_TAI one, see
// [TXTimestamp]); a zero-copy socket refuses the request with
// ErrNotSupported when the kernel says the driver writes none.
func (s *Socket) RequestTXTimestamp(d *Desc) error { return s.requestTXTimestamp(d) }

// RequestLaunchTime asks, through d's TX metadata, that d's packet be sent
// at time t, in nanoseconds (XDP_TXMD_FLAGS_LAUNCH_TIME, Linux 6.15+):
// time-based scheduling by the device, on its PTP hardware clock. The
// driver keeps its TX queue in order, so a packet to be sent later holds
// up those behind it: give such traffic a queue of its own. In copy mode
// the kernel puts t in the skb (skb->skb_mstamp_ns) and the packet goes
// straight to the driver, past any qdisc: a driver with launch-time
// offload configured on the queue honours it, others (veth) send the
// packet at once. d's requirements and the errors are
// RequestTXChecksum's; on kernels before 6.15, and on zero-copy sockets
// whose driver lacks TXFeatureLaunchTime, it fails with ErrNotSupported.
func (s *Socket) RequestLaunchTime(d *Desc, t uint64) error { return s.requestLaunchTime(d, t) }

// TXTimestamps reaps the completion ring, as Complete does, and moves
// into out, oldest first, the TX timestamps of completed frames that were
// sent with RequestTXTimestamp; it returns how many. They are copied from
// each frame's metadata when it completes, before the frame goes back to
// the free list, so they stay valid whatever happens to the frame next.
// Frames completed in Transmit or Complete have theirs kept too, as many
// as the completion ring has slots; when more pile up the oldest are
// dropped and counted in Stats.TXTimestampsLost. Sockets of one UMEM bound
// to the same queue share the completion ring, and so these timestamps:
// each goes to the socket that asks first. It allocates nothing (0 after
// Close).
func (s *Socket) TXTimestamps(out []TXTimestamp) int { return s.txTimestamps(out) }

// PrepareL4Checksum prepares frame, an Ethernet frame with a UDP or TCP
// segment over IPv4 or IPv6, for a checksum offload: it writes the folded
// pseudo-header sum (not complemented) into the checksum field, as the
// kernel expects of a CHECKSUM_PARTIAL packet, and returns the offsets
// RequestTXChecksum takes: csumStart, the L4 header's offset in frame,
// and csumOffset, the checksum field's offset in the L4 header (6 for
// UDP, 16 for TCP). ok is false, and frame untouched, when it has no such
// header (not IP, another protocol, truncated), is a fragment (its
// checksum covers bytes it does not hold), or holds non-zero bytes after
// the segment (the offload would sum them). It allocates nothing.
func PrepareL4Checksum(frame []byte) (csumStart, csumOffset uint16, ok bool) {
	var h packet.Headers
	if err := packet.Parse(frame, &h); err != nil || h.L4Off == 0 || h.Fragment {
		return 0, 0, false
	}
	var off, end int
	switch {
	case h.IPProto == packet.ProtoUDP:
		off = 6
		end = h.L4Off + int(binary.BigEndian.Uint16(frame[h.L4Off+4:]))
	case h.IPProto == packet.ProtoTCP:
		off = 16
		end = h.L3Off + h.IPLen
	default:
		return 0, 0, false
	}
	if end > len(frame) || end < h.L4Off+off+2 || h.L4Off > 0xffff || firstFragment(frame, &h) {
		return 0, 0, false
	}
	for _, b := range frame[end:] {
		if b != 0 {
			return 0, 0, false
		}
	}
	sum := packet.PseudoHeaderSum(h.SrcIP, h.DstIP, h.IPProto, end-h.L4Off)
	binary.BigEndian.PutUint16(frame[h.L4Off+off:], packet.Fold(sum))
	return uint16(h.L4Off), uint16(off), true
}

// firstFragment reports whether the IP packet h describes is the first
// fragment of a larger datagram (offset 0, more to come); packet.Parse
// marks only the others.
func firstFragment(frame []byte, h *packet.Headers) bool {
	if h.IPv4 {
		return frame[h.L3Off+6]&0x20 != 0 // MF
	}
	next, p, end := frame[h.L3Off+6], h.L3Off+40, min(h.L3Off+h.IPHdrLen, len(frame))
	for p+8 <= end {
		switch next {
		case 44: // fragment header; Parse sets h.Fragment for a non-first one
			return frame[p+3]&1 != 0 // M
		case 0, 43, 60: // hop-by-hop, routing, destination options
			next, p = frame[p], p+8+int(frame[p+1])*8
		default:
			return false
		}
	}
	return false
}

// Errors of the TX metadata calls and of Transmit on a UMEM with TX
// metadata, preallocated so the per-packet path does not allocate them.
var (
	errNoTXMetadata       = &descError{"TX metadata (XDP_TX_METADATA) on a UMEM that reserves none (set umem.Options.TXMetadata)", nil}
	errNoMetadataRoom     = &descError{"descriptor's data starts less than umem.TXMetadataLen bytes into its frame: no room for the TX metadata the UMEM reserves in front of every packet (the kernel would drop it)", nil}
	errBadMetadata        = &descError{"descriptor's TX metadata is not what the kernel takes (unknown flags, a checksum field past the packet, or metadata on a descriptor that is not its packet's first): copy mode would fail every send on it", nil}
	errChecksumPastPacket = &descError{"TX checksum request past the packet: csumStart+csumOffset+2 > Len", nil}
	errNoL4Checksum       = &descError{"no UDP or TCP segment to checksum in the packet (not UDP or TCP over IP, truncated, a fragment, or non-zero bytes after the segment)", nil}
	errLaunchTimeKernel   = fmt.Errorf("afxdp: launch time (XDP_TXMD_FLAGS_LAUNCH_TIME) needs Linux 6.15+: %w", ErrNotSupported)
	errZCNoChecksum       = fmt.Errorf("afxdp: the driver computes no TX checksums for zero-copy sockets (tx-checksum, see TXMetadataFeatures; copy mode does them): %w", ErrNotSupported)
	errZCNoTimestamp      = fmt.Errorf("afxdp: the driver writes no TX timestamps for zero-copy sockets (tx-timestamp, see TXMetadataFeatures; copy mode does): %w", ErrNotSupported)
	errZCNoLaunchTime     = fmt.Errorf("afxdp: the driver has no launch-time offload for zero-copy sockets (tx-launch-time, see TXMetadataFeatures): %w", ErrNotSupported)
)
