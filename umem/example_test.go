package umem_test

import (
	"errors"
	"fmt"
	"log"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/umem"
)

// ExampleNew makes one UMEM for two sockets on two queues, driven by two
// goroutines: each socket gets a pool of its own, so they never contend
// for a lock.
func ExampleNew() {
	u, err := umem.New(&umem.Options{FrameCount: 8192, HugePages: true, HugePageFallback: true})
	if errors.Is(err, umem.ErrMemlock) {
		log.Fatal(err) // the error says how to raise the limit
	} else if err != nil {
		log.Fatal(err)
	}
	defer u.Close()
	p0, err := u.NewPool(4096)
	if err != nil {
		log.Fatal(err)
	}
	s0, err := afxdp.Open("eth0", 0, &afxdp.Config{UMEM: u, Pool: p0})
	if err != nil {
		log.Fatal(err)
	}
	defer s0.Close()
	s1, err := afxdp.Open("eth0", 1, &afxdp.Config{UMEM: u, Pool: u.Pool, Steering: s0.Program()})
	if err != nil {
		log.Fatal(err)
	}
	defer s1.Close()
	fmt.Printf("%+v\n", u.Counts()) // Free+Fill+App+TX == Total, always
}

// ExamplePool_AllocInto builds a batch of frames to send.
func ExamplePool_AllocInto() {
	var s *afxdp.Socket // an open socket
	var addrs [64]uint64
	n := s.Pool().AllocInto(addrs[:])
	descs := make([]afxdp.Desc, n)
	for i, a := range addrs[:n] {
		frame := s.UMEM().Frame(a) // the room to write a packet in
		descs[i] = afxdp.Desc{Addr: a, Len: uint32(copy(frame, "...a packet..."))}
	}
	sent, err := s.Transmit(descs)
	if err != nil {
		log.Print(err)
	}
	_ = s.Release(descs[sent:]) // what the ring did not take is still ours
}
