//go:build linux

package examples_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/xdpkit/xdpkit/internal/testframes"
	"github.com/xdpkit/xdpkit/internal/testutils"
)

// capture runs tcpdump on dev in namespace ns, writing the packets filter
// matches to a file, until the returned stop, which returns the file's
// name.
func capture(t *testing.T, tcpdump, ns, dev, filter string) (stop func() string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), ns+".pcap")
	// --immediate-mode: libpcap would otherwise hand over packets a
	// buffer at a time (up to a second late), and drop the last buffer's
	// at SIGINT.
	cmd := exec.Command("ip", "netns", "exec", ns, tcpdump, "--immediate-mode", "-i", dev, "-U", "-n", "-w", file, filter)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "listening on") {
		if time.Now().After(deadline) {
			t.Fatalf("tcpdump did not start: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return func() string {
		time.Sleep(200 * time.Millisecond) // the last packets
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
		return file
	}
}

// TestLoadBalancerIPIPCapture: in ipip mode the frames reaching a backend
// carry an outer IPv4 header from the tunnel source to the backend, and
// inside it the client's packet untouched; tcpdump and gopacket decode
// the captures, checksums valid. With and without the fast path (whose
// Encap entries then do it in XDP). This kernel has no IPIP device
// (CONFIG_NET_IPIP), so nothing decapsulates here: see
// TestLoadBalancerIPIPWithHTTP.
func TestLoadBalancerIPIPCapture(t *testing.T) { lbVariants(t, testIPIPCapture) } // IPv6: 6in4

func testIPIPCapture(t *testing.T, fast, ipv6 bool) {
	tcpdump := testutils.NeedCommand(t, "tcpdump", "apt-get install tcpdump")
	l := newLAN(t)
	addr, proto, filter := l.addr, layers.IPProtocolIPv4, "ip proto 4"
	if ipv6 {
		addr, proto, filter = l.addr6, layers.IPProtocolIPv6, "ip proto 41"
	}
	vip, tunSrc := addr(100), l.addr(2)
	const port = 5300
	testutils.MustRun(t, "ip", "addr", "add", tunSrc.String()+"/24", "dev", l.v.Host)
	clientNS, _ := l.host("cl", 1)
	testutils.NoTXChecksumOffload(t, clientNS, "eth"+l.id)
	testutils.MustRun(t, "ip", "-n", clientNS, "neigh", "replace", vip.String(), "lladdr", l.v.HostMAC.String(), "dev", "eth"+l.id, "nud", "permanent")
	type backend struct {
		ns  string
		mac net.HardwareAddr
		ip  netip.Addr
	}
	var bs []backend
	args := []string{"-vip", netip.AddrPortFrom(vip, port).String(), "-mode", "ipip", "-tunnel-src", tunSrc.String()}
	for i, name := range []string{"ba", "bb"} {
		ns, mac := l.host(name, byte(11+i))
		// The outer header goes to the backend's IPv4 address, its own
		// for an IPv4 VIP, the tunnel address given for an IPv6 one.
		bs = append(bs, backend{ns, mac, l.addr(byte(11 + i))})
		spec := fmt.Sprintf("%s,%s", addr(byte(11+i)), mac)
		if ipv6 {
			spec += "," + l.addr(byte(11+i)).String()
		}
		args = append(args, "-backend", spec)
	}
	if fast {
		l.v.PeerNAPI(t)
	} else {
		args = append(args, "-fastpath=false")
	}
	stops := make([]func() string, len(bs))
	for i, b := range bs {
		stops[i] = capture(t, tcpdump, b.ns, "eth"+l.id, filter)
	}
	p := start(t, l.v, "xdp-lb", args...)

	const flows, per = 8, 4
	sent := map[string]bool{}
	for f := range flows {
		var c *net.UDPConn
		if err := testutils.InNetNS(clientNS, func() (err error) {
			c, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(vip, port)))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for i := range per {
			msg := fmt.Sprintf("flow %d datagram %d", f, i)
			sent[msg] = true
			if _, err := c.Write([]byte(msg)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		c.Close()
	}
	out := p.stop()

	got := map[string]bool{}
	for i, b := range bs {
		file := stops[i]()
		// tcpdump's own reading of the capture.
		text, err := exec.Command(tcpdump, "-nn", "-v", "-r", file).CombinedOutput()
		if err != nil {
			t.Fatalf("tcpdump -r: %v\n%s", err, text)
		}
		if strings.Contains(string(text), "bad cksum") || strings.Contains(string(text), "incorrect") {
			t.Errorf("tcpdump finds bad checksums:\n%s", text)
		}
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		r, err := pcapgo.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		for {
			data, _, err := r.ReadPacketData()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			pkt := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
			eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			outer, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4) // the first: the outer header
			var innerDst net.IP
			for i, ly := range pkt.Layers() {
				switch ip := ly.(type) {
				case *layers.IPv4:
					if i > 1 {
						innerDst = ip.DstIP
					}
				case *layers.IPv6:
					innerDst = ip.DstIP
				}
			}
			udp, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
			if eth == nil || outer == nil || innerDst == nil || udp == nil {
				t.Fatalf("backend %s: not an encapsulated packet: %v", b.ip, pkt)
			}
			switch {
			case !bytes.Equal(eth.DstMAC, b.mac) || !bytes.Equal(eth.SrcMAC, l.v.HostMAC):
				t.Errorf("backend %s: Ethernet %v > %v", b.ip, eth.SrcMAC, eth.DstMAC)
			case outer.Protocol != proto || !outer.SrcIP.Equal(tunSrc.AsSlice()) || !outer.DstIP.Equal(b.ip.AsSlice()):
				t.Errorf("backend %s: outer header %v > %v proto %v", b.ip, outer.SrcIP, outer.DstIP, outer.Protocol)
			case !innerDst.Equal(vip.AsSlice()) || int(udp.DstPort) != port:
				t.Errorf("backend %s: inner packet to %v:%d, want the VIP", b.ip, innerDst, udp.DstPort)
			}
			testframes.CheckChecksums(t, data)
			got[string(udp.Payload)] = true
		}
		f.Close()
	}
	t.Logf("%d of %d datagrams captured on the backends, encapsulated; tx %v, fastpath %v", len(got), len(sent), out["tx_packets"], out["fastpath"])
	for msg := range sent {
		if !got[msg] {
			t.Errorf("%q not captured on any backend", msg)
		}
	}
	if fp, _ := out["fastpath"].(map[string]any); fast && (fp == nil || num(fp, "transmitted") == 0) {
		t.Errorf("the fast path encapsulated nothing: %v", out["fastpath"])
	}
}

// TestLoadBalancerIPIPWithHTTP: Go's HTTP client through xdp-lb in ipip
// mode to two python3 http.server backends that decapsulate with the
// kernel's IPIP device (tunl0) and hold the VIP on loopback. It needs
// CONFIG_NET_IPIP: where the kernel cannot make an IPIP device (this
// VM's cannot) it skips, also under CI.
func TestLoadBalancerIPIPWithHTTP(t *testing.T) {
	python := testutils.NeedCommand(t, "python3", "apt-get install python3")
	l := newLAN(t)
	probe, _ := l.host("ip", 9)
	if out, err := testutils.Run("ip", "-n", probe, "link", "add", "ipipprobe", "type", "ipip", "local", l.addr(9).String()); err != nil {
		t.Skipf("this kernel cannot make an IPIP device (CONFIG_NET_IPIP is off), so no backend can decapsulate: %v %s", err, out)
	}
	vip, tunSrc := l.addr(100), l.addr(2)
	const port = 8080
	testutils.MustRun(t, "ip", "addr", "add", tunSrc.String()+"/24", "dev", l.v.Host)
	clientNS, _ := l.host("cl", 1)
	testutils.NoTXChecksumOffload(t, clientNS, "eth"+l.id)
	testutils.MustRun(t, "ip", "-n", clientNS, "neigh", "replace", vip.String(), "lladdr", l.v.HostMAC.String(), "dev", "eth"+l.id, "nud", "permanent")
	args := []string{"-vip", fmt.Sprintf("%s:%d", vip, port), "-mode", "ipip", "-tunnel-src", tunSrc.String()}
	for i, name := range []string{"ba", "bb"} {
		ns, mac := l.host(name, byte(11+i))
		// Decapsulation: the namespace's fallback IPIP device, up, and
		// no reverse-path filter on it (the inner source is the client).
		testutils.MustRun(t, "ip", "-n", ns, "link", "set", "tunl0", "up")
		sysctl(t, ns, "net.ipv4.conf.tunl0.rp_filter", "0")
		sysctl(t, ns, "net.ipv4.conf.all.rp_filter", "0")
		httpBackend(t, python, ns, "backend-"+name[1:], vip, port)
		args = append(args, "-backend", fmt.Sprintf("%s,%s", l.addr(byte(11+i)), mac))
	}
	l.v.PeerNAPI(t)
	p := start(t, l.v, "xdp-lb", args...)
	client := clientIn(clientNS)
	served := tally(t, client, fmt.Sprintf("http://%s:%d", vip, port), 20)
	p.stop()
	if len(served) != 2 {
		t.Fatalf("served %v, want both backends", served)
	}
}
