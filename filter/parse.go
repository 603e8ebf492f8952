package filter

import (
	"fmt"
	"strings"
)

// maxExprLen bounds the expression, so hostile input cannot make Compile
// build a huge tree before the instruction limit rejects it.
const maxExprLen = 64 << 10

// unsupported are tcpdump keywords this package does not implement; they
// get a clearer error than "unexpected".
var unsupported = map[string]bool{
	"ether": true, "fddi": true, "tr": true, "wlan": true, "ppp": true, "slip": true, "link": true,
	"less": true, "greater": true, "len": true, "gateway": true, "broadcast": true, "multicast": true,
	"mpls": true, "pppoed": true, "pppoes": true, "geneve": true, "vxlan": true, "igmp": true,
	"igrp": true, "pim": true, "vrrp": true, "carp": true, "ah": true, "esp": true, "protochain": true,
	"inbound": true, "outbound": true, "ifindex": true, "atalk": true, "aarp": true, "decnet": true,
	"iso": true, "stp": true, "ipx": true, "netbeui": true, "llc": true, "lat": true, "sca": true,
	"moprc": true, "mopdl": true, "esis": true, "isis": true, "clnp": true, "batadv": true,
	"radio": true, "type": true, "subtype": true, "dir": true,
}

const supported = "ip, ip6, arp, rarp, tcp, udp, sctp, icmp, icmp6, vlan, host, net, port, portrange and proto"

func isKeyword(w string) bool {
	_, p := protoNames[w]
	_, a := addrNames[w]
	return p || a || w == "src" || w == "dst" || w == "vlan" || w == "mask" || unsupported[w]
}

type parser struct {
	expr  string
	toks  []token
	pos   int
	vlans int // "vlan" keywords so far
	nest  int // current depth of parentheses and negations
}

// parse parses expr into a tree; nil is the empty expression.
func parse(expr string) (node, error) {
	if len(expr) > maxExprLen {
		return nil, &SyntaxError{Expr: expr, Offset: maxExprLen, Msg: fmt.Sprintf("expression longer than %d bytes", maxExprLen)}
	}
	toks, err := lex(expr)
	if err != nil {
		return nil, err
	}
	p := &parser{expr: expr, toks: toks}
	if p.peek().kind == tEOF {
		return nil, nil
	}
	n, _, err := p.parseExpr(quals{})
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.unexpected(t)
	}
	return n, nil
}

func (p *parser) peek() token { return p.toks[p.pos] }

func (p *parser) peekAt(i int) token {
	if i >= len(p.toks) {
		return p.toks[len(p.toks)-1]
	}
	return p.toks[i]
}

func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tEOF {
		p.pos++
	}
	return t
}

func (p *parser) errAt(t token, format string, args ...any) error {
	return &SyntaxError{Expr: p.expr, Offset: t.off, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) unexpected(t token) error {
	if t.kind == tWord && unsupported[t.text] {
		return p.errAt(t, "unsupported primitive %q (supported: %s)", t.text, supported)
	}
	return p.errAt(t, "unexpected %s", t.describe())
}

// enter counts one level of nesting and fails beyond maxNesting.
func (p *parser) enter(t token) error {
	p.nest++
	if p.nest > maxNesting {
		return p.errAt(t, "expression nested more than %d deep", maxNesting)
	}
	return nil
}

func (p *parser) leave() { p.nest-- }

func (p *parser) expect(kind tokKind, what string, open token) error {
	t := p.peek()
	if t.kind != kind {
		if t.kind == tEOF {
			return p.errAt(open, "missing %s for %s", what, open.describe())
		}
		return p.unexpected(t)
	}
	p.next()
	return nil
}

// parseExpr parses terms joined by "and" and "or", which have equal
// precedence and associate to the left, as in tcpdump. inh are the
// qualifiers a bare address inherits; it returns those in force after
// the expression.
func (p *parser) parseExpr(inh quals) (node, quals, error) {
	n, q, err := p.parseTerm(inh)
	if err != nil {
		return nil, q, err
	}
	for {
		t := p.peek()
		if t.kind != tAnd && t.kind != tOr {
			return n, q, nil
		}
		p.next()
		if p.peek().kind == tEOF {
			return nil, q, p.errAt(t, "missing operand after %s", t.describe())
		}
		m, q2, err := p.parseTerm(q)
		if err != nil {
			return nil, q, err
		}
		n, q = &binary{and: t.kind == tAnd, l: n, r: m}, q2
	}
}

// parseTerm parses a negation, a parenthesized expression or list of
// addresses, a primitive, or a bare address or number that inherits inh.
func (p *parser) parseTerm(inh quals) (node, quals, error) {
	t := p.peek()
	if err := p.enter(t); err != nil {
		return nil, inh, err
	}
	defer p.leave()
	switch t.kind {
	case tNot:
		p.next()
		x, q, err := p.parseTerm(inh)
		if err != nil {
			return nil, q, err
		}
		return &negation{x}, q, nil
	case tLParen:
		if p.startsID(p.pos + 1) {
			n, err := p.parseID(inh)
			return n, inh, err
		}
		p.next()
		n, _, err := p.parseExpr(inh)
		if err != nil {
			return nil, inh, err
		}
		// Like tcpdump, a parenthesized expression passes on the
		// qualifiers in force before it, not those inside it.
		return n, inh, p.expect(tRParen, `")"`, t)
	case tWord:
		if isKeyword(t.text) {
			return p.parsePrimitive()
		}
		n, err := p.parseID(inh)
		return n, inh, err
	}
	return nil, inh, p.unexpected(t)
}

// startsID reports whether the tokens from i on are an address list, as
// in "host a and (b or c)": negations, then an address or number.
func (p *parser) startsID(i int) bool {
	for p.peekAt(i).kind == tNot {
		i++
	}
	t := p.peekAt(i)
	return t.kind == tWord && !isKeyword(t.text)
}

// parsePrimitive parses a primitive that starts with a keyword.
func (p *parser) parsePrimitive() (node, quals, error) {
	t := p.next()
	if t.text == "vlan" {
		n, err := p.parseVLAN(t)
		return n, quals{}, err
	}
	q := quals{ok: true}
	if pq, ok := protoNames[t.text]; ok {
		nt := p.peek()
		if nt.kind != tWord || !(nt.text == "src" || nt.text == "dst" || addrNames[nt.text] != aDefault) {
			return &prim{kind: kProto, proto: pq, shift: p.shift()}, quals{}, nil
		}
		q.proto = pq
		t = p.next()
	}
	switch t.text {
	case "src", "dst":
		q.dir = dSrc
		other := "dst"
		if t.text == "dst" {
			q.dir, other = dDst, "src"
		}
		if op := p.peek(); op.kind == tAnd || op.kind == tOr {
			p.next()
			if o := p.next(); o.kind != tWord || o.text != other {
				return nil, q, p.errAt(o, "expected %q after %q, got %s", other, t.text+" "+op.text, o.describe())
			}
			q.dir = dDefault
			if op.kind == tAnd {
				q.dir = dAnd
			}
		}
		if at := p.peek(); at.kind == tWord && addrNames[at.text] != aDefault {
			if at.text == "proto" {
				return nil, q, p.errAt(at, "%q takes no direction", "proto")
			}
			p.next()
			q.addr = addrNames[at.text]
		}
	default:
		a, ok := addrNames[t.text]
		if !ok {
			return nil, q, p.unexpected(t)
		}
		q.addr = a
	}
	n, err := p.parseID(q)
	return n, q, err
}

// parseVLAN parses the rest of "vlan" or "vlan N" (or "vlan (N)") and
// shifts the offsets of everything after it by the tag, as tcpdump does.
func (p *parser) parseVLAN(kw token) (node, error) {
	n := &prim{kind: kVLAN, shift: p.shift()}
	nt := p.peek()
	paren := nt.kind == tLParen && p.peekAt(p.pos+1).kind == tWord && looksNumeric(p.peekAt(p.pos+1).text) &&
		p.peekAt(p.pos+2).kind == tRParen
	if paren {
		nt = p.peekAt(p.pos + 1)
	}
	if nt.kind == tWord && looksNumeric(nt.text) {
		v, err := parseNumber(nt.text)
		if err != nil {
			return nil, p.errAt(nt, "VLAN ID %q: %v", nt.text, err)
		}
		if v > 4095 {
			return nil, p.errAt(nt, "VLAN ID %d greater than maximum 4095", v)
		}
		n.num, n.hasID = uint32(v), true
		p.next()
		if paren {
			p.next()
			p.next()
		}
	}
	p.vlans++
	if p.vlans > MaxVLANDepth {
		return nil, p.errAt(kw, "more than %d %q keywords", MaxVLANDepth, "vlan")
	}
	return n, nil
}

func (p *parser) shift() int { return 4 * p.vlans }

// parseID parses what follows a qualifier: an address or number, a
// negated one, or a parenthesized list of them joined by "and" and "or".
// All of them take the qualifiers q.
func (p *parser) parseID(q quals) (node, error) {
	t := p.peek()
	if err := p.enter(t); err != nil {
		return nil, err
	}
	defer p.leave()
	switch {
	case t.kind == tNot:
		p.next()
		x, err := p.parseID(q)
		if err != nil {
			return nil, err
		}
		return &negation{x}, nil
	case t.kind == tLParen:
		p.next()
		n, err := p.parseID(q)
		if err != nil {
			return nil, err
		}
		for {
			op := p.peek()
			if op.kind != tAnd && op.kind != tOr {
				break
			}
			p.next()
			m, err := p.parseID(q)
			if err != nil {
				return nil, err
			}
			n = &binary{and: op.kind == tAnd, l: n, r: m}
		}
		return n, p.expect(tRParen, `")"`, t)
	case t.kind == tWord && !isKeyword(t.text):
		p.next()
		return p.primFromWord(q, t)
	}
	if !q.ok {
		return nil, p.unexpected(t)
	}
	return nil, p.errAt(t, "expected %s, got %s", q.addr.wants(), t.describe())
}

func (a addrQ) wants() string {
	switch a {
	case aPort:
		return "a port number"
	case aPortrange:
		return "a port range"
	case aProto:
		return "a protocol number"
	}
	return "an address"
}

// primFromWord builds the primitive for the address, number or range in
// t, qualified by q.
func (p *parser) primFromWord(q quals, t token) (node, error) {
	if !q.ok {
		return nil, p.errAt(t, "unexpected %s: an address or number needs a qualifier such as host, net, port or proto before it", t.describe())
	}
	n := &prim{proto: q.proto, dir: q.dir, shift: p.shift()}
	w := t.text
	switch q.addr {
	case aPort, aPortrange:
		name := "port"
		if q.addr == aPortrange {
			name = "portrange"
		}
		switch q.proto {
		case qDefault, qTCP, qUDP, qSCTP:
		default:
			return nil, p.errAt(t, "%q cannot qualify %q: use tcp, udp, sctp or nothing", q.proto.String(), name)
		}
		lo, hi, err := parsePorts(w, q.addr == aPortrange)
		if err != nil {
			return nil, p.errAt(t, "%v", err)
		}
		n.kind, n.lo, n.hi = kPort, lo, hi
		if q.addr == aPortrange {
			n.kind = kPortrange
		}
		return n, nil
	case aProto:
		switch q.proto {
		case qDefault, qIP, qIP6:
		default:
			return nil, p.errAt(t, "%q cannot qualify %q: use ip, ip6 or nothing", q.proto.String(), "proto")
		}
		v, err := parseNumber(w)
		if err != nil {
			if !looksNumeric(w) {
				return nil, p.errAt(t, "%q is not a protocol number (protocol names are not supported)", w)
			}
			return nil, p.errAt(t, "%v", err)
		}
		if v > 255 {
			return nil, p.errAt(t, "protocol number %d out of range 0-255", v)
		}
		n.kind, n.num = kProtoNum, uint32(v)
		n.dir = dDefault
		return n, nil
	}
	n.kind = kAddr
	if strings.Contains(w, ":") {
		return n, p.addr6(n, q, t)
	}
	return n, p.addr4(n, q, t)
}
