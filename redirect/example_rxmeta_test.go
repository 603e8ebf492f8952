//go:build linux

package redirect_test

import (
	"errors"
	"fmt"
	"log"
	"net"

	"github.com/xdpkit/xdpkit/redirect"
)

// Attach the device-bound variant that stores each frame's RX timestamp,
// RSS hash and VLAN tag in front of it, and fall back to the plain
// program where the kernel or the driver lacks the kfuncs. Needs root.
func ExampleAttach_rxMetadata() {
	iface, err := net.InterfaceByName("eth0")
	if err != nil {
		log.Fatal(err)
	}
	prog, err := redirect.Attach(iface.Index, &redirect.Options{RXMetadata: true})
	if errors.Is(err, redirect.ErrNotSupported) {
		log.Printf("no RX metadata on %s: %v", iface.Name, err)
		prog, err = redirect.Attach(iface.Index, nil)
	}
	if err != nil {
		log.Fatal(err)
	}
	defer prog.Close()
	fmt.Printf("RX metadata: %v, %s mode\n", prog.RXMetadata(), prog.Mode())
}
