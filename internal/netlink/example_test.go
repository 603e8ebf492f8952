//go:build linux

package netlink_test

import (
	"fmt"

	"github.com/xdpkit/xdpkit/internal/netlink"
)

// Ask the kernel about the loopback interface. Reading link attributes
// needs no privilege.
func ExampleLinkByName() {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(lo.Name, lo.NumRXQueues >= 1, lo.XDP.IsAttached())
	// Output: lo true false
}
