// Package packet parses and edits the headers of Ethernet frames in place,
// without allocating: Ethernet with up to two 802.1Q/802.1ad VLAN tags,
// IPv4, IPv6 (with its extension headers), UDP, TCP, ICMPv4 and ICMPv6.
//
// [Parse] fills a caller-owned [Headers] with offsets into the frame and
// the fields handlers branch on; it never copies the frame. A truncated or
// malformed frame gives [ErrTruncated] or [ErrMalformed] (preallocated, so
// the per-packet path stays allocation-free) and the headers parsed up to
// that point.
//
//	var h packet.Headers
//	if err := packet.Parse(frame, &h); err != nil {
//		return drop // counted as malformed
//	}
//	if h.IPProto == packet.ProtoUDP && h.DstPort == 53 { ... }
package packet
