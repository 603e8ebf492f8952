package fastpath_test

import (
	"fmt"
	"log"
	"net"
	"net/netip"
	"time"

	"github.com/xdpkit/xdpkit/fastpath"
	"github.com/xdpkit/xdpkit/filter"
	"github.com/xdpkit/xdpkit/redirect"
)

// Police DNS in the kernel: each source gets 100 queries per second with
// bursts of 20, a block list drops a network outright, and the queries
// within the rate go on to the local DNS server. No AF_XDP socket is
// involved. Needs root.
func ExampleNew() {
	iface, err := net.InterfaceByName("eth0")
	if err != nil {
		log.Fatal(err)
	}
	fp, err := fastpath.New(&fastpath.Config{
		Default: fastpath.Pass, // what the policies leave goes to the kernel stack
		Rate:    fastpath.Rate{PerSecond: 100, Burst: 20},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer fp.Close()
	if err := fp.SetPolicy(netip.MustParsePrefix("203.0.113.0/24"), fastpath.Block); err != nil {
		log.Fatal(err)
	}
	// Only DNS is policed: the filter passes the rest straight away.
	dns, err := filter.Compile("udp dst port 53", filter.Redirect, filter.Pass)
	if err != nil {
		log.Fatal(err)
	}
	prog, err := redirect.Attach(iface.Index, &redirect.Options{Filter: dns, FastPath: fp})
	if err != nil {
		log.Fatal(err)
	}
	defer prog.Close()

	time.Sleep(10 * time.Second)
	c, err := fp.Counters()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("passed %d, over the rate %d, blocked %d\n", c.RatePassed, c.RateDropped, c.Blocked)
}

// Install a flow entry: the XDP program sends the flow's frames to
// another server, rewriting the destination address and MAC address, and
// transmits them back out of the interface without waking user space.
func ExampleFastPath_Install() {
	fp, err := fastpath.New(nil) // attach it with redirect.Options.FastPath
	if err != nil {
		log.Fatal(err)
	}
	defer fp.Close()
	flow := fastpath.Flow{
		Src: netip.MustParseAddr("192.0.2.1"), SrcPort: 40000,
		Dst: netip.MustParseAddr("198.51.100.2"), DstPort: 80,
		Proto: fastpath.TCP,
	}
	err = fp.Install(flow, fastpath.Entry{
		Action: fastpath.Transmit,
		DstMAC: net.HardwareAddr{0x02, 0, 0, 0, 0, 0x10},
		NewDst: netip.MustParseAddr("10.0.0.10"),
	})
	if err != nil {
		log.Fatal(err)
	}
	_, st, err := fp.Lookup(flow)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %d packets, %d bytes\n", flow, st.Packets, st.Bytes)
}
