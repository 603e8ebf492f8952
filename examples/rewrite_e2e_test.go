//go:build linux

package examples_test

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpkit/xdpkit/internal/testutils"
)

// TestReflect: a kernel UDP client in the peer namespace gets its
// datagrams echoed back to its own socket, payload intact.
func TestReflect(t *testing.T) {
	for _, csum := range []string{"-recompute-csum", "-leave-csum"} {
		t.Run(csum, func(t *testing.T) { testReflect(t, csum) })
	}
}

func testReflect(t *testing.T, csum string) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	// veth offloads the client's UDP checksum: the reflector must complete
	// it, itself or through the kernel (-leave-csum: TX metadata).
	p := start(t, v, "xdp-reflect", "-filter", "udp port 7777", csum)
	var conn *net.UDPConn
	v.InPeer(t, func() (err error) {
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IP(v.PeerIP.AsSlice())})
		return err
	})
	defer conn.Close()
	dst := &net.UDPAddr{IP: net.IP(v.HostIP.AsSlice()), Port: 7777}
	const n = 200
	got := map[string]bool{}
	buf := make([]byte, 2048)
	for i := range n {
		msg := fmt.Sprintf("echo %d", i)
		if _, err := conn.WriteToUDP([]byte(msg), dst); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		k, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("datagram %d: no echo: %v\n%s", i, err, p.stderr)
		}
		if from.String() != dst.String() {
			t.Errorf("echo from %v, want %v", from, dst)
		}
		got[string(buf[:k])] = true
		if !got[msg] {
			t.Fatalf("echo %q, want %q", buf[:k], msg)
		}
	}
	out := p.stop()
	if num(out, "tx_packets") != n || num(out, "rx_packets") != n {
		t.Errorf("summary %v, want %d received and transmitted", out, n)
	}
	if want := map[string]float64{"-leave-csum": n, "-recompute-csum": 0}[csum]; num(out, "checksums_left") != want {
		t.Errorf("%s: %v checksums left to the kernel, want %v", csum, out["checksums_left"], want)
	}
	noProgramLeft(t, v)
}

// TestLoadBalancer: every flow sticks to one backend, all backends get
// flows, and removing a backend moves only its own flows.
func TestLoadBalancer(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	base := v.HostIP.As4()
	vip := netip.AddrFrom4([4]byte{base[0], base[1], base[2], 100})
	backend := func(last byte) string {
		return fmt.Sprintf("%s,%s", netip.AddrFrom4([4]byte{base[0], base[1], base[2], last}), v.PeerMAC)
	}
	peer := v.OpenPeerPacketSocket(t)
	const flows, perFlow = 60, 5
	run := func(backends ...string) map[uint16]string {
		// The backends are told apart by address (nat), and every frame
		// is counted in user space (the fast path has tests of its own).
		args := []string{"-vip", vip.String() + ":80", "-mode", "nat", "-fastpath=false"}
		for _, b := range backends {
			args = append(args, "-backend", b)
		}
		p := start(t, v, "xdp-lb", args...)
		var frames [][]byte
		for f := range flows {
			for range perFlow {
				frames = append(frames, testutils.UDPFrame(v.HostMAC, v.PeerMAC, v.PeerIP.As4(), vip.As4(), uint16(20000+f), 80, []byte("lb")))
			}
		}
		sendFrames(t, peer, frames)
		seen := map[uint16]string{}
		buf := make([]byte, 2048)
		deadline := time.Now().Add(10 * time.Second)
		for got := 0; got < flows*perFlow && time.Now().Before(deadline); {
			k, err := peer.Recv(buf, 200*time.Millisecond)
			if err != nil || k < 42 || buf[23] != 17 || buf[37] != 80 {
				continue
			}
			sport := uint16(buf[34])<<8 | uint16(buf[35])
			dst := net.IP(buf[30:34]).String()
			if prev, ok := seen[sport]; ok && prev != dst {
				t.Fatalf("flow %d went to %s and %s", sport, prev, dst)
			}
			if string(buf[0:6]) != string(v.PeerMAC) || string(buf[6:12]) != string(v.HostMAC) {
				t.Fatalf("rewritten frame has MACs % x -> % x", buf[6:12], buf[0:6])
			}
			seen[sport] = dst
			got++
		}
		out := p.stop()
		if len(seen) != flows || num(out, "tx_packets") != flows*perFlow {
			t.Fatalf("%d of %d flows seen; summary %v", len(seen), flows, out)
		}
		return seen
	}
	b10, b11, b12 := backend(10), backend(11), backend(12)
	first := run(b10, b11, b12)
	per := map[string]int{}
	for _, b := range first {
		per[b]++
	}
	if len(per) != 3 {
		t.Fatalf("flows used %d backends, want 3: %v", len(per), per)
	}
	t.Logf("flows per backend: %v", per)
	removed := netip.AddrFrom4([4]byte{base[0], base[1], base[2], 12}).String()
	second := run(b10, b11)
	for sport, b := range first {
		if b != removed && second[sport] != b {
			t.Errorf("flow %d moved from %s to %s though its backend stayed", sport, b, second[sport])
		}
		if second[sport] == removed {
			t.Errorf("flow %d still goes to the removed backend", sport)
		}
	}
	noProgramLeft(t, v)
}
