//go:build linux

// Command xdpkit-dut is the xdpkit device under test of the benchmark
// harness (bench/cmd/bench). It binds an AF_XDP socket with package afxdp
// and runs one of five modes until SIGTERM (or -T):
//
//	drop     receive, read the EtherType, recycle (like the C and asavie anchors)
//	reflect  receive, swap the MAC addresses in place, transmit the same frame
//	count    count every frame by its 5-tuple in a flow table (stages.FlowCounter), drop
//	l2fwd    receive on -i, rewrite the MACs, forward out of -out (a second
//	         socket on another interface sharing the UMEM)
//	lb       balance the flows to -lb-vip over backends (stages.LoadBalancer,
//	         DSR) and transmit them; see lb.go
//	tx       send UDP frames of -size bytes as fast as the socket takes them
//	         (a gen.Sender, as examples/xdp-gen), no XDP program; see tx.go
//
// -loop hand drives afxdp directly (Receive/Transmit/Release); -loop
// pipeline drives a pipeline.Runner (count, l2fwd and lb always use it). The
// harness opens and closes the measurement window with SIGUSR1/SIGUSR2 (see
// bench/internal/dutwin); at exit the command prints a DUTSTATS line with
// its frame, allocation and syscall counts for that window.
//
// -fastpath police|flowdrop|reflect puts a fastpath.FastPath into the
// socket's redirect program (see fastpath.go): the generator's frames are
// then policed, dropped or reflected in XDP, and the socket only gets the
// misses; the window counts are the fast path's own counters. -mode lb
// -fastpath lb gives the fast path to the balancer, which offloads each
// flow it balances.
//
//	xdpkit-dut -i xbv0 -mode reflect -batch 64 [-poll] [-huge] [-nowakeup] [-busypoll] [-txbudget 256]
//	xdpkit-dut -i xbv0 -mode reflect -poll -fastpath reflect -fp-src 10.235.0.2 -fp-dst 10.235.0.1 -fp-probe 7777
//	xdpkit-dut -i xbv0 -mode lb [-poll -fastpath lb] -lb-vip 10.235.0.1:9 -lb-backend-mac 02:bb:00:00:00:01 -lb-backends 4
//	xdpkit-dut -i xbv0 -mode tx -tx-src 10.235.0.1:9 -tx-dst 10.235.0.2:9 -tx-dst-mac 02:bb:00:00:00:01 -size 64 [-batch 64] [-txbudget 256] [-tx-stamp=false]
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/bench/internal/dutwin"
	"github.com/xdpkit/xdpkit/fastpath"
	"github.com/xdpkit/xdpkit/gen"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/redirect"
	"github.com/xdpkit/xdpkit/umem"
)

type config struct {
	Interface   string        `json:"if"`
	Queue       int           `json:"queue"`
	Mode        string        `json:"mode"`
	Loop        string        `json:"loop"`
	Out         string        `json:"out,omitempty"`
	Batch       int           `json:"batch"`
	Frames      uint32        `json:"frames"`
	FrameSize   uint32        `json:"frame_size"`
	Huge        bool          `json:"hugepages"`
	HugeGot     bool          `json:"hugepages_got"`
	NoWakeup    bool          `json:"no_need_wakeup"`
	BusyPoll    bool          `json:"busy_poll"`
	BusyUS      int           `json:"busy_poll_us,omitempty"`
	Poll        bool          `json:"poll"`
	TXBudget    int           `json:"tx_budget"`
	FlowCap     int           `json:"flow_capacity,omitempty"`
	FlowImpl    string        `json:"flow_impl,omitempty"`
	ZeroCopy    bool          `json:"zero_copy"`
	ProgramMode string        `json:"xdp_mode"`
	LockThread  bool          `json:"lock_thread,omitempty"`
	WaitPoll    bool          `json:"wait_poll,omitempty"`   // Socket.WaitPoll instead of Wait
	FrameStage  bool          `json:"frame_stage,omitempty"` // drop/reflect pipeline stages are pipeline.FramesFuncs
	NoStage     bool          `json:"no_stage,omitempty"`    // drop pipeline without a stage, as examples/xdp-drop runs it
	Coalesce    time.Duration `json:"coalesce,omitempty"`    // afxdp.Config.Coalesce

	FastPath *fpInfo  `json:"fastpath,omitempty"` // -fastpath
	LB       *lbInfo  `json:"lb,omitempty"`       // -mode lb
	TX       *txFlags `json:"tx,omitempty"`       // -mode tx
}

func main() { os.Exit(run()) }

func run() int {
	var c config
	flag.StringVar(&c.Interface, "i", "xbv0", "interface to receive on")
	flag.IntVar(&c.Queue, "q", 0, "queue id")
	flag.StringVar(&c.Mode, "mode", "drop", "drop | reflect | count | l2fwd | lb | tx")
	flag.StringVar(&c.Loop, "loop", "hand", "hand (afxdp calls) | pipeline (pipeline.Runner); count, l2fwd and lb use pipeline")
	flag.StringVar(&c.Out, "out", "xbv2", "l2fwd: interface to forward out of (queue 0)")
	outDMAC := flag.String("out-dmac", "02:bb:00:00:00:03", "l2fwd: destination MAC written into forwarded frames")
	flag.IntVar(&c.Batch, "batch", 64, "frames per Receive (1-4096)")
	frames := flag.Uint("frames", 4096, "UMEM frames")
	frameSize := flag.Uint("frame-size", 0, "UMEM frame size (umem.Options.FrameSize; 0 = the library's default, 4096)")
	unaligned := flag.Bool("unaligned", false, "UMEM in unaligned chunk mode (umem.Options.Unaligned), so -frame-size need not be a power of two")
	flag.BoolVar(&c.Huge, "huge", false, "UMEM on 2 MiB hugepages (umem.Options.HugePages, no fallback)")
	flag.BoolVar(&c.NoWakeup, "nowakeup", false, "disable need_wakeup (afxdp.Config.DisableNeedWakeup)")
	flag.BoolVar(&c.BusyPoll, "busypoll", false, "SO_PREFER_BUSY_POLL + SO_BUSY_POLL + budget, and recvfrom(MSG_DONTWAIT) when the RX ring is empty")
	flag.IntVar(&c.BusyUS, "busy-us", 20, "SO_BUSY_POLL microseconds with -busypoll")
	flag.BoolVar(&c.Poll, "poll", false, "wait in Socket.Wait when idle instead of spinning")
	flag.IntVar(&c.TXBudget, "txbudget", 0, "afxdp.Config.TXBudget (XDP_MAX_TX_SKB_BUDGET); 0 = kernel default (32)")
	flag.IntVar(&c.FlowCap, "flows", 4096, "count: flow table capacity")
	flag.BoolVar(&c.NoStage, "no-stage", false, "-loop pipeline, drop: no stage, Final Drop (examples/xdp-drop's pipeline: Socket.Discard, the frames unread)")
	flag.BoolVar(&c.FrameStage, "frame-stage", false, "-loop pipeline, drop and reflect: the stage is a pipeline.FramesFunc (one call per batch) instead of a RawFunc (one per frame)")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the measurement window to this file")
	lockThread := flag.Bool("lock-thread", false, "runtime.LockOSThread the loop (then -wait defaults to poll: Socket.Wait's runtime poller costs thread handoffs)")
	waitHow := flag.String("wait", "", "with -poll: runtime (Socket.Wait, the runtime poller) | poll (Socket.WaitPoll, poll(2) on the thread); default poll with -lock-thread or -loop pipeline (as Runner.Run), runtime otherwise")
	bound := flag.Duration("T", 60*time.Second, "hard bound on the run time")
	flag.DurationVar(&c.Coalesce, "coalesce", 0, "with -poll: afxdp.Config.Coalesce, the sleep before a wait that follows a burst")
	var fpf fpFlags
	flag.StringVar(&fpf.mode, "fastpath", "", "police | flowdrop | reflect: a fastpath.FastPath in the redirect program decides the generator's frames in XDP; lb (with -mode lb): the balancer offloads each flow to it")
	flag.StringVar(&fpf.src, "fp-src", "10.235.0.2", "-fastpath flowdrop/reflect: the generator flows' source address")
	flag.StringVar(&fpf.dst, "fp-dst", "10.235.0.1", "-fastpath flowdrop/reflect: their destination address")
	flag.UintVar(&fpf.sport, "fp-sport", 9, "-fastpath flowdrop/reflect: the first flow's UDP source port")
	flag.UintVar(&fpf.sports, "fp-sports", 1, "-fastpath flowdrop/reflect: flows with consecutive source ports from -fp-sport")
	flag.UintVar(&fpf.dport, "fp-dport", 9, "-fastpath flowdrop/reflect: the flows' UDP destination port")
	flag.UintVar(&fpf.probe, "fp-probe", 0, "-fastpath flowdrop/reflect: also install the latency probe's flow (this port both ways); 0 = none")
	flag.Float64Var(&fpf.rate, "fp-rate", 1, "-fastpath police: packets per second per source")
	flag.IntVar(&fpf.burst, "fp-burst", 1, "-fastpath police: bucket size in packets")
	var lbf lbFlags
	flag.StringVar(&lbf.vip, "lb-vip", "10.235.0.1:9", "-mode lb: the VIP, ADDR:PORT (the generator's destination)")
	flag.StringVar(&lbf.mac, "lb-backend-mac", "02:bb:00:00:00:01", "-mode lb: every backend's MAC address (the generator's, so that balanced frames go back to it)")
	flag.StringVar(&lbf.firstIP, "lb-backend-ip", "10.235.0.10", "-mode lb: the first backend's address; the others follow it")
	flag.IntVar(&lbf.backends, "lb-backends", 4, "-mode lb: number of backends")
	var txf txFlags
	flag.StringVar(&txf.Src, "tx-src", "10.235.0.1:9", "-mode tx: the frames' source ADDR:PORT")
	flag.StringVar(&txf.Dst, "tx-dst", "10.235.0.2:9", "-mode tx: their destination ADDR:PORT")
	flag.StringVar(&txf.DstMAC, "tx-dst-mac", "02:bb:00:00:00:01", "-mode tx: their destination MAC")
	flag.IntVar(&txf.Size, "size", 64, "-mode tx: frame bytes without FCS")
	flag.BoolVar(&txf.Stamp, "tx-stamp", true, "-mode tx: stamp every frame (sequence number, time), as examples/xdp-gen always does")
	flag.Parse()
	c.Frames = uint32(*frames)
	if c.Mode == "count" || c.Mode == "l2fwd" || c.Mode == "lb" {
		c.Loop = "pipeline"
	}
	if c.Mode == "l2fwd" && c.Frames < 8192 {
		c.Frames = 8192 // the second socket's fill ring takes 2048 frames it never uses
	}
	switch c.Mode {
	case "drop", "reflect", "count", "l2fwd", "lb", "tx":
	default:
		fmt.Fprintln(os.Stderr, "xdpkit-dut: -mode must be drop, reflect, count, l2fwd, lb or tx")
		return 2
	}
	if c.Mode == "tx" && (fpf.mode != "" || c.Loop != "hand") {
		fmt.Fprintln(os.Stderr, "xdpkit-dut: -mode tx takes neither -fastpath nor -loop pipeline")
		return 2
	}
	if (c.Mode == "lb") != (fpf.mode == "lb") && fpf.mode != "" {
		fmt.Fprintln(os.Stderr, "xdpkit-dut: -mode lb takes only -fastpath lb, and -fastpath lb only -mode lb")
		return 2
	}
	var vip netip.AddrPort
	var backends []lbBackend
	if c.Mode == "lb" {
		var err error
		if vip, backends, err = lbf.parse(); err != nil {
			fmt.Fprintln(os.Stderr, "xdpkit-dut:", err)
			return 2
		}
	}
	// The harness pins the whole process to one CPU (taskset). Locking the
	// loop to its OS thread is not needed for that, and it makes every
	// blocking Socket.Wait hand the P to another thread and back (-lock-thread
	// measures that).
	if *lockThread {
		runtime.LockOSThread()
	}
	switch *waitHow {
	case "":
		c.WaitPoll = *lockThread || c.Loop == "pipeline" // as pipeline.Runner.Run waits
	case "poll":
		c.WaitPoll = true
	case "runtime":
	default:
		fmt.Fprintln(os.Stderr, "xdpkit-dut: -wait must be runtime or poll")
		return 2
	}

	var fp *fastpath.FastPath
	var fpFlows []fastpath.Flow
	var fpEntry fastpath.Entry
	if fpf.mode != "" {
		var err error
		if fp, fpFlows, fpEntry, c.FastPath, err = newFastPath(fpf); err != nil {
			fmt.Fprintln(os.Stderr, "xdpkit-dut:", err)
			return 1
		}
		defer fp.Close() // after the socket (and its program) is closed
	}

	cfg := &afxdp.Config{
		UMEMOptions:       &umem.Options{FrameCount: c.Frames, FrameSize: uint32(*frameSize), Unaligned: *unaligned, HugePages: c.Huge},
		DisableNeedWakeup: c.NoWakeup,
		TXBudget:          c.TXBudget,
		Coalesce:          c.Coalesce,
		BindRetryTimeout:  5 * time.Second,
		Redirect:          &redirect.Options{Mode: redirect.ModeDriver, FastPath: fp},
	}
	if c.BusyPoll {
		cfg.BusyPoll = afxdp.BusyPoll{Prefer: true, Timeout: time.Duration(c.BusyUS) * time.Microsecond, Budget: c.Batch}
	}
	var txb *gen.Builder
	if c.Mode == "tx" {
		cfg.Redirect, cfg.Steering = nil, afxdp.NoSteering // nothing to receive, as examples/xdp-gen
		ifc, err := net.InterfaceByName(c.Interface)
		if err == nil {
			txb, err = txf.builder(ifc.HardwareAddr)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "xdpkit-dut:", err)
			return 2
		}
		c.TX = &txf
	}
	sock, err := afxdp.Open(c.Interface, c.Queue, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "xdpkit-dut:", err)
		return 1
	}
	defer sock.Close()
	c.HugeGot = sock.UMEM().HugePages()
	c.FrameSize = sock.UMEM().FrameSize()
	c.ZeroCopy = sock.ZeroCopy()
	c.ProgramMode = sock.Program().Mode().String()
	if c.Mode == "count" {
		c.FlowImpl = flowStageImpl
	}
	for _, f := range fpFlows {
		if err := fp.Install(f, fpEntry); err != nil {
			fmt.Fprintln(os.Stderr, "xdpkit-dut:", err)
			return 1
		}
	}

	var lb balancer
	if c.Mode == "lb" {
		ifc, err := net.InterfaceByName(c.Interface)
		if err != nil {
			fmt.Fprintln(os.Stderr, "xdpkit-dut:", err)
			return 1
		}
		if lb, err = newLBStage(vip, backends, ifc.HardwareAddr, fp); err != nil {
			fmt.Fprintln(os.Stderr, "xdpkit-dut: lb:", err)
			return 1
		}
		c.LB = &lbInfo{Impl: lbStageImpl, VIP: vip.String(), SrcMAC: ifc.HardwareAddr.String(), FastPath: fp != nil}
		for _, b := range backends {
			c.LB.Backends = append(c.LB.Backends, b.IP.String()+","+b.MAC.String())
		}
	}

	var out *afxdp.Socket
	var outSrc, outDst net.HardwareAddr
	if c.Mode == "l2fwd" {
		ifc, err := net.InterfaceByName(c.Out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "xdpkit-dut:", err)
			return 1
		}
		outSrc = ifc.HardwareAddr
		if outDst, err = net.ParseMAC(*outDMAC); err != nil {
			fmt.Fprintln(os.Stderr, "xdpkit-dut:", err)
			return 1
		}
		out, err = afxdp.Open(c.Out, 0, &afxdp.Config{
			UMEM:              sock.UMEM(),
			DisableNeedWakeup: c.NoWakeup,
			TXBudget:          c.TXBudget,
			BindRetryTimeout:  5 * time.Second,
			Steering:          afxdp.NoSteering,
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "xdpkit-dut: out:", err)
			return 1
		}
		defer out.Close()
	}

	c.LockThread = *lockThread
	w := dutwin.New("xdpkit", c.Mode, *profile, *bound)
	w.SetConfig(c)
	d := &dut{c: c, sock: sock, out: out, w: w, fp: fp, lb: lb}
	switch {
	case c.Loop == "hand" && c.Mode == "drop":
		d.loop = d.handDrop
	case c.Loop == "hand" && c.Mode == "reflect":
		d.loop = d.handReflect
	case c.Mode == "tx": // d.runTX below, not d.run's loop
	case c.Loop == "pipeline":
		if err := d.newRunner(outSrc, outDst); err != nil {
			fmt.Fprintln(os.Stderr, "xdpkit-dut:", err)
			return 1
		}
		d.loop = d.pipelinePoll
	default:
		fmt.Fprintln(os.Stderr, "xdpkit-dut: -loop must be hand or pipeline")
		return 2
	}
	dutwin.Ready("impl=xdpkit if=%s q=%d mode=%s loop=%s batch=%d zerocopy=%v xdp=%s hugepages=%v need_wakeup=%v busy_poll=%v poll=%v txbudget=%d fastpath=%s flows=%d backends=%d",
		c.Interface, c.Queue, c.Mode, c.Loop, c.Batch, c.ZeroCopy, c.ProgramMode, c.HugeGot, !c.NoWakeup, c.BusyPoll, c.Poll, c.TXBudget, fpf.mode, len(fpFlows), len(backends))
	if c.Mode == "tx" {
		err = d.runTX(txb)
	} else {
		err = d.run()
	}
	if fp != nil || lb != nil {
		d.report()
	}
	w.Report()
	if err != nil {
		fmt.Fprintln(os.Stderr, "xdpkit-dut:", err)
		return 1
	}
	return 0
}

type dut struct {
	c    config
	sock *afxdp.Socket
	out  *afxdp.Socket
	w    *dutwin.Window
	loop func() (int, error) // one batch; 0 when there was nothing to do

	runner  *pipeline.Runner
	rx, tx  uint64
	dropped uint64
	sink    byte
	descs   []unix.XDPDesc
	frames  [][]byte

	fp    *fastpath.FastPath
	fpWin [2]fastpath.Counters // at the window's edges
	fpN   int
	fpErr error

	lb    balancer // -mode lb
	polls int      // busy polls since the balancer's last Tick
}

func (d *dut) run() error {
	d.descs = make([]unix.XDPDesc, d.c.Batch)
	d.frames = make([][]byte, d.c.Batch)
	if d.lb != nil {
		d.lb.Tick(time.Now())
	}
	for !d.w.Stopped() {
		n, err := d.loop()
		if err != nil {
			if errors.Is(err, afxdp.ErrTXStalled) {
				continue
			}
			return err
		}
		if n == 0 {
			switch {
			case d.c.Poll:
				var err error
				if d.c.WaitPoll {
					err = d.sock.WaitPoll(100 * time.Millisecond)
				} else {
					err = d.sock.Wait(100 * time.Millisecond)
				}
				if err != nil && !errors.Is(err, afxdp.ErrTimeout) {
					return err
				}
			case d.c.BusyPoll:
				// An empty Receive on a busy-polling socket ran the NAPI
				// poll (one recvfrom, counted in the socket's RXWakeups):
				// spin.
			}
		}
		if d.w.Pending() {
			d.w.Edge(d.collect)
		}
	}
	return nil
}

// collect must not allocate: it runs inside the measurement window.
func (d *dut) collect() dutwin.Snap {
	st, _ := d.sock.Stats()
	s := dutwin.Snap{RX: d.rx, TX: d.tx, Dropped: d.dropped, Kicks: st.Kicks, RXWakeups: st.RXWakeups, Waits: st.Waits}
	if d.out != nil {
		ost, _ := d.out.Stats()
		s.Kicks += ost.Kicks
		s.RXWakeups += ost.RXWakeups
		s.Waits += ost.Waits
	}
	if d.runner != nil {
		s.TX = d.sockTX()
	}
	s.Syscalls = s.Kicks + s.RXWakeups + s.Waits
	if d.fp != nil {
		// The frames are the fast path's: every frame the XDP program saw
		// (the socket's are among them), and what it transmitted. Reading
		// the counters allocates; dutwin leaves that out of the window.
		fc, err := d.fp.Counters()
		if err != nil {
			d.fpErr = err
		}
		s.RX, s.TX = fpFrames(fc), fc.FlowTransmitted+s.TX
		if d.fpN < len(d.fpWin) {
			d.fpWin[d.fpN] = fc
			d.fpN++
		}
	}
	return s
}

// pipelineReport is the Runner's view of -mode lb at exit: Offloaded is
// the flows the balancer installed in the fast path.
type pipelineReport struct {
	RX            uint64 `json:"rx"`
	TX            uint64 `json:"tx"`
	Dropped       uint64 `json:"dropped"`
	Offloaded     uint64 `json:"offloaded"`
	OffloadErrors uint64 `json:"offload_errors"`
}

// report puts the fast path's counters at the window's edges and at exit,
// and -mode lb's balancer and pipeline counters, into the DUTSTATS line.
func (d *dut) report() {
	type report struct {
		A        *fastpath.Counters `json:"a,omitempty"`
		B        *fastpath.Counters `json:"b,omitempty"`
		Final    *fastpath.Counters `json:"final,omitempty"`
		Err      string             `json:"error,omitempty"`
		Pipeline *pipelineReport    `json:"pipeline,omitempty"`
		LB       any                `json:"lb,omitempty"`
	}
	var r report
	if d.fp != nil {
		if d.fpN > 0 {
			r.A = &d.fpWin[0]
		}
		if d.fpN > 1 {
			r.B = &d.fpWin[1]
		}
		fc, err := d.fp.Counters()
		if err != nil && d.fpErr == nil {
			d.fpErr = err
		}
		r.Final = &fc
		if d.fpErr != nil {
			r.Err = d.fpErr.Error()
		}
	}
	if d.lb != nil {
		st := d.runner.Stats()
		r.Pipeline = &pipelineReport{RX: st.RXPackets, TX: st.TXPackets, Dropped: st.Dropped, Offloaded: st.Offloaded, OffloadErrors: st.OffloadErrors}
		r.LB = d.lb.Report()
	}
	d.w.SetExtra(r)
}

func (d *dut) sockTX() uint64 {
	st, _ := d.sock.Stats()
	n := st.TXPackets
	if d.out != nil {
		ost, _ := d.out.Stats()
		n += ost.TXPackets
	}
	return n
}

func (d *dut) handDrop() (int, error) {
	n, err := d.sock.Receive(d.descs)
	if n == 0 {
		return 0, err
	}
	// The batch's frames first, then one touch loop whose loads do not
	// wait for one another: the cache misses of frames the kernel wrote
	// on another CPU overlap (a Frame call per touch serialized them).
	frames := d.frames[:n]
	d.sock.Frames(d.descs[:n], frames)
	var sink byte
	for _, f := range frames {
		sink ^= f[12] // touch the packet, like the C anchor
	}
	d.sink ^= sink
	d.rx += uint64(n)
	return n, d.sock.Recycle(d.descs[:n]) // straight back to the fill ring, as the C anchor does
}

func swapMACs(f []byte) {
	a0, a1 := binary.LittleEndian.Uint32(f[0:]), binary.LittleEndian.Uint16(f[4:])
	b0, b1 := binary.LittleEndian.Uint32(f[6:]), binary.LittleEndian.Uint16(f[10:])
	binary.LittleEndian.PutUint32(f[0:], b0)
	binary.LittleEndian.PutUint16(f[4:], b1)
	binary.LittleEndian.PutUint32(f[6:], a0)
	binary.LittleEndian.PutUint16(f[10:], a1)
}

func (d *dut) handReflect() (int, error) {
	n, err := d.sock.Receive(d.descs)
	if n == 0 {
		d.sock.Complete()
		return 0, err
	}
	frames := d.frames[:n]
	d.sock.Frames(d.descs[:n], frames)
	for _, f := range frames {
		swapMACs(f)
	}
	d.rx += uint64(n)
	sent, err := d.sock.Transmit(d.descs[:n])
	d.tx += uint64(sent)
	if sent < n {
		d.dropped += uint64(n - sent)
		_ = d.sock.Release(d.descs[sent:n])
	}
	return n, err
}

func (d *dut) newRunner(outSrc, outDst net.HardwareAddr) error {
	cfg := pipeline.Config{Socket: d.sock, BatchSize: d.c.Batch}
	switch d.c.Mode {
	case "drop":
		// Raw stages (they read only Data): the Runner does not parse.
		cfg.Stages = []pipeline.Stage{pipeline.RawFunc(func(p *pipeline.Packet) pipeline.Verdict {
			d.sink ^= p.Data[12]
			return pipeline.Drop
		})}
		if d.c.NoStage {
			cfg.Stages, cfg.Final = nil, pipeline.Drop
		}
		if d.c.FrameStage {
			cfg.Stages = []pipeline.Stage{pipeline.FramesFunc(func(b *pipeline.FrameBatch) {
				var sink byte
				for i, f := range b.Frames {
					sink ^= f[12]
					b.Verdicts[i] = pipeline.Drop
				}
				d.sink ^= sink
			})}
		}
	case "reflect":
		cfg.Stages = []pipeline.Stage{pipeline.RawFunc(func(p *pipeline.Packet) pipeline.Verdict {
			swapMACs(p.Data)
			return pipeline.Transmit
		})}
		if d.c.FrameStage {
			cfg.Stages = []pipeline.Stage{pipeline.FramesFunc(func(b *pipeline.FrameBatch) {
				for i, f := range b.Frames {
					swapMACs(f)
					b.Verdicts[i] = pipeline.Transmit
				}
			})}
		}
	case "count":
		fc, err := newFlowStage(d.c.FlowCap)
		if err != nil {
			return err
		}
		cfg.Stages = []pipeline.Stage{fc}
		cfg.Final = pipeline.Drop
	case "lb":
		cfg.Stages = []pipeline.Stage{d.lb}
		cfg.Final = pipeline.Drop
		cfg.FastPath = d.fp // nil without -fastpath lb
	case "l2fwd":
		var src, dst [6]byte
		copy(src[:], outSrc)
		copy(dst[:], outDst)
		cfg.Targets = []*afxdp.Socket{d.out}
		cfg.Stages = []pipeline.Stage{pipeline.RawFunc(func(p *pipeline.Packet) pipeline.Verdict {
			if len(p.Data) < 14 {
				return pipeline.Malformed
			}
			copy(p.Data[0:6], dst[:])
			copy(p.Data[6:12], src[:])
			p.Out = 0
			return pipeline.Forward
		})}
	}
	r, err := pipeline.New(cfg)
	if err != nil {
		return err
	}
	d.runner = r
	return nil
}

func (d *dut) pipelinePoll() (int, error) {
	n, err := d.runner.Poll()
	d.rx += uint64(n)
	if d.lb != nil {
		// The balancer's clock, as Runner.Run gives it.
		if d.polls++; n == 0 || d.polls >= lbTicks {
			d.polls = 0
			d.lb.Tick(time.Now())
		}
	}
	return n, err
}
