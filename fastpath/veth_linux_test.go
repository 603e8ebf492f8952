//go:build linux

package fastpath_test

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/xdpkit/xdpkit/fastpath"
	"github.com/xdpkit/xdpkit/internal/testframes"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/redirect"
)

// TestOnVeth attaches the fast path on a veth and sends real frames from
// the peer: an Encap entry sends the flow back to the peer inside IPIP,
// a Transmit entry back rewritten, a Drop entry nowhere, and a miss goes
// to the kernel stack (no socket is registered), where a UDP socket
// receives it.
func TestOnVeth(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	v.PeerNAPI(t) // XDP_TX frames reach the peer only with NAPI
	fp, err := fastpath.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fp.Close()
	prog, err := redirect.Attach(v.HostIndex, &redirect.Options{FastPath: fp, Mode: redirect.ModeDriver})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: v.HostIP.AsSlice(), Port: 7000})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()

	peer := v.OpenPeerPacketSocket(t)
	send := func(sport uint16) {
		t.Helper()
		f := testutils.UDPFrame(v.HostMAC, v.PeerMAC, v.PeerIP.As4(), v.HostIP.As4(), sport, 7000, []byte("fastpath on veth"))
		if err := peer.Send(f); err != nil {
			t.Fatal(err)
		}
	}
	flow := func(sport uint16) fastpath.Flow {
		return fastpath.Flow{Src: v.PeerIP, Dst: v.HostIP, SrcPort: sport, DstPort: 7000, Proto: fastpath.UDP}
	}
	// recv returns the next frame the peer receives from the host.
	buf := make([]byte, 2048)
	recv := func() []byte {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			n, err := peer.Recv(buf, 100*time.Millisecond)
			if err != nil || n < 14 || !bytes.Equal(buf[0:6], v.PeerMAC) {
				continue
			}
			return append([]byte(nil), buf[:n]...)
		}
		t.Fatal("nothing came back to the peer within 3s")
		return nil
	}

	// Encap: IPIP from 172.16.0.1 to 172.16.0.2 back to the peer.
	if err := fp.Install(flow(1001), fastpath.Entry{Action: fastpath.Encap, DstMAC: v.PeerMAC, SrcMAC: v.HostMAC, TunnelSrc: tunSrc, TunnelDst: tunDst}); err != nil {
		t.Fatal(err)
	}
	send(1001)
	pkt := gopacket.NewPacket(recv(), layers.LayerTypeEthernet, gopacket.Default)
	outer, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if outer == nil || outer.Protocol != layers.IPProtocolIPv4 || !outer.SrcIP.Equal(tunSrc.AsSlice()) || !outer.DstIP.Equal(tunDst.AsSlice()) {
		t.Fatalf("not the IPIP packet: %v", pkt)
	}
	inner, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if inner == nil || inner.SrcPort != 1001 || string(inner.Payload) != "fastpath on veth" {
		t.Fatalf("inner UDP datagram not found: %v", pkt)
	}
	testframes.CheckChecksums(t, pkt.Data())

	// Transmit: back to the peer with the MACs swapped and a new port.
	if err := fp.Install(flow(1002), fastpath.Entry{Action: fastpath.Transmit, SwapMAC: true, NewDstPort: 7777}); err != nil {
		t.Fatal(err)
	}
	send(1002)
	back := recv()
	pkt = gopacket.NewPacket(back, layers.LayerTypeEthernet, gopacket.Default)
	if u, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP); u == nil || u.SrcPort != 1002 || u.DstPort != 7777 {
		t.Fatalf("not the rewritten datagram: %v", pkt)
	}
	testframes.CheckChecksums(t, back)

	// Drop, then a miss: the kernel's UDP socket gets only the miss.
	if err := fp.Install(flow(1003), fastpath.Entry{Action: fastpath.Drop}); err != nil {
		t.Fatal(err)
	}
	send(1003)
	send(1004)
	_ = udp.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, from, err := udp.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("the missed flow did not reach the stack: %v", err)
	}
	if from.Port != 1004 || string(buf[:n]) != "fastpath on veth" {
		t.Fatalf("the stack got a datagram from %v: %q", from, buf[:n])
	}
	_ = udp.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, from, err := udp.ReadFromUDP(buf); err == nil {
		t.Fatalf("a second datagram, from %v: the dropped flow reached the stack", from)
	}
	cnt, _ := fp.Counters()
	want := fastpath.Counters{FlowEncapped: 1, FlowTransmitted: 1, FlowDropped: 1, Default: 1}
	if cnt.FlowEncapped != 1 || cnt.FlowTransmitted != 1 || cnt.FlowDropped != 1 || cnt.Default < 1 {
		t.Fatalf("counters %+v, want at least %+v", cnt, want)
	}
}
