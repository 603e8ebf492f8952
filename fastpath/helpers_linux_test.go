//go:build linux

package fastpath_test

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/xdpkit/xdpkit/fastpath"
	"github.com/xdpkit/xdpkit/internal/testutils"
)

// XDP actions as Program.Run returns them. The test program returns
// xdpRedirect where the redirect program would call bpf_redirect_map.
const (
	xdpAborted  = 0
	xdpDrop     = 1
	xdpPass     = 2
	xdpTX       = 3
	xdpRedirect = 4
)

// newFastPath makes a FastPath and the test program around it: the fast
// path, then "return XDP_REDIRECT" at the xsk label.
func newFastPath(tb testing.TB, cfg *fastpath.Config) (*fastpath.FastPath, *ebpf.Program) {
	tb.Helper()
	testutils.RequirePrivileged(tb)
	fp, err := fastpath.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { fp.Close() })
	return fp, loadProgram(tb, fp)
}

func loadProgram(tb testing.TB, fp *fastpath.FastPath) *ebpf.Program {
	tb.Helper()
	insns, err := fp.Instructions("test_xsk")
	if err != nil {
		tb.Fatal(err)
	}
	all := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
	all = append(all, insns...)
	all = append(all, asm.Mov.Imm(asm.R0, xdpRedirect).WithSymbol("test_xsk"), asm.Return())
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "xdpkit_fptest", Type: ebpf.XDP, License: "Dual MIT/GPL", Instructions: all})
	if err != nil {
		tb.Fatalf("load fast path: %v", err)
	}
	tb.Cleanup(func() { prog.Close() })
	return prog
}

// run runs prog on frame and returns the verdict and the frame as the
// program left it.
func run(tb testing.TB, prog *ebpf.Program, frame []byte) (uint32, []byte) {
	tb.Helper()
	out := make([]byte, len(frame)+256)
	opts := &ebpf.RunOptions{Data: frame, DataOut: out}
	ret, err := prog.Run(opts)
	if err != nil {
		tb.Fatalf("BPF_PROG_TEST_RUN: %v", err)
	}
	return ret, opts.DataOut
}

// wantFrame fails tb unless got and want are the same bytes.
func wantFrame(tb testing.TB, what string, got, want []byte) {
	tb.Helper()
	if !bytes.Equal(got, want) {
		tb.Fatalf("%s: frame differs\ngot:\n%s\nwant:\n%s", what, hex.Dump(got), hex.Dump(want))
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func netipPrefix(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }
