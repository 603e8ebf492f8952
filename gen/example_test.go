package gen_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/gen"
	"github.com/xdpkit/xdpkit/packet"
)

// Send 100,000 UDP frames in IMIX sizes over 16 flows at 50,000 frames a
// second from queue 0 of eth1.
func Example() {
	sock, err := afxdp.Open("eth1", 0, &afxdp.Config{Steering: afxdp.NoSteering}) // no program: send only
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sock.Close()
	ifc, _ := net.InterfaceByName("eth1")
	dst := netip.MustParseAddr("10.0.0.2")
	mac, err := gen.ResolveMAC(ifc, dst, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	b, err := gen.NewBuilder(gen.Template{
		SrcMAC: ifc.HardwareAddr, DstMAC: mac,
		Src: netip.MustParseAddr("10.0.0.1"), Dst: dst, SrcPort: 40000, DstPort: 9,
		Sizes: gen.IMIX, Flows: 16,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	s, err := gen.NewSender(gen.SenderConfig{Socket: sock, Builder: b, Stamp: true, Rate: 50e3, Count: 100e3})
	if err != nil {
		fmt.Println(err)
		return
	}
	st, err := s.Run(context.Background())
	fmt.Println(st.Sent, err)
}

// Build one frame and read its stamp back, as a receiver of the replies
// does.
func ExampleBuilder() {
	b, _ := gen.NewBuilder(gen.Template{
		SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
		Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), SrcPort: 40000, DstPort: 7,
	})
	frame := make([]byte, 64)
	n := b.Build(frame, 0, false)
	b.Stamp(frame[:n], 42, 1000)
	seq, ts, ok := gen.ReadStamp(frame[:n], new(packet.Headers))
	fmt.Println(n, seq, ts, ok)
	// Output: 64 42 1000 true
}
