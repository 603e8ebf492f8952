//go:build linux

package fastpath_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"testing"

	"github.com/xdpkit/xdpkit/fastpath"
	"github.com/xdpkit/xdpkit/internal/testframes"
)

// csumUpdate is RFC 1624's HC' = ~(~HC + ~m + m') over the big-endian
// words of old and new: an implementation independent of the program's.
func csumUpdate(hc uint16, old, new []byte) uint16 {
	sum := uint32(^hc)
	for i := 0; i+1 < len(old); i += 2 {
		sum += uint32(^binary.BigEndian.Uint16(old[i:])) + uint32(binary.BigEndian.Uint16(new[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// fuzzRewrite is what the test installs for its two flows.
var fuzzRewrite = struct {
	port uint16
	mac  []byte
}{8080, newDstMAC}

// model says what the program must do with in, given the two installed
// flows: whether it transmits and, if so, the frame it must produce.
func model(in []byte, flows map[fastpath.Flow]bool, newDst map[bool][]byte) (tx bool, out []byte) {
	if len(in) < 14 {
		return false, nil
	}
	var f fastpath.Flow
	var l4, dstOff, dstLen int
	switch binary.BigEndian.Uint16(in[12:]) {
	case 0x0800:
		if len(in) < 38 || in[14] != 0x45 || binary.BigEndian.Uint16(in[20:])&0x3fff != 0 {
			return false, nil
		}
		f.Src, f.Dst = mustAddr4(in[26:30]), mustAddr4(in[30:34])
		f.Proto, l4, dstOff, dstLen = in[23], 34, 30, 4
	case 0x86dd:
		if len(in) < 58 {
			return false, nil
		}
		f.Src, f.Dst = mustAddr16(in[22:38]), mustAddr16(in[38:54])
		f.Proto, l4, dstOff, dstLen = in[20], 54, 38, 16
	default:
		return false, nil
	}
	f.SrcPort, f.DstPort = binary.BigEndian.Uint16(in[l4:]), binary.BigEndian.Uint16(in[l4+2:])
	if !flows[f] {
		return false, nil
	}
	csum := l4 + 6
	if f.Proto == fastpath.TCP {
		csum = l4 + 16
	}
	if len(in) < csum+2 {
		return false, nil // too short to rewrite: a flow error, the default
	}
	out = append([]byte(nil), in...)
	nd := newDst[dstLen == 4]
	var oldPort, newPort [2]byte
	binary.BigEndian.PutUint16(oldPort[:], f.DstPort)
	binary.BigEndian.PutUint16(newPort[:], fuzzRewrite.port)
	if dstLen == 4 {
		hc := binary.BigEndian.Uint16(out[24:])
		binary.BigEndian.PutUint16(out[24:], csumUpdate(hc, in[dstOff:dstOff+4], nd))
	}
	hc := binary.BigEndian.Uint16(out[csum:])
	if !(f.Proto == fastpath.UDP && dstLen == 4 && hc == 0) {
		hc = csumUpdate(hc, in[dstOff:dstOff+dstLen], nd)
		hc = csumUpdate(hc, oldPort[:], newPort[:])
		if f.Proto == fastpath.UDP && hc == 0 {
			hc = 0xffff
		}
		binary.BigEndian.PutUint16(out[csum:], hc)
	}
	copy(out[dstOff:], nd)
	copy(out[l4+2:], newPort[:])
	copy(out[0:6], fuzzRewrite.mac)
	return true, out
}

// FuzzTransmit runs the fast path, with a rewrite installed for an IPv4
// UDP flow and an IPv6 UDP and TCP flow, on arbitrary frames: a frame of those
// flows (by a Go model of what the program parses) is rewritten exactly
// as RFC 1624 says, every other one goes to the socket unchanged.
func FuzzTransmit(f *testing.F) {
	cs := flowCases()
	u4, u6, t6 := cs[0], cs[2], cs[3]
	if u6.name != "ipv6/udp" || u6.newIP != t6.newIP {
		f.Fatalf("flowCases changed: %s, %v", u6.name, u6.newIP)
	}
	for _, c := range cs {
		f.Add(frame(c.spec))
	}
	good4 := frame(u4.spec)
	f.Add(good4[:40])
	f.Add(append(append(good4[:12:12], 0x81, 0, 0, 1), good4[12:]...))
	opt := append(append(good4[:34:34], 1, 1, 1, 1), good4[34:]...)
	opt[14] = 0x46
	f.Add(opt)
	f.Add(testframes.UDP4)
	f.Add(testframes.ICMP4)

	fp, prog := newFastPath(f, nil)
	flows := map[fastpath.Flow]bool{u4.flow: true, u6.flow: true, t6.flow: true}
	newDst := map[bool][]byte{true: u4.newIP.AsSlice(), false: t6.newIP.AsSlice()}
	for _, c := range []flowCase{u4, u6, t6} {
		if err := fp.Install(c.flow, fastpath.Entry{Action: fastpath.Transmit, DstMAC: newDstMAC, NewDst: c.newIP, NewDstPort: fuzzRewrite.port}); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 14 || len(in) > 1500 {
			return // BPF_PROG_TEST_RUN refuses frames shorter than Ethernet
		}
		tx, want := model(in, flows, newDst)
		v, out := run(t, prog, in)
		switch {
		case tx && v != xdpTX:
			t.Fatalf("verdict %d, want XDP_TX for a frame of an installed flow\n%s", v, hex.Dump(in))
		case !tx && v != xdpRedirect:
			t.Fatalf("verdict %d, want redirect (the default)\n%s", v, hex.Dump(in))
		case !tx:
			want = in
		}
		if !bytes.Equal(out, want) {
			t.Fatalf("frame differs\nin:\n%s\ngot:\n%s\nwant:\n%s", hex.Dump(in), hex.Dump(out), hex.Dump(want))
		}
	})
}

func mustAddr4(b []byte) netip.Addr  { return netip.AddrFrom4([4]byte(b)) }
func mustAddr16(b []byte) netip.Addr { return netip.AddrFrom16([16]byte(b)) }
