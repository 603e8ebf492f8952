package redirect

import (
	"encoding/binary"
	"fmt"
)

// The layout of the RX metadata a program attached with
// Options.RXMetadata stores in front of each frame it redirects (see
// "RX metadata" in the package doc). The RXMetadataSize bytes end where
// the frame's data begins; all fields are in host byte order except the
// VLAN TPID, which is in network byte order as the kernel reports it.
//
//	offset size field
//	     0    8 timestamp, ns (bpf_xdp_metadata_rx_timestamp); 0 unless ok
//	     8    4 RSS hash (bpf_xdp_metadata_rx_hash); 0 unless ok
//	    12    4 RSS hash type (enum xdp_rss_hash_type); 0 unless ok
//	    16    2 VLAN TPID, big endian (bpf_xdp_metadata_rx_vlan_tag); 0 unless ok
//	    18    2 VLAN TCI; 0 unless ok
//	    20    4 RXMetadataMagic | ok bits (RXMetadataTimestampOK, ...)
//
// The word at offset 20 comes last, directly in front of the data, so
// that the 4 bytes a program writes when it cannot reserve the whole
// area (a zero word: no metadata) cover it.
const (
	// RXMetadataSize is the size of the metadata area in bytes, a
	// multiple of 4 as bpf_xdp_adjust_meta wants, and below the 32 bytes
	// older kernels allow.
	RXMetadataSize = 24

	// RXMetadataMagic is the top 24 bits of the last word: 0x584B ("XK")
	// and the layout's version, 1, in bits 8-15. A word without it means
	// no metadata.
	RXMetadataMagic = 0x584B_0100

	// The ok bits in the low byte of the last word: which kfuncs
	// succeeded. A kfunc returning an error (-ENODATA: nothing for this
	// frame; -EOPNOTSUPP: the driver does not implement it) leaves its
	// bit clear and its fields zero.
	RXMetadataTimestampOK = 1 << 0
	RXMetadataHashOK      = 1 << 1
	RXMetadataVLANOK      = 1 << 2
)

// RSSHashType is the kernel's enum xdp_rss_hash_type
// (include/net/xdp.h): what the RX hash was computed over. Its bits
// combine: XDP_RSS_TYPE_L4_IPV4_UDP is RSSL3IPv4|RSSL4|RSSL4UDP. Zero
// (XDP_RSS_TYPE_NONE, also XDP_RSS_TYPE_L2) says nothing about the
// headers.
type RSSHashType uint32

// The bits of RSSHashType, as in the kernel's enum xdp_rss_hash_type.
const (
	RSSL3IPv4   RSSHashType = 1 << 0 // XDP_RSS_L3_IPV4
	RSSL3IPv6   RSSHashType = 1 << 1 // XDP_RSS_L3_IPV6
	RSSL3DynHdr RSSHashType = 1 << 2 // XDP_RSS_L3_DYNHDR: IPv4 options or IPv6 extension headers
	RSSL4       RSSHashType = 1 << 3 // XDP_RSS_L4: over the L4 ports too (XDP_RSS_TYPE_L4_ANY)
	RSSL4TCP    RSSHashType = 1 << 4 // XDP_RSS_L4_TCP
	RSSL4UDP    RSSHashType = 1 << 5 // XDP_RSS_L4_UDP
	RSSL4SCTP   RSSHashType = 1 << 6 // XDP_RSS_L4_SCTP
	RSSL4IPSec  RSSHashType = 1 << 7 // XDP_RSS_L4_IPSEC
	RSSL4ICMP   RSSHashType = 1 << 8 // XDP_RSS_L4_ICMP
)

// RXMetadata is what the kernel's driver told a program attached with
// Options.RXMetadata about one received frame, through the XDP RX
// metadata kfuncs. Each group of fields is valid only when its ok field
// is true; otherwise it is zero.
type RXMetadata struct {
	// Timestamp is the driver's RX timestamp in nanoseconds, on the
	// device's clock (for a NIC, usually its PTP hardware clock).
	// TimestampOK is false when the driver has none for the frame, and
	// also when it reports success with a zero timestamp, as veth does
	// for every frame: veth reports the skb's hardware timestamp, which
	// software never sets.
	Timestamp   uint64
	TimestampOK bool

	// Hash is the RX hash (RSS) the driver computed and HashType what it
	// covered. veth reports the skb's flow hash, computing it if needed,
	// with HashType RSSL4 when it covered the ports and 0 otherwise.
	Hash     uint32
	HashType RSSHashType
	HashOK   bool

	// VLANProto (the TPID, e.g. 0x8100 for 802.1Q or 0x88A8 for
	// 802.1ad, in host byte order) and VLANTCI (priority, DEI and VLAN
	// ID) are the outermost VLAN tag the driver stripped from the frame
	// (hardware VLAN offload). A tag still in the frame's data is not
	// reported: VLANOK is false and the tag is in the frame.
	VLANProto uint16
	VLANTCI   uint16
	VLANOK    bool
}

// VLANID returns the VLAN ID, the low 12 bits of the TCI.
func (m RXMetadata) VLANID() uint16 { return m.VLANTCI & 0x0fff }

// String describes the metadata for logs, "-" for each absent field.
func (m RXMetadata) String() string {
	ts, hash, vlan := "-", "-", "-"
	if m.TimestampOK {
		ts = fmt.Sprint(m.Timestamp)
	}
	if m.HashOK {
		hash = fmt.Sprintf("%#08x/%#x", m.Hash, uint32(m.HashType))
	}
	if m.VLANOK {
		vlan = fmt.Sprintf("%#04x/%d", m.VLANProto, m.VLANTCI)
	}
	return "timestamp=" + ts + " hash=" + hash + " vlan=" + vlan
}

// ParseRXMetadata reads the metadata a program attached with
// Options.RXMetadata stored in front of a frame's data. headroom is the
// part of the frame before the data: its last RXMetadataSize bytes are
// read (for an AF_XDP descriptor, frame[:off] of
// afxdp.Socket.FrameHeadroom; afxdp.Socket.RXMetadata does this). ok is
// false when headroom is shorter or does not end with the magic word:
// the program wrote none for this frame, or the frame did not come
// through such a program. It does not allocate.
//
// The magic only tells metadata apart from bytes a program without
// Options.RXMetadata leaves in front of the data: such a program does
// not clear them, and they may still hold the metadata of a frame
// received earlier in the same buffer. Only parse frames that came
// through an RXMetadata program (afxdp.Socket.RXMetadata checks this
// for the socket's own redirect program).
func ParseRXMetadata(headroom []byte) (m RXMetadata, ok bool) {
	if len(headroom) < RXMetadataSize {
		return RXMetadata{}, false
	}
	b := headroom[len(headroom)-RXMetadataSize:]
	ne := binary.NativeEndian
	word := ne.Uint32(b[20:24])
	if word&^0xff != RXMetadataMagic {
		return RXMetadata{}, false
	}
	if word&RXMetadataTimestampOK != 0 {
		m.Timestamp, m.TimestampOK = ne.Uint64(b[0:8]), true
	}
	if word&RXMetadataHashOK != 0 {
		m.Hash, m.HashType, m.HashOK = ne.Uint32(b[8:12]), RSSHashType(ne.Uint32(b[12:16])), true
	}
	if word&RXMetadataVLANOK != 0 {
		m.VLANProto, m.VLANTCI, m.VLANOK = binary.BigEndian.Uint16(b[16:18]), ne.Uint16(b[18:20]), true
	}
	return m, true
}
