//go:build linux

package metrics_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/fastpath"
	"github.com/xdpkit/xdpkit/internal/testframes"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/metrics"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/stages"
)

// running starts a Runner of MACSwap over a memory socket, delivers n
// frames and a runt, and waits until its snapshot has them all.
func running(t *testing.T, n int) (*pipeline.Runner, *afxdp.Socket) {
	t.Helper()
	sock, kernel, err := afxdp.NewMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := pipeline.New(pipeline.Config{Socket: sock, Stages: []pipeline.Stage{stages.NewMACSwap()}, TickInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _, _ = r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; sock.Close() })
	frames := make([][]byte, n)
	for i := range frames {
		frames[i] = testframes.UDP4
	}
	kernel.Deliver(append(frames, testframes.UDP4[:10])...)
	for deadline := time.Now().Add(5 * time.Second); r.Snapshot().RXPackets < uint64(n+1); {
		if time.Now().After(deadline) {
			t.Fatalf("the runner received %d frames of %d", r.Snapshot().RXPackets, n+1)
		}
		time.Sleep(5 * time.Millisecond)
	}
	kernel.Transmitted(nil)
	return r, sock
}

// value finds the series name{labels} in what reg gathers.
func value(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue series
				}
			}
			if mf.GetType() != dto.MetricType_COUNTER {
				t.Errorf("%s is a %v, want a counter", name, mf.GetType())
			}
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

func TestRunnerMetrics(t *testing.T) {
	t.Parallel()
	r, sock := running(t, 7)
	c := metrics.New()
	c.AddRunner("memory", 0, r, sock)
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	q := map[string]string{"interface": "memory", "queue": "0"}
	st := r.Snapshot()
	for name, want := range map[string]uint64{
		"xdpkit_rx_packets_total":        8,
		"xdpkit_rx_bytes_total":          st.RXBytes,
		"xdpkit_tx_packets_total":        7,
		"xdpkit_dropped_packets_total":   1,
		"xdpkit_malformed_packets_total": 1,
	} {
		if got, ok := value(t, reg, name, q); !ok || got != float64(want) {
			t.Errorf("%s = %v (found %v), want %d", name, got, ok, want)
		}
	}
	stage := map[string]string{"interface": "memory", "queue": "0", "stage": "macswap"}
	if got, _ := value(t, reg, "xdpkit_stage_packets_total", stage); got != 8 {
		t.Errorf("stage packets %v, want 8", got)
	}
	for verdict, want := range map[string]float64{"transmit": 7, "malformed": 1, "drop": 0, "forward": 0} {
		l := map[string]string{"stage": "macswap", "verdict": verdict}
		if got, ok := value(t, reg, "xdpkit_stage_verdicts_total", l); !ok || got != want {
			t.Errorf("stage verdict %s = %v (found %v), want %v", verdict, got, ok, want)
		}
	}
	ks, err := sock.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := value(t, reg, "xdpkit_socket_tx_completed_total", q); !ok || got != float64(ks.TXCompleted) {
		t.Errorf("socket tx completed %v (found %v), want %d", got, ok, ks.TXCompleted)
	}
	if _, ok := value(t, reg, "xdpkit_kernel_rx_ring_full_total", q); !ok {
		t.Error("no xdpkit_kernel_rx_ring_full_total")
	}
	// What Prometheus's own linter says (promtool check metrics runs the same).
	problems, err := testutil.CollectAndLint(c)
	if err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", err, problems)
	}
}

// The handler serves the exposition format, the Go runtime's metrics
// with it, and nothing is lost when the socket closes under it.
func TestHandler(t *testing.T) {
	t.Parallel()
	r, sock := running(t, 3)
	c := metrics.New()
	c.AddRunner("memory", 0, r, sock)
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	get := func() string {
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET /metrics: %s: %s", resp.Status, b)
		}
		return string(b)
	}
	body := get()
	for _, want := range []string{`xdpkit_rx_packets_total{interface="memory",queue="0"} 4`, "# TYPE xdpkit_rx_packets_total counter", "go_goroutines"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	sock.Close()
	if body = get(); !strings.Contains(body, "xdpkit_rx_packets_total") || strings.Contains(body, "xdpkit_socket_waits_total") {
		t.Errorf("after Close: want the runner's counters and no socket's:\n%s", body)
	}
}

// A fast path's counters are exported by outcome, and a redirect program
// attached without counters exports none.
func TestFastPathMetrics(t *testing.T) {
	testutils.RequirePrivileged(t)
	fp, err := fastpath.New(&fastpath.Config{Default: fastpath.Pass})
	if err != nil {
		t.Fatal(err)
	}
	defer fp.Close()
	c := metrics.New()
	c.AddFastPath("eth9", fp)
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	for _, outcome := range []string{"blocked", "allowed", "rate_dropped", "rate_passed", "flow_dropped", "flow_transmitted", "default", "unparsed"} {
		if got, ok := value(t, reg, "xdpkit_fastpath_packets_total", map[string]string{"interface": "eth9", "outcome": outcome}); !ok || got != 0 {
			t.Errorf("outcome %s = %v (found %v), want 0", outcome, got, ok)
		}
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", err, problems)
	}
}

// A socket without a runner (a generator's): its own frame counts in the
// runner's names, and the socket series.
func TestSocketMetrics(t *testing.T) {
	sock, kernel, err := afxdp.NewMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	var descs []afxdp.Desc
	for range 5 {
		a, ok := sock.Pool().Alloc()
		if !ok {
			t.Fatal("no free frame")
		}
		descs = append(descs, afxdp.Desc{Addr: a, Len: 60})
	}
	if n, err := sock.Transmit(descs); n != 5 || err != nil {
		t.Fatalf("Transmit: %d, %v", n, err)
	}
	kernel.Transmitted(nil)
	c := metrics.New()
	c.AddSocket("memory", sock)
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	for name, want := range map[string]float64{"xdpkit_tx_packets_total": 5, "xdpkit_tx_bytes_total": 300, "xdpkit_rx_packets_total": 0} {
		if v, ok := value(t, reg, name, map[string]string{"interface": "memory", "queue": "0"}); !ok || v != want {
			t.Errorf("%s = %v (%v), want %v", name, v, ok, want)
		}
	}
	if _, ok := value(t, reg, "xdpkit_socket_kicks_total", map[string]string{"interface": "memory"}); !ok {
		t.Error("no socket series")
	}
	if n := len(c.Sockets()); n != 1 {
		t.Errorf("Sockets() lists %d, want 1", n)
	}
}
