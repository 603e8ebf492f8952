package filter_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/xdpkit/xdpkit/filter"
)

// TestNormalize checks what good expressions parse to, through the
// normalized form String returns.
func TestNormalize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ expr, want string }{
		{"", ""},
		{"   ", ""},
		{"udp", "udp"},
		{"ip6 && icmp6", "ip6 and icmp6"},
		{"!arp || rarp", "not arp or rarp"},
		{"udp port 53", "udp port 53"},
		{"src or dst port 53", "port 53"},
		{"dst or src port 53", "port 53"},
		{"dst and src port 53", "src and dst port 53"},
		{"tcp src port 0x16", "tcp src port 22"},
		{"port 065", "port 53"},
		{"portrange 2000-1000", "portrange 1000-2000"},
		{"portrange 53", "portrange 53-53"},
		{"host 10.0.0.1", "host 10.0.0.1"},
		{"src 10.0.0.1", "src host 10.0.0.1"},
		{"ip dst 10.0.0.1", "ip dst host 10.0.0.1"},
		{"host 001.002.003.004", "host 1.2.3.4"},
		{"host 10", "host 0.0.0.10"},
		{"host 1.2", "net 1.2.0.0/16"},
		{"net 10", "net 10.0.0.0/8"},
		{"net 258", "net 1.2.0.0/16"},
		{"net 0", "host 0.0.0.0"},
		{"net 192.168.1", "net 192.168.1.0/24"},
		{"net 10.0.0.0/8", "net 10.0.0.0/8"},
		{"net 10.0.0.0 / 8", "net 10.0.0.0/8"},
		{"net 0.0.0.0/0", "net 0.0.0.0/0"},
		{"net 10.0.0.0 mask 255.0.0.0", "net 10.0.0.0/8"},
		{"net 10.0.0.0 mask 255.0.255.0", "net 10.0.0.0 mask 255.0.255.0"},
		{"net 10.1.2.3/32", "host 10.1.2.3"},
		{"arp src net 10.0.0.0/8", "arp src net 10.0.0.0/8"},
		{"host 2001:DB8::1", "host 2001:db8::1"},
		{"net 2001:db8::/32", "net 2001:db8::/32"},
		{"ip6 net 2001:db8::1/128", "ip6 host 2001:db8::1"},
		{"host ::ffff:1.2.3.4", "host ::ffff:1.2.3.4"},
		{"proto 17", "proto 17"},
		{"ip proto 0x11", "ip proto 17"},
		{"ip6 proto 58", "ip6 proto 58"},
		{"vlan", "vlan"},
		{"vlan 100", "vlan 100"},
		{"vlan (100)", "vlan 100"},
		{"vlan 0x64 and vlan 200", "vlan 100 and vlan 200"},

		// Bare addresses and numbers inherit the qualifiers before them.
		{"host 10.0.0.1 or 10.0.0.2", "host 10.0.0.1 or host 10.0.0.2"},
		{"tcp dst port 22 or 80 or 443", "tcp dst port 22 or tcp dst port 80 or tcp dst port 443"},
		{"port 53 and not 22", "port 53 and not port 22"},
		{"not host 1.1.1.1 and 2.2.2.2", "not host 1.1.1.1 and host 2.2.2.2"},
		{"host 1.1.1.1 and (2.2.2.2 or 3.3.3.3)", "host 1.1.1.1 and (host 2.2.2.2 or host 3.3.3.3)"},
		{"host (1.1.1.1 or 2.2.2.2)", "host 1.1.1.1 or host 2.2.2.2"},
		{"host not 1.1.1.1", "not host 1.1.1.1"},
		{"ip proto 6 or 17", "ip proto 6 or ip proto 17"},
		{"net 10.0.0.0/8 or 172.16.0.0/12", "net 10.0.0.0/8 or net 172.16.0.0/12"},
		{"portrange 1-10 or 20-30", "portrange 1-10 or portrange 20-30"},
		// A parenthesized expression passes on the qualifiers before it.
		{"host 1.1.1.1 and (port 1) or 2.2.2.2", "(host 1.1.1.1 and port 1) or host 2.2.2.2"},

		// "and" and "or" have equal precedence and group to the left;
		// "not" binds tightest.
		{"udp or tcp and port 53", "(udp or tcp) and port 53"},
		{"udp and tcp or arp", "(udp and tcp) or arp"},
		{"not udp or tcp", "not udp or tcp"},
		{"not (udp or tcp)", "not (udp or tcp)"},
		{"not not udp", "not not udp"},
	} {
		p, err := filter.Compile(tc.expr, filter.Redirect, filter.Pass)
		if err != nil {
			t.Errorf("Compile(%q): %v", tc.expr, err)
			continue
		}
		if got := p.String(); got != tc.want {
			t.Errorf("Compile(%q).String() = %q, want %q", tc.expr, got, tc.want)
		}
		// The normalized form is a fixed point.
		again, err := filter.Compile(p.String(), filter.Redirect, filter.Pass)
		if err != nil {
			t.Errorf("Compile(%q) (normalized from %q): %v", p.String(), tc.expr, err)
		} else if again.String() != p.String() {
			t.Errorf("normalizing %q twice: %q, then %q", tc.expr, p.String(), again.String())
		}
	}
}

// TestPrecedence checks grouping through what the programs match: "udp or
// tcp and port 53" must not match a UDP frame to port 80, as it would if
// "and" bound tighter.
func TestPrecedence(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ a, b string }{
		{"udp or tcp and port 53", "(udp or tcp) and port 53"},
		{"not udp and tcp", "(not udp) and tcp"},
		{"arp or udp and port 53 or icmp", "((arp or udp) and port 53) or icmp"},
		{"port 53 and not 22 or 80", "(port 53 and not port 22) or port 80"},
	} {
		pa, err := filter.Compile(tc.a, filter.Drop, filter.Pass)
		if err != nil {
			t.Fatal(err)
		}
		pb, err := filter.Compile(tc.b, filter.Drop, filter.Pass)
		if err != nil {
			t.Fatal(err)
		}
		if pa.String() != pb.String() {
			t.Errorf("%q normalizes to %q, %q to %q: want the same", tc.a, pa.String(), tc.b, pb.String())
		}
	}
}

// TestSyntaxErrors checks that bad expressions fail with a *SyntaxError
// pointing at the right place, never a panic.
func TestSyntaxErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		expr   string
		offset int
		msg    string
	}{
		{"udp prt 53", 4, `unexpected "prt"`},
		{"port", 4, "expected a port number, got end of expression"},
		{"port 70000", 5, "port number 70000 greater than 65535"},
		{"port domain", 5, "service names are not supported"},
		{"port 5-6", 5, "use portrange"},
		{"port 08", 5, "non-octal digit"},
		{"portrange 5-", 10, `"5-" is not a port range`},
		{"portrange 1-70000", 10, "greater than 65535"},
		{"(udp", 0, `missing ")" for "("`},
		{"udp)", 3, `unexpected ")"`},
		{"udp and", 4, `missing operand after "and"`},
		{"and udp", 0, `unexpected "and"`},
		{"not", 3, "unexpected end of expression"},
		{"((((", 4, "unexpected end of expression"},
		{"host", 4, "expected an address"},
		{"host 1.2.3.256", 5, "octet 256 greater than 255"},
		{"host 1.2.3.4.5", 5, "more than 4 parts"},
		{"host example.com", 5, "host names are not supported"},
		{"host fe80::1%eth0", 12, `unexpected character '%'`},
		{"host 10.0.0.0/8", 5, "for networks only"},
		{"host ::/64", 5, "for networks only"},
		{"net 10.0.0.1/8", 4, `non-network bits set in "10.0.0.1/8"`},
		{"net ::1/64", 4, `non-network bits set in "::1/64"`},
		{"net 10.0.0.0/33", 13, "prefix length 33 greater than 32"},
		{"net 2001:db8::/129", 15, "prefix length 129 greater than 128"},
		{"net 10/8", 6, `unexpected "/"`},
		{"net 10.0.0.0 mask 255", 18, "expected a dotted netmask"},
		{"ip port 53", 8, `"ip" cannot qualify "port"`},
		{"tcp host 1.2.3.4", 9, `"tcp" cannot qualify an address`},
		{"ip6 host 1.2.3.4", 9, `"ip6" cannot qualify the IPv4 address`},
		{"ip host ::1", 8, `"ip" cannot qualify the IPv6 address`},
		{"tcp proto 6", 10, `"tcp" cannot qualify "proto"`},
		{"proto 256", 6, "protocol number 256 out of range 0-255"},
		{"proto udp", 6, "expected a protocol number"},
		{"proto foo", 6, "protocol names are not supported"},
		{"src proto 6", 4, `"proto" takes no direction`},
		{"src or ip", 7, `expected "dst" after "src or"`},
		{"vlan 4096", 5, "VLAN ID 4096 greater than maximum 4095"},
		{"vlan 100 200", 9, `unexpected "200"`},
		{"1.2.3.4", 0, "needs a qualifier"},
		{"udp and 53", 8, "needs a qualifier"},
		{"vlan and 53", 9, "needs a qualifier"},
		{"(host 1.1.1.1) or 2.2.2.2", 18, "needs a qualifier"},
		{"udp = 5", 4, `unexpected character '='`},
		{"udp & tcp", 4, `unexpected character '&'`},
		{"ip[9] = 6", 2, `unexpected character '['`},
		{"ether host 1", 0, `unsupported primitive "ether"`},
		{"udp and less 100", 8, `unsupported primitive "less"`},
		{"héllo", 1, `unexpected character 'é'`},
		{strings.Repeat("vlan and ", filter.MaxVLANDepth) + "vlan", 9 * filter.MaxVLANDepth, "more than 16"},
		{strings.Repeat("(", 300) + "udp" + strings.Repeat(")", 300), 256, "nested more than 256 deep"},
		{strings.Repeat("not ", 300) + "udp", 4 * 256, "nested more than 256 deep"},
	} {
		p, err := filter.Compile(tc.expr, filter.Redirect, filter.Pass)
		var se *filter.SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Compile(%q) = %v, %v; want a *SyntaxError", tc.expr, p, err)
			continue
		}
		if se.Expr != tc.expr || se.Offset != tc.offset || !strings.Contains(se.Msg, tc.msg) {
			t.Errorf("Compile(%q): %v; want offset %d and %q", tc.expr, err, tc.offset, tc.msg)
		}
		if !strings.HasPrefix(err.Error(), "filter: ") {
			t.Errorf("Compile(%q): %q does not start with the package name", tc.expr, err)
		}
	}
}

func TestSyntaxErrorFormat(t *testing.T) {
	t.Parallel()
	_, err := filter.Compile("udp prt 53", filter.Redirect, filter.Pass)
	if want := `filter: "udp prt 53": unexpected "prt" at offset 4`; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

func TestTooComplex(t *testing.T) {
	t.Parallel()
	expr := "host 10.0.0.1" + strings.Repeat(" or 10.0.0.1", 500)
	_, err := filter.Compile(expr, filter.Redirect, filter.Pass)
	var se *filter.SyntaxError
	if !errors.As(err, &se) || !strings.Contains(se.Msg, "too complex") {
		t.Errorf("Compile of 501 hosts: %v, want too complex", err)
	}
	_, err = filter.Compile(strings.Repeat("udp or ", 1<<14)+"udp", filter.Redirect, filter.Pass)
	if !errors.As(err, &se) || !strings.Contains(se.Msg, "longer than") {
		t.Errorf("Compile of a 112 KiB expression: %v, want too long", err)
	}
}

func TestActions(t *testing.T) {
	t.Parallel()
	for a, want := range map[filter.Action]string{filter.Drop: "drop", filter.Pass: "pass", filter.Redirect: "redirect", 0: "Action(0)", 3: "Action(3)"} {
		if got := a.String(); got != want {
			t.Errorf("Action(%d).String() = %q, want %q", int(a), got, want)
		}
	}
	for _, tc := range []struct {
		match, nomatch filter.Action
		want           string
	}{
		{0, filter.Pass, "invalid match action Action(0)"},
		{filter.Pass, 3, "invalid nomatch action Action(3)"},
	} {
		if _, err := filter.Compile("udp", tc.match, tc.nomatch); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Compile(udp, %s, %s) = %v, want %q", tc.match, tc.nomatch, err, tc.want)
		}
	}

	p, err := filter.CompileWithOptions("udp", filter.Drop, filter.Redirect, &filter.CompileOptions{KeepManagement: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.Match() != filter.Drop || p.NoMatch() != filter.Redirect || !p.KeepManagement() || !p.Redirects() {
		t.Errorf("Program reports match %s, nomatch %s, keep %v, redirects %v", p.Match(), p.NoMatch(), p.KeepManagement(), p.Redirects())
	}
	p, err = filter.Compile("udp", filter.Drop, filter.Pass)
	if err != nil {
		t.Fatal(err)
	}
	if p.KeepManagement() || p.Redirects() {
		t.Errorf("Compile(udp, drop, pass): keep %v, redirects %v, want neither", p.KeepManagement(), p.Redirects())
	}
	// Nothing can reach the redirect of an expression that matches all.
	p, err = filter.Compile("", filter.Pass, filter.Redirect)
	if err != nil {
		t.Fatal(err)
	}
	if p.Redirects() {
		t.Error(`Compile("", pass, redirect).Redirects() = true`)
	}
}

// Instructions returns a copy: changing it does not change the Program.
func TestInstructionsCopy(t *testing.T) {
	t.Parallel()
	p, err := filter.Compile("udp", filter.Drop, filter.Pass)
	if err != nil {
		t.Fatal(err)
	}
	insns := p.Instructions()
	insns[0].Constant = 12345
	if p.Instructions()[0].Constant == 12345 {
		t.Error("Instructions shares its slice with the Program")
	}
	// Two programs have distinct labels, so both fit in one program.
	q, err := filter.Compile("udp", filter.Drop, filter.Pass)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]bool{}
	for _, ins := range append(p.Instructions(), q.Instructions()...) {
		if s := ins.Symbol(); s != "" {
			if labels[s] {
				t.Errorf("label %q in both programs", s)
			}
			labels[s] = true
		}
	}
}
