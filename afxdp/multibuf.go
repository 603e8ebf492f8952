//go:build linux

// # Multi-buffer packets
//
// With Config.MultiBuffer (bind flag XDP_USE_SG, Linux 6.6+) a packet
// larger than one UMEM frame, such as a 9000-byte jumbo frame with
// 4096-byte frames, is received as several descriptors, one per frame, one
// after the other on the RX ring. Every descriptor of a packet but the last
// has XDP_PKT_CONTD set in its Options; a packet of one descriptor has no
// flag, as without MultiBuffer. In copy mode the kernel fills each frame up
// to its size less 256 bytes of headroom and Options.Headroom: 3840 bytes
// of a 4096-byte frame, 1792 of a 2048-byte one, so a 9014-byte frame
// takes 3 or 6 descriptors.
//
// The rules, from the kernel's side (Documentation/networking/af_xdp.rst)
// and from this package's:
//
//   - The kernel puts all descriptors of a packet on the RX ring at once,
//     or none: when the RX ring or the fill ring lacks room for all of
//     them it drops the packet (Stats.RXRingFull, Stats.RXDropped).
//   - [Socket.ReceivePackets] takes whole packets only. When the caller's
//     slice ends in the middle of a packet, that packet stays on the ring
//     for the next call; a packet too long for the whole slice is dropped
//     and reported with [ErrPacketTooLong] (and Stats.RXTooLong), so the
//     queue never sticks. [Socket.Receive] counts descriptors, not
//     packets, and may end a batch in the middle of a packet, whose rest
//     then opens the next batch; use ReceivePackets on multi-buffer
//     sockets.
//   - [NextPacket], [Packets], [PacketLen] and [Socket.CopyPacket] find
//     packets in a batch and gather their bytes; none of them allocates.
//   - A packet's frames are ordinary UMEM frames: Release, Frame and the
//     frame accounting work per descriptor, as always.
//   - To send, [Socket.WritePacket] spreads bytes over frames from the
//     socket's pool and chains their descriptors; [Socket.TransmitPacket]
//     puts one packet's descriptors on the TX ring all together or not at
//     all, and [Socket.TransmitPackets] sends the whole packets at the
//     front of an already chained batch (a received one, to reflect it).
//     On a MultiBuffer socket [Socket.Transmit] is TransmitPackets: it
//     never puts part of a packet on the ring, which the kernel would
//     hold without completing its frames and glue the next descriptors
//     onto, whatever packet they belong to.
//   - The kernel drops a packet with an invalid descriptor (zero length,
//     crossing its frame's end, outside the UMEM, unknown Options bits) or
//     with more descriptors than it supports (CONFIG_MAX_SKB_FRAGS+1 in
//     copy mode, 18 with the smallest configuration; the driver's
//     NETDEV_A_DEV_XDP_ZC_MAX_SEGS in zero-copy mode), and counts its
//     descriptors in Stats.TXInvalidDescs. af_xdp.rst says their frames
//     are not completed; Linux 6.18 does return them through the
//     completion ring. Transmit checks for all of that first and refuses
//     such a packet ([ErrInvalidPacket], [ErrPacketTooLong]) instead of
//     having it silently dropped.
//   - In driver mode the XDP program must declare fragment support
//     (BPF_F_XDP_HAS_FRAGS) to see jumbo frames at all: veth, for one,
//     refuses to attach a program without it above an MTU of about 3500.
//     The private program does when MultiBuffer is set
//     (redirect.Options.MultiBuffer). In generic mode the kernel
//     linearizes a jumbo frame for a program without it; a MultiBuffer
//     socket still gets the frame in several descriptors, a socket without
//     MultiBuffer drops it (Stats.RXDropped).
//   - Sockets that share a UMEM inherit the first socket's XDP_USE_SG:
//     give them all the same MultiBuffer setting.
package afxdp

import (
	"errors"
	"fmt"
	"iter"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/sys"
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
	ErrPacketTooLong = errors.New("afxdp: multi-buffer packet has too many descriptors")
	// ErrInvalidPacket: a packet to transmit has a descriptor the kernel
	// would refuse (zero length, crossing its frame's end, outside the
	// UMEM, Options bits other than XDP_PKT_CONTD), ends without a last
	// descriptor, has several descriptors on a socket without
	// Config.MultiBuffer, or is empty.
	ErrInvalidPacket = errors.New("afxdp: invalid packet descriptors")
	// ErrNoFrames: the socket's pool has not enough free frames for
	// WritePacket.
	ErrNoFrames = errors.New("afxdp: not enough free UMEM frames")
)

// Preallocated, so the transmit path does not allocate its errors.
var (
	errEmptyPacket      = fmt.Errorf("no descriptors: %w", ErrInvalidPacket)
	errIncomplete       = fmt.Errorf("last descriptor has XDP_PKT_CONTD: the packet does not end: %w", ErrInvalidPacket)
	errNeedMultiBuffer  = &descError{"packet of several descriptors (XDP_PKT_CONTD) on a socket without Config.MultiBuffer", nil}
	errTooManyFrames    = fmt.Errorf("more descriptors in one packet than the kernel takes (Socket.MaxPacketFrames): %w", ErrPacketTooLong)
	errLongerThanTXRing = fmt.Errorf("packet has more descriptors than the TX ring has slots: %w", ErrPacketTooLong)
)

// NextPacket returns how many descriptors at the front of descs make up
// the first packet: up to and including the first one without
// XDP_PKT_CONTD. It returns 0 when descs is empty or ends before the
// packet does.
func NextPacket(descs []unix.XDPDesc) int {
	for i := range descs {
		if descs[i].Options&unix.XDP_PKT_CONTD == 0 {
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
func Packets(descs []unix.XDPDesc) iter.Seq[[]unix.XDPDesc] {
	return func(yield func([]unix.XDPDesc) bool) {
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
func PacketLen(descs []unix.XDPDesc) int {
	n := 0
	for i := range descs {
		n += int(descs[i].Len)
	}
	return n
}

// wholePackets returns how many descriptors at the front of descs make up
// complete packets.
func wholePackets(descs []unix.XDPDesc) int {
	for i := len(descs) - 1; i >= 0; i-- {
		if descs[i].Options&unix.XDP_PKT_CONTD == 0 {
			return i + 1
		}
	}
	return 0
}

// CopyPacket gathers the bytes of descs (a packet's descriptors, or any
// received ones) into dst, in order, and returns how many bytes it
// copied: at most len(dst). Compare with PacketLen to know whether dst
// held the whole packet. It does not allocate.
func (s *Socket) CopyPacket(dst []byte, descs []unix.XDPDesc) int {
	n := 0
	for i := range descs {
		if n == len(dst) {
			break
		}
		n += copy(dst[n:], s.Frame(descs[i]))
	}
	return n
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
func (s *Socket) ReceivePackets(descs []unix.XDPDesc) (int, error) {
	s.pool.Lock()
	defer s.pool.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	// Look at the waiting descriptors without taking them, then take the
	// whole packets among them: the ring only grows meanwhile, as nobody
	// else consumes it.
	idx, got := s.rx.Peek(uint32(len(descs)))
	for i := range got {
		descs[i] = *s.rx.Desc(idx + i)
	}
	n := uint32(wholePackets(descs[:got]))
	s.rx.Unpeek(got)
	if n == 0 && got > 0 && got == uint32(len(descs)) {
		s.dropPacketLocked()
		s.receiveLocked(descs[:0]) // still restock the fill ring
		return 0, ErrPacketTooLong
	}
	// n == 0 with got < len(descs) cannot happen, as the kernel publishes
	// whole packets; receiveLocked(descs[:0]) then restocks and wakes as usual.
	return s.receiveLocked(descs[:n]), nil
}

// dropPacketLocked takes the packet at the head of the RX ring off it and
// gives its frames back to the pool.
func (s *Socket) dropPacketLocked() {
	for range s.rx.Size() {
		idx, got := s.rx.Peek(1)
		if got == 0 {
			break
		}
		d := *s.rx.Desc(idx)
		s.rx.Release(1)
		s.pool.ReclaimLocked([]unix.XDPDesc{d})
		if d.Options&unix.XDP_PKT_CONTD == 0 {
			break
		}
	}
	s.stats.RXTooLong++
}

// WritePacket copies pkt into as many frames from the socket's pool as it
// needs, describes them in descs (chained with XDP_PKT_CONTD) and returns
// how many it used. Each frame is filled to its full size. The frames
// belong to the caller until it transmits them (TransmitPacket) or
// releases them. More than one frame needs Config.MultiBuffer. If descs
// is too short (ErrPacketTooLong) or the pool has too few free frames
// (ErrNoFrames), it takes none. It does not allocate.
func (s *Socket) WritePacket(descs []unix.XDPDesc, pkt []byte) (int, error) {
	s.pool.Lock()
	defer s.pool.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	if len(pkt) == 0 {
		return 0, errEmptyPacket
	}
	fs := int(s.umem.FrameSize())
	n := (len(pkt) + fs - 1) / fs
	switch {
	case n > 1 && !s.cfg.MultiBuffer:
		return 0, errNeedMultiBuffer
	case n > len(descs):
		return 0, ErrPacketTooLong
	case n > s.pool.FreeFramesLocked():
		return 0, ErrNoFrames
	}
	for i := range n {
		addr, _ := s.pool.AllocLocked() // cannot fail: enough frames are free
		chunk := pkt[i*fs : min((i+1)*fs, len(pkt))]
		copy(s.x.Frame(addr), chunk)
		descs[i] = unix.XDPDesc{Addr: addr, Len: uint32(len(chunk)), Options: unix.XDP_PKT_CONTD}
	}
	descs[n-1].Options = 0
	return n, nil
}

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
func (s *Socket) TransmitPacket(descs []unix.XDPDesc) (sent bool, err error) {
	if len(descs) == 0 {
		return false, errEmptyPacket
	}
	for i := range descs[:len(descs)-1] {
		descs[i].Options |= unix.XDP_PKT_CONTD
	}
	descs[len(descs)-1].Options &^= unix.XDP_PKT_CONTD
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
func (s *Socket) TransmitPackets(descs []unix.XDPDesc) (n int, err error) {
	if len(descs) == 0 {
		return 0, errEmptyPacket
	}
	return s.Transmit(descs)
}

// checkPackets returns how many descriptors at the front of descs form
// complete packets of at most MaxPacketFrames (and TX ring size)
// descriptors, and, if that is not all of them, why the next packet is
// not one. Transmit checks each descriptor itself.
func (s *Socket) checkPackets(descs []unix.XDPDesc) (whole int, bad error) {
	start := 0
	for i := range descs {
		if i-start+1 > s.maxFrags {
			if s.maxFrags == int(s.tx.Size()) {
				return start, errLongerThanTXRing
			}
			return start, errTooManyFrames
		}
		if descs[i].Options&unix.XDP_PKT_CONTD == 0 {
			start = i + 1
		}
	}
	if start < len(descs) {
		return start, errIncomplete
	}
	return start, nil
}

// multiBufferBindError explains a bind error caused by XDP_USE_SG in
// flags, or returns nil if err is not one. Kernels before 6.6 reject the
// unknown flag with EINVAL; zero-copy drivers without multi-buffer support
// (NETDEV_A_DEV_XDP_ZC_MAX_SEGS of 1) answer EOPNOTSUPP.
func multiBufferBindError(flags uint16, err error) error {
	if flags&unix.XDP_USE_SG == 0 {
		return nil
	}
	const hint = "multi-buffer AF_XDP needs Linux 6.6+ and driver support (bind flag XDP_USE_SG, Config.MultiBuffer)"
	switch {
	case errors.Is(err, unix.EOPNOTSUPP) && flags&unix.XDP_ZEROCOPY != 0:
		return fmt.Errorf("%w; with MultiBuffer it must support zero-copy multi-buffer too: %w", ErrZeroCopyNotSupported, err)
	case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EINVAL) && sys.KernelBefore(6, 6):
		return fmt.Errorf("%s: %w: %w", hint, ErrNotSupported, err)
	}
	return nil
}
