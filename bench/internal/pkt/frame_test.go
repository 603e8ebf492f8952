package pkt

import (
	"net"
	"net/netip"
	"testing"
)

func TestUDP(t *testing.T) {
	for _, n := range []int{42, 60, 61, 1500} {
		b := UDP(Spec{Len: n, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
			DstIP: netip.MustParseAddr("10.0.0.1"), SrcIP: netip.MustParseAddr("10.0.0.2"), DstPort: 9, SrcPort: 9})
		if len(b) != n || !ValidChecksums(b) {
			t.Fatalf("len %d: bad frame % x", n, b)
		}
		b[len(b)-1] ^= 0x55
		if ValidChecksums(b) && n > 42 {
			t.Fatalf("len %d: corruption not detected", n)
		}
		SetUDPChecksum(b)
		if !ValidChecksums(b) {
			t.Fatalf("len %d: SetUDPChecksum", n)
		}
	}
}
