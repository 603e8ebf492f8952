//go:build linux

package examples_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xdpkit/xdpkit/internal/testutils"
)

// The tests below drive xdp-ratelimit with real kernel UDP sockets: a
// server bound to the DUT's address (v.HostIP, in the test's namespace)
// and clients in the peer namespace, from v.PeerIP (source A) and from a
// second address on the peer's veth (source B). Datagrams from the peer's
// stack carry partial checksums (veth offloads them); that is fine here: the
// frames the tool passes are not rewritten, and the host's stack accepts
// them as they come, in driver and in generic mode (TestRateLimitKernel:
// every datagram of the slow client arrives).

const (
	rlPort      = 9053 // policed (-filter 'udp port 9053')
	rlOtherPort = 9054 // not matched by the filter: never policed
)

// secondPeerAddr adds 10.77.N.3 to the peer's veth, source B; it goes
// with the namespace in NewVeth's cleanup.
func secondPeerAddr(t *testing.T, v *testutils.Veth) netip.Addr {
	t.Helper()
	a := v.PeerIP.As4()
	a[3] = 3
	b := netip.AddrFrom4(a)
	testutils.MustRun(t, "ip", "-n", v.NS, "addr", "add", b.String()+"/24", "dev", v.Peer)
	return b
}

// peerClient is a UDP socket in the peer namespace bound to src.
func peerClient(t *testing.T, v *testutils.Veth, src netip.Addr) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	v.InPeer(t, func() (err error) {
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
		return err
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// udpServer is a kernel UDP socket on the DUT's address that counts the
// datagrams it receives per source address, reading them as they come so
// that its receive buffer never overflows.
type udpServer struct {
	conn *net.UDPConn
	done chan struct{}

	mu    sync.Mutex
	count map[netip.Addr]int
	last  time.Time // of the last datagram
}

func newUDPServer(t *testing.T, v *testutils.Veth, port int) *udpServer {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(v.HostIP, uint16(port))))
	if err != nil {
		t.Fatal(err)
	}
	s := &udpServer{conn: c, done: make(chan struct{}), count: map[netip.Addr]int{}}
	go func() {
		defer close(s.done)
		buf := make([]byte, 2048)
		for {
			_, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return // closed
			}
			s.mu.Lock()
			s.count[from.Addr().Unmap()]++
			s.last = time.Now()
			s.mu.Unlock()
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *udpServer) close() {
	s.conn.Close()
	<-s.done
}

// settle waits until no datagram has come for 300ms (at most 5s), then
// returns the counts.
func (s *udpServer) settle() map[netip.Addr]int {
	deadline := time.Now().Add(5 * time.Second)
	for {
		time.Sleep(50 * time.Millisecond)
		s.mu.Lock()
		quiet := time.Since(s.last) > 300*time.Millisecond
		s.mu.Unlock()
		if quiet || time.Now().After(deadline) {
			break
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[netip.Addr]int, len(s.count))
	for a, n := range s.count {
		out[a] = n
	}
	return out
}

// send writes n datagrams from c to the DUT's port, with a pause of every
// after each; every 0 sends them as fast as the socket takes them. It
// returns how many the socket accepted: a flood may overrun the veth
// ring, which drops silently (sendto does not fail), or get ENOBUFS.
func send(t *testing.T, c *net.UDPConn, v *testutils.Veth, port, n int, every time.Duration) int {
	t.Helper()
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(v.HostIP, uint16(port)))
	sent := 0
	for i := range n {
		_, err := c.WriteToUDP(fmt.Appendf(nil, "datagram %d", i), to)
		switch {
		case err == nil:
			sent++
		case errors.Is(err, syscall.ENOBUFS), errors.Is(err, syscall.EAGAIN):
		default:
			t.Errorf("send: %v", err)
			return sent
		}
		if every > 0 {
			time.Sleep(every)
		} else if i%16 == 15 {
			time.Sleep(0) // yield, never wait: a flood
		}
	}
	return sent
}

// vethXDPDrops is the host veth's count of frames its XDP program dropped.
func vethXDPDrops(t *testing.T, v *testutils.Veth) (sum uint64) {
	t.Helper()
	for name, c := range testutils.EthtoolStats(t, v.Host) {
		if strings.HasPrefix(name, "rx_queue_") && strings.HasSuffix(name, "_xdp_drops") {
			sum += c
		}
	}
	return sum
}

func vethXDPRedirects(t *testing.T, v *testutils.Veth) (sum uint64) {
	t.Helper()
	for name, c := range testutils.EthtoolStats(t, v.Host) {
		if strings.HasPrefix(name, "rx_queue_") && strings.HasSuffix(name, "_xdp_redirect") {
			sum += c
		}
	}
	return sum
}

// TestRateLimitKernel polices a local UDP service in XDP, with no socket:
// a slow client (source A, 40 datagrams over 2s, at the rate) gets every
// datagram through while a flood from source B (5000 as fast as
// possible) gets through only its burst plus the rate over the flood's
// time. Traffic the filter does not match is not policed.
// In driver mode veth's own counters must agree; generic mode (what a
// NIC without native XDP gets) is not in them.
func TestRateLimitKernel(t *testing.T) {
	for _, mode := range []string{"driver", "generic"} {
		t.Run(mode, func(t *testing.T) { testRateLimitKernel(t, mode) })
	}
}

func testRateLimitKernel(t *testing.T, mode string) {
	const rate, burst = 20, 10
	v := testutils.NewVeth(t, testutils.VethOptions{})
	srcA, srcB := v.PeerIP, secondPeerAddr(t, v)
	server, other := newUDPServer(t, v, rlPort), newUDPServer(t, v, rlOtherPort)
	p := start(t, v, "xdp-ratelimit", "-rate", fmt.Sprint(rate), "-burst", fmt.Sprint(burst),
		"-filter", fmt.Sprintf("udp port %d", rlPort), "-xdp-mode", mode)
	clientA, clientB := peerClient(t, v, srcA), peerClient(t, v, srcB)

	// A: 40 datagrams, 50ms apart (time.Sleep waits at least that long,
	// so A never sends faster than 20 per second). B floods meanwhile.
	slowDone := make(chan int, 1)
	go func() { slowDone <- send(t, clientA, v, rlPort, 40, 50*time.Millisecond) }()
	time.Sleep(500 * time.Millisecond)
	floodStart := time.Now()
	floodSent := send(t, clientB, v, rlPort, 5000, 0)
	floodTime := time.Since(floodStart)
	var slowSent int
	select {
	case slowSent = <-slowDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow client did not finish in 10s")
	}
	// B, far over its rate now, to the port the filter does not match:
	// every datagram arrives. 100 fit in veth's 256-frame ring.
	otherSent := send(t, clientB, v, rlOtherPort, 100, 0)

	got, gotOther := server.settle(), other.settle()
	redirects := vethXDPRedirects(t, v)
	xdpDrops := vethXDPDrops(t, v)
	out := p.stop()
	t.Logf("A: sent %d, received %d; B: flood of %d accepted by the socket in %v, received %d; B to port %d: sent %d, received %d",
		slowSent, got[srcA], floodSent, floodTime, got[srcB], rlOtherPort, otherSent, gotOther[srcB])
	t.Logf("summary: %v", out)

	if slowSent != 40 || got[srcA] != 40 {
		t.Errorf("slow client A: %d of %d sent datagrams received, want all 40", got[srcA], slowSent)
	}
	// The bucket holds burst packets when B's first frame arrives and
	// gains rate per second: over the flood's time that is at most
	// burst + rate*floodTime. Slack: 50ms for frames still in veth's ring
	// when the last send returns (one packet at 20 pps), and one packet
	// for rounding.
	limit := burst + rate*(floodTime.Seconds()+0.05) + 1
	if got[srcB] == 0 || float64(got[srcB]) > limit {
		t.Errorf("flooding client B: %d datagrams received, want 1 to %.1f (burst %d + %d pps over %v)", got[srcB], limit, burst, rate, floodTime)
	}
	if gotOther[srcB] != otherSent || otherSent != 100 {
		t.Errorf("B to the unpoliced port %d: %d of %d received, want all 100", rlOtherPort, gotOther[srcB], otherSent)
	}
	passed, dropped := num(out, "passed"), num(out, "rate_dropped")
	if out["mode"] != "kernel" || dropped == 0 || num(out, "blocked") != 0 {
		t.Errorf("summary %v: want mode kernel, rate_dropped > 0, blocked 0", out)
	}
	// What the fast path passed is what the server received, exactly: the
	// filter lets only port 9053 reach it, and the stack lost nothing.
	if passed != float64(got[srcA]+got[srcB]) || num(out, "rate_passed") != passed {
		t.Errorf("passed %v, rate_passed %v: want both = datagrams received on port %d, %d", passed, out["rate_passed"], rlPort, got[srcA]+got[srcB])
	}
	// Every frame of B's flood that reached XDP was passed or dropped.
	if seen := dropped + float64(got[srcB]); seen > float64(floodSent) || num(out, "rx_packets") != passed+dropped {
		t.Errorf("rate_dropped %v + B's %d received > %d sent, or rx_packets %v != passed + rate_dropped", dropped, got[srcB], floodSent, out["rx_packets"])
	}
	if mode == "driver" && float64(xdpDrops) != dropped {
		t.Errorf("veth counted %d XDP drops, the tool %v", xdpDrops, dropped)
	}
	if num(out, "unpoliced") < float64(otherSent) {
		t.Errorf("unpoliced %v, want at least the %d datagrams to port %d", out["unpoliced"], otherSent, rlOtherPort)
	}
	if mode == "driver" && redirects != 0 {
		t.Errorf("veth redirected %d frames: the kernel mode must not redirect to a socket", redirects)
	}
	if e := p.stderr.String(); !strings.Contains(e, "xdp-ratelimit: policing in XDP ("+mode+")") || !strings.Contains(e, "xdp-ratelimit: policed ") {
		t.Errorf("no start line in %s mode or no live line on stderr:\n%s", mode, e)
	}
	noProgramLeft(t, v)
}

// TestRateLimitBlock: datagrams from a -block source never reach the
// service, and blocked counts them; another source is not affected.
func TestRateLimitBlock(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	srcA, srcB := v.PeerIP, secondPeerAddr(t, v)
	server := newUDPServer(t, v, rlPort)
	// B as a single address; an IPv6 prefix on the list too.
	p := start(t, v, "xdp-ratelimit", "-rate", "1000", "-burst", "100", "-filter", fmt.Sprintf("udp port %d", rlPort),
		"-block", srcB.String(), "-block", "2001:db8::/32")
	clientA, clientB := peerClient(t, v, srcA), peerClient(t, v, srcB)
	sentA := send(t, clientA, v, rlPort, 20, time.Millisecond)
	sentB := send(t, clientB, v, rlPort, 30, time.Millisecond)
	got := server.settle()
	out := p.stop()
	t.Logf("A: %d sent, %d received; B (blocked): %d sent, %d received; summary %v", sentA, got[srcA], sentB, got[srcB], out)
	if got[srcA] != 20 || got[srcB] != 0 {
		t.Errorf("received %d from A, %d from blocked B: want 20 and 0", got[srcA], got[srcB])
	}
	if num(out, "blocked") != float64(sentB) || sentB != 30 || num(out, "passed") != 20 || num(out, "rate_dropped") != 0 {
		t.Errorf("summary %v: want blocked 30, passed 20, rate_dropped 0", out)
	}
	block, _ := out["block"].([]any)
	if len(block) != 2 || block[0] != srcB.String()+"/32" || block[1] != "2001:db8::/32" {
		t.Errorf("block %v, want [%s/32 2001:db8::/32]", out["block"], srcB)
	}
	noProgramLeft(t, v)
}

// TestRateLimitUserspace: with -userspace the sockets police and consume
// the matching frames (none reaches the service), and -block drops in XDP
// in front of them.
func TestRateLimitUserspace(t *testing.T) {
	const rate, burst = 20, 10
	v := testutils.NewVeth(t, testutils.VethOptions{})
	srcA, srcB := v.PeerIP, secondPeerAddr(t, v)
	server := newUDPServer(t, v, rlPort)
	p := start(t, v, "xdp-ratelimit", "-userspace", "-rate", fmt.Sprint(rate), "-burst", fmt.Sprint(burst),
		"-filter", fmt.Sprintf("udp port %d", rlPort), "-block", srcB.String()+"/32")
	clientA, clientB := peerClient(t, v, srcA), peerClient(t, v, srcB)
	begin := time.Now()
	sentA := send(t, clientA, v, rlPort, 200, 100*time.Microsecond) // paced: the socket gets them all
	elapsed := time.Since(begin)
	sentB := send(t, clientB, v, rlPort, 30, 100*time.Microsecond)
	waitRedirected(t, v, uint64(sentA))
	got := server.settle()
	out := p.stop()
	t.Logf("A: %d sent in %v; B (blocked): %d sent; received by the service: %v; summary %v", sentA, elapsed, sentB, got, out)
	if len(got) != 0 {
		t.Errorf("the service received %v: in user space the sockets consume every matching frame", got)
	}
	passed, dropped := num(out, "passed"), num(out, "rate_dropped")
	limit := burst + rate*(elapsed.Seconds()+0.05) + 1
	if sentA != 200 || num(out, "rx_packets") != 200 || passed+dropped != 200 || passed < burst || passed > limit {
		t.Errorf("summary %v: want rx_packets 200 = passed + rate_dropped, passed %d to %.1f", out, burst, limit)
	}
	if out["mode"] != "userspace" || num(out, "blocked") != float64(sentB) || sentB != 30 {
		t.Errorf("summary %v: want mode userspace, blocked 30", out)
	}
	noProgramLeft(t, v)
}

// TestRateLimitFlags: flags that do not apply to the mode are refused
// with one line, before anything is attached.
func TestRateLimitFlags(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		exitCode int
		want     string
	}{
		{[]string{"-i", "lo", "-queues", "all"}, 1, "-queues needs -userspace"},
		{[]string{"-i", "lo", "-q", "1"}, 1, "-q needs -userspace"},
		{[]string{"-i", "lo", "-bind", "copy"}, 1, "-bind needs -userspace"},
		{[]string{"-i", "lo", "-shared-umem"}, 1, "-shared-umem needs -userspace"},
		{[]string{"-i", "lo", "-pin", "x"}, 1, "-pin needs -userspace"},
		{[]string{"-i", "lo", "-userspace", "-pin", "x", "-block", "10.0.0.0/8"}, 1, "-block and -pin cannot be combined"},
		{[]string{"-i", "lo", "-block", "10.0.0.300"}, 2, `invalid value "10.0.0.300" for flag -block`},
		{[]string{"-i", "lo", "-block", "fe80::1%lo"}, 2, "zone"},
		{[]string{"-i", "lo", "-rate", "0"}, 1, "-rate 0: must be more than 0"},
		{[]string{"-i", "lo", "-userspace", "-burst", "-1"}, 1, "-burst -1"},
	} {
		cmd := exec.Command(binary(t, "xdp-ratelimit"), tc.args...)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != tc.exitCode {
			t.Errorf("%q: %v, want exit code %d; output:\n%s", tc.args, err, tc.exitCode, out)
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "xdp-ratelimit: ") || !strings.Contains(lines[0], tc.want) {
			t.Errorf("%q: want one line with %q, got:\n%s", tc.args, tc.want, out)
		}
	}
}
