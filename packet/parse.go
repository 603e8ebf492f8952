package packet

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// EtherTypes and IP protocol numbers Parse understands.
const (
	EtherTypeIPv4  = 0x0800
	EtherTypeARP   = 0x0806
	EtherTypeVLAN  = 0x8100
	EtherTypeQinQ  = 0x88a8
	EtherTypeIPv6  = 0x86dd
	ProtoICMP      = 1
	ProtoTCP       = 6
	ProtoUDP       = 17
	ProtoICMPv6    = 58
	ethHeaderLen   = 14
	maxVLANTags    = 2
	maxIPv6ExtHdrs = 8
)

// Errors returned by Parse. They are preallocated: returning them does not
// allocate.
var (
	ErrTruncated = errors.New("packet: truncated")
	ErrMalformed = errors.New("packet: malformed")
)

// Headers is what Parse found in a frame. Offsets are from the start of the
// frame; a zero offset means the layer is absent (no layer starts at 0 but
// Ethernet).
type Headers struct {
	VLANs     int    // number of VLAN tags (0-2)
	VLANID    uint16 // the outer tag's VLAN id, if VLANs > 0
	EtherType uint16 // the innermost EtherType

	L3Off    int  // start of the IP header; 0 if not IP
	IPv4     bool // the network layer is IPv4
	IPv6     bool // the network layer is IPv6
	IPHdrLen int  // IPv4 header length, or 40 + extension headers for IPv6
	IPLen    int  // IP header + payload, as the IP header says (never past the frame)
	SrcIP    netip.Addr
	DstIP    netip.Addr
	TTL      uint8 // TTL or hop limit
	Fragment bool  // a non-first fragment: no L4 header in this frame

	IPProto  uint8 // the L4 protocol (after IPv6 extension headers)
	L4Off    int   // start of the UDP/TCP/ICMP header; 0 if none was parsed
	SrcPort  uint16
	DstPort  uint16
	TCPFlags uint8
	ICMPType uint8
	ICMPCode uint8
	// PayloadOff is where the L4 payload starts (or the L3 payload for
	// protocols Parse does not know); 0 if none.
	PayloadOff int
}

// Parse parses frame into h, which it clears first: one Headers can be
// reused for every frame. It stops without error at a protocol it does
// not know (ARP, say: h.L3Off stays 0) and returns ErrTruncated or
// ErrMalformed for a frame that ends early or has impossible lengths; h
// then holds what was parsed before. It does not verify checksums.
func Parse(frame []byte, h *Headers) error {
	*h = Headers{}
	if len(frame) < ethHeaderLen {
		return ErrTruncated
	}
	off := 12
	et := binary.BigEndian.Uint16(frame[off:])
	off += 2
	for et == EtherTypeVLAN || et == EtherTypeQinQ {
		if h.VLANs == maxVLANTags {
			return ErrMalformed
		}
		if len(frame) < off+4 {
			return ErrTruncated
		}
		if h.VLANs == 0 {
			h.VLANID = binary.BigEndian.Uint16(frame[off:]) & 0x0fff
		}
		h.VLANs++
		et = binary.BigEndian.Uint16(frame[off+2:])
		off += 4
	}
	h.EtherType = et
	switch et {
	case EtherTypeIPv4:
		return parseIPv4(frame, off, h)
	case EtherTypeIPv6:
		return parseIPv6(frame, off, h)
	}
	h.PayloadOff = off
	return nil
}

func parseIPv4(frame []byte, off int, h *Headers) error {
	if len(frame) < off+20 {
		return ErrTruncated
	}
	ip := frame[off:]
	if ip[0]>>4 != 4 {
		return ErrMalformed
	}
	hl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:]))
	if hl < 20 || total < hl {
		return ErrMalformed
	}
	if len(ip) < hl || len(ip) < total {
		return ErrTruncated
	}
	h.L3Off, h.IPv4, h.IPHdrLen, h.IPLen = off, true, hl, total
	h.TTL = ip[8]
	h.IPProto = ip[9]
	h.SrcIP = netip.AddrFrom4([4]byte(ip[12:16]))
	h.DstIP = netip.AddrFrom4([4]byte(ip[16:20]))
	fragOff := binary.BigEndian.Uint16(ip[6:]) & 0x1fff
	h.PayloadOff = off + hl
	if fragOff != 0 {
		h.Fragment = true
		return nil
	}
	moreFrags := ip[6]&0x20 != 0 // a first fragment: the L4 lengths count the whole datagram
	return parseL4(frame[:off+total], off+hl, h, moreFrags)
}

func parseIPv6(frame []byte, off int, h *Headers) error {
	if len(frame) < off+40 {
		return ErrTruncated
	}
	ip := frame[off:]
	if ip[0]>>4 != 6 {
		return ErrMalformed
	}
	total := 40 + int(binary.BigEndian.Uint16(ip[4:]))
	if len(ip) < total {
		return ErrTruncated
	}
	h.L3Off, h.IPv6, h.IPLen = off, true, total
	h.TTL = ip[7]
	h.SrcIP = netip.AddrFrom16([16]byte(ip[8:24]))
	h.DstIP = netip.AddrFrom16([16]byte(ip[24:40]))
	next := ip[6]
	end := off + total
	p := off + 40
	moreFrags := false
	for range maxIPv6ExtHdrs + 1 { // the last round reads the L4 header
		switch next {
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if end < p+8 {
				return ErrTruncated
			}
			next, p = frame[p], p+8+int(frame[p+1])*8
			if p > end {
				return ErrTruncated
			}
			continue
		case 44: // fragment
			if end < p+8 {
				return ErrTruncated
			}
			fragOff := binary.BigEndian.Uint16(frame[p+2:]) >> 3
			moreFrags = frame[p+3]&1 != 0
			next, p = frame[p], p+8
			if fragOff != 0 {
				h.IPProto, h.IPHdrLen, h.PayloadOff, h.Fragment = next, p-off, p, true
				return nil
			}
			continue
		}
		h.IPProto, h.IPHdrLen, h.PayloadOff = next, p-off, p
		return parseL4(frame[:end], p, h, moreFrags)
	}
	return ErrMalformed // more extension headers than any sane packet has
}

// parseL4 parses the L4 header at off; frame ends where the IP packet ends.
// In a first fragment (moreFrags) the UDP length may run past it.
func parseL4(frame []byte, off int, h *Headers, moreFrags bool) error {
	switch h.IPProto {
	case ProtoUDP:
		if len(frame) < off+8 {
			return ErrTruncated
		}
		l := int(binary.BigEndian.Uint16(frame[off+4:]))
		if l < 8 || off+l > len(frame) && !moreFrags {
			return ErrMalformed
		}
		h.SrcPort = binary.BigEndian.Uint16(frame[off:])
		h.DstPort = binary.BigEndian.Uint16(frame[off+2:])
		h.L4Off, h.PayloadOff = off, off+8
	case ProtoTCP:
		if len(frame) < off+20 {
			return ErrTruncated
		}
		doff := int(frame[off+12]>>4) * 4
		if doff < 20 {
			return ErrMalformed
		}
		if len(frame) < off+doff {
			return ErrTruncated
		}
		h.SrcPort = binary.BigEndian.Uint16(frame[off:])
		h.DstPort = binary.BigEndian.Uint16(frame[off+2:])
		h.TCPFlags = frame[off+13]
		h.L4Off, h.PayloadOff = off, off+doff
	case ProtoICMP, ProtoICMPv6:
		if len(frame) < off+4 {
			return ErrTruncated
		}
		h.ICMPType, h.ICMPCode = frame[off], frame[off+1]
		h.L4Off, h.PayloadOff = off, off+4
	}
	return nil
}
