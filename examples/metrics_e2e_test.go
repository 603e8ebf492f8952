//go:build linux

package examples_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xdpkit/xdpkit/internal/testutils"
)

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func httpGet(t *testing.T, u string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMetricsPrometheus: a real Prometheus (Debian's) scrapes xdp-drop's
// -metrics endpoint, and a PromQL query through its HTTP API returns the
// frames the test sent; promtool check metrics finds nothing wrong with
// the endpoint; and the JSON summary's names and numbers agree with the
// metrics'.
func TestMetricsPrometheus(t *testing.T) {
	prometheus := testutils.NeedCommand(t, "prometheus", "apt-get install prometheus")
	promtool := testutils.NeedCommand(t, "promtool", "apt-get install prometheus")
	v := testutils.NewVeth(t, testutils.VethOptions{})
	toolAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := start(t, v, "xdp-drop", "-metrics", toolAddr)

	// Prometheus, scraping the tool every 500 ms, its data in a temporary
	// directory, on a port of its own.
	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 500ms\nscrape_configs:\n  - job_name: xdpkit\n    static_configs:\n      - targets: [%q]\n", toolAddr)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	promAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	var promOut bytes.Buffer
	prom := exec.Command(prometheus, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+promAddr)
	prom.Stdout, prom.Stderr = &promOut, &promOut
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	promDone := make(chan error, 1)
	go func() { promDone <- prom.Wait() }()
	t.Cleanup(func() {
		_ = prom.Process.Kill()
		select {
		case <-promDone:
		case <-time.After(10 * time.Second):
			t.Error("prometheus did not exit 10 s after SIGKILL")
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; {
		if code, _ := httpGet(t, "http://"+promAddr+"/-/ready"); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready in 30 s:\n%s", promOut.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	const n = 500
	peer := v.OpenPeerPacketSocket(t)
	var frames [][]byte
	for i := range n {
		frames = append(frames, udp(v, uint16(2000+i%7), 7000, "count me"))
	}
	sendFrames(t, peer, frames)
	waitRedirected(t, v, n)

	// The endpoint itself, checked by promtool.
	var body string
	for deadline := time.Now().Add(10 * time.Second); ; {
		var code int
		code, body = httpGet(t, "http://"+toolAddr+"/metrics")
		if code == 200 && strings.Contains(body, fmt.Sprintf("xdpkit_rx_packets_total{interface=%q,queue=\"0\"} %d", v.Host, n)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics never showed %d frames received (status %d):\n%s", n, code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = strings.NewReader(body)
	if out, err := check.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	// The same numbers through Prometheus: PromQL over its HTTP API.
	query := func(q string) (float64, bool) {
		code, resp := httpGet(t, "http://"+promAddr+"/api/v1/query?query="+url.QueryEscape(q))
		if code != 200 {
			return 0, false
		}
		var r struct {
			Status string
			Data   struct {
				Result []struct {
					Value [2]any
				}
			}
		}
		if json.Unmarshal([]byte(resp), &r) != nil || r.Status != "success" || len(r.Data.Result) != 1 {
			return 0, false
		}
		s, _ := r.Data.Result[0].Value[1].(string)
		f, err := strconv.ParseFloat(s, 64)
		return f, err == nil
	}
	for _, q := range []string{
		fmt.Sprintf(`xdpkit_rx_packets_total{job="xdpkit",interface=%q,queue="0"}`, v.Host),
		fmt.Sprintf(`xdpkit_dropped_packets_total{job="xdpkit",interface=%q}`, v.Host),
	} {
		var got float64
		var ok bool
		for deadline := time.Now().Add(20 * time.Second); ; {
			if got, ok = query(q); ok && got == n {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("PromQL %s = %v (answered %v), want %d\nprometheus:\n%s", q, got, ok, n, promOut.String())
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// The summary says the same, under the same names.
	out := p.stop()
	if num(out, "rx_packets") != n || num(out, "dropped") != n {
		t.Errorf("summary %v, want %d received and dropped", out, n)
	}
	noProgramLeft(t, v)
}

// TestMetricsAddressInUse: -metrics on an address that is taken is a
// clear error (exit 1), and the tool leaves nothing attached.
func TestMetricsAddressInUse(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := exec.Command(binary(t, "xdp-drop"), "-i", v.Host, "-metrics", ln.Addr().String(), "-duration", "5s")
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(out), "-metrics "+ln.Addr().String()) || !strings.Contains(string(out), "address already in use") {
		t.Errorf("exit %d (%v): %s; want 1 and the address in use", code, err, out)
	}
	noProgramLeft(t, v)
}

// scrapeUntil GETs the tool's /metrics until it has every line of want,
// within 10 s, and returns the last body.
func scrapeUntil(t *testing.T, addr string, want ...string) string {
	t.Helper()
	var body string
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, body = httpGet(t, "http://"+addr+"/metrics")
		missing := ""
		for _, w := range want {
			if !strings.Contains(body, w+"\n") {
				missing = w
				break
			}
		}
		if missing == "" {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q after 10 s:\n%s", missing, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMetricsWorkersAndProgram: a worker set's series are per queue, with
// their stages' (xdp-count), and the redirect program's verdicts are
// exported when the program counts them (xdp-filter in the kernel); both
// agree with the tools' JSON summaries.
func TestMetricsWorkersAndProgram(t *testing.T) {
	t.Run("workers", func(t *testing.T) {
		v := testutils.NewVeth(t, testutils.VethOptions{})
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		p := start(t, v, "xdp-count", "-top", "3", "-metrics", addr)
		peer := v.OpenPeerPacketSocket(t)
		const n = 120
		var frames [][]byte
		for i := range n {
			frames = append(frames, udp(v, uint16(3000+i%4), 7000, "flows"))
		}
		sendFrames(t, peer, frames)
		waitRedirected(t, v, n)
		q := fmt.Sprintf(`interface=%q,queue="0"`, v.Host)
		scrapeUntil(t, addr,
			fmt.Sprintf("xdpkit_rx_packets_total{%s} %d", q, n),
			fmt.Sprintf(`xdpkit_stage_packets_total{%s,stage="flows"} %d`, q, n),
			fmt.Sprintf("xdpkit_dropped_packets_total{%s} %d", q, n),
			fmt.Sprintf("xdpkit_kernel_rx_ring_full_total{%s} 0", q))
		out := p.stop()
		perQueue, _ := out["per_queue"].(map[string]any)
		q0, _ := perQueue["0"].(map[string]any)
		if num(out, "rx_packets") != n || num(q0, "rx_packets") != n {
			t.Errorf("summary %v, want %d frames received on queue 0", out, n)
		}
	})
	t.Run("program", func(t *testing.T) {
		v := testutils.NewVeth(t, testutils.VethOptions{})
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		p := start(t, v, "xdp-filter", "-drop", "udp port 8080", "-keep-mgmt=false", "-metrics", addr)
		peer := v.OpenPeerPacketSocket(t)
		const n = 40
		var frames [][]byte
		for range n {
			frames = append(frames, udp(v, 1234, 8080, "drop"), udp(v, 1234, 8081, "pass"))
		}
		sendFrames(t, peer, frames)
		scrapeUntil(t, addr,
			fmt.Sprintf(`xdpkit_xdp_verdicts_total{interface=%q,verdict="drop"} %d`, v.Host, n))
		out := p.stop()
		if num(out, "dropped") != n {
			t.Errorf("summary %v, want %d dropped", out, n)
		}
	})
}
