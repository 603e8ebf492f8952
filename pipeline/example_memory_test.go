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

// A stage that takes a whole batch of frames per call: it reads only the
// frames' bytes, so the Runner neither parses them nor fills a Packet for
// each, and calls it once per batch.
func ExampleFramesFunc() {
	sock, kernel, err := afxdp.NewMemory(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sock.Close()
	keepIPv4 := pipeline.FramesFunc(func(b *pipeline.FrameBatch) {
		for i, f := range b.Frames {
			if len(f) < 14 || f[12] != 0x08 || f[13] != 0x00 {
				b.Verdicts[i] = pipeline.Drop // not IPv4
			} // else Continue: the Runner's Final verdict decides
		}
	})
	r, err := pipeline.New(pipeline.Config{Socket: sock, Stages: []pipeline.Stage{keepIPv4}, Final: pipeline.Transmit})
	if err != nil {
		log.Fatal(err)
	}

	ipv4, arp := make([]byte, 60), make([]byte, 60)
	ipv4[12], arp[12], arp[13] = 0x08, 0x08, 0x06
	kernel.Deliver(ipv4, arp, ipv4)

	n, err := r.Poll()
	if err != nil {
		log.Fatal(err)
	}
	st := r.Stats()
	fmt.Println("received", n, "transmitted", st.TXPackets, "dropped", st.Dropped, "seen by the stage", st.Stages[0].Seen)
	// Output:
	// received 3 transmitted 2 dropped 1 seen by the stage 3
}
