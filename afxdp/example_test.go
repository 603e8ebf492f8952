//go:build linux

package afxdp_test

import (
	"errors"
	"fmt"
	"log"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/redirect"
	"github.com/xdpkit/xdpkit/umem"
)

// Receive frames from queue 0 of eth0 and count them.
func ExampleOpen() {
	sock, err := afxdp.Open("eth0", 0, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sock.Close()

	descs := make([]unix.XDPDesc, 64)
	var frames, bytes int
	for range 1000 {
		if err := sock.Wait(time.Second); errors.Is(err, afxdp.ErrTimeout) {
			continue
		} else if err != nil {
			log.Fatal(err)
		}
		n, _ := sock.Receive(descs)
		for _, d := range descs[:n] {
			bytes += len(sock.Frame(d))
		}
		frames += n
		sock.Release(descs[:n])
	}
	fmt.Println(frames, "frames,", bytes, "bytes")
}

// Reflect every frame back out of the interface it came from, swapping the
// Ethernet addresses in place.
func ExampleSocket_Transmit() {
	sock, err := afxdp.Open("eth0", 0, &afxdp.Config{Bind: afxdp.BindAuto})
	if err != nil {
		log.Fatal(err)
	}
	defer sock.Close()
	descs := make([]unix.XDPDesc, 64)
	var mac [6]byte
	for sock.Wait(-1) == nil {
		n, _ := sock.Receive(descs)
		for _, d := range descs[:n] {
			f := sock.Frame(d)
			copy(mac[:], f[0:6])
			copy(f[0:6], f[6:12])
			copy(f[6:12], mac[:])
		}
		sent, err := sock.Transmit(descs[:n])
		if err != nil {
			log.Fatal(err)
		}
		sock.Release(descs[sent:n]) // what did not fit in the TX ring
	}
}

// Two queues of one interface share one UMEM and one redirect program.
func ExampleConfig_sharedUMEM() {
	u, err := umem.New(&umem.Options{FrameCount: 8192, HugePages: true, HugePageFallback: true})
	if err != nil {
		log.Fatal(err)
	}
	defer u.Close()
	prog, err := redirect.Attach(2 /* ifindex */, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer prog.Close()
	cfg := &afxdp.Config{UMEM: u, Steering: prog}
	for q := range 2 {
		sock, err := afxdp.OpenIndex(2, q, cfg)
		if err != nil {
			log.Fatal(err)
		}
		defer sock.Close()
	}
}
