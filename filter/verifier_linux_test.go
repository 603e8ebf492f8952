//go:build linux

package filter_test

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cilium/ebpf"

	"github.com/xdpkit/xdpkit/filter"
	"github.com/xdpkit/xdpkit/internal/testutils"
)

// verifierExprs adds large and deep expressions to the differential ones.
func verifierExprs() []string {
	hosts := make([]string, 150)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)
	}
	exprs := append([]string(nil), differentialExprs...)
	return append(exprs,
		"host "+strings.Join(hosts, " or "),
		"net 2001:db8::/32 and not ("+strings.Repeat("port 1 or ", 60)+"port 2)",
		strings.Repeat("(", 100)+"udp port 53"+strings.Repeat(")", 100),
		strings.Repeat("not ", 255)+"udp",
		strings.Repeat("vlan and ", filter.MaxVLANDepth-1)+"vlan and udp port 53",
		strings.Repeat("vlan 4095 and ", filter.MaxVLANDepth-1)+"ip6 src and dst net 2001:db8::/32",
		"tcp portrange 0-65535 or sctp src portrange 1-2 or ip6 proto 255 or ip proto 0",
		"(((((udp or tcp) and port 1) or icmp) and not vlan) or arp) and vlan and (host ::1 or 1.2.3.4)",
	)
}

// TestVerifier loads every program Compile emits for many expressions,
// with every combination of actions and with and without the management
// exemption, into the kernel: the verifier must accept them all.
func TestVerifier(t *testing.T) {
	testutils.RequirePrivileged(t)
	exprs := verifierExprs()
	maxLen := 0
	for _, expr := range exprs {
		for _, keep := range []bool{false, true} {
			for _, pair := range actionPairs {
				p, err := filter.CompileWithOptions(expr, pair[0], pair[1], &filter.CompileOptions{KeepManagement: keep})
				if err != nil {
					t.Fatalf("Compile(%q): %v", expr, err)
				}
				maxLen = max(maxLen, len(p.Instructions()))
				prog, err := load(t, p)
				if err != nil {
					t.Fatalf("%q (keep %v, %s/%s): verifier: %+v", expr, keep, pair[0], pair[1], err)
				}
				prog.Close()
			}
		}
	}
	t.Logf("%d expressions × %d action pairs × 2 accepted; longest filter %d instructions", len(exprs), len(actionPairs), maxLen)
}

// FuzzCompile: any expression either fails with a *SyntaxError pointing
// into it, or compiles to a program the verifier accepts, whose normalized
// form compiles to the same normalized form.
func FuzzCompile(f *testing.F) {
	testutils.RequirePrivileged(f)
	for _, e := range differentialExprs {
		f.Add(e)
	}
	for _, e := range []string{"udp prt 53", "((", "host 1.2.3.4 or", "port 99999", "vlan and vlan 5 and 10.0.0.1",
		"net ::/0", "net 0.0.0.0 mask 0.0.0.0", "!!!!udp", "a&&b", "portrange 9-1"} {
		f.Add(e)
	}
	// Syntax errors, and the grammar's corners: qualifiers an address
	// inherits, symbols for the keywords, nesting, VLAN shifts.
	for _, e := range []string{
		"net 10.0.0.1/8", "ip[9] = 6", "port 53 and (", "(host 1.1.1.1) or 2.2.2.2", "port 70000",
		"ether host 00:11:22:33:44:55", "host \u00e9\u00e9",
		"src and dst host ::1 or src or dst port 1 or dst and src net 1.2.3.0/24",
		"((((((((((not (udp)))))))))))", "host (10.0.0.1 or 8.8.8.8) and not port (53 or 22)",
		"host 10.0.0.1 or 10.0.0.2 and not 10.0.0.3", "host 1.1.1.1 and (port 1) or 2.2.2.2",
		"net 10.0.0.0 mask 255.0.255.0 or net 192.168.1", "src net 2001:db8::/32 or dst net fe80::/10",
		"tcp src portrange 2000-1000 || udp portrange 53", "ip proto 0x11 or ip6 proto 58 or proto 132",
		"!(arp||rarp)&&!icmp", "vlan (0x64) and arp src host 10.0.0.1", "vlan or udp",
		"vlan 100 and vlan 200 and ip6 and tcp dst port 22",
	} {
		f.Add(e)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		if len(expr) > 2048 {
			return
		}
		keep := len(expr)%2 == 1
		pair := actionPairs[len(expr)%len(actionPairs)]
		p, err := filter.CompileWithOptions(expr, pair[0], pair[1], &filter.CompileOptions{KeepManagement: keep})
		if err != nil {
			se, ok := err.(*filter.SyntaxError)
			if !ok {
				t.Fatalf("Compile(%q): %T %v, want *SyntaxError", expr, err, err)
			}
			if se.Offset < 0 || se.Offset > len(expr) || se.Msg == "" || se.Expr != expr {
				t.Fatalf("Compile(%q): bad SyntaxError %+v", expr, se)
			}
			if utf8.ValidString(expr) && !strings.HasPrefix(err.Error(), "filter: ") {
				t.Fatalf("Compile(%q): error %q", expr, err)
			}
			return
		}
		norm := p.String()
		again, err := filter.CompileWithOptions(norm, pair[0], pair[1], &filter.CompileOptions{KeepManagement: keep})
		if err != nil {
			t.Fatalf("Compile(%q) normalized to %q, which fails: %v", expr, norm, err)
		}
		if again.String() != norm {
			t.Fatalf("Compile(%q) normalized to %q, then to %q", expr, norm, again.String())
		}
		if len(again.Instructions()) != len(p.Instructions()) {
			t.Fatalf("Compile(%q): %d instructions, its normalized form %q %d", expr, len(p.Instructions()), norm, len(again.Instructions()))
		}
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "Dual MIT/GPL", Instructions: harness(p)})
		if err != nil {
			t.Fatalf("Compile(%q) (keep %v): verifier: %+v", expr, keep, err)
		}
		prog.Close()
	})
}
