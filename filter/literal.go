package filter

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// The literals of an expression: IPv4 and IPv6 addresses with their
// prefix lengths and masks, numbers and ports, read as tcpdump reads them.

// addr4 fills n from an IPv4 address, with an optional /LEN or mask
// MASK, as tcpdump reads them: "10.1" is 10.1.0.0/16 for host and net,
// the number 10 is the host 0.0.0.10 but the net 10.0.0.0/8.
func (p *parser) addr4(n *prim, q quals, t token) error {
	switch q.proto {
	case qDefault, qIP, qARP, qRARP:
	case qIP6:
		return p.errAt(t, "%q cannot qualify the IPv4 address %q", "ip6", t.text)
	default:
		return p.errAt(t, "%q cannot qualify an address", q.proto.String())
	}
	var v, mask uint32
	if !looksNumeric(t.text) {
		return p.errAt(t, "%q is not an IP address (host names are not supported)", t.text)
	}
	if strings.Contains(t.text, ".") {
		a, bits, err := parseDotted(t.text)
		if err != nil {
			return p.errAt(t, "invalid IPv4 address %q: %v", t.text, err)
		}
		v, mask = a<<(32-bits), ^uint32(0)<<(32-bits)
	} else {
		x, err := parseNumber(t.text)
		if err != nil {
			return p.errAt(t, "invalid address %q: %v", t.text, err)
		}
		v, mask = uint32(x), ^uint32(0)
		if q.addr == aNet {
			for v != 0 && v&0xff000000 == 0 {
				v, mask = v<<8, mask<<8
			}
		}
	}

	switch nt := p.peek(); {
	case nt.kind == tSlash:
		p.next()
		lt := p.next()
		if q.addr != aNet {
			return p.errAt(t, "%s/LEN is for networks only: use net", t.text)
		}
		if !strings.Contains(t.text, ".") {
			return p.errAt(nt, "unexpected %s", nt.describe())
		}
		l, err := parseNumber(lt.text)
		if lt.kind != tWord || err != nil {
			return p.errAt(lt, "expected a prefix length after %q, got %s", "/", lt.describe())
		}
		if l > 32 {
			return p.errAt(lt, "prefix length %d greater than 32", l)
		}
		mask = 0
		if l > 0 {
			mask = ^uint32(0) << (32 - l)
		}
		if v&^mask != 0 {
			return p.errAt(t, "non-network bits set in \"%s/%d\"", t.text, l)
		}
	case nt.kind == tWord && nt.text == "mask":
		p.next()
		mt := p.next()
		if q.addr != aNet {
			return p.errAt(t, "%s mask MASK is for networks only: use net", t.text)
		}
		if !strings.Contains(t.text, ".") {
			return p.errAt(nt, "unexpected %s", nt.describe())
		}
		m, bits, err := parseDotted(mt.text)
		if mt.kind != tWord || err != nil || !strings.Contains(mt.text, ".") {
			return p.errAt(mt, "expected a dotted netmask after %q, got %s", "mask", mt.describe())
		}
		mask = m << (32 - bits)
		if v&^mask != 0 {
			return p.errAt(t, "non-network bits set in \"%s mask %s\"", t.text, mt.text)
		}
	}
	putBE32(n.addr[:4], v)
	putBE32(n.mask[:4], mask)
	return nil
}

// addr6 fills n from an IPv6 address with an optional /LEN.
func (p *parser) addr6(n *prim, q quals, t token) error {
	switch q.proto {
	case qDefault, qIP6:
	case qIP, qARP, qRARP:
		return p.errAt(t, "%q cannot qualify the IPv6 address %q", q.proto.String(), t.text)
	default:
		return p.errAt(t, "%q cannot qualify an address", q.proto.String())
	}
	a, err := netip.ParseAddr(t.text)
	if err != nil || !a.Is6() || a.Zone() != "" {
		return p.errAt(t, "invalid IPv6 address %q", t.text)
	}
	n.v6, n.addr = true, a.As16()
	l := uint64(128)
	if p.peek().kind == tSlash {
		p.next()
		lt := p.next()
		if q.addr != aNet {
			return p.errAt(t, "%s/LEN is for networks only: use net", t.text)
		}
		l, err = parseNumber(lt.text)
		if lt.kind != tWord || err != nil {
			return p.errAt(lt, "expected a prefix length after %q, got %s", "/", lt.describe())
		}
		if l > 128 {
			return p.errAt(lt, "prefix length %d greater than 128", l)
		}
	}
	pfx, _ := a.Prefix(int(l))
	if pfx.Addr() != a {
		return p.errAt(t, "non-network bits set in \"%s/%d\"", t.text, l)
	}
	for i := range n.mask {
		bitsHere := min(max(int(l)-8*i, 0), 8)
		n.mask[i] = byte(0xff << (8 - bitsHere))
	}
	return nil
}

// parseNumber parses a number as tcpdump does: decimal, 0x hexadecimal or
// 0 octal, at most 32 bits.
func parseNumber(s string) (uint64, error) {
	base, digits := 10, s
	switch {
	case strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X"):
		base, digits = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, digits = 8, s[1:]
	}
	if digits == "" || digits[0] == '+' || digits[0] == '-' {
		return 0, fmt.Errorf("not a number")
	}
	v, err := strconv.ParseUint(digits, base, 32)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return 0, fmt.Errorf("number %s does not fit in 32 bits", s)
		}
		if base == 8 {
			return 0, fmt.Errorf("number %s contains non-octal digit", s)
		}
		return 0, fmt.Errorf("not a number")
	}
	return v, nil
}

// looksNumeric reports whether s starts with a digit.
func looksNumeric(s string) bool { return s != "" && s[0] >= '0' && s[0] <= '9' }

// parseDotted parses 1 to 4 dot-separated decimal octets into their
// value and the number of bits they give (8 per octet).
func parseDotted(s string) (uint32, int, error) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return 0, 0, fmt.Errorf("more than 4 parts")
	}
	var v uint32
	for _, part := range parts {
		if part == "" || len(part) > 3 || strings.Trim(part, "0123456789") != "" {
			return 0, 0, fmt.Errorf("%q is not a decimal octet", part)
		}
		x, _ := strconv.Atoi(part)
		if x > 255 {
			return 0, 0, fmt.Errorf("octet %d greater than 255", x)
		}
		v = v<<8 | uint32(x)
	}
	return v, 8 * len(parts), nil
}

// parsePorts parses a port number, or for portrange also LO-HI (decimal,
// swapped if LO > HI, as tcpdump does).
func parsePorts(s string, isRange bool) (lo, hi uint16, err error) {
	one := func(w string, dec bool) (uint16, error) {
		var v uint64
		var err error
		if dec {
			if w == "" || strings.Trim(w, "0123456789") != "" {
				return 0, fmt.Errorf("%q is not a port range", s)
			}
			v, err = strconv.ParseUint(w, 10, 32)
			if err != nil {
				return 0, fmt.Errorf("number %s does not fit in 32 bits", w)
			}
		} else if v, err = parseNumber(w); err != nil {
			if !looksNumeric(w) {
				return 0, fmt.Errorf("%q is not a port number (service names are not supported)", w)
			}
			return 0, err
		}
		if v > 65535 {
			return 0, fmt.Errorf("port number %d greater than 65535", v)
		}
		return uint16(v), nil
	}
	if l, h, ok := strings.Cut(s, "-"); ok {
		if !isRange {
			return 0, 0, fmt.Errorf("%q is a range: use portrange", s)
		}
		if lo, err = one(l, true); err == nil {
			hi, err = one(h, true)
		}
		if err != nil {
			return 0, 0, err
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		return lo, hi, nil
	}
	lo, err = one(s, false)
	return lo, lo, err
}
