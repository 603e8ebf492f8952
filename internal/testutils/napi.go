//go:build linux

package testutils

import (
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"github.com/xdpkit/xdpkit/internal/sys"
)

// PeerNAPI attaches an XDP program that passes every frame to the peer
// end, until tb's cleanup. A veth delivers the frames the other end sends
// with XDP_TX (or that are redirected into it) only to a peer that has
// NAPI, which an XDP program (or GRO) gives it; the program changes
// nothing else: packet sockets and the stack see the frames as before.
func (v *Veth) PeerNAPI(tb testing.TB) {
	tb.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "xdpkit_peerpass", Type: ebpf.XDP, License: "Dual MIT/GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()}, // XDP_PASS
	})
	if err != nil {
		tb.Fatalf("load the peer's XDP_PASS program: %v", err)
	}
	tb.Cleanup(func() { prog.Close() })
	var l link.Link
	v.InPeer(tb, func() error {
		var err error
		l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: v.PeerIndex, Flags: link.XDPDriverMode})
		return err
	})
	tb.Cleanup(func() { l.Close() })
}

// NoTXChecksumOffload turns TX checksum offload off on ifname in network
// namespace ns (`ethtool -K IF tx off`), so the frames it sends carry
// complete checksums, as a NIC's would on the wire, instead of the partial
// ones a veth passes along.
func NoTXChecksumOffload(tb testing.TB, ns, ifname string) {
	tb.Helper()
	if err := InNetNS(ns, func() error { return sys.EthtoolSetTXChecksum(ifname, false) }); err != nil {
		tb.Fatal(err)
	}
}
