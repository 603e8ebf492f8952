//go:build linux

package main

// The generator and the latency probe: `bench gen ...`, started by the
// harness inside the generator netns (ip netns exec) on the generator CPU.
//
// Load: BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES (cilium/ebpf
// Program.Run) on an XDP program that returns XDP_TX, with the peer veth's
// ifindex as ingress: the kernel turns every run into an ndo_xdp_xmit into
// the DUT's veth, exactly like the anchors' C generator (anc_trafficgen.c).
// Two OS threads, both pinned to the generator CPU, so one runs while the
// other sleeps in the RCU grace period that ends every BPF_PROG_RUN call.
//
// Probe: an AF_PACKET socket on the same veth sends one timestamped UDP
// frame (to the probe port) every 1/rate s, from a SCHED_FIFO thread that
// reads CLOCK_REALTIME right before write(); the sink XDP program on the
// veth passes reflected probes to the stack, where the kernel timestamps
// them on receive (SO_TIMESTAMPNS). RTT = kernel receive time - send time.

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/bench/internal/pkt"
	"github.com/xdpkit/xdpkit/bench/internal/progs"
)

const probeMagic = 0x58425031 // "XBP1"; probe payload: magic u32, seq u32, send time u64 (fits a 60-byte frame)

// GenResult is printed by the generator as "GENRESULT {json}".
type GenResult struct {
	Sent       uint64     `json:"sent"` // frames the generator's runs covered (info only)
	Calls      uint64     `json:"calls"`
	Errors     []string   `json:"errors,omitempty"`
	LoadStart  int64      `json:"load_start_ns"`
	LoadEnd    int64      `json:"load_end_ns"`
	ProbeSent  uint64     `json:"probe_sent"`
	ProbeRecv  uint64     `json:"probe_recv"`
	ProbeError string     `json:"probe_error,omitempty"`
	Samples    [][2]int64 `json:"samples,omitempty"` // [send time ns (realtime), rtt ns]
	SendTimes  []int64    `json:"send_times,omitempty"`
}

func genMain(args []string) int {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	ifname := fs.String("if", "xbv1", "interface to transmit out of (the DUT's peer)")
	dmac := fs.String("dst-mac", "02:bb:00:00:00:00", "destination MAC")
	smac := fs.String("src-mac", "02:bb:00:00:00:01", "source MAC")
	dip := fs.String("dst-ip", "10.235.0.1", "destination IPv4")
	sip := fs.String("src-ip", "10.235.0.2", "source IPv4")
	size := fs.Int("size", 60, "frame length without FCS")
	threads := fs.Int("threads", 2, "generator threads")
	cpu := fs.Int("cpu", 0, "CPU to pin the generator threads to")
	repeat := fs.Uint("repeat", 1<<20, "frames per BPF_PROG_RUN call")
	load := fs.Duration("load", 3*time.Second, "how long to generate")
	flows := fs.Int("flows", 0, "rotate the UDP source port over this many flows (power of 2; 0 = one flow)")
	probeRate := fs.Int("probe-rate", 0, "latency probes per second (0 = no probe)")
	probeTail := fs.Duration("probe-tail", 0, "keep probing this long after the load stopped (idle latency)")
	probePort := fs.Int("probe-port", 7777, "UDP destination port of the probes")
	_ = fs.Parse(args)

	ifc, err := net.InterfaceByName(*ifname)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		return 1
	}
	spec := pkt.Spec{Len: *size, DstIP: netip.MustParseAddr(*dip), SrcIP: netip.MustParseAddr(*sip), DstPort: loadPort, SrcPort: loadPort}
	if spec.DstMAC, err = net.ParseMAC(*dmac); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		return 1
	}
	if spec.SrcMAC, err = net.ParseMAC(*smac); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		return 1
	}
	frame := pkt.UDP(spec)

	var prog *ebpf.Program
	if *flows > 0 {
		var m *ebpf.Map
		prog, m, err = progs.GenFlows(*flows)
		if m != nil {
			defer m.Close()
		}
	} else {
		prog, err = progs.GenTX()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen: load program:", err)
		return 1
	}
	defer prog.Close()

	var stop atomic.Bool
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-sigc; stop.Store(true) }()

	res := &GenResult{}
	var pr *probe
	if *probeRate > 0 {
		pspec := spec
		pspec.DstPort = uint16(*probePort)
		pspec.SrcPort = uint16(*probePort)
		if pr, err = newProbe(ifc.Index, pkt.UDP(pspec), *probeRate, *cpu, time.Duration(float64(*load+*probeTail)*1.2)); err != nil {
			res.ProbeError = err.Error()
			pr = nil
		}
	}
	if pr != nil {
		pr.start()
	}

	// xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex
	ctx := [6]uint32{0, uint32(len(frame)), 0, uint32(ifc.Index), 0, 0}
	var sent, calls atomic.Uint64
	var mu sync.Mutex
	var wg sync.WaitGroup
	res.LoadStart = time.Now().UnixNano()
	deadline := time.Now().Add(*load)
	fmt.Printf("GEN_START if=%s ifindex=%d size=%d threads=%d repeat=%d flows=%d probe=%d/s\n",
		*ifname, ifc.Index, len(frame), *threads, *repeat, *flows, *probeRate)
	for t := 0; t < *threads; t++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var set unix.CPUSet
			set.Set(*cpu)
			if err := unix.SchedSetaffinity(0, &set); err != nil {
				mu.Lock()
				res.Errors = append(res.Errors, "affinity: "+err.Error())
				mu.Unlock()
			}
			opts := ebpf.RunOptions{
				Data:    frame,
				Context: ctx,
				Repeat:  uint32(*repeat),
				Flags:   unix.BPF_F_TEST_XDP_LIVE_FRAMES,
			}
			for !stop.Load() && time.Now().Before(deadline) {
				if _, err := prog.Run(&opts); err != nil {
					mu.Lock()
					res.Errors = append(res.Errors, "BPF_PROG_RUN: "+err.Error())
					mu.Unlock()
					return
				}
				sent.Add(uint64(*repeat))
				calls.Add(1)
			}
		}()
	}
	wg.Wait()
	res.LoadEnd = time.Now().UnixNano()
	res.Sent, res.Calls = sent.Load(), calls.Load()
	if pr != nil {
		tailEnd := time.Now().Add(*probeTail)
		for !stop.Load() && time.Now().Before(tailEnd) {
			time.Sleep(10 * time.Millisecond)
		}
		pr.finish(res)
	}
	b, _ := json.Marshal(res)
	fmt.Printf("GENRESULT %s\n", b)
	if len(res.Errors) > 0 {
		return 1
	}
	return 0
}

type probe struct {
	fd       int
	frame    []byte
	interval time.Duration
	cpu      int
	bound    time.Duration
	stop     atomic.Bool
	wg       sync.WaitGroup

	mu      sync.Mutex
	sends   []int64
	samples [][2]int64
	err     error
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func newProbe(ifindex int, frame []byte, rate, cpu int, bound time.Duration) (*probe, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IP)))
	if err != nil {
		return nil, fmt.Errorf("probe socket: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: ifindex}); err != nil {
		return nil, fmt.Errorf("probe bind: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return nil, fmt.Errorf("PACKET_IGNORE_OUTGOING: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return nil, fmt.Errorf("SO_TIMESTAMPNS: %w", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return nil, fmt.Errorf("SO_RCVTIMEO: %w", err)
	}
	ok = true
	n := int(bound.Seconds()*float64(rate)) + 16
	return &probe{fd: fd, frame: frame, interval: time.Second / time.Duration(rate), cpu: cpu, bound: bound,
		sends: make([]int64, 0, n), samples: make([][2]int64, 0, n)}, nil
}

// rt makes the calling (locked) thread SCHED_FIFO on the probe CPU, so that
// a probe is sent right after its timestamp is taken even though the
// generator threads keep that CPU busy.
func (p *probe) rt() {
	var set unix.CPUSet
	set.Set(p.cpu)
	_ = unix.SchedSetaffinity(0, &set)
	_ = unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: 1 /* SCHED_FIFO */, Priority: 10}, 0)
}

func (p *probe) start() {
	p.wg.Add(2)
	end := time.Now().Add(p.bound)
	go func() { // sender
		defer p.wg.Done()
		runtime.LockOSThread() // the thread is SCHED_FIFO: let it die with the goroutine
		p.rt()
		f := append([]byte(nil), p.frame...)
		binary.BigEndian.PutUint32(f[pkt.OffPayload:], probeMagic)
		var ts unix.Timespec
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		next := ts.Nano()
		for seq := uint64(0); !p.stop.Load() && time.Now().Before(end); seq++ {
			next += p.interval.Nanoseconds()
			t := unix.NsecToTimespec(next)
			for unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &t, nil) == unix.EINTR {
			}
			var now unix.Timespec
			_ = unix.ClockGettime(unix.CLOCK_REALTIME, &now)
			tx := now.Nano()
			binary.BigEndian.PutUint32(f[pkt.OffPayload+4:], uint32(seq))
			binary.BigEndian.PutUint64(f[pkt.OffPayload+8:], uint64(tx))
			pkt.SetUDPChecksum(f)
			if _, err := unix.Write(p.fd, f); err == nil {
				p.mu.Lock()
				if len(p.sends) < cap(p.sends) {
					p.sends = append(p.sends, tx)
				}
				p.mu.Unlock()
			}
		}
	}()
	go func() { // receiver
		defer p.wg.Done()
		runtime.LockOSThread()
		p.rt()
		buf := make([]byte, 2048)
		oob := make([]byte, 256)
		for !p.stop.Load() && time.Now().Before(end) {
			n, oobn, _, _, err := unix.Recvmsg(p.fd, buf, oob, 0)
			if err != nil {
				if err == unix.EAGAIN || err == unix.EINTR {
					continue
				}
				p.mu.Lock()
				p.err = err
				p.mu.Unlock()
				return
			}
			if n < pkt.OffPayload+16 || binary.BigEndian.Uint32(buf[pkt.OffPayload:]) != probeMagic {
				continue
			}
			tx := int64(binary.BigEndian.Uint64(buf[pkt.OffPayload+8:]))
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				continue
			}
			for _, m := range msgs {
				if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})) {
					ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
					p.mu.Lock()
					if len(p.samples) < cap(p.samples) {
						p.samples = append(p.samples, [2]int64{tx, ts.Nano() - tx})
					}
					p.mu.Unlock()
				}
			}
		}
	}()
}

func (p *probe) finish(res *GenResult) {
	time.Sleep(50 * time.Millisecond) // the last probes' way back
	p.stop.Store(true)
	p.wg.Wait()
	unix.Close(p.fd)
	p.mu.Lock()
	defer p.mu.Unlock()
	res.ProbeSent = uint64(len(p.sends))
	res.ProbeRecv = uint64(len(p.samples))
	res.Samples = p.samples
	res.SendTimes = p.sends
	if p.err != nil {
		res.ProbeError = p.err.Error()
	}
}
