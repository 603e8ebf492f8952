package gen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/xdpkit/xdpkit/packet"
)

// ErrInvalidTemplate is wrapped by every error of NewBuilder.
var ErrInvalidTemplate = errors.New("gen: invalid template")

// Proto is the kind of packet a Builder writes.
type Proto uint8

// The protocols.
const (
	UDP      Proto = iota // UDP datagrams, the stamp in their payload
	TCPSYN                // TCP SYN segments, the sequence number in the TCP sequence field
	ICMPEcho              // ICMP (or ICMPv6) echo requests, the stamp in their payload
)

func (p Proto) String() string {
	switch p {
	case UDP:
		return "udp"
	case TCPSYN:
		return "tcp-syn"
	case ICMPEcho:
		return "icmp"
	}
	return fmt.Sprintf("Proto(%d)", uint8(p))
}

// ParseProto reads "udp", "tcp-syn" or "icmp".
func ParseProto(s string) (Proto, error) {
	for _, p := range []Proto{UDP, TCPSYN, ICMPEcho} {
		if s == p.String() {
			return p, nil
		}
	}
	return 0, fmt.Errorf("gen: unknown protocol %q: want udp, tcp-syn or icmp", s)
}

// FlowBy is what varies between a Template's flows.
type FlowBy uint8

// The ways flows differ.
const (
	FlowSrcPort FlowBy = iota // source port (ICMP: the echo identifier)
	FlowSrcAddr               // source address (its last 32 bits)
	FlowBoth                  // both
)

// IMIX is the simple IMIX pattern: 7 frames of 64 bytes, 4 of 576 and 1
// of 1500 in every 12, interleaved.
var IMIX = []int{64, 576, 64, 64, 576, 64, 1500, 64, 576, 64, 64, 576}

// StampLen is the size of the stamp a Builder writes at the start of a
// UDP or ICMP payload: a magic word, a sequence number and a send time.
const StampLen = 20

// stampMagic ("XDG1") marks a stamp.
const stampMagic = 0x58444731

// Template describes the frames a Builder writes.
type Template struct {
	SrcMAC, DstMAC net.HardwareAddr
	// Src and Dst are the first flow's addresses, both IPv4 or both
	// IPv6.
	Src, Dst netip.Addr
	// SrcPort and DstPort are the first flow's ports (UDP, TCP); an ICMP
	// echo's identifier is SrcPort.
	SrcPort, DstPort uint16
	Proto            Proto
	// VLAN tags the frames with this 802.1Q VLAN id; 0: untagged.
	VLAN uint16
	// Sizes are the frames' lengths in bytes, without the FCS (what a
	// descriptor and the interface's byte counters count), used in turn;
	// nil means 64. [IMIX] is the simple IMIX. A frame of TCP SYN longer
	// than the segment is padded after the IP packet, like a short frame
	// on the wire.
	Sizes []int
	// Flows is how many flows the frames rotate through, 0 or 1 for one;
	// FlowBy says what differs between them. Flow f adds f to the source
	// port (wrapping, skipping 0) and/or the source address.
	Flows  int
	FlowBy FlowBy
	// TTL is the IPv4 TTL or IPv6 hop limit; 0 means 64.
	TTL uint8
	// ChecksumOffload leaves the UDP or TCP checksum to the kernel or the
	// NIC (TX metadata, afxdp.Socket.RequestTXChecksum): the checksum
	// field holds only the pseudo-header's sum, as the offload wants,
	// and stamps and flows do not touch it. Not for ICMP.
	ChecksumOffload bool
}

// MaxFrameLen is the largest frame a Builder writes.
const MaxFrameLen = 9216

// Builder writes a Template's frames. It is safe for concurrent use: it
// holds no state that Build changes.
type Builder struct {
	t       Template
	v6      bool
	l3Off   int // start of the IP header
	l4Off   int // start of the L4 header
	stamp   int // where the stamp starts; 0 for none (TCP SYN)
	hdrEnd  int // end of the headers and stamp: what Build copies
	csumOff int // the L4 checksum's offset
	minLen  int // the shortest frame the headers fit in
	tpls    [][]byte
	sizeIdx []int // Sizes[i] -> index into tpls
	flows   int
}

// NewBuilder checks t and prepares a header template per frame size.
func NewBuilder(t Template) (*Builder, error) {
	bad := func(format string, args ...any) (*Builder, error) {
		return nil, fmt.Errorf("%w: %s", ErrInvalidTemplate, fmt.Sprintf(format, args...))
	}
	if len(t.SrcMAC) != 6 || len(t.DstMAC) != 6 {
		return bad("source and destination MAC addresses must be 6 bytes (have %d and %d)", len(t.SrcMAC), len(t.DstMAC))
	}
	if !t.Src.IsValid() || !t.Dst.IsValid() {
		return bad("source and destination addresses are required")
	}
	t.Src, t.Dst = t.Src.Unmap(), t.Dst.Unmap()
	if t.Src.Is4() != t.Dst.Is4() {
		return bad("source %s and destination %s are not of one family", t.Src, t.Dst)
	}
	if t.VLAN > 4094 {
		return bad("VLAN id %d: want 1 to 4094 (0: untagged)", t.VLAN)
	}
	if t.Proto > ICMPEcho {
		return bad("unknown protocol %d", t.Proto)
	}
	if t.Flows < 0 || t.Flows > 1<<24 {
		return bad("%d flows: want 1 to %d", t.Flows, 1<<24)
	}
	if t.Flows == 0 {
		t.Flows = 1
	}
	if t.FlowBy > FlowBoth {
		return bad("unknown FlowBy %d", t.FlowBy)
	}
	if t.Proto != ICMPEcho && t.SrcPort == 0 || t.Proto != ICMPEcho && t.DstPort == 0 {
		return bad("%s needs source and destination ports", t.Proto)
	}
	if t.TTL == 0 {
		t.TTL = 64
	}
	if t.ChecksumOffload && t.Proto == ICMPEcho {
		return bad("checksum offload is for UDP and TCP; ICMP checksums are computed")
	}
	if len(t.Sizes) == 0 {
		t.Sizes = []int{64}
	}
	t.Sizes = append([]int(nil), t.Sizes...)
	b := &Builder{t: t, v6: t.Src.Is6(), flows: t.Flows}
	b.l3Off = 14
	if t.VLAN != 0 {
		b.l3Off += 4
	}
	ipLen := 20
	if b.v6 {
		ipLen = 40
	}
	b.l4Off = b.l3Off + ipLen
	switch t.Proto {
	case UDP:
		b.csumOff, b.stamp = b.l4Off+6, b.l4Off+8
		b.hdrEnd = b.stamp + StampLen
	case ICMPEcho:
		b.csumOff, b.stamp = b.l4Off+2, b.l4Off+8
		b.hdrEnd = b.stamp + StampLen
	case TCPSYN:
		b.csumOff, b.hdrEnd = b.l4Off+16, b.l4Off+20
	}
	b.minLen = max(b.hdrEnd, 60)
	if t.Proto != TCPSYN {
		b.minLen = max(b.stamp, 60) // the stamp is written only where it fits
	}
	seen := map[int]int{}
	for _, n := range t.Sizes {
		if n < b.minLen || n > MaxFrameLen {
			return bad("frame size %d: %s over %s with these headers takes %d to %d bytes", n, t.Proto, family(b.v6), b.minLen, MaxFrameLen)
		}
		k, ok := seen[n]
		if !ok {
			k = len(b.tpls)
			seen[n] = k
			b.tpls = append(b.tpls, b.header(n))
		}
		b.sizeIdx = append(b.sizeIdx, k)
	}
	return b, nil
}

func family(v6 bool) string {
	if v6 {
		return "IPv6"
	}
	return "IPv4"
}

// Template returns the template, with its defaults filled in.
func (b *Builder) Template() Template { return b.t }

// Period is the number of frames after which the pattern of flows and
// sizes repeats.
func (b *Builder) Period() int { return lcm(b.flows, len(b.t.Sizes)) }

// MeanSize is the mean frame length over a period, for turning a bit
// rate into a frame rate.
func (b *Builder) MeanSize() float64 {
	s := 0
	for _, n := range b.t.Sizes {
		s += n
	}
	return float64(s) / float64(len(b.t.Sizes))
}

// Size returns the length of frame i.
func (b *Builder) Size(i uint64) int { return b.t.Sizes[i%uint64(len(b.t.Sizes))] }

// Flow returns the flow of frame i.
func (b *Builder) Flow(i uint64) int { return int(i % uint64(b.flows)) }

func lcm(a, b int) int {
	x, y := a, b
	for y != 0 {
		x, y = y, x%y
	}
	return a / x * b
}

// ipLenOf is the IP packet's length in a frame of n bytes.
func (b *Builder) ipLenOf(n int) int {
	if b.t.Proto == TCPSYN {
		return b.hdrEnd - b.l3Off // a bare SYN; the rest of the frame is padding
	}
	return n - b.l3Off
}

// header builds flow 0's headers and zero stamp for a frame of n bytes.
func (b *Builder) header(n int) []byte {
	t := &b.t
	h := make([]byte, min(b.hdrEnd, n))
	full := make([]byte, b.hdrEnd) // written whole, then cut to the frame
	copy(full[0:], t.DstMAC)
	copy(full[6:], t.SrcMAC)
	off := 12
	if t.VLAN != 0 {
		binary.BigEndian.PutUint16(full[12:], packet.EtherTypeVLAN)
		binary.BigEndian.PutUint16(full[14:], t.VLAN)
		off = 16
	}
	ipLen := b.ipLenOf(n)
	l4Len := ipLen - (b.l4Off - b.l3Off)
	var proto uint8
	switch t.Proto {
	case UDP:
		proto = 17
	case TCPSYN:
		proto = 6
	case ICMPEcho:
		proto = 1
		if b.v6 {
			proto = 58
		}
	}
	ip := full[b.l3Off:]
	if b.v6 {
		binary.BigEndian.PutUint16(full[off:], packet.EtherTypeIPv6)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(l4Len))
		ip[6], ip[7] = proto, t.TTL
		s, d := t.Src.As16(), t.Dst.As16()
		copy(ip[8:], s[:])
		copy(ip[24:], d[:])
	} else {
		binary.BigEndian.PutUint16(full[off:], packet.EtherTypeIPv4)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(ipLen))
		ip[6] = 0x40 // don't fragment
		ip[8], ip[9] = t.TTL, proto
		s, d := t.Src.As4(), t.Dst.As4()
		copy(ip[12:], s[:])
		copy(ip[16:], d[:])
		binary.BigEndian.PutUint16(ip[10:], packet.IPv4HeaderChecksum(ip[:20]))
	}
	l4 := full[b.l4Off:]
	switch t.Proto {
	case UDP:
		binary.BigEndian.PutUint16(l4[0:], t.SrcPort)
		binary.BigEndian.PutUint16(l4[2:], t.DstPort)
		binary.BigEndian.PutUint16(l4[4:], uint16(l4Len))
	case TCPSYN:
		binary.BigEndian.PutUint16(l4[0:], t.SrcPort)
		binary.BigEndian.PutUint16(l4[2:], t.DstPort)
		l4[12] = 5 << 4
		l4[13] = 0x02 // SYN
		binary.BigEndian.PutUint16(l4[14:], 65535)
	case ICMPEcho:
		l4[0] = 8
		if b.v6 {
			l4[0] = 128
		}
		binary.BigEndian.PutUint16(l4[4:], t.SrcPort)
	}
	if b.stamp != 0 && b.stamp+StampLen <= n {
		binary.BigEndian.PutUint32(full[b.stamp:], stampMagic)
	}
	// The L4 checksum over the headers and the stamp; the payload after
	// them is zeros, which add nothing.
	var sum uint32
	if !(t.Proto == ICMPEcho && !b.v6) { // ICMPv4 has no pseudo-header
		sum = packet.PseudoHeaderSum(t.Src, t.Dst, proto, l4Len)
	}
	end := min(b.hdrEnd, b.l3Off+ipLen)
	var cs uint16
	if t.ChecksumOffload {
		cs = packet.Fold(sum) // the offload adds the segment to it and complements
	} else {
		cs = packet.Checksum(full[b.l4Off:end], sum)
		if cs == 0 && t.Proto == UDP {
			cs = 0xffff // 0 means "no checksum" in UDP
		}
	}
	binary.BigEndian.PutUint16(full[b.csumOff:], cs)
	copy(h, full)
	return h
}

// Build writes frame i into buf and returns its length: flow i%Flows,
// size Sizes[i%len(Sizes)], its stamp (if it has room for one) with
// sequence number 0 and time 0. clean says that buf holds a frame this
// Builder wrote before (its bytes past the headers are still zero), so
// only the headers are written; otherwise the whole frame is. buf must
// hold Size(i) bytes.
func (b *Builder) Build(buf []byte, i uint64, clean bool) int {
	k := b.sizeIdx[i%uint64(len(b.sizeIdx))]
	n := b.t.Sizes[i%uint64(len(b.t.Sizes))]
	tpl := b.tpls[k]
	buf = buf[:n]
	copy(buf, tpl)
	if !clean {
		clear(buf[len(tpl):])
	}
	if f := b.Flow(i); f != 0 {
		b.setFlow(buf, f)
	}
	return n
}

// setFlow turns flow 0's headers in frame into flow f's.
func (b *Builder) setFlow(frame []byte, f int) {
	t := &b.t
	csum := binary.BigEndian.Uint16(frame[b.csumOff:])
	if t.FlowBy == FlowSrcPort || t.FlowBy == FlowBoth {
		portOff := b.l4Off // UDP/TCP source port, ICMP identifier at +4
		if t.Proto == ICMPEcho {
			portOff += 4
		}
		p := uint16((int(t.SrcPort)-1+f)%65535 + 1) // 1..65535
		old := binary.BigEndian.Uint16(frame[portOff:])
		binary.BigEndian.PutUint16(frame[portOff:], p)
		if !t.ChecksumOffload { // the port is not in the pseudo-header
			csum = packet.UpdateChecksum16(csum, old, p)
		}
	}
	if t.FlowBy == FlowSrcAddr || t.FlowBy == FlowBoth {
		addrOff := b.l3Off + 12
		if b.v6 {
			addrOff = b.l3Off + 8 + 12 // the last 32 bits of the source
		}
		old := binary.BigEndian.Uint32(frame[addrOff:])
		nw := old + uint32(f)
		binary.BigEndian.PutUint32(frame[addrOff:], nw)
		if !b.v6 {
			ipc := binary.BigEndian.Uint16(frame[b.l3Off+10:])
			binary.BigEndian.PutUint16(frame[b.l3Off+10:], packet.UpdateChecksum32(ipc, old, nw))
		}
		switch {
		case t.ChecksumOffload:
			// The field is the (uncomplemented) pseudo-header sum: add
			// the new address's words, take the old ones away.
			csum = ^packet.UpdateChecksum32(^csum, old, nw)
		case !(t.Proto == ICMPEcho && !b.v6):
			csum = packet.UpdateChecksum32(csum, old, nw)
		}
	}
	if csum == 0 && t.Proto == UDP && !t.ChecksumOffload {
		csum = 0xffff
	}
	binary.BigEndian.PutUint16(frame[b.csumOff:], csum)
}

// ChecksumFields returns where a frame's L4 checksum coverage starts and
// where its checksum field is, relative to that start: what
// afxdp.Socket.RequestTXChecksum takes for a Template with
// ChecksumOffload.
func (b *Builder) ChecksumFields() (start, offset uint16) {
	return uint16(b.l4Off), uint16(b.csumOff - b.l4Off)
}

// HasStamp reports whether frame i has room for a stamp.
func (b *Builder) HasStamp(i uint64) bool {
	return b.stamp != 0 && b.stamp+StampLen <= b.Size(i)
}

// Stamp writes seq and ts into a frame Build wrote (its stamp, or for TCP
// SYN the sequence number's low 32 bits in the TCP header) and updates
// the L4 checksum. A frame without room for a stamp is left as it is.
func (b *Builder) Stamp(frame []byte, seq uint64, ts int64) {
	if b.t.Proto == TCPSYN {
		off := b.l4Off + 4
		old := binary.BigEndian.Uint32(frame[off:])
		binary.BigEndian.PutUint32(frame[off:], uint32(seq))
		if !b.t.ChecksumOffload {
			cs := packet.UpdateChecksum32(binary.BigEndian.Uint16(frame[b.csumOff:]), old, uint32(seq))
			binary.BigEndian.PutUint16(frame[b.csumOff:], cs)
		}
		return
	}
	off := b.stamp + 4
	if b.stamp == 0 || len(frame) < off+16 {
		return
	}
	if b.t.ChecksumOffload {
		binary.BigEndian.PutUint64(frame[off:], seq)
		binary.BigEndian.PutUint64(frame[off+8:], uint64(ts))
		return
	}
	cs := binary.BigEndian.Uint16(frame[b.csumOff:])
	for k, v := range [4]uint32{uint32(seq >> 32), uint32(seq), uint32(uint64(ts) >> 32), uint32(ts)} {
		o := off + 4*k
		old := binary.BigEndian.Uint32(frame[o:])
		binary.BigEndian.PutUint32(frame[o:], v)
		cs = packet.UpdateChecksum32(cs, old, v)
	}
	if cs == 0 && b.t.Proto == UDP {
		cs = 0xffff
	}
	binary.BigEndian.PutUint16(frame[b.csumOff:], cs)
}

// ReadStamp finds the stamp in a UDP or ICMP frame, such as a reply a
// reflector sent back: it returns the sequence number and send time, and
// ok false when the frame carries none. It allocates nothing.
func ReadStamp(frame []byte, h *packet.Headers) (seq uint64, ts int64, ok bool) {
	if packet.Parse(frame, h) != nil || h.PayloadOff == 0 || h.Fragment {
		return 0, 0, false
	}
	if h.IPProto != 17 && h.IPProto != 1 && h.IPProto != 58 {
		return 0, 0, false
	}
	off := h.PayloadOff
	if h.IPProto != 17 {
		// An echo request or reply: the data follows the identifier and
		// sequence number.
		if t := h.ICMPType; !(h.IPProto == 1 && (t == 0 || t == 8) || h.IPProto == 58 && (t == 128 || t == 129)) {
			return 0, 0, false
		}
		off = h.L4Off + 8
	}
	end := h.L3Off + h.IPLen
	if end > len(frame) || off+StampLen > end {
		return 0, 0, false
	}
	p := frame[off:]
	if binary.BigEndian.Uint32(p) != stampMagic {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(p[4:]), int64(binary.BigEndian.Uint64(p[12:])), true
}

// ParseSizes reads "64", "64,576,1500" or "imix".
func ParseSizes(s string) ([]int, error) {
	if s == "imix" {
		return append([]int(nil), IMIX...), nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		var n int
		if _, err := fmt.Sscan(f, &n); err != nil || n <= 0 {
			return nil, fmt.Errorf("gen: frame size %q: want a number of bytes, a comma-separated list, or imix", f)
		}
		out = append(out, n)
	}
	return out, nil
}
