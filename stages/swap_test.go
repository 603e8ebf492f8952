package stages_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"

	"github.com/xdpkit/xdpkit/internal/testframes"
	"github.com/xdpkit/xdpkit/packet"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/stages"
)

func TestMACSwap(t *testing.T) {
	t.Parallel()
	swapped := func(f []byte) []byte {
		return modify(f, func(b []byte) {
			copy(b[0:6], f[6:12])
			copy(b[6:12], f[0:6])
		})
	}
	arp := testframes.Hex(`
		ff ff ff ff ff ff 02 00 00 00 00 01 08 06 # ethernet
		00 01 08 00 06 04 00 01 02 00 00 00 00 01 c0 00 02 01 00 00 00 00 00 00 c6 33 64 02 # arp request
	`)
	cases := []struct {
		name  string
		s     *stages.MACSwap
		frame []byte
		v     pipeline.Verdict
		want  []byte
	}{
		{"udp4", stages.NewMACSwap(), testframes.UDP4, pipeline.Transmit, testframes.Hex(`
			02 00 00 00 00 01 02 00 00 00 00 02 08 00 # ethernet, swapped
			45 00 00 21 12 34 00 00 40 11 7c 61 c0 00 02 01 c6 33 64 02 # ipv4, unchanged
			9c 40 00 35 00 0d 33 55 68 65 6c 6c 6f # udp, unchanged
		`)},
		{"tcp6", stages.NewMACSwap(), testframes.TCP6, pipeline.Transmit, swapped(testframes.TCP6)},
		{"vlan", stages.NewMACSwap(), testframes.UDP4VLAN, pipeline.Transmit, swapped(testframes.UDP4VLAN)},
		{"arp", stages.NewMACSwap(), arp, pipeline.Transmit, testframes.Hex(`
			02 00 00 00 00 01 ff ff ff ff ff ff 08 06 # ethernet, swapped
			00 01 08 00 06 04 00 01 02 00 00 00 00 01 c0 00 02 01 00 00 00 00 00 00 c6 33 64 02 # arp request
		`)},
		{"chain", &stages.MACSwap{Chain: true}, testframes.UDP4, pipeline.Continue, swapped(testframes.UDP4)},
		// Only the Ethernet header matters: a truncated IP packet is reflected.
		{"truncated", stages.NewMACSwap(), testframes.UDP4[:40], pipeline.Transmit, swapped(testframes.UDP4[:40])},
		{"runt", stages.NewMACSwap(), testframes.UDP4[:12], pipeline.Malformed, testframes.UDP4[:12]},
		{"empty", stages.NewMACSwap(), nil, pipeline.Malformed, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			v, got := handle(t, c.s, c.frame)
			if v != c.v || !bytes.Equal(got, c.want) {
				t.Errorf("Handle = %v\n%x, want %v\n%x", v, got, c.v, c.want)
			}
		})
	}
	if n := stages.NewMACSwap().Name(); n != "macswap" {
		t.Errorf("Name() = %q", n)
	}

	// HandleFrames decides each frame of a batch as Handle does.
	for _, chain := range []bool{false, true} {
		var b pipeline.FrameBatch
		var want [][]byte
		var wantV []pipeline.Verdict
		for _, c := range cases {
			if c.s.Chain == chain {
				b.Frames = append(b.Frames, bytes.Clone(c.frame))
				want, wantV = append(want, c.want), append(wantV, c.v)
			}
		}
		b.Verdicts, b.Out = make([]pipeline.Verdict, len(b.Frames)), make([]int, len(b.Frames))
		(&stages.MACSwap{Chain: chain}).HandleFrames(&b)
		for i, f := range b.Frames {
			if b.Verdicts[i] != wantV[i] || !bytes.Equal(f, want[i]) {
				t.Errorf("HandleFrames (chain %v), frame %d = %v\n%x, want %v\n%x", chain, i, b.Verdicts[i], f, wantV[i], want[i])
			}
		}
	}
}

func TestAddrSwap(t *testing.T) {
	t.Parallel()
	replies := []struct {
		name       string
		frame      []byte
		reply      []byte
		noChecksum bool // the frame has no L4 checksum to verify
	}{
		{name: "udp4", frame: testframes.UDP4, reply: udp4Reply},
		{name: "udp4 without checksum", frame: udp4NoCsum, reply: udp4NoCsumReply},
		{name: "tcp4", frame: tcp4, reply: tcp4Reply},
		{name: "udp6", frame: testframes.UDP6, reply: udp6Reply},
		{name: "tcp6", frame: testframes.TCP6, reply: tcp6Reply},
		{name: "icmp4 echo", frame: testframes.ICMP4, reply: icmp4Reply},
		{name: "icmp6 echo", frame: testframes.ICMP6, reply: icmp6Reply},
		{name: "vlan", frame: testframes.UDP4VLAN, reply: vlanReply},
		{name: "non-first fragment", frame: testframes.Frag4Rest, reply: frag4RestReply, noChecksum: true},
	}
	for _, c := range replies {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			for _, recompute := range []bool{false, true} {
				s := stages.NewAddrSwap(&stages.AddrSwapOptions{RecomputeL4Checksum: recompute})
				v, got := handle(t, s, c.frame)
				if v != pipeline.Transmit || !bytes.Equal(got, c.reply) {
					t.Fatalf("recompute %v: Handle = %v\n%x, want Transmit\n%x", recompute, v, got, c.reply)
				}
				ipOK, l4OK, hasL4 := checksumsValid(got)
				if !ipOK || hasL4 == c.noChecksum || hasL4 && !l4OK {
					t.Errorf("checksums by recomputation: IP %v, L4 %v (has one: %v)", ipOK, l4OK, hasL4)
				}
				if !c.noChecksum {
					testframes.CheckChecksums(t, got)
				}
			}
		})
	}
	for name, frame := range noReply {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			v, got := handle(t, stages.NewAddrSwap(nil), frame)
			if v != pipeline.Continue || !bytes.Equal(got, frame) {
				t.Errorf("Handle = %v\n%x, want Continue, untouched", v, got)
			}
		})
	}
	for name, frame := range map[string][]byte{
		"truncated": testframes.UDP4[:40], "runt": testframes.UDP4[:13], "empty": nil,
		"bad udp length": modify(testframes.UDP6, func(b []byte) { b[59] = 99 }),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			v, got := handle(t, stages.NewAddrSwap(nil), frame)
			if v != pipeline.Malformed || !bytes.Equal(got, frame) {
				t.Errorf("Handle = %v\n%x, want Malformed, untouched", v, got)
			}
		})
	}
	t.Run("chain", func(t *testing.T) {
		t.Parallel()
		v, got := handle(t, stages.NewAddrSwap(&stages.AddrSwapOptions{Chain: true}), testframes.UDP4)
		if v != pipeline.Continue || !bytes.Equal(got, udp4Reply) {
			t.Errorf("Handle = %v\n%x, want Continue\n%x", v, got, udp4Reply)
		}
	})
	if n := stages.NewAddrSwap(nil).Name(); n != "addrswap" {
		t.Errorf("Name() = %q", n)
	}
}

// TestAddrSwapPartialChecksum: a frame whose L4 checksum field holds only
// the pseudo-header sum (TX checksum offload on a veth peer) is reflected
// with that partial sum by default, which the receiver rejects, and with a
// right checksum with RecomputeL4Checksum.
func TestAddrSwapPartialChecksum(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name         string
		frame, reply []byte
	}{
		{"udp4", testframes.UDP4, udp4Reply}, {"tcp4", tcp4, tcp4Reply},
		{"udp6", testframes.UDP6, udp6Reply}, {"tcp6", testframes.TCP6, tcp6Reply},
	} {
		in := partial(c.frame)
		_, got := handle(t, stages.NewAddrSwap(nil), in)
		if _, l4OK, _ := checksumsValid(got); l4OK {
			t.Errorf("%s: a reflected partial checksum verifies; the test frame is wrong", c.name)
		}
		_, got = handle(t, stages.NewAddrSwap(&stages.AddrSwapOptions{RecomputeL4Checksum: true}), in)
		if !bytes.Equal(got, c.reply) {
			t.Errorf("%s with RecomputeL4Checksum:\n got %x\nwant %x", c.name, got, c.reply)
		}
	}
}

// TestAddrSwapKeepsChecksums reflects random frames: their checksum fields
// come back byte for byte (the swap leaves every sum as it was), still
// right by full recomputation and by gopacket, and a second swap gives the
// original frame back.
func TestAddrSwapKeepsChecksums(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(11, 12))
	s := stages.NewAddrSwap(nil)
	for i := range 3000 {
		v6 := i%2 == 1
		proto := []uint8{packet.ProtoUDP, packet.ProtoTCP, packet.ProtoICMP}[i/2%3]
		if proto == packet.ProtoICMP && v6 {
			proto = packet.ProtoICMPv6
		}
		frame := randomFrame(r, v6, proto, randomAddr(r, v6), randomAddr(r, v6), uint16(r.Uint32()), uint16(r.Uint32()))
		var h packet.Headers
		_ = packet.Parse(frame, &h)
		v, got := handle(t, s, frame)
		if v != pipeline.Transmit {
			t.Fatalf("Handle = %v for %x", v, frame)
		}
		if ipOK, l4OK, _ := checksumsValid(got); !ipOK || !l4OK {
			t.Fatalf("checksums wrong after the swap (IP %v, L4 %v):\n%x\n%x", ipOK, l4OK, frame, got)
		}
		if h.IPv4 && !bytes.Equal(got[24:26], frame[24:26]) {
			t.Fatalf("IPv4 header checksum changed: %x -> %x", frame[24:26], got[24:26])
		}
		if proto == packet.ProtoUDP || proto == packet.ProtoTCP {
			off := map[uint8]int{packet.ProtoUDP: 6, packet.ProtoTCP: 16}[proto]
			if !bytes.Equal(got[h.L4Off+off:h.L4Off+off+2], frame[h.L4Off+off:h.L4Off+off+2]) {
				t.Fatalf("L4 checksum changed")
			}
			if _, back := handle(t, s, got); !bytes.Equal(back, frame) {
				t.Fatalf("swapping twice:\n got %x\nwant %x", back, frame)
			}
		}
		if i%10 == 0 {
			testframes.CheckChecksums(t, got)
		}
	}
}

func TestSwapAllocs(t *testing.T) {
	frames := [][]byte{testframes.UDP4, testframes.TCP6, testframes.ICMP4, testframes.ICMP6, testframes.Frag4Rest, testframes.UDP4[:30], noReply["arp"]}
	ps := make([]*pipeline.Packet, len(frames))
	for i, f := range frames {
		ps[i] = &pipeline.Packet{Data: bytes.Clone(f)}
		ps[i].Reparse()
	}
	for _, s := range []pipeline.Stage{stages.NewMACSwap(), stages.NewAddrSwap(nil), stages.NewAddrSwap(&stages.AddrSwapOptions{RecomputeL4Checksum: true})} {
		allocs := testing.AllocsPerRun(1000, func() {
			for _, p := range ps {
				s.Handle(p)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per run", s.(pipeline.Named).Name(), allocs)
		}
	}
}

// FuzzMACSwap: no panic, no write past the frame, Malformed exactly for
// frames shorter than an Ethernet header (left as they were), and
// otherwise the MACs swapped and nothing else changed.
func FuzzMACSwap(f *testing.F) {
	for _, frame := range seeds() {
		f.Add(frame)
	}
	s := stages.NewMACSwap()
	f.Fuzz(func(t *testing.T, frame []byte) {
		v, got := handle(t, s, frame)
		switch {
		case v != pipeline.Transmit && v != pipeline.Malformed:
			t.Fatalf("verdict %v", v)
		case (v == pipeline.Malformed) != (len(frame) < 14):
			t.Fatalf("verdict %v for a %d-byte frame", v, len(frame))
		case v == pipeline.Malformed && !bytes.Equal(got, frame):
			t.Fatalf("a Malformed frame was changed")
		case v == pipeline.Transmit && (!bytes.Equal(got[:6], frame[6:12]) || !bytes.Equal(got[6:12], frame[:6]) || !bytes.Equal(got[12:], frame[12:])):
			t.Fatalf("swapped\n%x\ninto\n%x", frame, got)
		}
	})
}

// FuzzAddrSwap: as FuzzMACSwap, and a transmitted frame is a reply to
// the sender (addresses and ports swapped), with checksums right if they
// were, and with RecomputeL4Checksum right for UDP and TCP whatever they
// were; a frame passed on is untouched. Every input runs with and without
// RecomputeL4Checksum.
func FuzzAddrSwap(f *testing.F) {
	for _, frame := range seeds() {
		f.Add(frame)
	}
	plain := stages.NewAddrSwap(nil)
	recompute := stages.NewAddrSwap(&stages.AddrSwapOptions{RecomputeL4Checksum: true})
	f.Fuzz(func(t *testing.T, frame []byte) {
		for _, s := range []*stages.AddrSwap{plain, recompute} {
			v, got := fuzzCheck(t, s, frame, pipeline.Transmit, pipeline.Continue, pipeline.Malformed)
			switch v {
			case pipeline.Continue:
				if !bytes.Equal(got, frame) {
					t.Fatalf("a frame passed on was changed")
				}
			case pipeline.Transmit:
				var in, out packet.Headers
				_ = packet.Parse(frame, &in)
				_ = packet.Parse(got, &out)
				if out.SrcIP != in.DstIP || out.DstIP != in.SrcIP || out.SrcPort != in.DstPort || out.DstPort != in.SrcPort ||
					!bytes.Equal(got[:6], frame[6:12]) || !bytes.Equal(got[6:12], frame[:6]) {
					t.Fatalf("not a reply:\n in %+v\nout %+v", in, out)
				}
				if s == recompute && (out.IPProto == packet.ProtoUDP || out.IPProto == packet.ProtoTCP) {
					if _, l4OK, has := checksumsValid(got); has && !l4OK {
						t.Fatalf("L4 checksum wrong after recomputation: %x", got)
					}
				}
			}
		}
	})
}

func BenchmarkMACSwap(b *testing.B) {
	bench(b, stages.NewMACSwap(), testframes.UDP4, false)
}

func BenchmarkAddrSwap(b *testing.B) {
	for _, c := range []struct {
		name  string
		opts  *stages.AddrSwapOptions
		frame []byte
		reset bool
	}{
		{"udp4", nil, testframes.UDP4, false},
		{"tcp6", nil, testframes.TCP6, false},
		{"icmp4-echo", nil, testframes.ICMP4, true},
		{"udp4-recompute", &stages.AddrSwapOptions{RecomputeL4Checksum: true}, testframes.UDP4, false},
		{"tcp6-recompute", &stages.AddrSwapOptions{RecomputeL4Checksum: true}, testframes.TCP6, false},
	} {
		b.Run(c.name, func(b *testing.B) { bench(b, stages.NewAddrSwap(c.opts), c.frame, c.reset) })
	}
}

// bench runs s on one parsed frame in a loop. For UDP and TCP the frame
// flips between request and reply (Handle keeps the headers up to date);
// with reset, the frame and its headers are copied back first each time
// (an echo reply would not be answered), which the time includes.
func bench(b *testing.B, s pipeline.Stage, frame []byte, reset bool) {
	p := &pipeline.Packet{Data: bytes.Clone(frame)}
	p.Reparse()
	h := p.Headers
	b.ReportAllocs()
	for b.Loop() {
		if v := benchHandle(s, p, frame, &h, reset); v != pipeline.Transmit {
			b.Fatalf("verdict %v", v)
		}
	}
}

func ExampleMACSwap() {
	s := stages.NewMACSwap()
	p := &pipeline.Packet{Data: bytes.Clone(testframes.UDP4)} // 02:00:00:00:00:01 -> 02:00:00:00:00:02
	p.Reparse()
	v := s.Handle(p)
	fmt.Println(v, net.HardwareAddr(p.Data[6:12]), "->", net.HardwareAddr(p.Data[0:6]))
	// Output: transmit 02:00:00:00:00:02 -> 02:00:00:00:00:01
}

func ExampleAddrSwap() {
	s := stages.NewAddrSwap(nil)
	p := &pipeline.Packet{Data: bytes.Clone(testframes.UDP4)} // 192.0.2.1:40000 -> 198.51.100.2:53
	p.Reparse()
	v := s.Handle(p)
	h := &p.Headers
	fmt.Println(v, netip.AddrPortFrom(h.SrcIP, h.SrcPort), "->", netip.AddrPortFrom(h.DstIP, h.DstPort))
	// Output: transmit 198.51.100.2:53 -> 192.0.2.1:40000
}
