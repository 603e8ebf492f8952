//go:build linux

package redirect_test

import (
	"fmt"
	"log"
	"net"

	"github.com/xdpkit/xdpkit/filter"
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

// Attach with a filter: only UDP to port 9999 reaches the AF_XDP sockets,
// all other traffic goes to the kernel stack as if no program were
// attached. Needs root.
func ExampleAttach_filter() {
	f, err := filter.Compile("udp dst port 9999", filter.Redirect, filter.Pass)
	if err != nil {
		log.Fatal(err)
	}
	iface, err := net.InterfaceByName("eth0")
	if err != nil {
		log.Fatal(err)
	}
	prog, err := redirect.Attach(iface.Index, &redirect.Options{Filter: f})
	if err != nil {
		log.Fatal(err)
	}
	defer prog.Close()
	fmt.Printf("redirecting %q on %s\n", prog.Filter(), iface.Name)
}
