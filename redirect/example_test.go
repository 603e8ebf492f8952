//go:build linux

package redirect_test

import (
	"fmt"
	"log"
	"net"

	"github.com/xdpkit/xdpkit/redirect"
)

// Attach the redirect program to eth0, letting the kernel's driver decide
// between native and generic XDP, then hand queue 0 to an AF_XDP socket.
// Needs root (CAP_BPF and CAP_NET_ADMIN).
func ExampleAttach() {
	iface, err := net.InterfaceByName("eth0")
	if err != nil {
		log.Fatal(err)
	}
	prog, err := redirect.Attach(iface.Index, nil) // nil: ModeAuto, one entry per RX queue
	if err != nil {
		log.Fatal(err)
	}
	defer prog.Close() // detaches; so does the process exiting

	fmt.Printf("attached in %s mode, %d queues\n", prog.Mode(), prog.Queues())

	// xskFD is an AF_XDP socket bound to eth0 queue 0 (see package afxdp).
	var xskFD int
	if err := prog.Register(0, xskFD); err != nil {
		log.Fatal(err)
	}
	defer prog.Unregister(0)
}
