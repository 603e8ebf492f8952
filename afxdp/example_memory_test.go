//go:build linux

package afxdp_test

import (
	"fmt"
	"log"

	"github.com/xdpkit/xdpkit/afxdp"
)

// A memory socket: the test plays the kernel, with no NIC and no
// privileges. Here it delivers two frames, which the application sends
// back; the kernel side sees them go.
func ExampleNewMemory() {
	sock, kernel, err := afxdp.NewMemory(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sock.Close()

	small, large := make([]byte, 60), make([]byte, 1514) // two Ethernet frames
	kernel.Deliver(small, large)

	descs := make([]afxdp.Desc, 64)
	n, err := sock.Receive(descs)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := sock.Transmit(descs[:n]); err != nil {
		log.Fatal(err)
	}
	kernel.Transmitted(func(frame []byte) { fmt.Printf("sent %d bytes\n", len(frame)) })
	fmt.Println("completed:", sock.Complete())
	// Output:
	// sent 60 bytes
	// sent 1514 bytes
	// completed: 2
}
