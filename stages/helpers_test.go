package stages_test

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/xdpkit/xdpkit/internal/testframes"
	"github.com/xdpkit/xdpkit/packet"
	"github.com/xdpkit/xdpkit/pipeline"
)

// The helpers of the MACSwap, AddrSwap and LoadBalancer tests.

// modify returns a copy of frame with fn applied.
func modify(frame []byte, fn func(b []byte)) []byte {
	b := bytes.Clone(frame)
	fn(b)
	return b
}

// fix rewrites the IPv4 header checksum and the L4 checksum of frame
// (after a test edited it) by full recomputation, and returns it.
func fix(frame []byte) []byte {
	var h packet.Headers
	if err := packet.Parse(frame, &h); err != nil {
		panic(err)
	}
	packet.SetIPv4Checksum(frame, &h)
	packet.SetL4Checksum(frame, &h)
	return frame
}

// partial returns a copy of frame with the L4 checksum field holding
// only the pseudo-header sum, as a sender using TX checksum offload
// leaves it (CHECKSUM_PARTIAL).
func partial(frame []byte) []byte {
	frame = bytes.Clone(frame)
	var h packet.Headers
	if err := packet.Parse(frame, &h); err != nil {
		panic(err)
	}
	seg := h.L3Off + h.IPLen - h.L4Off
	off := map[uint8]int{packet.ProtoUDP: 6, packet.ProtoTCP: 16}[h.IPProto]
	binary.BigEndian.PutUint16(frame[h.L4Off+off:], packet.Fold(packet.PseudoHeaderSum(h.SrcIP, h.DstIP, h.IPProto, seg)))
	return frame
}

// guard copies frame into a Packet whose Data has 64 bytes of canary
// after it, as a UMEM frame has the rest of its chunk, and parses it.
// check fails the test if Handle wrote past the frame or resliced it.
func guard(t testing.TB, frame []byte) (p *pipeline.Packet, check func()) {
	buf := make([]byte, len(frame)+64)
	for i := range buf {
		buf[i] = 0xa5
	}
	copy(buf, frame)
	p = &pipeline.Packet{Data: buf[:len(frame)]}
	p.Reparse()
	return p, func() {
		t.Helper()
		for i, c := range buf[len(frame):] {
			if c != 0xa5 {
				t.Fatalf("byte %d past the %d-byte frame changed to %#02x", i, len(frame), c)
			}
		}
		if len(p.Data) != len(frame) || &p.Data[:1][0] != &buf[0] && len(frame) > 0 {
			t.Fatalf("Data resliced to %d bytes, or moved", len(p.Data))
		}
	}
}

// handle runs s on a copy of frame and returns the verdict and the frame
// as s left it, checking the canary and that s kept Headers up to date.
func handle(t testing.TB, s pipeline.Stage, frame []byte) (pipeline.Verdict, []byte) {
	t.Helper()
	p, check := guard(t, frame)
	v := s.Handle(p)
	check()
	if v == pipeline.Transmit || v == pipeline.Continue {
		var h packet.Headers
		err := packet.Parse(p.Data, &h)
		if err != p.ParseErr || h != p.Headers {
			t.Fatalf("Headers after Handle:\n got %+v, %v\nwant %+v, %v (a parse of the frame)", p.Headers, p.ParseErr, h, err)
		}
	}
	return v, p.Data
}

// checksumsValid reports whether the IPv4 header checksum and the L4
// checksum of frame verify by full recomputation, and whether the frame
// has an L4 checksum to verify. A UDP-over-IPv4 checksum of 0 is valid.
func checksumsValid(frame []byte) (ipOK, l4OK, hasL4 bool) {
	var h packet.Headers
	if packet.Parse(frame, &h) != nil || h.L3Off == 0 {
		return false, false, false
	}
	ipOK = !h.IPv4 || packet.Checksum(frame[h.L3Off:h.L3Off+h.IPHdrLen], 0) == 0
	csum, ok := packet.L4Checksum(frame, &h)
	if !ok {
		return ipOK, false, false
	}
	off := map[uint8]int{packet.ProtoUDP: 6, packet.ProtoTCP: 16, packet.ProtoICMP: 2, packet.ProtoICMPv6: 2}[h.IPProto]
	field := binary.BigEndian.Uint16(frame[h.L4Off+off:])
	switch {
	case h.IPProto == packet.ProtoUDP && h.IPv4 && field == 0:
		l4OK = true
	default:
		// Valid means equal to the computed value, up to one's
		// complement's two zeros.
		l4OK = field == csum || field^csum == 0xffff && (field == 0 || csum == 0)
	}
	return ipOK, l4OK, true
}

// randomFrame builds a random UDP, TCP or ICMP echo frame with gopacket.
func randomFrame(r *rand.Rand, v6 bool, proto uint8, src, dst netip.Addr, sport, dport uint16) []byte {
	payload := make([]byte, r.IntN(200))
	for i := range payload {
		payload[i] = byte(r.Uint32())
	}
	spec := testframes.Spec{Src: src, Dst: dst, Proto: proto, TTL: uint8(r.Uint32()), SrcPort: sport, DstPort: dport, Payload: payload}
	if !v6 {
		spec.IPID = uint16(r.Uint32())
	}
	switch proto {
	case packet.ProtoTCP:
		spec.Seq, spec.Ack, spec.Window = r.Uint32(), r.Uint32(), uint16(r.Uint32())
	case packet.ProtoICMP:
		spec.EchoID, spec.EchoSeq = uint16(r.Uint32()), uint16(r.Uint32())
	}
	f := testframes.Build(spec)
	var h packet.Headers
	if err := packet.Parse(f, &h); err != nil {
		panic(err)
	}
	f = f[:h.L3Off+h.IPLen] // no Ethernet padding
	if proto == packet.ProtoUDP && binary.BigEndian.Uint16(f[h.L4Off+6:]) == 0 {
		f[h.L4Off+6], f[h.L4Off+7] = 0xff, 0xff // gopacket sends a computed 0 as "none"
	}
	return f
}

// randomAddr returns a random unicast address that AddrSwap answers.
func randomAddr(r *rand.Rand, v6 bool) netip.Addr {
	if v6 {
		var a [16]byte
		binary.BigEndian.PutUint64(a[:], 0x2001_0db8_0000_0000|r.Uint64()&0xffff_ffff)
		binary.BigEndian.PutUint64(a[8:], r.Uint64())
		return netip.AddrFrom16(a)
	}
	return netip.AddrFrom4([4]byte{byte(1 + r.IntN(223)), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
}

// fuzzCheck checks what holds for every stage here on any input: the
// canary (in handle), Malformed exactly for frames that did not parse,
// and a transmitted frame that parses, with checksums as right as they
// came in.
func fuzzCheck(t *testing.T, s pipeline.Stage, frame []byte, allowed ...pipeline.Verdict) (pipeline.Verdict, []byte) {
	t.Helper()
	var h packet.Headers
	parseErr := packet.Parse(frame, &h)
	ipBefore, l4Before, _ := checksumsValid(frame)
	v, got := handle(t, s, frame)
	if (v == pipeline.Malformed) != (parseErr != nil) {
		t.Fatalf("verdict %v for a frame that parses with error %v", v, parseErr)
	}
	ok := false
	for _, a := range allowed {
		ok = ok || v == a
	}
	if !ok {
		t.Fatalf("verdict %v, want one of %v", v, allowed)
	}
	if v == pipeline.Malformed && !bytes.Equal(got, frame) {
		t.Fatalf("a Malformed frame was changed")
	}
	if v == pipeline.Transmit {
		var h2 packet.Headers
		if err := packet.Parse(got, &h2); err != nil {
			t.Fatalf("transmitted a frame that does not parse: %v\n%x", err, got)
		}
		ipAfter, l4After, _ := checksumsValid(got)
		if ipBefore && !ipAfter || l4Before && !l4After {
			t.Fatalf("checksums went bad: IP %v -> %v, L4 %v -> %v\n%x\n%x", ipBefore, ipAfter, l4Before, l4After, frame, got)
		}
	}
	return v, got
}

// benchHandle runs s on p, after copying frame and h back into p with
// reset.
func benchHandle(s pipeline.Stage, p *pipeline.Packet, frame []byte, h *packet.Headers, reset bool) pipeline.Verdict {
	if reset {
		copy(p.Data, frame)
		p.Headers = *h
	}
	return s.Handle(p)
}
