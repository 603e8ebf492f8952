//go:build linux

package examples_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xdpkit/xdpkit/internal/netlink"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/metrics"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binary builds all examples once per test run and returns the path of one.
func binary(t *testing.T, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "xdpkit-examples-")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", binDir+"/", "./...").CombinedOutput()
		if err != nil {
			buildErr = err
			binDir = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("go build ./examples/...: %v\n%s", buildErr, binDir)
	}
	return filepath.Join(binDir, name)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" && buildErr == nil {
		os.RemoveAll(binDir)
	}
	// The tools announce themselves in metrics.RunDir; the entries of
	// those a test killed are stale: Peers removes them.
	_, _, _ = metrics.Peers(metrics.RunDir)
	os.Exit(code)
}

// proc is a running example.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr *lockedBuffer
	done   chan error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start runs an example against v's host side and waits until its program
// is attached.
func start(t *testing.T, v *testutils.Veth, name string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, stderr: &lockedBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(binary(t, name), append([]string{"-i", v.Host, "-json"}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("%s exited early: %v\n%s", name, err, p.stderr)
		default:
		}
		if l, err := netlink.LinkByIndex(v.HostIndex); err == nil && l.XDP.IsAttached() {
			time.Sleep(100 * time.Millisecond) // the socket is registered right after attach
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not attach within 15s\n%s", name, p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGINT, waits for a clean exit and decodes the JSON summary.
func (p *proc) stop() map[string]any {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-p.done:
		if err != nil {
			p.t.Fatalf("exit after SIGINT: %v\nstderr:\n%s", err, p.stderr)
		}
	case <-time.After(10 * time.Second):
		p.t.Fatalf("no exit 10s after SIGINT\nstderr:\n%s", p.stderr)
	}
	var out map[string]any
	if err := json.Unmarshal(p.stdout.Bytes(), &out); err != nil {
		p.t.Fatalf("summary is not JSON: %v\n%s", err, p.stdout.String())
	}
	for _, k := range []string{"rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "dropped", "duration_s"} {
		if _, ok := out[k]; !ok {
			p.t.Errorf("summary lacks %q: %s", k, p.stdout.String())
		}
	}
	return out
}

func num(m map[string]any, k string) float64 {
	f, _ := m[k].(float64)
	return f
}

func noProgramLeft(t *testing.T, v *testutils.Veth) {
	t.Helper()
	if l, err := netlink.LinkByIndex(v.HostIndex); err != nil || l.XDP.IsAttached() {
		t.Errorf("after exit: XDP %+v, err %v", l.XDP, err)
	}
}

// waitRedirected waits until v's XDP program has redirected at least n
// frames to AF_XDP sockets, over all queues (veth's own counters), or 5s
// have passed. The tools give what is on their RX rings its verdict when
// they stop, so a summary taken after it counts every frame redirected.
func waitRedirected(t *testing.T, v *testutils.Veth, n uint64) {
	t.Helper()
	redirected := func() (sum uint64) {
		for name, c := range testutils.EthtoolStats(t, v.Host) {
			if strings.HasPrefix(name, "rx_queue_") && strings.HasSuffix(name, "_xdp_redirect") {
				sum += c
			}
		}
		return sum
	}
	deadline := time.Now().Add(5 * time.Second)
	for got := redirected(); got < n; got = redirected() {
		if time.Now().After(deadline) {
			t.Errorf("veth redirected %d frames in 5s, want %d (veth counters: %v)", got, n, testutils.EthtoolStats(t, v.Host))
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // the redirect flush at the end of the NAPI poll
}

func sendFrames(t *testing.T, peer *testutils.PacketSocket, frames [][]byte) {
	t.Helper()
	for i, f := range frames {
		if err := peer.Send(f); err != nil {
			t.Fatal(err)
		}
		if i%64 == 63 {
			time.Sleep(time.Millisecond) // do not overrun veth's 256-frame queue
		}
	}
}

func udp(v *testutils.Veth, sport, dport uint16, payload string) []byte {
	return testutils.UDPFrame(v.HostMAC, v.PeerMAC, v.PeerIP.As4(), v.HostIP.As4(), sport, dport, []byte(payload))
}

// TestBadFlags: a bad or inapplicable flag ends the tool with one clear
// line and exit code 2 (1 for what only run can tell), before it attaches
// anything. No flag is silently ignored.
func TestBadFlags(t *testing.T) {
	testutils.RequirePrivileged(t)
	for _, tc := range []struct {
		tool     string
		args     []string
		exitCode int
		want     string
	}{
		{"xdp-drop", []string{}, 2, "-i IFACE is required"},
		{"xdp-drop", []string{"-i", "lo", "-bogus"}, 2, "bogus"},
		{"xdp-drop", []string{"-i", "lo", "-xdp-mode", "fast"}, 2, `invalid XDP mode "fast"`},
		{"xdp-drop", []string{"-i", "lo", "-cpus", "0"}, 2, "-cpus needs -queues"},
		{"xdp-drop", []string{"-i", "lo", "-coalesce", "2ms"}, 2, "-coalesce 2ms: want 0 (off) up to 1ms"},
		{"xdp-gen", []string{"-i", "lo", "-coalesce", "20us"}, 2, "-coalesce does not apply to xdp-gen"},
		{"xdp-drop", []string{"-i", "xknoexist0"}, 1, "xknoexist0"},
		{"xdp-fwd", []string{"-i", "lo", "-o", "lo", "-queues", "all"}, 2, "-queues does not apply to xdp-fwd"},
		{"xdp-fwd", []string{"-i", "lo", "-o", "lo", "-pin", "x"}, 2, "-pin does not apply to xdp-fwd"},
		{"xdp-dump", []string{"-i", "lo", "-w", "/nonexistent/x.pcap", "-shared-umem"}, 2, "-shared-umem does not apply to xdp-dump"},
		{"xdp-filter", []string{"-i", "lo", "-filter", "udp"}, 2, "say what to drop with -drop"},
		{"xdp-filter", []string{"-i", "lo", "-pin", "x", "-userspace"}, 2, "-pin does not apply to xdp-filter"},
		{"xdp-filter", []string{"-i", "lo", "-q", "1"}, 1, "-q, -bind and -coalesce need -userspace"},
		{"xdp-filter", []string{"-i", "lo", "-coalesce", "0"}, 1, "-q, -bind and -coalesce need -userspace"},
	} {
		cmd := exec.Command(binary(t, tc.tool), tc.args...)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != tc.exitCode {
			t.Errorf("%s %q: %v, want exit code %d; output:\n%s", tc.tool, tc.args, err, tc.exitCode, out)
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], tc.tool+": ") || !strings.Contains(lines[0], tc.want) {
			t.Errorf("%s %q: want one line with %q, got:\n%s", tc.tool, tc.args, tc.want, out)
		}
	}
}

func TestDrop(t *testing.T) {
	// xdp-drop coalesces by default (cli.SinkCoalesce): it sleeps before a
	// wait that follows a burst, and every frame still arrives.
	t.Run("default", func(t *testing.T) { testDrop(t, true) })
	t.Run("coalesce-off", func(t *testing.T) { testDrop(t, false, "-coalesce", "0") })
	t.Run("coalesce-1ms", func(t *testing.T) { testDrop(t, true, "-coalesce", "1ms") })
}

func testDrop(t *testing.T, coalesce bool, args ...string) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	p := start(t, v, "xdp-drop", args...)
	peer := v.OpenPeerPacketSocket(t)
	var frames [][]byte
	for i := range 1000 {
		frames = append(frames, udp(v, uint16(1000+i%10), 7000, "drop me"))
	}
	sendFrames(t, peer, frames)
	time.Sleep(1200 * time.Millisecond) // one live line at least
	out := p.stop()
	if num(out, "rx_packets") != 1000 || num(out, "dropped") != 1000 || num(out, "rx_bytes") != float64(1000*len(frames[0])) {
		t.Errorf("summary %v, want 1000 frames received and dropped", out)
	}
	if !strings.Contains(p.stderr.String(), "xdp-drop: rx ") {
		t.Errorf("no live rate line on stderr:\n%s", p.stderr)
	}
	// The frames came in one burst: coalescing, the wait after it slept
	// first.
	waits, _ := out["waits"].(map[string]any)
	if c, _ := waits["coalesced"].(float64); (c > 0) != coalesce {
		t.Errorf("waits %v with %q", out["waits"], args)
	}
	noProgramLeft(t, v)
}

// lines returns the non-empty lines of s.
func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}
