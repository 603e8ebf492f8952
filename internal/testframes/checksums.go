package testframes

import (
	"bytes"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// CheckChecksums decodes frame with gopacket up to the L4 header,
// serializes those layers and the rest of the frame again with
// ComputeChecksums, and checks that this reproduces frame: gopacket's
// verdict on every checksum in it. A zero UDP-over-IPv4 checksum is left
// alone.
func CheckChecksums(t testing.TB, frame []byte) {
	t.Helper()
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	var (
		ls      []gopacket.SerializableLayer
		network gopacket.NetworkLayer
		udpOff  = -1
		off     = 0
		l4      gopacket.Layer
	)
	for _, l := range pkt.Layers() {
		switch l := l.(type) {
		case *layers.IPv4:
			network = l
		case *layers.IPv6:
			network = l
		case *layers.UDP:
			_ = l.SetNetworkLayerForChecksum(network)
			if l.Checksum == 0 {
				udpOff = off
			}
			l4 = l
		case *layers.TCP:
			_ = l.SetNetworkLayerForChecksum(network)
			l4 = l
		case *layers.ICMPv4:
			l4 = l
		case *layers.ICMPv6:
			_ = l.SetNetworkLayerForChecksum(network)
			l4 = l
		}
		s, ok := l.(gopacket.SerializableLayer)
		if !ok {
			t.Fatalf("gopacket cannot serialize %v (%v)", l.LayerType(), pkt.ErrorLayer())
		}
		ls = append(ls, s)
		off += len(l.LayerContents())
		if l4 != nil {
			// What follows is payload, whatever gopacket makes of it
			// (DNS, for port 53).
			ls = append(ls, gopacket.Payload(l4.LayerPayload()))
			break
		}
	}
	if l4 == nil {
		t.Fatalf("gopacket found no L4 header: %v", pkt)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, ls...); err != nil {
		t.Fatalf("gopacket serialize: %v", err)
	}
	got := buf.Bytes()
	if len(got) < len(frame) {
		t.Fatalf("gopacket serialized %d of %d bytes", len(got), len(frame))
	}
	got = got[:len(frame)] // gopacket pads to 60 bytes
	if udpOff >= 0 {
		got[udpOff+6], got[udpOff+7] = 0, 0
	}
	if !bytes.Equal(got, frame) {
		t.Errorf("gopacket's checksums differ:\ngopacket %x\n   frame %x", got, frame)
	}
}
