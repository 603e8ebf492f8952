package afxdp

import (
	"errors"
	"fmt"
	"iter"
	"os"
	"strconv"
	"strings"
)

// MaxPacketFrames is the portable limit on the descriptors of one packet
// that af_xdp.rst recommends: CONFIG_MAX_SKB_FRAGS+1 with the default
// kernel configuration. [Socket.MaxPacketFrames] gives a socket's actual
// limit. A packet of up to 18 x 3840 bytes (4096-byte frames) or
// 18 x 1792 bytes (2048-byte frames) is received in at most
// MaxPacketFrames descriptors.
const MaxPacketFrames = 18

// maxSKBFrags reads the kernel's fragment limit, MAX_SKB_FRAGS, from
// /proc/sys/net/core/max_skb_frags; MaxPacketFrames-1 if it cannot.
func maxSKBFrags() int {
	b, err := os.ReadFile("/proc/sys/net/core/max_skb_frags")
	if err != nil {
		return MaxPacketFrames - 1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 1 {
		return MaxPacketFrames - 1
	}
	return n
}

var (
	// ErrPacketTooLong: a multi-buffer packet has more descriptors than
	// fit. ReceivePackets got a slice shorter than the packet waiting on
	// the RX ring (pass a longer one; MaxPacketFrames descriptors hold
	// any packet up to 64 KiB with 4096-byte frames); WritePacket got a
	// slice too short for the bytes; or a packet to transmit has more
	// than MaxPacketFrames descriptors or more than the TX ring holds.
	ErrPacketTooLong = errors.New("multi-buffer packet has too many descriptors")
	// ErrInvalidPacket: a packet to transmit has a descriptor the kernel
	// would refuse (zero length, crossing its frame's end, outside the
	// UMEM, Options bits other than XDP_PKT_CONTD), ends without a last
	// descriptor, has several descriptors on a socket without
	// Config.MultiBuffer, or is empty.
	ErrInvalidPacket = errors.New("invalid packet descriptors")
	// ErrNoFrames: the socket's pool has not enough free frames for
	// WritePacket.
	ErrNoFrames = errors.New("not enough free UMEM frames")
)

// Preallocated, so the transmit path does not allocate its errors.
var (
	errEmptyPacket      = fmt.Errorf("afxdp: no descriptors: %w", ErrInvalidPacket)
	errIncomplete       = fmt.Errorf("afxdp: last descriptor has XDP_PKT_CONTD: the packet does not end: %w", ErrInvalidPacket)
	errNeedMultiBuffer  = &descError{"packet of several descriptors (XDP_PKT_CONTD) on a socket without Config.MultiBuffer", nil}
	errTooManyFrames    = fmt.Errorf("afxdp: more descriptors in one packet than the kernel takes (Socket.MaxPacketFrames): %w", ErrPacketTooLong)
	errLongerThanTXRing = fmt.Errorf("afxdp: packet has more descriptors than the TX ring has slots: %w", ErrPacketTooLong)
	errPacketTooLong    = fmt.Errorf("afxdp: %w", ErrPacketTooLong)
	errNoFrames         = fmt.Errorf("afxdp: %w", ErrNoFrames)
)

// NextPacket returns how many descriptors at the front of descs make up
// the first packet: up to and including the first one without
// XDP_PKT_CONTD. It returns 0 when descs is empty or ends before the
// packet does.
func NextPacket(descs []Desc) int {
	for i := range descs {
		if descs[i].Options&PktContd == 0 {
			return i + 1
		}
	}
	return 0
}

// Packets iterates over the packets in descs, yielding the descriptors of
// each. A trailing incomplete packet (its last descriptor has
// XDP_PKT_CONTD) is not yielded; [Socket.ReceivePackets] never returns
// one. It does not allocate.
//
//	n, _ := sock.ReceivePackets(descs)
//	for pkt := range afxdp.Packets(descs[:n]) {
//		size := afxdp.PacketLen(pkt)
//		...
//	}
//	sock.Release(descs[:n])
func Packets(descs []Desc) iter.Seq[[]Desc] {
	return func(yield func([]Desc) bool) {
		for len(descs) > 0 {
			n := NextPacket(descs)
			if n == 0 || !yield(descs[:n:n]) {
				return
			}
			descs = descs[n:]
		}
	}
}

// PacketLen returns the length in bytes of the packet made of descs: the
// sum of their lengths.
func PacketLen(descs []Desc) int {
	n := 0
	for i := range descs {
		n += int(descs[i].Len)
	}
	return n
}

// wholePackets returns how many descriptors at the front of descs make up
// complete packets.
func wholePackets(descs []Desc) int {
	for i := len(descs) - 1; i >= 0; i-- {
		if descs[i].Options&PktContd == 0 {
			return i + 1
		}
	}
	return 0
}

// ReceivePackets is Receive that takes whole packets only: descs[:n] ends
// with the last descriptor of a packet. When descs is too short for all
// the packets waiting, the first packet that does not fit stays on the RX
// ring for the next call. When it is too short for even the first, that
// packet is dropped (its frames go back to the pool, Stats.RXTooLong
// counts it) and ReceivePackets returns 0 and [ErrPacketTooLong], so the
// queue never sticks; MaxPacketFrames descriptors hold any packet. Walk
// the packets with [Packets] or [NextPacket]. On a socket without
// MultiBuffer every descriptor is a packet, and ReceivePackets is
// Receive. It never blocks and does not allocate.
func (s *Socket) ReceivePackets(descs []Desc) (int, error) { return s.receivePackets(descs) }

// CopyPacket gathers the bytes of descs (a packet's descriptors, or any
// received ones) into dst, in order, and returns how many bytes it
// copied: at most len(dst). Compare with PacketLen to know whether dst
// held the whole packet. It does not allocate.
func (s *Socket) CopyPacket(dst []byte, descs []Desc) int {
	n := 0
	for i := range descs {
		if n == len(dst) {
			break
		}
		n += copy(dst[n:], s.Frame(descs[i]))
	}
	return n
}

// WritePacket copies pkt into as many frames from the socket's pool as it
// needs, describes them in descs (chained with XDP_PKT_CONTD) and returns
// how many it used. Each frame is filled to its full size (less
// umem.TXMetadataLen on a UMEM with TX metadata, which every descriptor
// leaves free in front of its data). The frames
// belong to the caller until it transmits them (TransmitPacket) or
// releases them. More than one frame needs Config.MultiBuffer. If descs
// is too short (ErrPacketTooLong) or the pool has too few free frames
// (ErrNoFrames), it takes none. It does not allocate.
func (s *Socket) WritePacket(descs []Desc, pkt []byte) (int, error) { return s.writePacket(descs, pkt) }

// TransmitPacket sends one packet made of the frames of descs, in order:
// it sets XDP_PKT_CONTD in the Options of every descriptor but the last
// (and clears it in the last), then puts them all on the TX ring at once,
// or, when the ring has not enough free slots, none. sent reports which;
// a packet not sent stays the caller's, to retry. As with Transmit, the
// frames belong to the kernel once sent, until the completion ring
// returns them, and a ring that stays full for Config.TXStallTimeout
// gives ErrTXStalled. A packet the kernel would drop without completing
// its frames is refused with ErrInvalidPacket or ErrPacketTooLong. It
// does not allocate.
func (s *Socket) TransmitPacket(descs []Desc) (sent bool, err error) {
	if len(descs) == 0 {
		return false, errEmptyPacket
	}
	for i := range descs[:len(descs)-1] {
		descs[i].Options |= PktContd
	}
	descs[len(descs)-1].Options &^= PktContd
	n, err := s.TransmitPackets(descs)
	return n == len(descs), err
}

// TransmitPackets sends the whole packets at the front of descs, whose
// descriptors are already chained with XDP_PKT_CONTD (received ones, or
// from WritePacket), and returns how many descriptors it took: always the
// descriptors of whole packets, never part of one. When the TX ring has
// room for only some packets it takes those; the rest stay the caller's.
// If the first packet not taken is invalid (see TransmitPacket), or
// descs ends in the middle of a packet, n counts the packets before it
// and err says what is wrong with it. It is Transmit, which on a
// MultiBuffer socket always works this way. It does not allocate.
func (s *Socket) TransmitPackets(descs []Desc) (n int, err error) {
	if len(descs) == 0 {
		return 0, errEmptyPacket
	}
	return s.Transmit(descs)
}
