//go:build linux

package testutils

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestVethFixture(t *testing.T) {
	v := NewVeth(t, VethOptions{Queues: 2})
	if v.HostIndex == 0 || v.PeerIndex == 0 || len(v.HostMAC) != 6 || len(v.PeerMAC) != 6 {
		t.Fatalf("incomplete fixture: %+v", v)
	}
	// IPv6 is off on both ends (VethOptions.IPv6 is false), each in its own
	// namespace's /proc/sys.
	ipv6Off := func(ifname string) error {
		b, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + ifname + "/disable_ipv6")
		if err == nil && strings.TrimSpace(string(b)) != "1" {
			err = fmt.Errorf("%s: disable_ipv6 is %q", ifname, b)
		}
		return err
	}
	if err := ipv6Off(v.Host); err != nil {
		t.Error(err)
	}
	v.InPeer(t, func() error { return ipv6Off(v.Peer) })
	var ps *PacketSocket
	v.InPeer(t, func() error { ps = OpenPacketSocket(t, v.PeerIndex); return nil })
	host := OpenPacketSocket(t, v.HostIndex)
	f := UDPFrame(v.HostMAC, v.PeerMAC, v.PeerIP.As4(), v.HostIP.As4(), 1000, 2000, []byte("hello"))
	if err := ps.Send(f); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		n, err := host.Recv(buf, 200*time.Millisecond)
		if err == nil && strings.HasSuffix(string(buf[:n]), "hello") {
			return
		}
	}
	t.Fatal("frame sent from the peer never reached the host side")
}
