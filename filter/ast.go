package filter

import (
	"fmt"
	"math/bits"
	"net/netip"
	"strings"
)

// protoQ is a protocol qualifier or abbreviation ("ip", "tcp", ...).
type protoQ int

const (
	qDefault protoQ = iota // none given
	qIP
	qIP6
	qARP
	qRARP
	qTCP
	qUDP
	qSCTP
	qICMP
	qICMP6
)

var protoNames = map[string]protoQ{
	"ip": qIP, "ip6": qIP6, "arp": qARP, "rarp": qRARP,
	"tcp": qTCP, "udp": qUDP, "sctp": qSCTP, "icmp": qICMP, "icmp6": qICMP6,
}

func (q protoQ) String() string {
	for name, v := range protoNames {
		if v == q {
			return name
		}
	}
	return ""
}

// dirQ is a direction qualifier. "src or dst" is the default.
type dirQ int

const (
	dDefault dirQ = iota // src or dst
	dSrc
	dDst
	dAnd // src and dst
)

func (d dirQ) String() string {
	switch d {
	case dSrc:
		return "src"
	case dDst:
		return "dst"
	case dAnd:
		return "src and dst"
	}
	return ""
}

// addrQ is an address type qualifier; aDefault is taken as host.
type addrQ int

const (
	aDefault addrQ = iota
	aHost
	aNet
	aPort
	aPortrange
	aProto
)

var addrNames = map[string]addrQ{"host": aHost, "net": aNet, "port": aPort, "portrange": aPortrange, "proto": aProto}

// quals are the qualifiers in force, which a bare address or number after
// "and" or "or" inherits (tcpdump's "host a or b"). ok is false where
// tcpdump has none to inherit, as after "udp" or "vlan".
type quals struct {
	ok    bool
	proto protoQ
	dir   dirQ
	addr  addrQ
}

// node is the parsed expression: *binary, *negation or *prim. A nil node
// (the empty expression) matches everything.
type node interface{ isNode() }

type binary struct {
	and  bool // "and"; false for "or"
	l, r node
}

type negation struct{ x node }

type primKind int

const (
	kProto     primKind = iota // "ip", "tcp", ...
	kVLAN                      // "vlan" or "vlan N"
	kAddr                      // [proto] [dir] host|net ADDR
	kPort                      // [proto] [dir] port N
	kPortrange                 // [proto] [dir] portrange N-M
	kProtoNum                  // [ip|ip6] proto N
)

// prim is one primitive with its qualifiers resolved.
type prim struct {
	kind  primKind
	proto protoQ
	dir   dirQ
	v6    bool
	addr  [16]byte // kAddr: the address (IPv4 in the first 4 bytes)
	mask  [16]byte // kAddr: the netmask, in the same layout
	lo    uint16   // kPort, kPortrange
	hi    uint16   // kPortrange
	num   uint32   // kProtoNum: protocol; kVLAN: VLAN ID if hasID
	hasID bool
	// shift is how many bytes of VLAN tags precede the headers this
	// primitive looks at: 4 for every "vlan" earlier in the expression,
	// as in tcpdump.
	shift int
}

func (*binary) isNode()   {}
func (*negation) isNode() {}
func (*prim) isNode()     {}

// format returns the normalized expression for n.
func format(n node) string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	writeNode(&b, n)
	return b.String()
}

func writeNode(b *strings.Builder, n node) {
	switch n := n.(type) {
	case *binary:
		writeOperand(b, n.l, n.and)
		if n.and {
			b.WriteString(" and ")
		} else {
			b.WriteString(" or ")
		}
		writeOperand(b, n.r, n.and)
	case *negation:
		b.WriteString("not ")
		if _, ok := n.x.(*binary); ok {
			b.WriteByte('(')
			writeNode(b, n.x)
			b.WriteByte(')')
		} else {
			writeNode(b, n.x)
		}
	case *prim:
		b.WriteString(n.String())
	}
}

// writeOperand writes an operand of an "and" (and is true) or "or",
// in parentheses if it is a binary of the other kind. Chains of one kind
// need none: they evaluate left to right however they are grouped.
func writeOperand(b *strings.Builder, n node, and bool) {
	if bin, ok := n.(*binary); ok && bin.and != and {
		b.WriteByte('(')
		writeNode(b, n)
		b.WriteByte(')')
		return
	}
	writeNode(b, n)
}

func (p *prim) String() string {
	var words []string
	if p.proto != qDefault {
		words = append(words, p.proto.String())
	}
	if p.dir != dDefault {
		words = append(words, p.dir.String())
	}
	switch p.kind {
	case kProto:
		return p.proto.String()
	case kVLAN:
		if p.hasID {
			return fmt.Sprintf("vlan %d", p.num)
		}
		return "vlan"
	case kAddr:
		words = append(words, p.addrString())
	case kPort:
		words = append(words, fmt.Sprintf("port %d", p.lo))
	case kPortrange:
		words = append(words, fmt.Sprintf("portrange %d-%d", p.lo, p.hi))
	case kProtoNum:
		words = append(words, fmt.Sprintf("proto %d", p.num))
	}
	return strings.Join(words, " ")
}

// addrString is "host ADDR", "net ADDR/LEN" or "net ADDR mask MASK".
func (p *prim) addrString() string {
	if p.v6 {
		a := netip.AddrFrom16(p.addr)
		ones := 0
		for _, m := range p.mask {
			ones += bits.OnesCount8(m)
		}
		if ones == 128 {
			return "host " + a.String()
		}
		return fmt.Sprintf("net %s/%d", a, ones)
	}
	a := netip.AddrFrom4([4]byte(p.addr[:4]))
	m := be32(p.mask[:4])
	ones := bits.OnesCount32(m)
	switch {
	case ones == 32:
		return "host " + a.String()
	case m == ^uint32(0)<<(32-ones) || ones == 0:
		return fmt.Sprintf("net %s/%d", a, ones)
	}
	return fmt.Sprintf("net %s mask %s", a, netip.AddrFrom4([4]byte(p.mask[:4])))
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func putBE32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}
