package stages

import (
	"encoding/binary"
	"net/netip"

	"github.com/xdpkit/xdpkit/packet"
	"github.com/xdpkit/xdpkit/pipeline"
)

// MACSwap is a stage that swaps a frame's Ethernet source and destination
// addresses and sends it back where it came from: an L2 reflector, the
// simplest thing to measure a link's packet rate with.
//
// It reflects any frame with a whole Ethernet header, IP or not (ARP,
// say), and looks at nothing past that header; a shorter frame is
// Malformed. It is a [pipeline.Raw] stage: a Runner of MACSwap alone does
// not parse frames. It does not check the addresses: a broadcast frame
// goes back out with a broadcast source address. Use [AddrSwap] to
// answer senders at the IP level.
type MACSwap struct {
	// Chain makes Handle return Continue instead of Transmit for the
	// frames it swaps, so later stages see them (and the pipeline's final
	// verdict sends them). Zero value: Transmit.
	Chain bool
}

var _ interface {
	pipeline.FrameStage
	pipeline.Named
} = (*MACSwap)(nil)

// Raw marks MACSwap as reading only Packet.Data.
func (s *MACSwap) Raw() {}

// InPlace marks MACSwap as a FrameStage that rewrites its frames in
// place (pipeline.InPlace).
func (s *MACSwap) InPlace() {}

// NewMACSwap returns a MACSwap that transmits every frame it swaps.
func NewMACSwap() *MACSwap { return &MACSwap{} }

// Name returns "macswap".
func (s *MACSwap) Name() string { return "macswap" }

// Handle swaps p's MAC addresses and returns Transmit (Continue if Chain
// is set), or Malformed for a frame shorter than an Ethernet header.
func (s *MACSwap) Handle(p *pipeline.Packet) pipeline.Verdict {
	if len(p.Data) < 14 {
		return pipeline.Malformed
	}
	swapMACs(p.Data)
	if s.Chain {
		return pipeline.Continue
	}
	return pipeline.Transmit
}

// HandleFrames is Handle for a batch of frames, in one loop.
func (s *MACSwap) HandleFrames(b *pipeline.FrameBatch) {
	swapped := pipeline.Transmit
	if s.Chain {
		swapped = pipeline.Continue
	}
	vs := b.Verdicts[:len(b.Frames)]
	for i, f := range b.Frames {
		if len(f) < 14 {
			vs[i] = pipeline.Malformed
			continue
		}
		swapMACs(f)
		vs[i] = swapped
	}
}

// swapMACs swaps the destination and source MAC addresses of frame, which
// is at least 12 bytes long: its first 12 bytes as two words (loaded and
// stored little-endian, so bytes stay in place on any host).
func swapMACs(frame []byte) {
	_ = frame[11]
	x := binary.LittleEndian.Uint64(frame[0:]) // destination, first two bytes of source
	y := binary.LittleEndian.Uint32(frame[8:]) // rest of source
	binary.LittleEndian.PutUint64(frame[0:], x>>48|uint64(y)<<16|x<<48)
	binary.LittleEndian.PutUint32(frame[8:], uint32(x>>16))
}

// AddrSwapOptions configure an AddrSwap. The zero value is the default.
type AddrSwapOptions struct {
	// RecomputeL4Checksum makes AddrSwap recompute the UDP, TCP, ICMP and
	// ICMPv6 checksums of the frames it swaps in full, over the whole
	// segment (UDP over IPv4 without checksum stays without). Zero value:
	// off, and the checksums are kept as they came, which is right for any
	// frame whose checksum was complete (see [AddrSwap] for when it is
	// not). Fragments are never recomputed: their checksum covers bytes
	// the frame does not hold.
	RecomputeL4Checksum bool
	// LeaveL4Checksum leaves the UDP and TCP checksums of the frames it
	// swaps to the NIC, or in copy mode the kernel
	// (pipeline.Packet.LeaveL4Checksum: the socket's UMEM needs TX
	// metadata, umem.Options.TXMetadata), instead of recomputing them:
	// what RecomputeL4Checksum does for senders with partial checksums,
	// without the CPU's work. ICMP checksums are recomputed as with
	// RecomputeL4Checksum. Zero value: off.
	LeaveL4Checksum bool
	// Chain makes Handle return Continue instead of Transmit for the
	// frames it swaps. Zero value: Transmit.
	Chain bool
}

// AddrSwap is a stage that turns a frame into a reply to its sender and
// transmits it: it swaps the Ethernet addresses, the IPv4 or IPv6
// addresses and the UDP or TCP ports, and turns ICMP and ICMPv6 echo
// requests into echo replies. It is a UDP/TCP/ping reflector for load
// generators and latency tests.
//
// # Checksums
//
// Swapping the source and destination fields changes no checksum: the
// IPv4 header checksum and the UDP/TCP/ICMPv6 pseudo-header sum are sums
// of 16-bit words, and a sum does not depend on the order of its terms,
// so a frame whose checksums were right stays right without touching
// them. Echo replies get their ICMP checksum updated incrementally (RFC
// 1624) for the type change.
//
// That holds for complete checksums. A sender that leaves the L4
// checksum to the NIC (TX checksum offload, CHECKSUM_PARTIAL) puts only
// the pseudo-header sum in the field. On a veth pair with offload on (the
// default) the peer's frames arrive at the XDP socket that way, and the
// reflected frame, now without offload, is dropped by the receiver's
// stack as a bad checksum. Either turn offload off on the sending side
// (`ethtool -K PEER tx off`) or set [AddrSwapOptions.RecomputeL4Checksum],
// which costs a pass over the payload.
//
// # Which frames
//
// A frame that did not parse (Packet.ParseErr set) is Malformed. These
// pass through untouched with Continue, for later stages or the
// pipeline's final verdict to decide: frames without an IP header (ARP),
// frames to a broadcast or multicast MAC or IP address or from an
// unspecified or multicast one (a reply would need a group source
// address), ICMP other than echo requests, and IP protocols other than
// UDP, TCP, ICMP and ICMPv6. Non-first fragments of UDP, TCP and ICMP
// datagrams have their MACs and IP addresses swapped; the first fragment
// carries the ports, so a fragmented datagram is reflected whole.
//
// Handle updates Packet.Headers to match the swapped frame (addresses,
// ports, ICMP type), so later stages see the reply.
type AddrSwap struct {
	recompute, leave, chain bool
	left                    uint64 // checksums left to the NIC or kernel
}

// ChecksumsLeft is how many checksums LeaveL4Checksum left to the NIC or
// kernel (the others it recomputed, for want of TX metadata or of a UDP
// or TCP header). Call it on the Runner's goroutine or after Run.
func (s *AddrSwap) ChecksumsLeft() uint64 { return s.left }

var _ interface {
	pipeline.Stage
	pipeline.Named
} = (*AddrSwap)(nil)

// NewAddrSwap returns an AddrSwap; nil options mean the defaults.
func NewAddrSwap(opts *AddrSwapOptions) *AddrSwap {
	if opts == nil {
		opts = &AddrSwapOptions{}
	}
	return &AddrSwap{recompute: opts.RecomputeL4Checksum, leave: opts.LeaveL4Checksum, chain: opts.Chain}
}

// Name returns "addrswap".
func (s *AddrSwap) Name() string { return "addrswap" }

var broadcast4 = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// ICMP types AddrSwap answers.
const (
	icmpEchoRequest   = 8
	icmpEchoReply     = 0
	icmpv6EchoRequest = 128
	icmpv6EchoReply   = 129
)

// Handle turns p into a reply to its sender and returns Transmit
// (Continue if Chain is set); see [AddrSwap] for the frames it leaves
// alone (Continue) and those it calls Malformed.
func (s *AddrSwap) Handle(p *pipeline.Packet) pipeline.Verdict {
	h := &p.Headers
	d := p.Data
	if p.ParseErr != nil || len(d) < 14 {
		return pipeline.Malformed
	}
	if h.L3Off == 0 || d[0]&1 != 0 || // not IP, or to a group MAC address
		h.DstIP.IsMulticast() || h.DstIP == broadcast4 ||
		h.SrcIP.IsMulticast() || h.SrcIP.IsUnspecified() {
		return pipeline.Continue
	}
	echo := false
	switch h.IPProto {
	case packet.ProtoUDP, packet.ProtoTCP:
	case packet.ProtoICMP, packet.ProtoICMPv6:
		if (h.IPProto == packet.ProtoICMPv6) != h.IPv6 {
			return pipeline.Continue // ICMP of the other IP version
		}
		if h.Fragment {
			break // the rest of a datagram whose first fragment is swapped
		}
		if h.ICMPType == icmpEchoRequest && h.IPv4 || h.ICMPType == icmpv6EchoRequest && h.IPv6 {
			echo = true
			break
		}
		return pipeline.Continue
	default:
		return pipeline.Continue
	}

	swapMACs(d)
	ip := d[h.L3Off:]
	if h.IPv4 {
		swapBytes(ip[12:16], ip[16:20])
	} else {
		swapBytes(ip[8:24], ip[24:40])
	}
	h.SrcIP, h.DstIP = h.DstIP, h.SrcIP
	if h.L4Off != 0 {
		l4 := d[h.L4Off:]
		switch {
		case echo:
			reply := uint8(icmpEchoReply)
			if h.IPv6 {
				reply = icmpv6EchoReply
			}
			old := binary.BigEndian.Uint16(l4)
			l4[0] = reply
			csum := binary.BigEndian.Uint16(l4[2:])
			binary.BigEndian.PutUint16(l4[2:], packet.UpdateChecksum16(csum, old, binary.BigEndian.Uint16(l4)))
			h.ICMPType = reply
		default: // UDP, TCP
			swapBytes(l4[0:2], l4[2:4])
			h.SrcPort, h.DstPort = h.DstPort, h.SrcPort
		}
		switch {
		case s.leave && (h.IPProto == packet.ProtoUDP || h.IPProto == packet.ProtoTCP) && p.LeaveL4Checksum() == nil:
			s.left++
		case s.recompute || s.leave:
			packet.SetL4Checksum(d, h)
		}
	}
	if s.chain {
		return pipeline.Continue
	}
	return pipeline.Transmit
}

// swapBytes swaps the contents of a and b, which have the same length (at
// most 16) and do not overlap.
func swapBytes(a, b []byte) {
	var t [16]byte
	n := copy(t[:], a)
	copy(a, b)
	copy(b, t[:n])
}
