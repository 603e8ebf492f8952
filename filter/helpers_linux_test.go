//go:build linux

package filter_test

import (
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/xdpkit/xdpkit/filter"
)

// xdpRedirect is what the test harness returns for filter.Redirect, so
// that every Action comes back as its own value.
const xdpRedirect = 4

// harness wraps p's instructions the way the redirect program does: the
// context in R6 first, and a "redirect" label if p uses it, here
// returning XDP_REDIRECT without calling bpf_redirect_map.
func harness(p *filter.Program) asm.Instructions {
	insns := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
	insns = append(insns, p.Instructions()...)
	if !p.Redirects() {
		return insns
	}
	return append(insns,
		asm.Mov.Imm(asm.R0, xdpRedirect).WithSymbol(filter.RedirectSymbol),
		asm.Return(),
	)
}

// load loads p in the harness as an XDP program, closed at cleanup. The
// error is the verifier's.
func load(tb testing.TB, p *filter.Program) (*ebpf.Program, error) {
	tb.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "filter_test",
		Type:         ebpf.XDP,
		License:      "Dual MIT/GPL",
		Instructions: harness(p),
	})
	if err != nil {
		return nil, err
	}
	tb.Cleanup(func() { prog.Close() })
	return prog, nil
}

// mustLoad is load that fails tb, with the expression, on a verifier error.
func mustLoad(tb testing.TB, p *filter.Program) *ebpf.Program {
	tb.Helper()
	prog, err := load(tb, p)
	if err != nil {
		tb.Fatalf("%q: verifier: %+v", p.String(), err)
	}
	return prog
}

// verdict runs prog on frame with BPF_PROG_TEST_RUN and returns the XDP
// action.
func verdict(tb testing.TB, prog *ebpf.Program, frame []byte) filter.Action {
	tb.Helper()
	ret, err := prog.Run(&ebpf.RunOptions{Data: frame})
	if err != nil {
		tb.Fatalf("BPF_PROG_TEST_RUN on a %d-byte frame: %v", len(frame), err)
	}
	return filter.Action(ret)
}
