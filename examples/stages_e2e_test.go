//go:build linux

package examples_test

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/xdpkit/xdpkit/internal/testutils"
)

// build serializes layers into a frame with checksums computed.
func build(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte{}, buf.Bytes()...)
}

func eth(v *testutils.Veth, et layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: v.PeerMAC, DstMAC: v.HostMAC, EthernetType: et}
}

func ip4(v *testutils.Veth, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: net.IP(v.PeerIP.AsSlice()), DstIP: net.IP(v.HostIP.AsSlice())}
}

func tcpFrame(t *testing.T, v *testutils.Veth, sport, dport uint16) []byte {
	ip := ip4(v, layers.IPProtocolTCP)
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), SYN: true, Window: 1000}
	_ = tcp.SetNetworkLayerForChecksum(ip)
	return build(t, eth(v, layers.EthernetTypeIPv4), ip, tcp)
}

func icmpFrame(t *testing.T, v *testutils.Veth) []byte {
	return build(t, eth(v, layers.EthernetTypeIPv4), ip4(v, layers.IPProtocolICMPv4),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 1, Seq: 1}, gopacket.Payload("ping"))
}

func TestCount(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	p := start(t, v, "xdp-count", "-top", "3")
	peer := v.OpenPeerPacketSocket(t)
	var frames [][]byte
	for range 100 {
		frames = append(frames, udp(v, 1111, 2222, "flow A"))
	}
	for range 50 {
		frames = append(frames, udp(v, 3333, 4444, "flow B"))
	}
	for range 30 {
		frames = append(frames, tcpFrame(t, v, 5555, 80))
	}
	for range 20 {
		frames = append(frames, icmpFrame(t, v))
	}
	sendFrames(t, peer, frames)
	waitRedirected(t, v, 200)
	out := p.stop()
	if num(out, "rx_packets") != 200 {
		t.Errorf("rx_packets %v, want 200", out["rx_packets"])
	}
	protos, _ := out["protocols"].(map[string]any)
	if num(protos, "udp") != 150 || num(protos, "tcp") != 30 || num(protos, "icmp") != 20 {
		t.Errorf("protocols %v, want udp 150 tcp 30 icmp 20", protos)
	}
	top, _ := out["top_flows"].([]any)
	if len(top) != 3 {
		t.Fatalf("top_flows %v, want 3 entries", out["top_flows"])
	}
	first, _ := top[0].(map[string]any)
	if first["src"] != v.PeerIP.String() || first["dst"] != v.HostIP.String() || num(first, "sport") != 1111 ||
		num(first, "dport") != 2222 || first["proto"] != "udp" || num(first, "packets") != 100 || num(first, "bytes") != float64(100*len(frames[0])) {
		t.Errorf("top flow %v, want flow A with 100 packets", first)
	}
	if second, _ := top[1].(map[string]any); num(second, "packets") != 50 {
		t.Errorf("second flow %v, want 50 packets", second)
	}
	noProgramLeft(t, v)
}

func TestRateLimit(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	const rate, burst = 200, 20
	p := start(t, v, "xdp-ratelimit", "-rate", "200", "-burst", "20")
	peer := v.OpenPeerPacketSocket(t)
	f := udp(v, 7777, 8888, "police me")
	// 1000 pps from one source for 2 s: 5 frames every 5 ms.
	begin := time.Now()
	sent := 0
	for time.Since(begin) < 2*time.Second {
		for range 5 {
			if err := peer.Send(f); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(begin).Seconds()
	time.Sleep(200 * time.Millisecond)
	out := p.stop()
	passed, dropped := num(out, "passed"), num(out, "rate_dropped")
	if passed+dropped != float64(sent) {
		t.Errorf("passed %v + dropped %v != sent %d", passed, dropped, sent)
	}
	want := rate*elapsed + burst
	if passed < want*0.9 || passed > want*1.1 {
		t.Errorf("passed %v frames at %d pps over %.2fs: want %.0f ±10%%", passed, rate, elapsed, want)
	}
	t.Logf("sent %d in %.2fs; passed %v (want %.0f), dropped %v", sent, elapsed, passed, want, dropped)
}

func TestDump(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	file := filepath.Join(t.TempDir(), "dump.pcap")
	p := start(t, v, "xdp-dump", "-w", file)
	peer := v.OpenPeerPacketSocket(t)
	var frames [][]byte
	for i := range 50 {
		frames = append(frames, udp(v, uint16(100+i), 9053, strings.Repeat("x", i*20)))
	}
	sendFrames(t, peer, frames)
	waitRedirected(t, v, 50)
	out := p.stop()
	if num(out, "written") != 50 {
		t.Errorf("written %v, want 50", out["written"])
	}
	fh, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if fi, err := fh.Stat(); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("capture file mode %v (%v), want 0600 by default", fi.Mode(), err)
	}
	r, err := pcapgo.NewReader(fh)
	if err != nil {
		t.Fatal(err)
	}
	var got int
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		if got < len(frames) && !bytes.Equal(data, frames[got]) {
			t.Errorf("record %d differs from frame sent", got)
		}
		if ci.Length != len(data) {
			t.Errorf("record %d: length %d, captured %d", got, ci.Length, len(data))
		}
		pkt := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		if pkt.Layer(layers.LayerTypeUDP) == nil {
			t.Errorf("record %d does not decode as UDP", got)
		}
		got++
	}
	if got != 50 {
		t.Errorf("pcap has %d records, want 50", got)
	}
	// tcpdump reads the file too (a subtest, so that without tcpdump only
	// this part skips).
	t.Run("tcpdump", func(t *testing.T) {
		tcpdump := testutils.NeedCommand(t, "tcpdump", "apt-get install tcpdump")
		res, err := testutils.Run(tcpdump, "-nn", "-r", file)
		if err != nil {
			t.Fatalf("tcpdump -r: %v", err)
		}
		var records []string
		for _, l := range lines(res) {
			if !strings.HasPrefix(l, "reading from file") {
				records = append(records, l)
			}
		}
		if n := len(records); n != 50 {
			t.Errorf("tcpdump read %d packets, want 50:\n%s", n, res)
		}
	})
}

// TestDumpRXTimestamps: -rx-timestamps loads the device-bound program that
// stores the XDP RX metadata; veth reports no RX timestamps (it has no
// hardware clock), so every frame is written with its capture time and
// the summary says none had one: the ok == false path, on a real kernel.
func TestDumpRXTimestamps(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	file := filepath.Join(t.TempDir(), "dump.pcap")
	before := time.Now()
	p := start(t, v, "xdp-dump", "-w", file, "-rx-timestamps", "-nano")
	peer := v.OpenPeerPacketSocket(t)
	var frames [][]byte
	for i := range 20 {
		frames = append(frames, udp(v, uint16(100+i), 9053, "stamped?"))
	}
	sendFrames(t, peer, frames)
	waitRedirected(t, v, 20)
	out := p.stop()
	if num(out, "written") != 20 || num(out, "rx_timestamped") != 0 {
		t.Errorf("written %v, rx_timestamped %v; want 20 and 0 on veth", out["written"], out["rx_timestamped"])
	}
	fh, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	r, err := pcapgo.NewReader(fh)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		_, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		if ci.Timestamp.Before(before) || ci.Timestamp.After(time.Now()) {
			t.Errorf("record %d: timestamp %v, want the capture time", n, ci.Timestamp)
		}
		n++
	}
	if n != 20 {
		t.Errorf("%d records, want 20", n)
	}
}
