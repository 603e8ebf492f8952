//go:build linux

package fastpath_test

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

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

// checksumsValid decodes frame with gopacket and reports whether its IPv4
// header checksum and TCP or UDP checksum are what gopacket computes,
// serializing the decoded layers again with ComputeChecksums.
func checksumsValid(tb testing.TB, frame []byte) {
	tb.Helper()
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	if el := pkt.ErrorLayer(); el != nil {
		tb.Fatalf("gopacket cannot decode the frame: %v\n%s", el.Error(), hex.Dump(frame))
	}
	var ls []gopacket.SerializableLayer
	var network gopacket.NetworkLayer
	noUDPSum := -1 // offset of a UDP over IPv4 checksum of 0, which stays 0
	for _, l := range pkt.Layers() {
		switch l := l.(type) {
		case *layers.IPv4:
			network = l
		case *layers.IPv6:
			network = l
		case *layers.TCP:
			_ = l.SetNetworkLayerForChecksum(network)
		case *layers.UDP:
			if _, v4 := network.(*layers.IPv4); v4 && l.Checksum == 0 {
				noUDPSum = len(frame) - len(l.LayerContents()) - len(l.LayerPayload()) + 6
			}
			_ = l.SetNetworkLayerForChecksum(network)
		}
		if s, ok := l.(gopacket.SerializableLayer); ok {
			ls = append(ls, s)
		}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, ls...); err != nil {
		tb.Fatalf("gopacket cannot serialize the decoded frame: %v", err)
	}
	want := buf.Bytes()
	if noUDPSum >= 0 && noUDPSum+2 <= len(want) {
		want[noUDPSum], want[noUDPSum+1] = 0, 0
	}
	if len(want) > len(frame) && len(want) == 60 && !bytes.ContainsFunc(want[len(frame):], func(r rune) bool { return r != 0 }) {
		want = want[:len(frame)] // gopacket pads Ethernet frames to 60 bytes
	}
	if len(want) > len(frame) || !bytes.Equal(want, frame[:len(want)]) {
		tb.Fatalf("checksums: gopacket computes other bytes\ngot:\n%s\nrecomputed:\n%s", hex.Dump(frame), hex.Dump(want))
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func netipPrefix(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }
