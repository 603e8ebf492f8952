//go:build linux

// Command asavie-dut is the github.com/asavie/xdp v0.3.3 peer of the
// benchmark harness: the same loops as /work/shared/anchors/asavie/main.go
// (drop: Receive, read the EtherType, Fill; reflect: Receive, swap MACs,
// Transmit, Complete + Fill(GetDescs)), with the harness's window protocol
// (SIGUSR1/SIGUSR2, DUTSTATS line) added so that its allocations and
// syscalls per frame are measured like xdpkit's.
//
// asavie/xdp's own XDP program (NewProgram: qidconf + XSKMAP) is attached in
// driver mode, the socket binds in copy mode (veth has no zero-copy).
// asavie/xdp v0.3.3 has no need_wakeup; Transmit makes one sendto per call.
//
//	asavie-dut -i xbv0 -m drop|reflect [-poll]
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"time"

	"github.com/asavie/xdp"
	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/bench/internal/dutwin"
)

func main() { os.Exit(run()) }

func run() int {
	ifname := flag.String("i", "xbv0", "interface")
	queue := flag.Int("q", 0, "queue id")
	mode := flag.String("m", "drop", "drop|reflect")
	frames := flag.Int("frames", 4096, "UMEM frames")
	ring := flag.Int("ring", 2048, "rx/tx/completion ring size (fill ring = 2x)")
	usePoll := flag.Bool("poll", false, "block in xsk.Poll() instead of busy-spinning")
	profile := flag.String("cpuprofile", "", "CPU profile of the measurement window")
	bound := flag.Duration("T", 60*time.Second, "hard bound on the run time")
	flag.Parse()
	reflect := *mode == "reflect"
	if !reflect && *mode != "drop" {
		fmt.Fprintln(os.Stderr, "mode must be drop or reflect")
		return 2
	}
	runtime.LockOSThread()

	link, err := net.InterfaceByName(*ifname)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	xdp.DefaultXdpFlags = unix.XDP_FLAGS_DRV_MODE
	xdp.DefaultSocketFlags = unix.XDP_COPY
	prog, err := xdp.NewProgram(*queue + 1)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewProgram:", err)
		return 1
	}
	defer prog.Close()
	if err := prog.Attach(link.Index); err != nil {
		fmt.Fprintln(os.Stderr, "Attach:", err)
		return 1
	}
	defer prog.Detach(link.Index)

	opts := xdp.SocketOptions{
		NumFrames:              *frames,
		FrameSize:              4096,
		FillRingNumDescs:       2 * *ring,
		CompletionRingNumDescs: *ring,
		RxRingNumDescs:         *ring,
		TxRingNumDescs:         *ring,
	}
	var xsk *xdp.Socket
	for tries := 0; ; tries++ { // EBUSY while the previous socket on the queue is released
		xsk, err = xdp.NewSocket(link.Index, *queue, &opts)
		if err == nil || tries >= 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewSocket:", err)
		return 1
	}
	defer xsk.Close()
	if err := prog.Register(*queue, xsk.FD()); err != nil {
		fmt.Fprintln(os.Stderr, "Register:", err)
		return 1
	}
	defer prog.Unregister(*queue)

	w := dutwin.New("asavie", *mode, *profile, *bound)
	w.SetConfig(map[string]any{"if": *ifname, "queue": *queue, "mode": *mode, "poll": *usePoll, "frames": *frames, "ring": *ring, "need_wakeup": false})
	dutwin.Ready("impl=asavie if=%s q=%d mode=%s bind=copy xdp=drv need_wakeup=0 poll=%v frames=%d ring=%d",
		*ifname, *queue, *mode, *usePoll, *frames, *ring)

	xsk.Fill(xsk.GetDescs(xsk.NumFreeFillSlots()))
	var rx, tx, syscalls uint64
	var sink byte
	collect := func() dutwin.Snap { return dutwin.Snap{RX: rx, TX: tx, Syscalls: syscalls, Kicks: syscalls} }
	for !w.Stopped() {
		if w.Pending() {
			w.Edge(collect)
		}
		if *usePoll {
			syscalls++
			if _, _, err := xsk.Poll(100); err != nil {
				fmt.Fprintln(os.Stderr, "Poll:", err)
				break
			}
		}
		if reflect {
			if n := xsk.NumCompleted(); n > 0 {
				xsk.Complete(n)
			}
			if n := xsk.NumFreeFillSlots(); n > 0 {
				xsk.Fill(xsk.GetDescs(n))
			}
			if n := xsk.NumReceived(); n > 0 {
				if f := xsk.NumFreeTxSlots(); n > f {
					n = f
				}
				descs := xsk.Receive(n)
				for _, d := range descs {
					fr := xsk.GetFrame(d)
					var tmp [6]byte
					copy(tmp[:], fr[0:6])
					copy(fr[0:6], fr[6:12])
					copy(fr[6:12], tmp[:])
				}
				syscalls++ // Transmit: one sendto per call
				tx += uint64(xsk.Transmit(descs))
				rx += uint64(len(descs))
			} else if xsk.NumTransmitted() > 0 {
				syscalls++
				xsk.Transmit(nil) // kick: copy-mode TX only happens in sendto()
			}
		} else if n := xsk.NumReceived(); n > 0 {
			descs := xsk.Receive(n)
			for _, d := range descs {
				sink ^= xsk.GetFrame(d)[12]
			}
			xsk.Fill(descs)
			rx += uint64(len(descs))
		}
	}
	_ = sink
	w.Report()
	return 0
}
