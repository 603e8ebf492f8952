package progs

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/xdpkit/xdpkit/bench/internal/pkt"
)

func frame(dport uint16) []byte {
	return pkt.UDP(pkt.Spec{Len: 60, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
		DstIP: netip.MustParseAddr("10.0.0.1"), SrcIP: netip.MustParseAddr("10.0.0.2"), DstPort: dport, SrcPort: 9})
}

func run(t *testing.T, p *ebpf.Program, in []byte) (uint32, []byte) {
	t.Helper()
	out := make([]byte, len(in)+256)
	ret, err := p.Run(&ebpf.RunOptions{Data: in, DataOut: out})
	if err != nil {
		t.Fatal(err)
	}
	return ret, out
}

func TestPrograms(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	sink, err := Sink(7777)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := run(t, sink, frame(7777)); r != XDPPass {
		t.Errorf("sink probe: %d", r)
	}
	if r, _ := run(t, sink, frame(9)); r != XDPDrop {
		t.Errorf("sink load: %d", r)
	}
	ms, err := MACSwap()
	if err != nil {
		t.Fatal(err)
	}
	in := frame(9)
	r, out := run(t, ms, in)
	if r != XDPTX || string(out[0:6]) != string(in[6:12]) || string(out[6:12]) != string(in[0:6]) {
		t.Errorf("macswap: %d % x", r, out[:12])
	}
	gf, m, err := GenFlows(1024)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for i := 0; i < 5; i++ {
		r, out = run(t, gf, in)
		out = out[:len(in)]
		if r != XDPTX || !pkt.ValidChecksums(out) {
			t.Fatalf("genflows: %d valid=%v", r, pkt.ValidChecksums(out))
		}
		if p := binary.BigEndian.Uint16(out[34:]); p < FlowBasePort || p >= FlowBasePort+1024 {
			t.Fatalf("port %d", p)
		}
		in = out
	}
}
