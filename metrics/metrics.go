package metrics

import (
	"errors"
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/fastpath"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/redirect"
	"github.com/xdpkit/xdpkit/workers"
)

var queueLabels = []string{"interface", "queue"}

func counter(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("xdpkit_"+name, help, append(queueLabels[:2:2], labels...), nil)
}

// The pipeline's counters, by Stats field.
var runnerMetrics = []struct {
	desc *prometheus.Desc
	get  func(*pipeline.Stats) uint64
}{
	{counter("rx_packets_total", "Frames the pipeline received."), func(s *pipeline.Stats) uint64 { return s.RXPackets }},
	{counter("rx_bytes_total", "Bytes of the frames the pipeline received."), func(s *pipeline.Stats) uint64 { return s.RXBytes }},
	{counter("tx_packets_total", "Frames the pipeline transmitted or forwarded."), func(s *pipeline.Stats) uint64 { return s.TXPackets + s.Forwarded }},
	{counter("tx_bytes_total", "Bytes of the frames the pipeline transmitted or forwarded."), func(s *pipeline.Stats) uint64 { return s.TXBytes }},
	{counter("forwarded_packets_total", "Frames forwarded to another socket."), func(s *pipeline.Stats) uint64 { return s.Forwarded }},
	{counter("dropped_packets_total", "Frames dropped: by a verdict, the final verdict, as malformed, for a full TX ring or a failed transmit."), func(s *pipeline.Stats) uint64 { return s.Dropped }},
	{counter("malformed_packets_total", "Frames a stage called malformed."), func(s *pipeline.Stats) uint64 { return s.Malformed }},
	{counter("tx_ring_full_total", "Frames dropped because the TX ring was full."), func(s *pipeline.Stats) uint64 { return s.TXRingFull }},
	{counter("parse_errors_total", "Frames the header parser could not parse."), func(s *pipeline.Stats) uint64 { return s.ParseErrors }},
	{counter("tx_errors_total", "Transmits that failed (link down, stalled TX ring)."), func(s *pipeline.Stats) uint64 { return s.TXErrors }},
	{counter("bad_data_total", "Frames to send whose data a stage left empty or outside their frame, or whose checksum offload could not be requested."), func(s *pipeline.Stats) uint64 { return s.BadData }},
	{counter("offloaded_total", "Flows and sources stages offloaded to the kernel fast path."), func(s *pipeline.Stats) uint64 { return s.Offloaded }},
	{counter("offload_errors_total", "Offloads to the kernel fast path that failed."), func(s *pipeline.Stats) uint64 { return s.OffloadErrors }},
}

// The counters a socket without a runner exports in the runner's names.
var socketOwnMetrics = []struct {
	desc *prometheus.Desc
	get  func(*afxdp.Stats) uint64
}{
	{runnerMetrics[0].desc, func(s *afxdp.Stats) uint64 { return s.RXPackets }},
	{runnerMetrics[1].desc, func(s *afxdp.Stats) uint64 { return s.RXBytes }},
	{runnerMetrics[2].desc, func(s *afxdp.Stats) uint64 { return s.TXPackets }},
	{runnerMetrics[3].desc, func(s *afxdp.Stats) uint64 { return s.TXBytes }},
}

var (
	stagePackets  = counter("stage_packets_total", "Frames a pipeline stage saw.", "stage")
	stageVerdicts = counter("stage_verdicts_total", "Verdicts a pipeline stage gave, other than continue.", "stage", "verdict")
)

// The socket's counters, by Stats field.
var socketMetrics = []struct {
	desc *prometheus.Desc
	get  func(*afxdp.Stats) uint64
}{
	{counter("socket_kicks_total", "sendto calls the socket made to start transmission."), func(s *afxdp.Stats) uint64 { return s.Kicks }},
	{counter("socket_rx_wakeups_total", "recvfrom calls the socket made to wake the driver or to busy-poll it."), func(s *afxdp.Stats) uint64 { return s.RXWakeups }},
	{counter("socket_waits_total", "Waits that slept in poll(2) or the runtime poller."), func(s *afxdp.Stats) uint64 { return s.Waits }},
	{counter("socket_coalesced_total", "Waits that first slept the socket's Coalesce after a burst of frames."), func(s *afxdp.Stats) uint64 { return s.Coalesced }},
	{counter("socket_tx_completed_total", "Frames the kernel returned through the completion ring."), func(s *afxdp.Stats) uint64 { return s.TXCompleted }},
	{counter("socket_tx_stalls_total", "Times transmit reported a stalled TX ring."), func(s *afxdp.Stats) uint64 { return s.TXStalls }},
	{counter("socket_tx_refused_total", "Descriptors transmit refused as invalid."), func(s *afxdp.Stats) uint64 { return s.TXRefused }},
	{counter("kernel_rx_dropped_total", "Frames the kernel dropped for the socket for other reasons than the ones below (XDP_STATISTICS)."), func(s *afxdp.Stats) uint64 { return s.RXDropped }},
	{counter("kernel_rx_invalid_descs_total", "Invalid descriptors the kernel found on the fill ring (XDP_STATISTICS)."), func(s *afxdp.Stats) uint64 { return s.RXInvalidDescs }},
	{counter("kernel_tx_invalid_descs_total", "Invalid descriptors the kernel found on the TX ring (XDP_STATISTICS)."), func(s *afxdp.Stats) uint64 { return s.TXInvalidDescs }},
	{counter("kernel_rx_ring_full_total", "Frames the kernel dropped because the RX ring was full (XDP_STATISTICS)."), func(s *afxdp.Stats) uint64 { return s.RXRingFull }},
	{counter("kernel_rx_fill_ring_empty_total", "Times the fill ring was empty when a frame arrived (XDP_STATISTICS)."), func(s *afxdp.Stats) uint64 { return s.RXFillRingEmptyDescs }},
	{counter("kernel_tx_ring_empty_total", "Times the TX ring was empty when the kernel looked (XDP_STATISTICS)."), func(s *afxdp.Stats) uint64 { return s.TXRingEmptyDescs }},
}

var fastPathVerdicts = prometheus.NewDesc("xdpkit_fastpath_packets_total",
	"Frames the kernel fast path decided, by outcome: blocked, allowed, rate_dropped, rate_passed, flow_dropped, flow_passed, flow_redirected, flow_transmitted, flow_encapped, flow_errors, expired, default, unparsed (a frame is counted once in each stage it reaches).",
	[]string{"interface", "outcome"}, nil)

var xdpVerdicts = prometheus.NewDesc("xdpkit_xdp_verdicts_total", "Verdicts of the redirect XDP program: aborted, drop, pass, tx, redirect.", []string{"interface", "verdict"}, nil)

type runnerSource struct {
	iface string
	queue int
	r     *pipeline.Runner
	sock  *afxdp.Socket
}

type socketSource struct {
	iface string
	sock  *afxdp.Socket
}

type setSource struct {
	iface string
	set   *workers.Set
}

type programSource struct {
	iface string
	prog  *redirect.Program
}

type fastPathSource struct {
	iface string
	fp    *fastpath.FastPath
}

// Collector is a prometheus.Collector of the runners, worker sets and
// programs added to it.
type Collector struct {
	mu      sync.Mutex
	runners []runnerSource
	socks   []socketSource
	sets    []setSource
	progs   []programSource
	fps     []fastPathSource
}

var _ prometheus.Collector = (*Collector)(nil)

// New returns a Collector with nothing to export yet.
func New() *Collector { return &Collector{} }

// AddRunner exports r's counters as of its last snapshot, and those of
// sock (nil: none; usually the socket r receives on), labelled with the
// interface and queue given. The snapshot is what Runner.Run publishes
// every Config.TickInterval; a Runner driven by Poll from a loop of your
// own publishes none, and its series stay at zero (its socket's do not).
func (c *Collector) AddRunner(iface string, queue int, r *pipeline.Runner, sock *afxdp.Socket) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.runners = append(c.runners, runnerSource{iface, queue, r, sock})
}

// AddSocket exports the counters of a socket no Runner drives (a
// traffic generator's, say): its own frame and byte counts as
// xdpkit_rx_packets_total and the rest of the rx/tx series, and the
// socket and kernel counters AddRunner exports for a runner's socket.
// Do not add a socket both ways: the series would be duplicates.
func (c *Collector) AddSocket(iface string, sock *afxdp.Socket) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.socks = append(c.socks, socketSource{iface, sock})
}

// AddWorkers exports the counters of each worker of s, and of its
// socket, labelled with iface and the worker's queue.
func (c *Collector) AddWorkers(iface string, s *workers.Set) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sets = append(c.sets, setSource{iface, s})
}

// AddProgram exports the verdict counters of the redirect program p,
// attached to iface; a program attached without redirect.Options.Counters
// exports none.
func (c *Collector) AddProgram(iface string, p *redirect.Program) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.progs = append(c.progs, programSource{iface, p})
}

// AddFastPath exports the verdict counters of the kernel fast path fp,
// run by the redirect program on iface.
func (c *Collector) AddFastPath(iface string, fp *fastpath.FastPath) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fps = append(c.fps, fastPathSource{iface, fp})
}

// Describe sends the descriptions of every metric the Collector can
// export.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range runnerMetrics {
		ch <- m.desc
	}
	ch <- stagePackets
	ch <- stageVerdicts
	for _, m := range socketMetrics {
		ch <- m.desc
	}
	ch <- xdpVerdicts
	ch <- fastPathVerdicts
}

// Collect reads the counters of every source and sends them.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	runners, socks, sets, progs, fps := c.runners, c.socks, c.sets, c.progs, c.fps
	c.mu.Unlock()
	for _, src := range socks {
		st, err := src.sock.Stats()
		if err != nil {
			continue // closed: the program is ending
		}
		q := strconv.Itoa(src.sock.Queue())
		for _, m := range socketOwnMetrics {
			ch <- prometheus.MustNewConstMetric(m.desc, prometheus.CounterValue, float64(m.get(&st)), src.iface, q)
		}
		collectSocket(ch, src.iface, src.sock)
	}
	for _, src := range runners {
		st := src.r.Snapshot()
		collectRunner(ch, src.iface, src.queue, &st)
		if src.sock != nil {
			collectSocket(ch, src.iface, src.sock)
		}
	}
	for _, src := range sets {
		st := src.set.Snapshot()
		for q, qs := range st.PerQueue {
			collectRunner(ch, src.iface, q, &qs)
		}
		for _, sock := range src.set.Sockets() {
			collectSocket(ch, src.iface, sock)
		}
	}
	for _, src := range progs {
		pc, err := src.prog.Counters()
		if errors.Is(err, redirect.ErrNoCounters) {
			continue
		}
		if err != nil {
			ch <- prometheus.NewInvalidMetric(xdpVerdicts, err)
			continue
		}
		for _, v := range []struct {
			name string
			n    uint64
		}{{"aborted", pc.Aborted}, {"drop", pc.Dropped}, {"pass", pc.Passed}, {"tx", pc.TX}, {"redirect", pc.Redirected}} {
			ch <- prometheus.MustNewConstMetric(xdpVerdicts, prometheus.CounterValue, float64(v.n), src.iface, v.name)
		}
	}
	collectFastPaths(ch, fps)
}

// collectFastPaths is Collect's part for the fast paths.
func collectFastPaths(ch chan<- prometheus.Metric, fps []fastPathSource) {
	for _, src := range fps {
		fc, err := src.fp.Counters()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(fastPathVerdicts, err)
			continue
		}
		for _, v := range []struct {
			name string
			n    uint64
		}{
			{"blocked", fc.Blocked}, {"allowed", fc.Allowed}, {"rate_dropped", fc.RateDropped}, {"rate_passed", fc.RatePassed},
			{"flow_dropped", fc.FlowDropped}, {"flow_passed", fc.FlowPassed}, {"flow_redirected", fc.FlowRedirected},
			{"flow_transmitted", fc.FlowTransmitted}, {"flow_encapped", fc.FlowEncapped}, {"flow_errors", fc.FlowErrors},
			{"expired", fc.Expired}, {"default", fc.Default}, {"unparsed", fc.Unparsed},
		} {
			ch <- prometheus.MustNewConstMetric(fastPathVerdicts, prometheus.CounterValue, float64(v.n), src.iface, v.name)
		}
	}
}

func collectRunner(ch chan<- prometheus.Metric, iface string, queue int, st *pipeline.Stats) {
	q := strconv.Itoa(queue)
	for _, m := range runnerMetrics {
		ch <- prometheus.MustNewConstMetric(m.desc, prometheus.CounterValue, float64(m.get(st)), iface, q)
	}
	for _, ss := range st.Stages {
		ch <- prometheus.MustNewConstMetric(stagePackets, prometheus.CounterValue, float64(ss.Seen), iface, q, ss.Name)
		for _, v := range []struct {
			name string
			n    uint64
		}{{"drop", ss.Dropped}, {"transmit", ss.Transmitted}, {"forward", ss.Forwarded}, {"malformed", ss.Malformed}} {
			ch <- prometheus.MustNewConstMetric(stageVerdicts, prometheus.CounterValue, float64(v.n), iface, q, ss.Name, v.name)
		}
	}
}

func collectSocket(ch chan<- prometheus.Metric, iface string, sock *afxdp.Socket) {
	st, err := sock.Stats()
	if err != nil { // closed: the program is ending
		return
	}
	q := strconv.Itoa(sock.Queue())
	for _, m := range socketMetrics {
		ch <- prometheus.MustNewConstMetric(m.desc, prometheus.CounterValue, float64(m.get(&st)), iface, q)
	}
}

// Sockets describes the sockets of the runners and worker sets added to
// c, for announcements.
func (c *Collector) Sockets() []Socket {
	c.mu.Lock()
	runners, own, sets := c.runners, c.socks, c.sets
	c.mu.Unlock()
	var socks []*afxdp.Socket
	for _, src := range own {
		socks = append(socks, src.sock)
	}
	for _, src := range runners {
		if src.sock != nil {
			socks = append(socks, src.sock)
		}
	}
	for _, src := range sets {
		socks = append(socks, src.set.Sockets()...)
	}
	out := make([]Socket, 0, len(socks))
	for _, s := range socks {
		rs := s.RingSizes()
		u := s.UMEM()
		out = append(out, Socket{
			Interface: s.Interface(), Queue: s.Queue(), ZeroCopy: s.ZeroCopy(),
			RX: rs.RX, TX: rs.TX, Fill: rs.Fill, Completion: rs.Completion,
			Frames: u.FrameCount(), FrameSize: u.FrameSize(), HugePages: u.HugePages(),
			FreeFrames: s.Pool().FreeFrames(),
		})
	}
	return out
}

// Handler returns an HTTP handler serving c's metrics, and the Go
// runtime's and the process's (go_*, process_*), in Prometheus's
// exposition format: what to serve at /metrics.
func (c *Collector) Handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: nil})
}
