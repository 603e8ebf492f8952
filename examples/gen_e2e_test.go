//go:build linux

package examples_test

import (
	"bytes"
	endian "encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/gen"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/packet"
)

// runGen runs xdp-gen on v's host side to completion and returns its JSON
// summary.
func runGen(t *testing.T, v *testutils.Veth, args ...string) map[string]any {
	t.Helper()
	cmd := exec.Command(binary(t, "xdp-gen"), append([]string{"-i", v.Host, "-json"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("xdp-gen %q: %v\n%s", args, err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("xdp-gen %q did not end in 60 s\n%s", args, stderr.String())
	}
	var out map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("xdp-gen %q: %s", args, strings.TrimSpace(stderr.String()))
	return out
}

// peerCapture records what the peer receives until stop is called.
type peerCapture struct {
	mu     sync.Mutex
	frames [][]byte
	stop   chan struct{}
	done   chan struct{}
}

func startPeerCapture(t *testing.T, v *testutils.Veth) *peerCapture {
	t.Helper()
	peer := v.OpenPeerPacketSocket(t)
	c := &peerCapture{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		buf := make([]byte, 16<<10)
		for {
			select {
			case <-c.stop:
				return
			default:
			}
			n, err := peer.Recv(buf, 50*time.Millisecond)
			if err != nil {
				continue
			}
			c.mu.Lock()
			c.frames = append(c.frames, append([]byte(nil), buf[:n]...))
			c.mu.Unlock()
		}
	}()
	t.Cleanup(c.end)
	return c
}

// end stops the peerCapture after the last frames had time to arrive.
func (c *peerCapture) end() {
	select {
	case <-c.stop:
		return
	default:
	}
	time.Sleep(200 * time.Millisecond)
	close(c.stop)
	<-c.done
}

// peerRXPackets is the peer's rx_packets counter.
func peerRXPackets(t *testing.T, v *testutils.Veth) uint64 {
	t.Helper()
	out := testutils.MustRun(t, "ip", "-n", v.NS, "-s", "-j", "link", "show", "dev", v.Peer)
	var links []struct {
		Stats64 struct {
			RX struct {
				Packets uint64 `json:"packets"`
			} `json:"rx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("ip -s -j link: %v: %s", err, out)
	}
	return links[0].Stats64.RX.Packets
}

// TestGenCount: -count N puts exactly N frames on the wire (the peer's
// counter and a peerCapture), every flow present, sizes in the IMIX ratio,
// stamps in order.
func TestGenCount(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	before := peerRXPackets(t, v)
	c := startPeerCapture(t, v)
	const n, flows = 3000, 8
	out := runGen(t, v, "-dst", v.PeerIP.String()+":9", "-count", fmt.Sprint(n), "-size", "imix", "-flows", fmt.Sprint(flows), "-rate", "30k", "-stamp")
	c.end()
	if got := peerRXPackets(t, v) - before; got != n {
		t.Errorf("the peer received %d frames, want exactly %d", got, n)
	}
	if num(out, "tx_packets") != n {
		t.Errorf("summary: %v frames sent, want %d", out["tx_packets"], n)
	}
	var h packet.Headers
	sizes := map[int]int{}
	ports := map[uint16]int{}
	var seqs []uint64
	for _, f := range c.frames {
		seq, _, ok := gen.ReadStamp(f, &h)
		if !ok {
			continue
		}
		seqs = append(seqs, seq)
		sizes[len(f)]++
		ports[h.SrcPort]++
		if h.DstIP != v.PeerIP || h.DstPort != 9 || h.SrcIP != v.HostIP {
			t.Fatalf("frame to %s:%d from %s", h.DstIP, h.DstPort, h.SrcIP)
		}
	}
	if len(seqs) != n {
		t.Fatalf("captured %d stamped frames, want %d", len(seqs), n)
	}
	for i, s := range seqs {
		if s != uint64(i) {
			t.Fatalf("frame %d carries sequence number %d", i, s)
		}
	}
	want := map[int]int{}
	for i := range n {
		want[gen.IMIX[i%len(gen.IMIX)]]++
	}
	if fmt.Sprint(sizes) != fmt.Sprint(want) {
		t.Errorf("sizes %v, want %v", sizes, want)
	}
	if len(ports) != flows {
		t.Errorf("%d flows (source ports %v), want %d", len(ports), ports, flows)
	}
	for p, k := range ports {
		if k != n/flows {
			t.Errorf("flow %d has %d frames, want %d", p, k, n/flows)
		}
	}
	// Other protocols and IPv4 addresses as flows: decoded by gopacket.
	c2 := startPeerCapture(t, v)
	runGen(t, v, "-dst", v.PeerIP.String()+":80", "-proto", "tcp-syn", "-count", "100", "-flows", "4", "-flow-by", "addr", "-vlan", "7", "-size", "128")
	c2.end()
	srcs := map[string]bool{}
	for _, f := range c2.frames {
		p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		// The peer's kernel takes the VLAN tag off into the skb's metadata
		// before the packet socket sees the frame: 4 bytes shorter, untagged.
		tagged := len(f) == 128 && p.Layer(layers.LayerTypeDot1Q) != nil
		if !ok || !tcp.SYN || tcp.DstPort != 80 || !tagged && len(f) != 124 {
			continue
		}
		srcs[p.NetworkLayer().NetworkFlow().Src().String()] = true
	}
	if len(srcs) != 4 {
		t.Errorf("TCP SYN with -flow-by addr: source addresses %v, want 4", srcs)
	}
}

// TestGenPcapReplay: a peerCapture is replayed byte for byte and in order,
// twice with -loop 2, at its recorded pace.
func TestGenPcapReplay(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	path := filepath.Join(t.TempDir(), "replay.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pcapgo.NewNgWriter(f, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	t0 := time.Unix(1700000000, 0)
	for i := range 40 {
		fr := udp(v, uint16(2000+i), 7000, strings.Repeat(string(rune('a'+i%26)), 10+i*17))
		frames = append(frames, fr)
		ci := gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * 5 * time.Millisecond), CaptureLength: len(fr), Length: len(fr)}
		if err := w.WritePacket(ci, fr); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	c := startPeerCapture(t, v)
	start := time.Now()
	out := runGen(t, v, "-pcap", path, "-loop", "2")
	took := time.Since(start)
	c.end()
	if num(out, "tx_packets") != 80 {
		t.Errorf("summary: %v frames sent, want 80", out["tx_packets"])
	}
	if len(c.frames) != 80 {
		t.Fatalf("the peer captured %d frames, want 80", len(c.frames))
	}
	for i, got := range c.frames {
		if !bytes.Equal(got, frames[i%40]) {
			t.Fatalf("frame %d differs from the peerCapture's frame %d:\n got %x\nwant %x", i, i%40, got, frames[i%40])
		}
	}
	// Two loops of 40 frames 5 ms apart: about 400 ms at the recorded pace.
	if el := num(out, "duration_s"); el < 0.38 || took < 380*time.Millisecond {
		t.Errorf("replay took %.3f s (%v with start-up), want about 0.4 s at the recorded pace", el, took)
	}
	// -speed 4: a quarter of the time.
	out = runGen(t, v, "-pcap", path, "-speed", "4")
	if el := num(out, "duration_s"); el < 0.045 || el > 0.2 {
		t.Errorf("-speed 4: %.3f s, want about 0.05 s", el)
	}
}

// TestGenPacing: 10 kpps and 100 kpps land within 2 % over a window in
// the middle of the run, measured by the peer's counter.
func TestGenPacing(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	for _, rate := range []float64{10e3, 100e3} {
		cmd := exec.Command(binary(t, "xdp-gen"), "-i", v.Host, "-dst", v.PeerIP.String(), "-rate", fmt.Sprint(rate), "-duration", "3s")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(800 * time.Millisecond)
		t1, n1 := time.Now(), peerRXPackets(t, v)
		time.Sleep(1500 * time.Millisecond)
		t2, n2 := time.Now(), peerRXPackets(t, v)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("xdp-gen: %v\n%s", err, stderr.String())
		}
		got := float64(n2-n1) / t2.Sub(t1).Seconds()
		t.Logf("-rate %.0f: %.0f frames/s at the peer", rate, got)
		if got < rate*0.98 || got > rate*1.02 {
			t.Errorf("-rate %.0f: %.0f frames/s at the peer, want within 2%%", rate, got)
		}
	}
}

// startReflector runs xdp-reflect on v's peer side, in its namespace.
func startReflector(t *testing.T, v *testutils.Veth, args ...string) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", v.NS, binary(t, "xdp-reflect"), "-i", v.Peer, "-filter", "udp"}, args...)...)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(unix.SIGINT)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	for deadline := time.Now().Add(15 * time.Second); ; {
		if out, _ := testutils.Run("ip", "-n", v.NS, "link", "show", "dev", v.Peer); strings.Contains(out, "xdp") {
			time.Sleep(100 * time.Millisecond)
			return
		}
		select {
		case <-done:
			t.Fatalf("xdp-reflect exited: %s", stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("xdp-reflect did not attach in 15 s: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func latencyOf(t *testing.T, out map[string]any) map[string]any {
	t.Helper()
	l, ok := out["latency"].(map[string]any)
	if !ok {
		t.Fatalf("no latency in the summary: %v", out)
	}
	return l
}

// TestGenLatency: against xdp-reflect, no loss at a rate it sustains and
// sane percentiles; against the peer kernel's own ICMP echo, the same.
func TestGenLatency(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	startReflector(t, v)
	out := runGen(t, v, "-dst", v.PeerIP.String()+":7", "-latency", "-rate", "10k", "-count", "20000")
	l := latencyOf(t, out)
	rtt, _ := l["rtt_ns"].(map[string]any)
	if num(l, "sent") != 20000 || num(l, "replied") != 20000 || num(l, "lost") != 0 || num(l, "duplicates") != 0 {
		t.Errorf("latency %v: want 20000 sent and replied, none lost or duplicated", l)
	}
	p50, p99, p999, mx := num(rtt, "p50"), num(rtt, "p99"), num(rtt, "p99.9"), num(rtt, "max")
	if !(p50 > 0 && p50 <= p99 && p99 <= p999 && p999 <= mx && mx < 1e9) {
		t.Errorf("percentiles p50 %v p99 %v p99.9 %v max %v ns: not ordered or not sane", p50, p99, p999, mx)
	}

	// -rx-timestamps: the device-bound program stores the RX metadata;
	// veth has no RX timestamps, so every reply is timed when read.
	out = runGen(t, v, "-dst", v.PeerIP.String()+":7", "-latency", "-rx-timestamps", "-rate", "5k", "-count", "2000")
	if l := latencyOf(t, out); num(l, "replied") != 2000 || num(l, "rx_timestamped") != 0 {
		t.Errorf("-rx-timestamps on veth: %v, want 2000 replies, none with an RX timestamp", l)
	}

	// The kernel's echo responder on the peer.
	out = runGen(t, v, "-dst", v.PeerIP.String(), "-proto", "icmp", "-size", "100", "-latency", "-rate", "5k", "-count", "5000")
	l = latencyOf(t, out)
	if num(l, "replied") != 5000 || num(l, "lost") != 0 {
		t.Errorf("ICMP echo against the peer's kernel: %v, want 5000 replies", l)
	}
}

// TestGenSafety: the interface with the default route, or the SSH
// session's, is refused without -force.
func TestGenSafety(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	bin := binary(t, "xdp-gen")
	testutils.MustRun(t, "ip", "-n", v.NS, "route", "add", "default", "via", v.HostIP.String(), "dev", v.Peer)
	gen := func(env []string, args ...string) (string, error) {
		cmd := exec.Command("ip", append([]string{"netns", "exec", v.NS, bin, "-i", v.Peer, "-dst", v.HostIP.String(), "-count", "10"}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := gen(nil)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(out, "refusing to flood") || !strings.Contains(out, "default route") || !strings.Contains(out, "-force") {
		t.Errorf("default route: %v %s; want a refusal naming the default route and -force", err, out)
	}
	if out, err := gen(nil, "-force"); err != nil {
		t.Errorf("-force: %v %s", err, out)
	}
	testutils.MustRun(t, "ip", "-n", v.NS, "route", "del", "default")
	ssh := []string{"SSH_CONNECTION=" + v.HostIP.String() + " 51000 " + v.PeerIP.String() + " 22"}
	if out, err := gen(ssh); err == nil || !strings.Contains(out, "SSH session") {
		t.Errorf("SSH session: %v %s; want a refusal naming it", err, out)
	}
	if out, err := gen(nil); err != nil {
		t.Errorf("neither: %v %s", err, out)
	}
}

// TestGenBadFlags: what xdp-gen refuses, with one line.
func TestGenBadFlags(t *testing.T) {
	testutils.RequirePrivileged(t)
	v := testutils.NewVeth(t, testutils.VethOptions{})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-pcap", "x.pcap", "-dst", "10.0.0.1"}, "-dst does not apply to -pcap"},
		{[]string{"-dst", "10.0.0.1", "-rate", "fast"}, "-rate"},
		{[]string{"-dst", "10.0.0.1", "-size", "20"}, "frame size 20"},
		{[]string{"-dst", "10.0.0.1", "-proto", "sctp"}, "unknown protocol"},
		{[]string{}, "-dst IP[:PORT] is required"},
		{[]string{"-dst", v.PeerIP.String(), "-proto", "tcp-syn", "-latency"}, "-latency needs"},
		{[]string{"-dst", "192.0.2.99"}, "no neighbour entry"},
		{[]string{"-pcap", "/nonexistent.pcap"}, "nonexistent"},
	} {
		out, err := exec.Command(binary(t, "xdp-gen"), append([]string{"-i", v.Host}, tc.args...)...).CombinedOutput()
		ls := lines(string(out))
		if err == nil || len(ls) != 1 || !strings.Contains(ls[0], tc.want) {
			t.Errorf("%q: %v, want one line with %q:\n%s", tc.args, err, tc.want, out)
		}
	}
}

// TestGenQueues: -queues splits -count and -rate over one socket per
// queue; the total is exact, each queue sends its share.
func TestGenQueues(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 2})
	before := peerRXPackets(t, v)
	out := runGen(t, v, "-dst", v.PeerIP.String(), "-queues", "all", "-count", "10001", "-rate", "20k")
	if got := peerRXPackets(t, v) - before; got != 10001 || num(out, "tx_packets") != 10001 {
		t.Errorf("the peer received %d frames, the summary says %v; want 10001", got, out["tx_packets"])
	}
	pq, _ := out["per_queue"].(map[string]any)
	q0, _ := pq["0"].(map[string]any)
	q1, _ := pq["1"].(map[string]any)
	if num(q0, "tx_packets") != 5001 || num(q1, "tx_packets") != 5000 {
		t.Errorf("per queue %v, want 5001 and 5000", pq)
	}
	// 10001 frames at 20k/s in all: about half a second.
	if d := num(out, "duration_s"); d < 0.45 || d > 0.7 {
		t.Errorf("took %.3f s, want about 0.5 s at 20k frames/s over two queues", d)
	}
	// Replies may come back on either queue: each is matched to its sender.
	// The reflector needs a socket on both of its queues too.
	startReflector(t, v, "-queues", "all")
	out = runGen(t, v, "-dst", v.PeerIP.String()+":7", "-queues", "all", "-latency", "-rate", "10k", "-count", "10000")
	if l := latencyOf(t, out); num(l, "replied") != 10000 || num(l, "lost") != 0 {
		t.Errorf("two queues against xdp-reflect: %v", l)
	}
}

// TestGenChecksumOffload: datagrams sent with the UDP checksum left to the
// kernel (-csum kernel: computed at send; -csum offload: CHECKSUM_PARTIAL,
// which veth hands on) are accepted by a kernel UDP socket on the peer,
// which drops a datagram whose checksum is wrong; with -csum kernel the
// checksum on the wire is the right one.
func TestGenChecksumOffload(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	binary(t, "xdp-gen") // built before the reader's clock starts
	var conn *net.UDPConn
	v.InPeer(t, func() error {
		var err error
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: v.PeerIP.AsSlice(), Port: 7000})
		return err
	})
	defer conn.Close()
	// A buffer for all 500 (past rmem_max: we are root), so that a reader
	// a loaded machine delays does not turn into drops.
	if rc, err := conn.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20) })
	}
	// Read while xdp-gen sends.
	count := func(want int) <-chan int {
		res := make(chan int, 1)
		go func() {
			buf := make([]byte, 2048)
			n := 0
			for n < want {
				_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
				if _, err := conn.Read(buf); err != nil {
					break
				}
				n++
			}
			res <- n
		}()
		return res
	}
	for _, mode := range []string{"kernel", "offload", "compute"} {
		c := startPeerCapture(t, v)
		received := count(500)
		runGen(t, v, "-dst", v.PeerIP.String()+":7000", "-size", "200", "-count", "500", "-rate", "5k", "-csum", mode, "-flows", "3")
		if got := <-received; got != 500 {
			t.Errorf("-csum %s: the peer's UDP socket received %d of 500 datagrams", mode, got)
		}
		c.end()
		if mode != "kernel" && mode != "compute" {
			continue
		}
		var h packet.Headers
		checked := 0
		for _, f := range c.frames {
			if packet.Parse(f, &h) != nil || h.DstPort != 7000 {
				continue
			}
			if cs, ok := packet.L4Checksum(f, &h); !ok || cs != endian.BigEndian.Uint16(f[h.L4Off+6:]) {
				t.Fatalf("-csum %s: a frame on the wire (source port %d) has UDP checksum %#x, want %#x", mode, h.SrcPort, endian.BigEndian.Uint16(f[h.L4Off+6:]), cs)
			}
			checked++
		}
		if checked != 500 {
			t.Errorf("-csum %s: %d frames checked on the wire, want 500", mode, checked)
		}
	}
}
