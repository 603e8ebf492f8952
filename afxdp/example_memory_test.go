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

// A receive loop's batch: the descriptors and the frames' bytes from one
// call, then straight back onto the fill ring. A memory socket plays the
// kernel here.
func ExampleSocket_ReceiveFrames() {
	sock, kernel, err := afxdp.NewMemory(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sock.Close()
	kernel.Deliver([]byte("first frame"), []byte("second frame"))

	descs, frames := make([]afxdp.Desc, 64), make([][]byte, 64)
	n, err := sock.ReceiveFrames(descs, frames)
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range frames[:n] {
		fmt.Printf("%q\n", f)
	}
	if err := sock.Recycle(descs[:n]); err != nil {
		log.Fatal(err)
	}
	// Output:
	// "first frame"
	// "second frame"
}
