// Package pkt builds the benchmark's test frames: Ethernet + IPv4 + UDP with
// valid IPv4 and UDP checksums.
package pkt

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// Offsets into a frame built by UDP.
const (
	OffIPCsum   = 14 + 10
	OffSrcPort  = 14 + 20
	OffDstPort  = 14 + 20 + 2
	OffUDPCsum  = 14 + 20 + 6
	OffPayload  = 14 + 20 + 8
	MinFrameLen = OffPayload
)

// Spec describes a UDP frame.
type Spec struct {
	Len              int // frame length without FCS (60 = 64 on the wire)
	DstMAC, SrcMAC   net.HardwareAddr
	DstIP, SrcIP     netip.Addr
	DstPort, SrcPort uint16
}

// UDP builds the frame: payload bytes are i&0xff, checksums valid.
func UDP(s Spec) []byte {
	if s.Len < MinFrameLen {
		s.Len = MinFrameLen
	}
	b := make([]byte, s.Len)
	copy(b[0:6], s.DstMAC)
	copy(b[6:12], s.SrcMAC)
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(s.Len-14))
	ip[8] = 64
	ip[9] = 17
	d, sa := s.DstIP.As4(), s.SrcIP.As4()
	copy(ip[12:16], sa[:])
	copy(ip[16:20], d[:])
	binary.BigEndian.PutUint16(ip[10:], ^fold(sum(ip, 0)))
	binary.BigEndian.PutUint16(b[OffSrcPort:], s.SrcPort)
	binary.BigEndian.PutUint16(b[OffDstPort:], s.DstPort)
	binary.BigEndian.PutUint16(b[OffSrcPort+4:], uint16(s.Len-34))
	for i := OffPayload; i < s.Len; i++ {
		b[i] = byte(i)
	}
	SetUDPChecksum(b)
	return b
}

// SetUDPChecksum recomputes the UDP checksum of a frame built by UDP (after
// its payload changed).
func SetUDPChecksum(b []byte) {
	b[OffUDPCsum], b[OffUDPCsum+1] = 0, 0
	udpLen := len(b) - 34
	// pseudo header: src, dst, proto, length
	s := sum(b[26:34], 0)
	s += 17 + uint32(udpLen)
	s = sum(b[34:], s)
	c := ^fold(s)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(b[OffUDPCsum:], c)
}

// ValidChecksums reports whether the IPv4 header and UDP checksums are valid.
func ValidChecksums(b []byte) bool {
	if len(b) < MinFrameLen || fold(sum(b[14:34], 0)) != 0xffff {
		return false
	}
	if binary.BigEndian.Uint16(b[OffUDPCsum:]) == 0 {
		return true
	}
	s := sum(b[26:34], 0) + 17 + uint32(len(b)-34)
	return fold(sum(b[34:], s)) == 0xffff
}

func sum(b []byte, s uint32) uint32 {
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}
