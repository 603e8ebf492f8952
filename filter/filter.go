package filter

import (
	"fmt"
	"sync/atomic"

	"github.com/cilium/ebpf/asm"
)

// RedirectSymbol is the instruction label a [Redirect] verdict jumps to.
// The program built by redirect.Attach puts it on its bpf_redirect_map
// call; a program of your own that splices in [Program.Instructions] must
// label an instruction with it when the filter uses Redirect.
const RedirectSymbol = "redirect"

// Action is what the XDP program does with a frame. The values are the
// kernel's XDP action codes; the zero value is not a valid Action.
type Action int

const (
	// Drop discards the frame in the kernel (XDP_DROP).
	Drop Action = 1
	// Pass hands the frame to the kernel network stack (XDP_PASS).
	Pass Action = 2
	// Redirect sends the frame to the AF_XDP socket registered for its RX
	// queue, by jumping to [RedirectSymbol]. In the redirect program a
	// queue without a socket passes its frames to the kernel stack.
	Redirect Action = 4
)

// String returns "drop", "pass" or "redirect".
func (a Action) String() string {
	switch a {
	case Drop:
		return "drop"
	case Pass:
		return "pass"
	case Redirect:
		return "redirect"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

func (a Action) valid() bool { return a == Drop || a == Pass || a == Redirect }

// CompileOptions tunes [CompileWithOptions]. A nil *CompileOptions is the
// zero value.
type CompileOptions struct {
	// KeepManagement passes the traffic that keeps a remote session to the
	// machine alive to the kernel stack before the filter runs, whatever
	// the filter and its actions say: ARP, IPv6 neighbour discovery
	// (ICMPv6 types 133 to 137 directly after the IPv6 header), SSH (TCP
	// port 22) and DNS (TCP and UDP port 53), untagged or inside one VLAN
	// tag (802.1Q, 802.1ad or 0x9100), over IPv4 or IPv6. A port is
	// either the source or the destination port; IPv4 fragments after the
	// first have no ports and go through the filter. The zero value
	// (false) leaves every frame to the filter.
	KeepManagement bool
}

// Program is a compiled filter: the parsed expression and the eBPF
// instructions that evaluate it. It is immutable and safe for concurrent
// use.
type Program struct {
	expr    string // normalized
	insns   asm.Instructions
	match   Action
	nomatch Action
	keep    bool
}

// MaxInstructions is the largest filter Compile emits. Longer
// expressions fail with a [SyntaxError]: jump offsets in eBPF are 16-bit,
// and the program has to stay well within the verifier's limits.
const MaxInstructions = 16384

// MaxVLANDepth is the most "vlan" keywords an expression may contain.
const MaxVLANDepth = 16

// maxNesting bounds parentheses and negations, so that hostile input
// cannot exhaust the stack.
const maxNesting = 256

// programs numbers the Programs so that their labels are unique even
// when two filters end up in one eBPF program.
var programs atomic.Uint64

// Compile parses expr, a tcpdump filter expression, and compiles it into
// eBPF: frames the expression matches get the match action, all others
// the nomatch action. The empty expression matches every frame.
//
// A malformed or unsupported expression returns a *[SyntaxError] naming
// the offending token and its byte offset, for example
//
//	filter: "udp prt 53": unexpected "prt" at offset 4
func Compile(expr string, match, nomatch Action) (*Program, error) {
	return CompileWithOptions(expr, match, nomatch, nil)
}

// CompileWithOptions is [Compile] with options; nil opts is the zero
// value.
func CompileWithOptions(expr string, match, nomatch Action, opts *CompileOptions) (*Program, error) {
	return compile(expr, match, nomatch, opts, lowering{})
}

func compile(expr string, match, nomatch Action, opts *CompileOptions, lo lowering) (*Program, error) {
	var o CompileOptions
	if opts != nil {
		o = *opts
	}
	if !match.valid() {
		return nil, fmt.Errorf("filter: invalid match action %s: must be Redirect, Pass or Drop", match)
	}
	if !nomatch.valid() {
		return nil, fmt.Errorf("filter: invalid nomatch action %s: must be Redirect, Pass or Drop", nomatch)
	}
	root, err := parse(expr)
	if err != nil {
		return nil, err
	}
	insns, err := generate(root, lo, match, nomatch, o.KeepManagement, fmt.Sprintf("xdpkit_filter%d", programs.Add(1)))
	if err != nil {
		return nil, &SyntaxError{Expr: expr, Offset: 0, Msg: err.Error()}
	}
	return &Program{expr: format(root), insns: insns, match: match, nomatch: nomatch, keep: o.KeepManagement}, nil
}

// Instructions returns a copy of the filter's eBPF instructions, to be
// spliced into an XDP program (redirect.Options.Filter does this for
// you). On entry R6 must hold the struct xdp_md context; the filter
// leaves R6 unchanged, may clobber R0 to R5, and reads the frame's data
// and data_end from the context (offsets 0 and 4), checking every access
// against data_end. A frame too short for a field the expression reads
// does not match, as in tcpdump (the package documentation has the
// details).
//
// The filter never falls through: a [Redirect] verdict jumps to the
// instruction labelled [RedirectSymbol], a [Pass] or [Drop] verdict
// returns XDP_PASS or XDP_DROP. Its own labels are unique to p.
func (p *Program) Instructions() asm.Instructions {
	return append(asm.Instructions(nil), p.insns...)
}

// String returns the normalized expression: every primitive spelled out
// with its qualifiers (so "host a or b" becomes "host a or host b"),
// "and", "or" and "not" for their symbols, and parentheses only where the
// grouping needs them. Compiling it again gives the same filter. The
// keep-management option is not part of it.
func (p *Program) String() string { return p.expr }

// Redirects reports whether the filter can jump to [RedirectSymbol]: a
// Redirect action on a path the expression can take. When it cannot,
// nothing may follow the filter in the program, as the verifier refuses
// unreachable instructions; redirect.Attach then leaves out its redirect.
func (p *Program) Redirects() bool {
	for _, ins := range p.insns {
		if ins.Reference() == RedirectSymbol {
			return true
		}
	}
	return false
}

// Match returns the action for frames the expression matches.
func (p *Program) Match() Action { return p.match }

// NoMatch returns the action for frames the expression does not match.
func (p *Program) NoMatch() Action { return p.nomatch }

// KeepManagement reports whether the program passes management traffic
// before filtering (see [CompileOptions]).
func (p *Program) KeepManagement() bool { return p.keep }

// SyntaxError reports an expression Compile cannot parse or compile.
type SyntaxError struct {
	Expr   string // the expression as given
	Offset int    // byte offset in Expr of the offending token; len(Expr) for its end
	Msg    string // what is wrong, for example `unexpected "prt"`
}

// Error returns `filter: "EXPR": MSG at offset N`.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("filter: %q: %s at offset %d", e.Expr, e.Msg, e.Offset)
}
