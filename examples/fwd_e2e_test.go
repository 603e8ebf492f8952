//go:build linux

package examples_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/xdpkit/xdpkit/internal/testutils"
)

// TestForward: l2fwd across two veth pairs, both ways, through one shared
// UMEM; frames arrive with rewritten MACs and intact payloads.
func TestForward(t *testing.T) {
	in := testutils.NewVeth(t, testutils.VethOptions{})
	out := testutils.NewVeth(t, testutils.VethOptions{})
	p := start(t, in, "xdp-fwd", "-o", out.Host, "-dst-mac", out.PeerMAC.String(), "-bidir", "-i-dst-mac", in.PeerMAC.String())
	time.Sleep(200 * time.Millisecond) // the -o side attaches right after -i
	inPeer, outPeer := in.OpenPeerPacketSocket(t), out.OpenPeerPacketSocket(t)
	const n = 200
	check := func(from, to *testutils.PacketSocket, fromV, toV *testutils.Veth, tag string) {
		t.Helper()
		for i := range n {
			f := testutils.UDPFrame(fromV.HostMAC, fromV.PeerMAC, fromV.PeerIP.As4(), fromV.HostIP.As4(), 4000, 4001, fmt.Appendf(nil, "%s %d", tag, i))
			if err := from.Send(f); err != nil {
				t.Fatal(err)
			}
		}
		got := 0
		buf := make([]byte, 2048)
		deadline := time.Now().Add(10 * time.Second)
		for got < n && time.Now().Before(deadline) {
			k, err := to.Recv(buf, 200*time.Millisecond)
			if err != nil || !bytes.Contains(buf[:k], []byte(tag+" ")) {
				continue
			}
			if !bytes.Equal(buf[0:6], toV.PeerMAC) || !bytes.Equal(buf[6:12], toV.HostMAC) {
				t.Fatalf("%s: forwarded frame has MACs %x -> %x, want %s -> %s", tag, buf[6:12], buf[0:6], toV.HostMAC, toV.PeerMAC)
			}
			got++
		}
		if got != n {
			t.Fatalf("%s: %d of %d frames forwarded", tag, got, n)
		}
	}
	check(inPeer, outPeer, in, out, "out")
	check(outPeer, inPeer, out, in, "back")
	res := p.stop()
	if num(res, "forwarded_out") != n || num(res, "forwarded_in") != n {
		t.Errorf("summary %v, want %d each way", res, n)
	}
	noProgramLeft(t, in)
	noProgramLeft(t, out)
}
