//go:build linux

package examples_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpkit/xdpkit/internal/testutils"
)

// lan is an L2 segment the test makes: a bridge in the namespace of the
// LB veth's peer, with a client and backends in namespaces of their own,
// each on a veth pair whose other end is a bridge port.
type lan struct {
	t      *testing.T
	v      *testutils.Veth // Host: the LB's interface; Peer: a bridge port
	prefix netip.Prefix    // 10.78.N.0/24
	id     string
}

func newLAN(t *testing.T) *lan {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	n := v.HostIP.As4()[2]
	l := &lan{t: t, v: v, prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 78, n, 0}), 24), id: fmt.Sprintf("%d%d", os.Getpid()%10000, n)}
	ns := v.NS
	testutils.MustRun(t, "ip", "-n", ns, "link", "add", "br0", "type", "bridge")
	testutils.MustRun(t, "ip", "-n", ns, "link", "set", v.Peer, "master", "br0")
	testutils.MustRun(t, "ip", "-n", ns, "link", "set", "br0", "up")
	return l
}

// addr is 10.78.N.last.
func (l *lan) addr(last byte) netip.Addr {
	a := l.prefix.Addr().As4()
	a[3] = last
	return netip.AddrFrom4(a)
}

// addr6 is fd78:N::last, the IPv6 address of the same host.
func (l *lan) addr6(last byte) netip.Addr {
	a := l.prefix.Addr().As4()
	return netip.AddrFrom16([16]byte{0: 0xfd, 1: 0x78, 3: a[2], 15: last})
}

// host makes a namespace with a veth to the bridge, address addr(last),
// and returns the namespace's name and the veth's MAC address.
func (l *lan) host(name string, last byte) (string, net.HardwareAddr) {
	t := l.t
	ns := fmt.Sprintf("xdpkit-%s-%s", name, l.id)
	testutils.MustRun(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { _, _ = testutils.Run("ip", "netns", "del", ns) })
	dev, port := "eth"+l.id, name+l.id
	testutils.MustRun(t, "ip", "-n", ns, "link", "add", dev, "type", "veth", "peer", "name", port, "netns", l.v.NS)
	testutils.MustRun(t, "ip", "-n", l.v.NS, "link", "set", port, "master", "br0")
	testutils.MustRun(t, "ip", "-n", l.v.NS, "link", "set", port, "up")
	testutils.MustRun(t, "ip", "-n", ns, "addr", "add", l.addr(last).String()+"/24", "dev", dev)
	testutils.MustRun(t, "ip", "-n", ns, "addr", "add", l.addr6(last).String()+"/64", "dev", dev, "nodad")
	testutils.MustRun(t, "ip", "-n", ns, "link", "set", dev, "up")
	testutils.MustRun(t, "ip", "-n", ns, "link", "set", "lo", "up")
	var mac net.HardwareAddr
	if err := testutils.InNetNS(ns, func() error {
		ifc, err := net.InterfaceByName(dev)
		if err == nil {
			mac = ifc.HardwareAddr
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return ns, mac
}

// sysctl writes value to /proc/sys/KEY inside namespace ns.
func sysctl(t *testing.T, ns, key, value string) {
	t.Helper()
	if err := testutils.InNetNS(ns, func() error {
		return os.WriteFile("/proc/sys/"+strings.ReplaceAll(key, ".", "/"), []byte(value), 0o644)
	}); err != nil {
		t.Fatalf("sysctl %s=%s in %s: %v", key, value, ns, err)
	}
}

// httpBackend runs an unmodified `python3 -m http.server` on port in
// namespace ns, serving a file "who" that names it, with vip on its
// loopback and ARP for it left to the LB (the usual DSR set-up).
func httpBackend(t *testing.T, python, ns, name string, vip netip.Addr, port int) {
	t.Helper()
	testutils.MustRun(t, "ip", "-n", ns, "addr", "add", netip.PrefixFrom(vip, vip.BitLen()).String(), "dev", "lo", "nodad")
	sysctl(t, ns, "net.ipv4.conf.all.arp_ignore", "1")
	sysctl(t, ns, "net.ipv4.conf.all.arp_announce", "2")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "who"), []byte(name), 0o644); err != nil {
		t.Fatal(err)
	}
	big := append(bytes.Repeat([]byte(name+" "), bigSize/(len(name)+1)), make([]byte, bigSize%(len(name)+1))...)
	copy(big[bigSize-len(bigTail):], bigTail)
	if err := os.WriteFile(filepath.Join(dir, "big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	bind := "0.0.0.0"
	if vip.Is6() {
		bind = "::"
	}
	cmd := exec.Command("ip", "netns", "exec", ns, python, "-m", "http.server", fmt.Sprint(port), "--bind", bind, "--directory", dir)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// Ready when it answers on its own address from its namespace.
	deadline := time.Now().Add(15 * time.Second)
	for {
		var err error
		if nerr := testutils.InNetNS(ns, func() error {
			var c net.Conn
			c, err = net.DialTimeout("tcp", netip.AddrPortFrom(vip, uint16(port)).String(), 200*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return nil
		}); nerr != nil {
			t.Fatal(nerr)
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's http.server did not start: %v", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tally makes n requests for url/who, a connection each, and counts the
// backends that answered.
func tally(t *testing.T, c *http.Client, url string, n int) map[string]int {
	t.Helper()
	served := map[string]int{}
	for i := range n {
		resp, err := c.Get(url + "/who")
		if err != nil {
			t.Fatalf("connection %d of %d: %v", i+1, n, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("connection %d of %d: status %d, %v", i+1, n, resp.StatusCode, err)
		}
		served[string(body)]++
	}
	return served
}

// big is a file every backend serves: bigSize bytes ending in bigTail.
const bigSize = 16 << 20

var bigTail = []byte("the end of the big file")

// clientIn is an HTTP client whose connections, one per request, are
// dialled in namespace ns.
func clientIn(ns string) *http.Client {
	return &http.Client{
		Timeout: 20 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				var c net.Conn
				err := testutils.InNetNS(ns, func() error {
					var err error
					c, err = (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, network, addr)
					return err
				})
				return c, err
			},
		},
	}
}

// TestLoadBalancerDSRWithHTTP: Go's net/http client, through xdp-lb in
// direct-server-return mode (the default), to two unmodified python3
// http.server backends that hold the VIP on loopback, on a bridge the
// test makes: every one of 40 connections is served, both backends
// serve, the backends answer the client directly from the VIP, and 16 MiB
// downloads (flows of thousands of frames) complete, so every frame of a
// flow reached the same backend.
func TestLoadBalancerDSRWithHTTP(t *testing.T) { lbVariants(t, testDSRWithHTTP) }

// lbVariants runs test with and without the fast path, for an IPv4 VIP
// and an IPv6 one.
func lbVariants(t *testing.T, test func(t *testing.T, fast, ipv6 bool)) {
	for _, c := range []struct {
		name       string
		fast, ipv6 bool
	}{{"fastpath", true, false}, {"userspace", false, false}, {"ipv6 fastpath", true, true}, {"ipv6 userspace", false, true}} {
		t.Run(c.name, func(t *testing.T) { test(t, c.fast, c.ipv6) })
	}
}

func testDSRWithHTTP(t *testing.T, fast, ipv6 bool) {
	python := testutils.NeedCommand(t, "python3", "apt-get install python3")
	l := newLAN(t)
	addr := l.addr
	if ipv6 {
		addr = l.addr6
	}
	vip := addr(100)
	const port = 8080
	clientNS, _ := l.host("cl", 1)
	// Complete checksums from the client, as from a NIC: the LB leaves
	// the packet alone, and a veth's partial checksum would reach the
	// backend as a wrong one.
	testutils.NoTXChecksumOffload(t, clientNS, "eth"+l.id)
	b1NS, b1MAC := l.host("ba", 11)
	b2NS, b2MAC := l.host("bb", 12)
	httpBackend(t, python, b1NS, "backend-a", vip, port)
	httpBackend(t, python, b2NS, "backend-b", vip, port)
	// The client reaches the VIP through the LB's MAC address, as a
	// router or an ARP answer from the LB host would send it.
	testutils.MustRun(t, "ip", "-n", clientNS, "neigh", "replace", vip.String(), "lladdr", l.v.HostMAC.String(), "dev", "eth"+l.id, "nud", "permanent")

	args := []string{"-vip", netip.AddrPortFrom(vip, port).String(),
		"-backend", fmt.Sprintf("%s,%s", addr(11), b1MAC), "-backend", fmt.Sprintf("%s,%s", addr(12), b2MAC)}
	if fast {
		l.v.PeerNAPI(t) // the frames the XDP program transmits reach the bridge only with NAPI on its port
	} else {
		args = append(args, "-fastpath=false")
	}
	p := start(t, l.v, "xdp-lb", args...)

	// A connection per request: each is a flow of its own.
	client := clientIn(clientNS)
	const conns = 40
	served := tally(t, client, "http://"+netip.AddrPortFrom(vip, port).String(), conns)
	// A long download is one flow of thousands of frames: it completes
	// only if every one reaches the same backend (the other would reset
	// the connection).
	for i := range 3 {
		resp, err := client.Get("http://" + netip.AddrPortFrom(vip, port).String() + "/big")
		if err != nil {
			t.Fatalf("download %d: %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || len(body) != bigSize || !bytes.Equal(body[bigSize-len(bigTail):], bigTail) {
			t.Fatalf("download %d: status %d, %d of %d bytes, %v", i, resp.StatusCode, len(body), bigSize, err)
		}
	}
	out := p.stop()
	t.Logf("served: %v; xdp-lb summary: rx %v tx %v", served, out["rx_packets"], out["tx_packets"])
	if served["backend-a"] == 0 || served["backend-b"] == 0 || served["backend-a"]+served["backend-b"] != conns {
		t.Fatalf("backends served %v, want all %d connections over both", served, conns)
	}
	if ct, _ := out["connections"].(map[string]any); ct == nil || num(ct, "new") < conns+3 || num(ct, "moved") != 0 {
		t.Errorf("connection table %v: want at least %d new flows recorded, none moved", out["connections"], conns+3)
	}
	kernel := 0.0
	if fp, _ := out["fastpath"].(map[string]any); fp != nil {
		kernel = num(fp, "transmitted")
	}
	t.Logf("frames balanced in user space %v, in XDP %v", out["tx_packets"], kernel)
	if num(out, "tx_packets")+kernel < conns*3 { // at least SYN, ACK + request, ACK per connection
		t.Errorf("xdp-lb transmitted %v + %v frames for %d connections", out["tx_packets"], kernel, conns)
	}
	if fast && (kernel == 0 || num(out, "offloaded") < conns) {
		t.Errorf("fast path: %v frames transmitted in XDP, %v flows offloaded; want most of the frames and every flow", kernel, out["offloaded"])
	}
	if !fast && kernel != 0 {
		t.Errorf("-fastpath=false: %v frames transmitted in XDP", kernel)
	}
	noProgramLeft(t, l.v)
}

// TestLoadBalancerLiveBackends: backends change while xdp-lb runs. A
// slow 16 MiB download (a flow of several seconds) keeps going while curl
// adds a third backend and removes the one the download does not use,
// through the admin endpoint; then new connections go to the remaining
// and the added backend only. SIGHUP re-reads the -backends file.
func TestLoadBalancerLiveBackends(t *testing.T) {
	python := testutils.NeedCommand(t, "python3", "apt-get install python3")
	curl := testutils.NeedCommand(t, "curl", "apt-get install curl")
	l := newLAN(t)
	vip := l.addr(100)
	const port = 8080
	clientNS, _ := l.host("cl", 1)
	testutils.NoTXChecksumOffload(t, clientNS, "eth"+l.id)
	names := []string{"backend-a", "backend-b", "backend-c"}
	macs := map[string]string{}
	ips := map[string]netip.Addr{}
	for i, name := range names {
		ns, mac := l.host("b"+name[len(name)-1:], byte(11+i))
		httpBackend(t, python, ns, name, vip, port)
		macs[name], ips[name] = mac.String(), l.addr(byte(11+i))
	}
	testutils.MustRun(t, "ip", "-n", clientNS, "neigh", "replace", vip.String(), "lladdr", l.v.HostMAC.String(), "dev", "eth"+l.id, "nud", "permanent")
	file := filepath.Join(t.TempDir(), "backends")
	writeBackends := func(ns ...string) {
		var b strings.Builder
		b.WriteString("# the backends of the test\n")
		for _, n := range ns {
			fmt.Fprintf(&b, "%s,%s\n", ips[n], macs[n])
		}
		if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeBackends("backend-a", "backend-b")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminAddr := ln.Addr().String()
	ln.Close()
	l.v.PeerNAPI(t) // with the fast path (the default) the XDP program transmits
	p := start(t, l.v, "xdp-lb", "-vip", fmt.Sprintf("%s:%d", vip, port), "-backends", file, "-admin", adminAddr)
	adminURL := "http://" + adminAddr + "/backends"
	admin := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(curl, append([]string{"-sS", "--fail-with-body", "-m", "5"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	waitBackends := func(want ...string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			got := admin(adminURL)
			ok := true
			for _, n := range want {
				ok = ok && strings.Contains(got, `"ip":"`+ips[n].String()+`"`)
			}
			if ok && strings.Count(got, `"ip"`) == len(want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("backends %s, want %v", got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitBackends("backend-a", "backend-b")

	// The slow download: read 64 KiB every 15 ms, about 4 MiB/s.
	client := clientIn(clientNS)
	client.Timeout = 60 * time.Second
	resp, err := client.Get(fmt.Sprintf("http://%s:%d/big", vip, port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	head := make([]byte, 64<<10)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatal(err)
	}
	serving := strings.Fields(string(head[:32]))[0]
	other := map[string]string{"backend-a": "backend-b", "backend-b": "backend-a"}[serving]
	t.Logf("the download comes from %s; %s will be removed", serving, other)
	downloaded := make(chan error, 1)
	go func() {
		n := len(head)
		buf := make([]byte, 64<<10)
		var last []byte
		for {
			k, err := resp.Body.Read(buf)
			n += k
			if k > 0 {
				last = append(last[max(0, len(last)-len(bigTail)):], buf[:k]...)
			}
			if err == io.EOF {
				if n != bigSize || !bytes.HasSuffix(last, bigTail) {
					downloaded <- fmt.Errorf("download ended after %d of %d bytes", n, bigSize)
				} else {
					downloaded <- nil
				}
				return
			}
			if err != nil {
				downloaded <- fmt.Errorf("download broke after %d bytes: %w", n, err)
				return
			}
			time.Sleep(15 * time.Millisecond)
		}
	}()

	time.Sleep(500 * time.Millisecond)
	admin("-X", "POST", "-d", fmt.Sprintf(`{"ip":"%s","mac":"%s"}`, ips["backend-c"], macs["backend-c"]), adminURL)
	admin("-X", "DELETE", adminURL+"/"+ips[other].String())
	waitBackends(serving, "backend-c")
	time.Sleep(200 * time.Millisecond) // the workers' next tick
	select {
	case err := <-downloaded:
		t.Fatalf("the download ended while backends changed: %v", err)
	default:
	}
	served := tally(t, client, fmt.Sprintf("http://%s:%d", vip, port), 30)
	t.Logf("after the change: %v", served)
	if served[other] != 0 || served[serving] == 0 || served["backend-c"] == 0 {
		t.Fatalf("after adding backend-c and removing %s: served %v", other, served)
	}
	if err := <-downloaded; err != nil {
		t.Fatal(err)
	}
	// Errors: a duplicate, a bad MAC, a missing backend.
	for _, c := range []struct {
		args []string
		code string
	}{
		{[]string{"-X", "POST", "-d", fmt.Sprintf(`{"ip":"%s","mac":"%s"}`, ips["backend-c"], macs["backend-c"]), adminURL}, "409"},
		{[]string{"-X", "POST", "-d", `{"ip":"10.78.9.9","mac":"nope"}`, adminURL}, "400"},
		{[]string{"-X", "DELETE", adminURL + "/10.78.9.9"}, "404"},
	} {
		out, _ := exec.Command(curl, append([]string{"-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5"}, c.args...)...).Output()
		if string(out) != c.code {
			t.Errorf("curl %v: status %s, want %s", c.args, out, c.code)
		}
	}

	// SIGHUP: the file again.
	writeBackends("backend-a", "backend-b")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitBackends("backend-a", "backend-b")
	out := p.stop()
	if fp, _ := out["fastpath"].(map[string]any); fp == nil || num(fp, "transmitted") == 0 {
		t.Errorf("the fast path transmitted nothing: %v", out["fastpath"])
	}
}

// udpBackend is a kernel UDP socket on vip:port in namespace ns that
// answers every datagram with its name and the datagram, from the VIP
// (direct server return), until the test ends.
func udpBackend(t *testing.T, ns, name string, vip netip.Addr, port int) {
	t.Helper()
	testutils.MustRun(t, "ip", "-n", ns, "addr", "add", netip.PrefixFrom(vip, vip.BitLen()).String(), "dev", "lo", "nodad")
	sysctl(t, ns, "net.ipv4.conf.all.arp_ignore", "1")
	sysctl(t, ns, "net.ipv4.conf.all.arp_announce", "2")
	var c *net.UDPConn
	if err := testutils.InNetNS(ns, func() (err error) {
		c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(vip, uint16(port))))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = c.WriteToUDPAddrPort(append([]byte(name+" "), buf[:n]...), from)
		}
	}()
}

// TestLoadBalancerUDPFlowsStick: UDP flows keep their backend when one is
// added; when one is removed, only its flows move. With and without the
// fast path (where a removed backend's entries leave the XDP program).
func TestLoadBalancerUDPFlowsStick(t *testing.T) { lbVariants(t, testUDPFlowsStick) }

func testUDPFlowsStick(t *testing.T, fast, ipv6 bool) {
	l := newLAN(t)
	addr := l.addr
	if ipv6 {
		addr = l.addr6
	}
	vip := addr(100)
	const port = 5300
	clientNS, _ := l.host("cl", 1)
	testutils.NoTXChecksumOffload(t, clientNS, "eth"+l.id)
	names := []string{"backend-a", "backend-b", "backend-c"}
	macs, ips := map[string]string{}, map[string]netip.Addr{}
	for i, name := range names {
		ns, mac := l.host("b"+name[len(name)-1:], byte(11+i))
		udpBackend(t, ns, name, vip, port)
		macs[name], ips[name] = mac.String(), addr(byte(11+i))
	}
	testutils.MustRun(t, "ip", "-n", clientNS, "neigh", "replace", vip.String(), "lladdr", l.v.HostMAC.String(), "dev", "eth"+l.id, "nud", "permanent")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminURL := "http://" + ln.Addr().String() + "/backends"
	args := []string{"-vip", netip.AddrPortFrom(vip, port).String(), "-admin", ln.Addr().String(),
		"-backend", ips["backend-a"].String() + "," + macs["backend-a"], "-backend", ips["backend-b"].String() + "," + macs["backend-b"]}
	ln.Close()
	if fast {
		l.v.PeerNAPI(t)
	} else {
		args = append(args, "-fastpath=false")
	}
	p := start(t, l.v, "xdp-lb", args...)

	// flows are client sockets, each a UDP flow of its own.
	flows := make([]*net.UDPConn, 40)
	for i := range flows {
		if err := testutils.InNetNS(clientNS, func() (err error) {
			flows[i], err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(vip, port)))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer flows[i].Close()
	}
	// ask returns the name of the backend that answers c's next datagram,
	// which carries a nonce: a late answer to an earlier one is skipped.
	nonce := 0
	ask := func(c *net.UDPConn) string {
		t.Helper()
		buf := make([]byte, 64)
		for try := range 5 {
			nonce++
			q := fmt.Sprintf("who? %d", nonce)
			if _, err := c.Write([]byte(q)); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(time.Duration(200*(try+1)) * time.Millisecond))
			for {
				n, err := c.Read(buf)
				if err != nil {
					break
				}
				if name, got, _ := strings.Cut(string(buf[:n]), " "); got == q {
					return name
				}
			}
		}
		t.Fatalf("no answer through the VIP from %v\n%s", c.LocalAddr(), p.stderr)
		return ""
	}
	// Each flow twice: the second datagram takes the fast path, if on.
	before := make([]string, len(flows))
	for i, c := range flows {
		before[i] = ask(c)
		if again := ask(c); again != before[i] {
			t.Fatalf("flow %d: %s, then %s", i, before[i], again)
		}
	}
	post := func(method, url, body string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %s", method, url, resp.Status)
		}
	}
	post("POST", adminURL, fmt.Sprintf(`{"ip":"%s","mac":"%s"}`, ips["backend-c"], macs["backend-c"]))
	time.Sleep(300 * time.Millisecond) // the workers' next tick
	for i, c := range flows {
		if b := ask(c); b != before[i] {
			t.Fatalf("flow %d moved from %s to %s when backend-c was added", i, before[i], b)
		}
	}
	// New flows take the added backend too.
	onC := 0
	for range 30 {
		var c *net.UDPConn
		if err := testutils.InNetNS(clientNS, func() (err error) {
			c, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(vip, port)))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if ask(c) == "backend-c" {
			onC++
		}
		c.Close()
	}
	if onC == 0 {
		t.Fatal("no new flow went to the added backend")
	}
	// Remove backend-a: its flows move, the others stay.
	post("DELETE", adminURL+"/"+ips["backend-a"].String(), "")
	time.Sleep(300 * time.Millisecond)
	moved := 0
	for i, c := range flows {
		b := ask(c)
		switch {
		case b == "backend-a":
			t.Fatalf("flow %d still reaches the removed backend-a", i)
		case before[i] == "backend-a":
			moved++
		case b != before[i]:
			t.Fatalf("flow %d moved from %s to %s though its backend stayed", i, before[i], b)
		}
	}
	out := p.stop()
	t.Logf("%d of %d flows moved off the removed backend; %d of 30 new flows on the added one; summary connections %v fastpath %v",
		moved, len(flows), onC, out["connections"], out["fastpath"])
	if moved == 0 {
		t.Fatal("no flow was on backend-a: the test proves nothing")
	}
}
