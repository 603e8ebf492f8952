//go:build linux

package pipeline_test

import (
	"fmt"
	"log"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/stages"
)

// A pipeline tested without a NIC or privileges: a memory socket's kernel
// delivers two frames, the Runner reflects them, and the test sees what
// went out. This is how to unit-test a stage of your own.
func ExampleRunner_Poll_memory() {
	sock, kernel, err := afxdp.NewMemory(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sock.Close()
	r, err := pipeline.New(pipeline.Config{Socket: sock, Stages: []pipeline.Stage{stages.NewMACSwap()}})
	if err != nil {
		log.Fatal(err)
	}

	frame := make([]byte, 60)
	copy(frame, []byte{0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02}) // dst 02:..:01, src 02:..:02
	kernel.Deliver(frame, frame)

	n, err := r.Poll()
	if err != nil {
		log.Fatal(err)
	}
	kernel.Transmitted(func(f []byte) { fmt.Printf("sent to %x from %x\n", f[0:6], f[6:12]) })
	st := r.Stats()
	fmt.Println("received", n, "transmitted", st.TXPackets)
	// Output:
	// sent to 020000000002 from 020000000001
	// sent to 020000000002 from 020000000001
	// received 2 transmitted 2
}
