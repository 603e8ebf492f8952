//go:build linux

package examples_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/xdpkit/xdpkit/internal/testutils"
)

// TestFilter drops one UDP port in the kernel (and in user space): a
// kernel UDP server on that port gets nothing, one on another port gets
// everything.
func TestFilter(t *testing.T) {
	for _, mode := range []string{"kernel", "userspace"} {
		t.Run(mode, func(t *testing.T) {
			v := testutils.NewVeth(t, testutils.VethOptions{})
			args := []string{"-drop", "udp port 8080"}
			if mode == "userspace" {
				args = append(args, "-userspace")
			}
			p := start(t, v, "xdp-filter", args...)
			listen := func(port int) *net.UDPConn {
				c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IP(v.HostIP.AsSlice()), Port: port})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				return c
			}
			blocked, open := listen(8080), listen(8081)
			var client *net.UDPConn
			v.InPeer(t, func() (err error) {
				client, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IP(v.PeerIP.AsSlice())})
				return err
			})
			defer client.Close()
			const n = 50
			for i := range n {
				for _, port := range []int{8080, 8081} {
					if _, err := client.WriteToUDP(fmt.Appendf(nil, "%d", i), &net.UDPAddr{IP: net.IP(v.HostIP.AsSlice()), Port: port}); err != nil {
						t.Fatal(err)
					}
				}
			}
			count := func(c *net.UDPConn) int {
				got := 0
				buf := make([]byte, 100)
				for {
					_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
					if _, _, err := c.ReadFromUDP(buf); err != nil {
						return got
					}
					got++
				}
			}
			if got := count(open); got != n {
				t.Errorf("port 8081 received %d of %d datagrams", got, n)
			}
			if got := count(blocked); got != 0 {
				t.Errorf("port 8080 received %d datagrams, want 0", got)
			}
			out := p.stop()
			if num(out, "dropped") != n {
				t.Errorf("summary %v: want %d dropped", out, n)
			}
			noProgramLeft(t, v)
		})
	}
}
