package gen_test

import (
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/xdpkit/xdpkit/gen"
	"github.com/xdpkit/xdpkit/packet"
)

var (
	srcMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	dstMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
)

func template(proto gen.Proto, v6 bool) gen.Template {
	t := gen.Template{SrcMAC: srcMAC, DstMAC: dstMAC, Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"),
		SrcPort: 40000, DstPort: 9, Proto: proto}
	if v6 {
		t.Src, t.Dst = netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
	}
	return t
}

// verify decodes frame with gopacket and checks its checksums against
// ones gopacket computes itself.
func verify(t *testing.T, frame []byte, proto gen.Proto) gopacket.Packet {
	t.Helper()
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("gopacket: %v", el.Error())
	}
	// Recompute every checksum by serializing the decoded layers again.
	var ls []gopacket.SerializableLayer
	var nl gopacket.NetworkLayer
	for _, l := range p.Layers() {
		switch l := l.(type) {
		case *layers.IPv4:
			nl = l
		case *layers.IPv6:
			nl = l
		case *layers.UDP:
			_ = l.SetNetworkLayerForChecksum(nl)
		case *layers.TCP:
			_ = l.SetNetworkLayerForChecksum(nl)
		case *layers.ICMPv6:
			_ = l.SetNetworkLayerForChecksum(nl)
		}
		if sl, ok := l.(gopacket.SerializableLayer); ok {
			ls = append(ls, sl)
		}
	}
	if icmp6, ok := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6); ok {
		// gopacket does not re-serialize an echo's data: check the
		// checksum with a plain RFC 1071 sum over the pseudo-header.
		ip := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		msg := ip.Payload
		pseudo := append(append([]byte{}, ip.SrcIP.To16()...), ip.DstIP.To16()...)
		pseudo = append(pseudo, 0, 0, byte(len(msg)>>8), byte(len(msg)), 0, 0, 0, 58)
		if rfc1071(append(pseudo, msg...)) != 0 {
			t.Errorf("ICMPv6 checksum %#x does not verify", icmp6.Checksum)
		}
		return p
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	want := buf.Bytes()
	var h packet.Headers
	if err := packet.Parse(frame, &h); err != nil {
		t.Fatal(err)
	}
	end := h.L3Off + h.IPLen
	if string(want[:min(len(want), end)]) != string(frame[:end]) {
		t.Errorf("%s frame differs from gopacket's re-serialization (checksums):\n got %x\nwant %x", proto, frame[:end], want[:min(len(want), end)])
	}
	return p
}

// rfc1071 is the Internet checksum of b, written plainly: 0 when b
// holds a correct checksum.
func rfc1071(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

func TestBuilderChecksums(t *testing.T) {
	for _, proto := range []gen.Proto{gen.UDP, gen.TCPSYN, gen.ICMPEcho} {
		for _, v6 := range []bool{false, true} {
			for _, vlan := range []uint16{0, 100} {
				tpl := template(proto, v6)
				tpl.VLAN = vlan
				tpl.Sizes = []int{128, 1500}
				tpl.Flows = 7
				tpl.FlowBy = gen.FlowBoth
				b, err := gen.NewBuilder(tpl)
				if err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 2048)
				for i := range uint64(14) {
					n := b.Build(buf, i, false)
					if n != b.Size(i) {
						t.Fatalf("frame %d: %d bytes, want %d", i, n, b.Size(i))
					}
					b.Stamp(buf[:n], 1<<40+i, 123456789+int64(i))
					p := verify(t, buf[:n], proto)
					if proto != gen.TCPSYN {
						var h packet.Headers
						seq, ts, ok := gen.ReadStamp(buf[:n], &h)
						if !ok || seq != 1<<40+i || ts != 123456789+int64(i) {
							t.Errorf("%s v6=%v frame %d: stamp %d %d %v", proto, v6, i, seq, ts, ok)
						}
					}
					if vlan != 0 && p.Layer(layers.LayerTypeDot1Q) == nil {
						t.Errorf("no VLAN tag")
					}
				}
			}
		}
	}
}

// A clean rebuild (headers only) gives the same bytes as a full one,
// also after a stamp and for another flow and size.
func TestBuilderClean(t *testing.T) {
	tpl := template(gen.UDP, false)
	tpl.Sizes, tpl.Flows = gen.IMIX, 5
	b, _ := gen.NewBuilder(tpl)
	reused := make([]byte, 1500)
	fresh := make([]byte, 1500)
	for i := range uint64(60) {
		n := b.Build(reused, i, i > 0)
		b.Stamp(reused[:n], i, int64(i))
		clear(fresh)
		m := b.Build(fresh, i, false)
		b.Stamp(fresh[:m], i, int64(i))
		if string(reused[:n]) != string(fresh[:m]) {
			t.Fatalf("frame %d: a clean rebuild differs from a full one", i)
		}
	}
}

func TestBuilderFlowsAndSizes(t *testing.T) {
	tpl := template(gen.UDP, false)
	tpl.Sizes, tpl.Flows = gen.IMIX, 4
	b, err := gen.NewBuilder(tpl)
	if err != nil {
		t.Fatal(err)
	}
	if b.Period() != 12 {
		t.Errorf("period %d, want 12", b.Period())
	}
	sizes := map[int]int{}
	ports := map[uint16]int{}
	buf := make([]byte, 1500)
	var h packet.Headers
	for i := range uint64(12 * 4) {
		n := b.Build(buf, i, false)
		sizes[n]++
		_ = packet.Parse(buf[:n], &h)
		ports[h.SrcPort]++
	}
	if sizes[64] != 28 || sizes[576] != 16 || sizes[1500] != 4 {
		t.Errorf("sizes %v, want 7:4:1 of 64/576/1500", sizes)
	}
	if len(ports) != 4 || ports[40000] != 12 || ports[40003] != 12 {
		t.Errorf("source ports %v, want 40000-40003, 12 each", ports)
	}
}

func TestBuilderErrors(t *testing.T) {
	for name, change := range map[string]func(*gen.Template){
		"no MAC":        func(t *gen.Template) { t.DstMAC = nil },
		"mixed family":  func(t *gen.Template) { t.Dst = netip.MustParseAddr("fd00::2") },
		"too small":     func(t *gen.Template) { t.Sizes = []int{59} },
		"too big":       func(t *gen.Template) { t.Sizes = []int{gen.MaxFrameLen + 1} },
		"VLAN 4095":     func(t *gen.Template) { t.VLAN = 4095 },
		"no port":       func(t *gen.Template) { t.DstPort = 0 },
		"negative flow": func(t *gen.Template) { t.Flows = -1 },
	} {
		tpl := template(gen.UDP, false)
		change(&tpl)
		if _, err := gen.NewBuilder(tpl); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	tpl := template(gen.UDP, true)
	tpl.Sizes = []int{64} // IPv6 UDP fits, without a stamp
	b, err := gen.NewBuilder(tpl)
	if err != nil || b.HasStamp(0) {
		t.Errorf("IPv6 UDP at 64 bytes: %v, stamp %v; want a frame without a stamp", err, b != nil && b.HasStamp(0))
	}
}

func TestParse(t *testing.T) {
	for s, want := range map[string]gen.Rate{"100k": {PPS: 1e5}, "1.5M": {PPS: 1.5e6}, "10Mbit": {BPS: 1e7}, "2Gbit": {BPS: 2e9}, "0": {}, "500": {PPS: 500}} {
		if r, err := gen.ParseRate(s); err != nil || r != want {
			t.Errorf("ParseRate(%q) = %+v, %v; want %+v", s, r, err, want)
		}
	}
	for _, s := range []string{"fast", "-1", "1Tbit", "k"} {
		if _, err := gen.ParseRate(s); err == nil {
			t.Errorf("ParseRate(%q): no error", s)
		}
	}
	if sz, err := gen.ParseSizes("64,1500"); err != nil || len(sz) != 2 {
		t.Errorf("ParseSizes: %v %v", sz, err)
	}
	if _, err := gen.ParseSizes("64,x"); err == nil {
		t.Error("ParseSizes(64,x): no error")
	}
	if p, err := gen.ParseProto("tcp-syn"); err != nil || p != gen.TCPSYN {
		t.Errorf("ParseProto: %v %v", p, err)
	}
}

func FuzzReadStamp(f *testing.F) {
	b, _ := gen.NewBuilder(template(gen.UDP, false))
	buf := make([]byte, 64)
	n := b.Build(buf, 0, false)
	f.Add(buf[:n])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, frame []byte) {
		var h packet.Headers
		_, _, _ = gen.ReadStamp(frame, &h)
	})
}

// complete does what a device does with a CHECKSUM_PARTIAL frame: sum from
// start to the end of the IP packet, complement, store at start+offset.
func complete(frame []byte, start, offset uint16, end int) {
	var sum uint32
	seg := frame[start:end]
	for i := 0; i+1 < len(seg); i += 2 {
		sum += uint32(seg[i])<<8 | uint32(seg[i+1])
	}
	if len(seg)%2 == 1 {
		sum += uint32(seg[len(seg)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	cs := ^uint16(sum)
	if cs == 0 {
		cs = 0xffff
	}
	frame[start+offset], frame[start+offset+1] = byte(cs>>8), byte(cs)
}

// With ChecksumOffload, a frame completed as a device would is the frame
// computed in software, for every flow, size and stamp.
func TestBuilderChecksumOffload(t *testing.T) {
	for _, proto := range []gen.Proto{gen.UDP, gen.TCPSYN} {
		for _, v6 := range []bool{false, true} {
			tpl := template(proto, v6)
			tpl.Sizes, tpl.Flows, tpl.FlowBy = []int{128, 1500}, 5, gen.FlowBoth
			sw, err := gen.NewBuilder(tpl)
			if err != nil {
				t.Fatal(err)
			}
			tpl.ChecksumOffload = true
			hw, err := gen.NewBuilder(tpl)
			if err != nil {
				t.Fatal(err)
			}
			a, b := make([]byte, 1500), make([]byte, 1500)
			for i := range uint64(10) {
				n := sw.Build(a, i, false)
				sw.Stamp(a[:n], i<<20, int64(i)*77)
				m := hw.Build(b, i, i > 0)
				hw.Stamp(b[:m], i<<20, int64(i)*77)
				var h packet.Headers
				_ = packet.Parse(b[:m], &h)
				start, off := hw.ChecksumFields()
				complete(b, start, off, h.L3Off+h.IPLen)
				if string(a[:n]) != string(b[:m]) {
					t.Fatalf("%s v6=%v frame %d: offloaded and completed differs from computed:\n%x\n%x", proto, v6, i, b[:m], a[:n])
				}
			}
		}
	}
	tpl := template(gen.ICMPEcho, false)
	tpl.ChecksumOffload = true
	if _, err := gen.NewBuilder(tpl); err == nil {
		t.Error("ICMP with checksum offload: no error")
	}
}
