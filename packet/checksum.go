package packet

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// The Internet checksum (RFC 1071) is the one's complement of the one's
// complement sum of a message's 16-bit big-endian words. The helpers here
// work on partial sums: a uint32 that [Sum] adds words to and [Fold]
// reduces to 16 bits, so a checksum can be built from pieces (a
// pseudo-header, then a segment) and updated in place (RFC 1624) without
// touching the rest of the packet. None of them allocates.

// Sum adds the bytes of b, read as big-endian 16-bit words, to the partial
// sum and returns the new partial sum, which may be passed to Sum again or
// to [Fold]. An odd trailing byte is padded with a zero byte, so only the
// last piece of a message may have an odd length.
func Sum(b []byte, sum uint32) uint32 {
	// One's complement addition is addition modulo 0xffff, and 2^64 is 1
	// modulo 0xffff, so summing 64-bit words with end-around carry gives
	// the same result as summing 16-bit words, four times faster.
	acc, carry := uint64(sum), uint64(0)
	for len(b) >= 32 {
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[8:]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[16:]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[24:]), carry)
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b), carry)
		b = b[8:]
	}
	if len(b) >= 4 {
		acc, carry = bits.Add64(acc, uint64(binary.BigEndian.Uint32(b)), carry)
		b = b[4:]
	}
	if len(b) >= 2 {
		acc, carry = bits.Add64(acc, uint64(binary.BigEndian.Uint16(b)), carry)
		b = b[2:]
	}
	if len(b) == 1 {
		acc, carry = bits.Add64(acc, uint64(b[0])<<8, carry)
	}
	acc, carry = bits.Add64(acc, 0, carry)
	acc += carry // a carry out left acc at 0: this cannot wrap

	// Fold to 32 bits with end-around carry.
	lo, c := bits.Add32(uint32(acc), uint32(acc>>32), 0)
	return lo + c
}

// Fold reduces a partial sum to 16 bits, adding the carries back in. The
// result is the one's complement sum; the checksum is its complement.
func Fold(sum uint32) uint16 {
	sum = sum>>16 + sum&0xffff
	sum = sum>>16 + sum&0xffff
	return uint16(sum)
}

// Checksum returns the Internet checksum of b with the partial sum initial
// (a pseudo-header's, say, or 0) added in: the complement of the folded
// sum. Over a message that includes a correct checksum it returns 0.
func Checksum(b []byte, initial uint32) uint16 {
	return ^Fold(Sum(b, initial))
}

// IPv4HeaderChecksum returns the checksum the IPv4 header hdr should carry.
// hdr is the whole header, options included (Headers.IPHdrLen bytes, at
// least 20); its checksum field (bytes 10 and 11) is skipped, whatever it
// holds.
func IPv4HeaderChecksum(hdr []byte) uint16 {
	return ^Fold(Sum(hdr[12:], Sum(hdr[:10], 0)))
}

// PseudoHeaderSum returns the partial sum of the pseudo-header that UDP,
// TCP and ICMPv6 checksums cover: for two IPv4 addresses the IPv4 one
// (RFC 768, RFC 9293), otherwise the IPv6 one (RFC 8200 section 8.1),
// with 4-in-6 addresses taken as IPv6. length is the upper-layer length:
// the UDP length, or the bytes from the TCP or ICMPv6 header to the end of
// the IP packet.
func PseudoHeaderSum(src, dst netip.Addr, proto uint8, length int) uint32 {
	// The length and protocol words are the same in both layouts once
	// summed: the IPv6 one has a 32-bit length and a zero-padded next
	// header, whose high words add nothing.
	sum := uint32(proto) + uint32(length)&0xffff + uint32(length)>>16
	if src.Is4() && dst.Is4() {
		s, d := src.As4(), dst.As4()
		sum += uint32(binary.BigEndian.Uint16(s[:])) + uint32(binary.BigEndian.Uint16(s[2:]))
		sum += uint32(binary.BigEndian.Uint16(d[:])) + uint32(binary.BigEndian.Uint16(d[2:]))
		return sum
	}
	s, d := src.As16(), dst.As16()
	return Sum(d[:], Sum(s[:], sum))
}

// l4ChecksumOffset returns where the checksum field is in the L4 header h
// describes, or 0 if the frame has none Parse knows.
func l4ChecksumOffset(h *Headers) int {
	if h.L4Off == 0 {
		return 0
	}
	switch {
	case h.IPProto == ProtoUDP:
		return 6
	case h.IPProto == ProtoTCP:
		return 16
	case h.IPProto == ProtoICMP && h.IPv4, h.IPProto == ProtoICMPv6 && h.IPv6:
		return 2
	}
	return 0
}

// firstFragment reports whether the IP packet h describes is the first
// fragment of a larger datagram (offset 0, more fragments to come): its L4
// checksum covers bytes that are not in the frame. Non-first fragments
// have h.Fragment set instead, and no L4 header.
func firstFragment(frame []byte, h *Headers) bool {
	if h.IPv4 {
		return frame[h.L3Off+6]&0x20 != 0 // MF
	}
	// Walk the extension headers Parse walked, up to the L4 header.
	next, p, end := frame[h.L3Off+6], h.L3Off+40, min(h.L3Off+h.IPHdrLen, len(frame))
	for p+8 <= end {
		switch next {
		case 44:
			return frame[p+3]&1 != 0 // M
		case 0, 43, 60:
			next, p = frame[p], p+8+int(frame[p+1])*8
		default:
			return false
		}
	}
	return false
}

// l4Segment returns the bytes the L4 checksum of the frame h describes
// covers, the offset of the checksum field in them and the pseudo-header
// sum, or ok false if h has no UDP, TCP, ICMP or ICMPv6 header or the
// frame is a fragment (the checksum covers bytes that are not in it).
func l4Segment(frame []byte, h *Headers) (seg []byte, csOff int, pseudo uint32, ok bool) {
	csOff = l4ChecksumOffset(h)
	if csOff == 0 || h.Fragment || firstFragment(frame, h) {
		return nil, 0, 0, false
	}
	end := h.L3Off + h.IPLen
	if end > len(frame) {
		return nil, 0, 0, false // not from Parse
	}
	if h.IPProto == ProtoUDP {
		end = h.L4Off + int(binary.BigEndian.Uint16(frame[h.L4Off+4:]))
	}
	if end > len(frame) || end < h.L4Off+csOff+2 {
		return nil, 0, 0, false // not from Parse
	}
	seg = frame[h.L4Off:end]
	if h.IPProto != ProtoICMP {
		pseudo = PseudoHeaderSum(h.SrcIP, h.DstIP, h.IPProto, len(seg))
	}
	return seg, csOff, pseudo, true
}

// L4Checksum computes the checksum the UDP, TCP, ICMP or ICMPv6 header of
// frame should carry, from the whole segment and, but for ICMP, the
// pseudo-header; the checksum field's current value is skipped. h is what
// [Parse] found in frame. A UDP checksum that computes to 0 is returned as
// 0xffff, as it is sent (0 means "no checksum" in UDP). ok is false, and
// nothing computed, for frames without such a header and for fragments,
// first or not: their checksum covers bytes the frame does not hold.
func L4Checksum(frame []byte, h *Headers) (csum uint16, ok bool) {
	seg, csOff, pseudo, ok := l4Segment(frame, h)
	if !ok {
		return 0, false
	}
	csum = ^Fold(Sum(seg[csOff+2:], Sum(seg[:csOff], pseudo)))
	if csum == 0 && h.IPProto == ProtoUDP {
		csum = 0xffff
	}
	return csum, true
}

// SetL4Checksum recomputes the UDP, TCP, ICMP or ICMPv6 checksum of frame
// in full, as [L4Checksum] does, and writes it. A UDP-over-IPv4 checksum of
// 0 ("none") is left 0. It reports whether frame had a checksum it could
// compute.
func SetL4Checksum(frame []byte, h *Headers) bool {
	csum, ok := L4Checksum(frame, h)
	if !ok {
		return false
	}
	field := frame[h.L4Off+l4ChecksumOffset(h):]
	if h.IPProto == ProtoUDP && h.IPv4 && binary.BigEndian.Uint16(field) == 0 {
		return true
	}
	binary.BigEndian.PutUint16(field, csum)
	return true
}

// SetIPv4Checksum recomputes the IPv4 header checksum of frame and writes
// it. It reports false, and does nothing, if h is not IPv4.
func SetIPv4Checksum(frame []byte, h *Headers) bool {
	if !h.IPv4 || h.L3Off+h.IPHdrLen > len(frame) || h.IPHdrLen < 20 {
		return false
	}
	hdr := frame[h.L3Off : h.L3Off+h.IPHdrLen]
	binary.BigEndian.PutUint16(hdr[10:], IPv4HeaderChecksum(hdr))
	return true
}

// UpdateChecksum16 returns checksum csum updated for a 16-bit word of the
// message changing from old to new, by RFC 1624 equation 3:
// HC' = ~(~HC + ~m + m'). The result equals a full recomputation.
func UpdateChecksum16(csum, old, new uint16) uint16 {
	return ^Fold(uint32(^csum) + uint32(^old) + uint32(new))
}

// UpdateChecksum32 is [UpdateChecksum16] for a 32-bit value (an IPv4
// address, a TCP sequence number) at an even offset.
func UpdateChecksum32(csum uint16, old, new uint32) uint16 {
	sum := uint32(^csum) + uint32(^uint16(old>>16)) + uint32(^uint16(old)) +
		uint32(uint16(new>>16)) + uint32(uint16(new))
	return ^Fold(sum)
}

// UpdateChecksumAddr is [UpdateChecksum16] for an address changing from
// old to new: 4 bytes if both are IPv4, otherwise 16. It updates the IPv4
// header checksum for a change of source or destination address, and the
// UDP, TCP and ICMPv6 checksums, whose pseudo-header holds them.
func UpdateChecksumAddr(csum uint16, old, new netip.Addr) uint16 {
	if old.Is4() && new.Is4() {
		o, n := old.As4(), new.As4()
		return UpdateChecksum32(csum, binary.BigEndian.Uint32(o[:]), binary.BigEndian.Uint32(n[:]))
	}
	// Subtracting a word is adding its complement, four words at a time
	// as in Sum.
	o, n := old.As16(), new.As16()
	acc, c := bits.Add64(uint64(^csum), ^binary.BigEndian.Uint64(o[:]), 0)
	acc, c = bits.Add64(acc, ^binary.BigEndian.Uint64(o[8:]), c)
	acc, c = bits.Add64(acc, binary.BigEndian.Uint64(n[:]), c)
	acc, c = bits.Add64(acc, binary.BigEndian.Uint64(n[8:]), c)
	acc, c = bits.Add64(acc, 0, c)
	acc += c
	lo, c32 := bits.Add32(uint32(acc), uint32(acc>>32), 0)
	return ^Fold(lo + c32)
}

// UpdateL4ChecksumAddr updates the L4 checksum in frame for a change of a
// pseudo-header address (the source or destination IP) from old to new,
// incrementally: the TCP and ICMPv6 checksums always, the UDP checksum
// unless it is 0 over IPv4 ("none"; over IPv6, where UDP always has a
// checksum, a 0 is 0xffff's other form and is updated; a result of 0 is
// written as 0xffff). It does
// nothing for ICMP over IPv4, whose checksum has no pseudo-header, and for
// frames without an L4 header (non-first fragments: the checksum is in the
// first fragment, which is updated like any packet). h is what [Parse]
// found in frame.
func UpdateL4ChecksumAddr(frame []byte, h *Headers, old, new netip.Addr) {
	csOff := l4ChecksumOffset(h)
	if csOff == 0 || h.IPProto == ProtoICMP {
		return
	}
	field := frame[h.L4Off+csOff : h.L4Off+csOff+2]
	csum := binary.BigEndian.Uint16(field)
	if h.IPProto == ProtoUDP {
		if csum == 0 && h.IPv4 {
			return
		}
		if csum = UpdateChecksumAddr(csum, old, new); csum == 0 {
			csum = 0xffff
		}
	} else {
		csum = UpdateChecksumAddr(csum, old, new)
	}
	binary.BigEndian.PutUint16(field, csum)
}
