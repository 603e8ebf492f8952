//go:build linux

package ring_test

import (
	"fmt"
	"log"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/ring"
)

// ExampleFill gives a fill ring four frame addresses in one batch. A
// Completion over the same memory plays the kernel and takes them.
func ExampleFill() {
	// One page of ordinary memory with the indices on their own cache
	// lines, standing in for the mapping MapFill gets from a socket.
	off := ring.Offsets{Producer: 0, Consumer: 64, Flags: 128, Desc: 192}
	mem, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		log.Fatal(err)
	}
	defer unix.Munmap(mem)

	fill, err := ring.NewFill(mem, off, 8)
	if err != nil {
		log.Fatal(err)
	}
	defer fill.Close()
	kernel, err := ring.NewCompletion(mem, off, 8)
	if err != nil {
		log.Fatal(err)
	}
	defer kernel.Close()

	// User space: reserve, write, submit.
	idx, n := fill.Reserve(4)
	for i := range n {
		fill.Set(idx+i, uint64(i)*2048)
	}
	fill.Submit(n)
	fmt.Println("submitted:", n, "pending:", fill.Pending())

	// The kernel's side: peek, read, release.
	idx, n = kernel.Peek(8)
	for i := range n {
		fmt.Println("frame at", kernel.Addr(idx+i))
	}
	kernel.Release(n)
	fmt.Println("pending:", fill.Pending())
	// Output:
	// submitted: 4 pending: 4
	// frame at 0
	// frame at 2048
	// frame at 4096
	// frame at 6144
	// pending: 0
}

// ExampleRX reads a batch of received descriptors. A TX ring over the same
// memory plays the kernel and writes them.
func ExampleRX() {
	off := ring.Offsets{Producer: 0, Consumer: 64, Flags: 128, Desc: 192}
	mem, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		log.Fatal(err)
	}
	defer unix.Munmap(mem)

	rx, err := ring.NewRX(mem, off, 4)
	if err != nil {
		log.Fatal(err)
	}
	defer rx.Close()
	kernel, err := ring.NewTX(mem, off, 4)
	if err != nil {
		log.Fatal(err)
	}
	defer kernel.Close()

	// The kernel's side: three frames arrive.
	idx, n := kernel.Reserve(3)
	for i := range n {
		kernel.Set(idx+i, unix.XDPDesc{Addr: uint64(i) * 4096, Len: 60 + i})
	}
	kernel.Submit(n)

	// User space: take at most two now, and the rest on the next call.
	for range 2 {
		idx, n := rx.Peek(2)
		for i := range n {
			d := rx.Desc(idx + i)
			fmt.Printf("frame at %d, %d bytes\n", d.Addr, d.Len)
		}
		rx.Release(n)
		fmt.Println("batch of", n, "- still waiting:", rx.Available())
	}
	// Output:
	// frame at 0, 60 bytes
	// frame at 4096, 61 bytes
	// batch of 2 - still waiting: 1
	// frame at 8192, 62 bytes
	// batch of 1 - still waiting: 0
}

// ExampleTX fills a two-slot TX ring: once every slot is submitted and
// unsent, Reserve gets nothing until the kernel (an RX ring over the same
// memory here) consumes. A real sender would then kick the socket with
// sendto if NeedWakeup says so, and reap the completion ring.
func ExampleTX() {
	off := ring.Offsets{Producer: 0, Consumer: 64, Flags: 128, Desc: 192}
	mem, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		log.Fatal(err)
	}
	defer unix.Munmap(mem)
	tx, err := ring.NewTX(mem, off, 2)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Close()
	kernel, err := ring.NewRX(mem, off, 2)
	if err != nil {
		log.Fatal(err)
	}
	defer kernel.Close()

	send := func(want uint32) {
		idx, n := tx.Reserve(want)
		for i := range n {
			tx.Set(idx+i, unix.XDPDesc{Addr: uint64(idx+i) * 2048, Len: 64})
		}
		tx.Submit(n)
		fmt.Println("queued:", n, "pending:", tx.Pending())
	}
	send(2)
	send(2) // full

	_, n := kernel.Peek(1) // the kernel sends one frame
	kernel.Release(n)
	send(2)
	// Output:
	// queued: 2 pending: 2
	// queued: 0 pending: 2
	// queued: 1 pending: 2
}

func ExampleValidSize() {
	for _, size := range []uint32{0, 1, 3, 2048, ring.MaxSize, ring.MaxSize * 2} {
		fmt.Println(size, ring.ValidSize(size))
	}
	// Output:
	// 0 false
	// 1 true
	// 3 false
	// 2048 true
	// 1048576 true
	// 2097152 false
}
