package packet_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/xdpkit/xdpkit/internal/testframes"
	"github.com/xdpkit/xdpkit/packet"
)

// refChecksum is RFC 1071 written out word by word: the reference the
// fast helpers are held to.
func refChecksum(b []byte, sum uint32) uint16 {
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

func TestChecksumRFC1071(t *testing.T) {
	t.Parallel()
	// RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := packet.Fold(packet.Sum(b, 0)); got != 0xddf2 {
		t.Errorf("sum %#04x, want 0xddf2", got)
	}
	if got := packet.Checksum(b, 0); got != 0x220d {
		t.Errorf("checksum %#04x, want 0x220d", got)
	}
}

func TestSumRandom(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 2000)
	for i := range 20000 {
		b := buf[:r.IntN(len(buf))]
		switch i % 4 {
		case 0:
			for j := range b {
				b[j] = byte(r.Uint32())
			}
		case 1: // all ones: carries everywhere
			for j := range b {
				b[j] = 0xff
			}
		case 2: // sparse
			clear(b)
			for range 3 {
				if len(b) > 0 {
					b[r.IntN(len(b))] = byte(r.Uint32())
				}
			}
		case 3: // mostly ones
			for j := range b {
				b[j] = 0xff ^ byte(r.Uint32()&r.Uint32()&r.Uint32())
			}
		}
		initial := r.Uint32()
		if i%8 == 0 {
			initial = 0xffffffff
		}
		want := refChecksum(b, 0)
		if got := packet.Checksum(b, 0); got != want {
			t.Fatalf("len %d: Checksum %#04x, want %#04x", len(b), got, want)
		}
		// With an initial sum: compare folded values, which one's
		// complement arithmetic makes unique but for the two zeros.
		want = refChecksum(b, uint32(packet.Fold(initial)))
		if got := packet.Checksum(b, initial); got != want && got^want != 0xffff {
			t.Fatalf("len %d, initial %#x: Checksum %#04x, want %#04x", len(b), initial, got, want)
		}
		// Summed in even-length pieces, then the rest.
		cut := r.IntN(len(b)+1) &^ 1
		if got, want := packet.Checksum(b[cut:], packet.Sum(b[:cut], 0)), packet.Checksum(b, 0); got != want {
			t.Fatalf("len %d cut at %d: %#04x, want %#04x", len(b), cut, got, want)
		}
	}
}

// TestChecksumValidates: over a message that includes its checksum the
// checksum is 0.
func TestChecksumValidates(t *testing.T) {
	t.Parallel()
	for _, c := range validCases {
		var h packet.Headers
		if err := packet.Parse(c.frame, &h); err != nil {
			t.Fatal(err)
		}
		if h.IPv4 {
			hdr := c.frame[h.L3Off : h.L3Off+h.IPHdrLen]
			if got := packet.Checksum(hdr, 0); got != 0 {
				t.Errorf("%s: IPv4 header sums to %#04x", c.name, got)
			}
			if got, want := packet.IPv4HeaderChecksum(hdr), binary.BigEndian.Uint16(hdr[10:]); got != want {
				t.Errorf("%s: IPv4HeaderChecksum %#04x, frame has %#04x", c.name, got, want)
			}
		}
	}
}

// l4Field returns the L4 checksum field's value.
func l4Field(frame []byte, h *packet.Headers) uint16 {
	off := map[uint8]int{packet.ProtoUDP: 6, packet.ProtoTCP: 16, packet.ProtoICMP: 2, packet.ProtoICMPv6: 2}[h.IPProto]
	return binary.BigEndian.Uint16(frame[h.L4Off+off:])
}

func TestL4Checksum(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		frame []byte
		ok    bool
	}{
		{"udp4", testframes.UDP4, true}, {"tcp4", tcp4, true}, {"icmp4", testframes.ICMP4, true},
		{"udp6", testframes.UDP6, true}, {"tcp6", testframes.TCP6, true}, {"icmp6", testframes.ICMP6, true},
		{"vlan", testframes.UDP4VLAN, true}, {"qinq", qinq, true}, {"ipv4 options", ip4Options, true},
		{"udp6 hop-by-hop", udp6HopByHop, true}, {"ipv6 extension chain", tcp6ExtChain, true},
		{"udp4 padded, no checksum", udp4Padded, true},
		{"arp", arp, false},
		{"ipv4 first fragment", frag4First, false}, {"ipv4 non-first fragment", testframes.Frag4Rest, false},
		{"ipv6 first fragment", frag6FirstTCP, false}, {"ipv6 non-first fragment", frag6Rest, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var h packet.Headers
			if err := packet.Parse(c.frame, &h); err != nil {
				t.Fatal(err)
			}
			got, ok := packet.L4Checksum(c.frame, &h)
			if ok != c.ok {
				t.Fatalf("L4Checksum ok = %v, want %v", ok, c.ok)
			}
			if !ok {
				frame := append([]byte(nil), c.frame...)
				if packet.SetL4Checksum(frame, &h) || string(frame) != string(c.frame) {
					t.Errorf("SetL4Checksum changed a frame without a computable checksum")
				}
				return
			}
			want := l4Field(c.frame, &h)
			if want == 0 && h.IPProto == packet.ProtoUDP {
				// No checksum: SetL4Checksum leaves it so.
				frame := append([]byte(nil), c.frame...)
				if !packet.SetL4Checksum(frame, &h) || l4Field(frame, &h) != 0 {
					t.Errorf("SetL4Checksum wrote %#04x over an absent UDP checksum", l4Field(frame, &h))
				}
				return
			}
			if got != want {
				t.Errorf("L4Checksum %#04x, frame has %#04x", got, want)
			}
			frame := append([]byte(nil), c.frame...)
			binary.BigEndian.PutUint16(frame[h.L4Off+map[uint8]int{6: 16, 17: 6, 1: 2, 58: 2}[h.IPProto]:], 0x1234)
			if !packet.SetL4Checksum(frame, &h) || string(frame) != string(c.frame) {
				t.Errorf("SetL4Checksum did not restore the frame:\n got %x\nwant %x", frame, c.frame)
			}
		})
	}
}

// TestSetL4ChecksumUDP6Zero: IPv6 has no "no checksum"; a zero UDP
// checksum over IPv6 is recomputed.
func TestSetL4ChecksumUDP6Zero(t *testing.T) {
	t.Parallel()
	frame := modify(testframes.UDP6, func(b []byte) { b[60], b[61] = 0, 0 })
	var h packet.Headers
	if err := packet.Parse(frame, &h); err != nil {
		t.Fatal(err)
	}
	if !packet.SetL4Checksum(frame, &h) || string(frame) != string(testframes.UDP6) {
		t.Errorf("got %x, want %x", frame, testframes.UDP6)
	}
}

func TestSetIPv4Checksum(t *testing.T) {
	t.Parallel()
	for _, f := range [][]byte{testframes.UDP4, ip4Options, testframes.UDP4VLAN, testframes.Frag4Rest} {
		frame := modify(f, func(b []byte) {})
		var h packet.Headers
		if err := packet.Parse(frame, &h); err != nil {
			t.Fatal(err)
		}
		frame[h.L3Off+10], frame[h.L3Off+11] = 0xde, 0xad
		if !packet.SetIPv4Checksum(frame, &h) || string(frame) != string(f) {
			t.Errorf("got %x, want %x", frame, f)
		}
	}
	var h packet.Headers
	_ = packet.Parse(testframes.UDP6, &h)
	if packet.SetIPv4Checksum(append([]byte(nil), testframes.UDP6...), &h) {
		t.Error("SetIPv4Checksum on IPv6 reported true")
	}
}

// randomAddr returns a random IPv4 or IPv6 address.
func randomAddr(r *rand.Rand, v6 bool) netip.Addr {
	if !v6 {
		return netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
	}
	var a [16]byte
	binary.BigEndian.PutUint64(a[:], r.Uint64())
	binary.BigEndian.PutUint64(a[8:], r.Uint64())
	return netip.AddrFrom16(a)
}

// gopacketFrame serializes a random UDP, TCP or ICMP frame with gopacket,
// checksums computed by gopacket.
func gopacketFrame(r *rand.Rand, v6 bool, proto uint8) []byte {
	payload := make([]byte, r.IntN(300))
	for i := range payload {
		payload[i] = byte(r.Uint32())
	}
	f := testframes.Spec{Src: randomAddr(r, v6), Dst: randomAddr(r, v6), Proto: proto, TTL: 64, Payload: payload}
	if !v6 {
		f.TTL, f.IPID = uint8(r.Uint32()), uint16(r.Uint32())
	}
	switch proto {
	case packet.ProtoUDP:
		f.SrcPort, f.DstPort = uint16(r.Uint32()), uint16(r.Uint32())
	case packet.ProtoTCP:
		f.SrcPort, f.DstPort, f.Seq, f.Ack, f.Window = uint16(r.Uint32()), uint16(r.Uint32()), r.Uint32(), r.Uint32(), uint16(r.Uint32())
	case packet.ProtoICMP:
		f.EchoID, f.EchoSeq = uint16(r.Uint32()), uint16(r.Uint32())
	}
	return testframes.Build(f)
}

// TestChecksumsAgainstGopacket computes the checksums of random frames that
// gopacket serialized with ComputeChecksums.
func TestChecksumsAgainstGopacket(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 4000 {
		v6 := i%2 == 1
		proto := []uint8{packet.ProtoUDP, packet.ProtoTCP, packet.ProtoICMP, packet.ProtoICMPv6}[i/2%4]
		if proto == packet.ProtoICMP && v6 || proto == packet.ProtoICMPv6 && !v6 {
			continue
		}
		frame := gopacketFrame(r, v6, proto)
		var h packet.Headers
		if err := packet.Parse(frame, &h); err != nil {
			t.Fatalf("Parse: %v (%x)", err, frame)
		}
		if h.IPv4 {
			hdr := frame[h.L3Off : h.L3Off+h.IPHdrLen]
			if got, want := packet.IPv4HeaderChecksum(hdr), binary.BigEndian.Uint16(hdr[10:]); got != want {
				t.Fatalf("IPv4HeaderChecksum %#04x, gopacket %#04x", got, want)
			}
		}
		got, ok := packet.L4Checksum(frame, &h)
		want := l4Field(frame, &h)
		// gopacket sends a UDP checksum that computes to 0 as 0, which
		// means "none" over IPv4; RFC 768 says 0xffff.
		if !ok || got != want && !(proto == packet.ProtoUDP && got == 0xffff && want == 0) {
			t.Fatalf("proto %d v6 %v: L4Checksum %#04x, %v; gopacket %#04x", proto, v6, got, ok, want)
		}
	}
}

func TestUpdateChecksum(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(5, 6))
	buf := make([]byte, 64)
	for i := range 100000 {
		for j := range buf {
			buf[j] = byte(r.Uint32())
		}
		if i%16 == 0 { // large sums: carries on every add
			for j := range buf {
				buf[j] |= 0xf0
			}
		}
		csum := packet.Checksum(buf, 0)
		off := 2 * r.IntN(len(buf)/2-8) // even: a word boundary
		switch i % 3 {
		case 0:
			old, new := binary.BigEndian.Uint16(buf[off:]), uint16(r.Uint32())
			if i%7 == 0 {
				new = old ^ 0xffff
			}
			binary.BigEndian.PutUint16(buf[off:], new)
			if got, want := packet.UpdateChecksum16(csum, old, new), packet.Checksum(buf, 0); got != want {
				t.Fatalf("UpdateChecksum16(%#04x, %#04x, %#04x) = %#04x, recomputed %#04x", csum, old, new, got, want)
			}
		case 1:
			old, new := binary.BigEndian.Uint32(buf[off:]), r.Uint32()
			binary.BigEndian.PutUint32(buf[off:], new)
			if got, want := packet.UpdateChecksum32(csum, old, new), packet.Checksum(buf, 0); got != want {
				t.Fatalf("UpdateChecksum32(%#04x, %#08x, %#08x) = %#04x, recomputed %#04x", csum, old, new, got, want)
			}
		case 2:
			v6 := i%2 == 0
			n := 4
			if v6 {
				n = 16
			}
			old, _ := netip.AddrFromSlice(buf[off : off+n])
			new := randomAddr(r, v6)
			copy(buf[off:], new.AsSlice())
			if got, want := packet.UpdateChecksumAddr(csum, old, new), packet.Checksum(buf, 0); got != want {
				t.Fatalf("UpdateChecksumAddr(%#04x, %v, %v) = %#04x, recomputed %#04x", csum, old, new, got, want)
			}
		}
	}
}

// TestUpdateL4ChecksumAddr rewrites destination addresses in the test
// frames and compares the updated checksums with full recomputation.
func TestUpdateL4ChecksumAddr(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 8))
	for _, f := range [][]byte{testframes.UDP4, tcp4, testframes.ICMP4, testframes.UDP6, testframes.TCP6, testframes.ICMP6, testframes.UDP4VLAN, qinq, udp6HopByHop, tcp6ExtChain} {
		for range 1000 {
			frame := append([]byte(nil), f...)
			var h packet.Headers
			if err := packet.Parse(frame, &h); err != nil {
				t.Fatal(err)
			}
			old, new := h.DstIP, randomAddr(r, h.IPv6)
			dst := frame[h.L3Off+16:]
			if h.IPv6 {
				dst = frame[h.L3Off+24:]
			}
			copy(dst, new.AsSlice())
			packet.UpdateL4ChecksumAddr(frame, &h, old, new)
			h.DstIP = new
			got := l4Field(frame, &h)
			want, _ := packet.L4Checksum(frame, &h)
			if h.IPProto == packet.ProtoICMP {
				want = l4Field(f, &h) // no pseudo-header: unchanged
			}
			if got != want {
				t.Fatalf("%x: updated checksum %#04x, recomputed %#04x", frame, got, want)
			}
		}
	}
}

// TestUpdateL4ChecksumAddrUDPZero: a UDP checksum of 0 ("none") stays 0,
// and an update that computes to 0 is written as 0xffff, which full
// recomputation agrees with.
func TestUpdateL4ChecksumAddrUDPZero(t *testing.T) {
	t.Parallel()
	frame := append([]byte(nil), udp4Padded...)
	var h packet.Headers
	if err := packet.Parse(frame, &h); err != nil {
		t.Fatal(err)
	}
	packet.UpdateL4ChecksumAddr(frame, &h, h.DstIP, netip.MustParseAddr("10.1.2.3"))
	if got := l4Field(frame, &h); got != 0 {
		t.Errorf("absent UDP checksum became %#04x", got)
	}

	// Choose the new address so that the updated checksum is 0:
	// ~C + ~old + new must fold to 0xffff.
	frame = append([]byte(nil), testframes.UDP4...)
	if err := packet.Parse(frame, &h); err != nil {
		t.Fatal(err)
	}
	old := h.DstIP.As4()
	x := packet.Fold(uint32(^l4Field(frame, &h)) + uint32(^binary.BigEndian.Uint16(old[:])) + uint32(^binary.BigEndian.Uint16(old[2:])))
	var a [4]byte
	binary.BigEndian.PutUint16(a[2:], 0xffff-x)
	new := netip.AddrFrom4(a)
	if packet.UpdateChecksumAddr(l4Field(frame, &h), h.DstIP, new) != 0 {
		t.Fatal("test setup: the update does not compute to 0")
	}
	copy(frame[h.L3Off+16:], a[:])
	packet.UpdateL4ChecksumAddr(frame, &h, h.DstIP, new)
	h.DstIP = new
	if got := l4Field(frame, &h); got != 0xffff {
		t.Errorf("UDP checksum that computes to 0 written as %#04x, want 0xffff", got)
	}
	if want, _ := packet.L4Checksum(frame, &h); want != 0xffff {
		t.Errorf("L4Checksum %#04x, want 0xffff", want)
	}
}

// TestUpdateL4ChecksumAddrUDP6Zero: over IPv6 a UDP checksum of 0 is not
// "none" (RFC 8200 makes it mandatory) but 0xffff's other one's-complement
// form, as a sender may write a checksum that computes to 0xffff; an
// address rewrite must update it like any other, or the rewritten frame's
// checksum is wrong. (FuzzLoadBalancer found this in stages.)
func TestUpdateL4ChecksumAddrUDP6Zero(t *testing.T) {
	t.Parallel()
	frame := append([]byte(nil), testframes.UDP6...)
	var h packet.Headers
	if err := packet.Parse(frame, &h); err != nil {
		t.Fatal(err)
	}
	// Choose the source's last 16 bits so that the correct checksum is
	// 0xffff, then carry it as 0.
	src := h.SrcIP.As16()
	binary.BigEndian.PutUint16(src[14:], 0)
	copy(frame[h.L3Off+8:], src[:])
	h.SrcIP = netip.AddrFrom16(src)
	c, _ := packet.L4Checksum(frame, &h)
	binary.BigEndian.PutUint16(src[14:], c) // adds c to the sum: the checksum becomes ~(~c + c) = 0
	copy(frame[h.L3Off+8:], src[:])
	h.SrcIP = netip.AddrFrom16(src)
	if c, _ := packet.L4Checksum(frame, &h); c != 0xffff {
		t.Fatalf("test setup: checksum %#04x, want 0xffff", c)
	}
	binary.BigEndian.PutUint16(frame[h.L4Off+6:], 0)

	new := netip.MustParseAddr("2001:db8:1::c")
	copy(frame[h.L3Off+24:], new.AsSlice())
	packet.UpdateL4ChecksumAddr(frame, &h, h.DstIP, new)
	h.DstIP = new
	got := l4Field(frame, &h)
	if want, _ := packet.L4Checksum(frame, &h); got != want {
		t.Errorf("UDP6 checksum 0 updated to %#04x, recomputed %#04x", got, want)
	}
}

func TestChecksumAllocs(t *testing.T) {
	frame := append([]byte(nil), tcp6ExtChain...)
	var h packet.Headers
	if err := packet.Parse(frame, &h); err != nil {
		t.Fatal(err)
	}
	a, b := netip.MustParseAddr("2001:db8::5"), h.DstIP
	allocs := testing.AllocsPerRun(1000, func() {
		_ = packet.Checksum(frame, 0)
		_ = packet.PseudoHeaderSum(h.SrcIP, h.DstIP, 6, 20)
		_, _ = packet.L4Checksum(frame, &h)
		_ = packet.SetL4Checksum(frame, &h)
		_ = packet.UpdateChecksumAddr(1, a, b)
		packet.UpdateL4ChecksumAddr(frame, &h, a, b)
	})
	if allocs != 0 {
		t.Errorf("checksum helpers allocate %v times per run", allocs)
	}
}

func BenchmarkChecksum(b *testing.B) {
	for _, n := range []int{20, 64, 1500, 9000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			buf := make([]byte, n)
			for i := range buf {
				buf[i] = byte(i * 7)
			}
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				_ = packet.Checksum(buf, 0)
			}
		})
	}
}

func BenchmarkL4Checksum(b *testing.B) {
	for _, f := range []struct {
		name  string
		frame []byte
	}{{"udp4", testframes.UDP4}, {"tcp6", testframes.TCP6}} {
		b.Run(f.name, func(b *testing.B) {
			var h packet.Headers
			if err := packet.Parse(f.frame, &h); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				_, _ = packet.L4Checksum(f.frame, &h)
			}
		})
	}
}

func BenchmarkUpdateChecksumAddr(b *testing.B) {
	for _, c := range []struct{ name, a, b string }{{"ipv4", "192.0.2.1", "10.0.0.1"}, {"ipv6", "2001:db8::1", "2001:db8::99"}} {
		b.Run(c.name, func(b *testing.B) {
			x, y := netip.MustParseAddr(c.a), netip.MustParseAddr(c.b)
			csum := uint16(0x1234)
			b.ReportAllocs()
			for b.Loop() {
				csum = packet.UpdateChecksumAddr(csum, x, y)
			}
		})
	}
}

// ExampleUpdateChecksum16 decrements the TTL of an IPv4 header and fixes
// its checksum without summing the header again: the TTL shares a 16-bit
// word with the protocol.
func ExampleUpdateChecksum16() {
	hdr := append([]byte(nil), testframes.UDP4[14:34]...)
	old := binary.BigEndian.Uint16(hdr[8:])
	hdr[8]--
	csum := packet.UpdateChecksum16(binary.BigEndian.Uint16(hdr[10:]), old, binary.BigEndian.Uint16(hdr[8:]))
	binary.BigEndian.PutUint16(hdr[10:], csum)
	fmt.Printf("ttl %d, checksum %#04x, verifies: %v\n", hdr[8], csum, packet.Checksum(hdr, 0) == 0)
	// Output: ttl 63, checksum 0x7d61, verifies: true
}
