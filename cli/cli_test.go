package cli_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/cli"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/redirect"
)

// newTool returns a Tool that reports into buffers.
func newTool(defaultFilter string) (*cli.Tool, *syncBuffer, *syncBuffer) {
	tool := cli.New("xdp-test", "a test tool", defaultFilter)
	var stdout, stderr syncBuffer
	tool.Stdout, tool.Stderr = &stdout, &stderr
	return tool, &stdout, &stderr
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string // substring; "" means success
	}{
		{[]string{"-i", "eth0"}, ""},
		{[]string{"-i", "eth0", "-q", "3", "-xdp-mode", "skb", "-bind", "copy", "-duration", "2s", "-json"}, ""},
		{[]string{"-i", "eth0", "-queues", "0-3", "-cpus", "0,1,0,1", "-shared-umem", "-pin", "w"}, ""},
		{nil, "-i IFACE is required"},
		{[]string{"-i", "eth0", "extra"}, `unexpected argument "extra"`},
		{[]string{"-i", "eth0", "-cpus", "0"}, "-cpus needs -queues"},
		{[]string{"-i", "eth0", "-duration", "-1s"}, "-duration must not be negative"},
		{[]string{"-i", "eth0", "-xdp-mode", "fast"}, `invalid XDP mode "fast"`},
		{[]string{"-i", "eth0", "-bind", "fast"}, "-bind"},
		{[]string{"-i", "eth0", "-nosuchflag"}, "nosuchflag"},
	} {
		tool, _, stderr := newTool("")
		err := tool.Parse(tc.args)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("Parse(%q): %v", tc.args, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("Parse(%q) = %v, want an error with %q", tc.args, err, tc.wantErr)
		}
		if stderr.Len() != 0 {
			t.Errorf("Parse(%q) printed %q: errors are printed once, by Main", tc.args, stderr.String())
		}
	}
}

func TestParseValues(t *testing.T) {
	tool, _, _ := newTool("udp")
	rate := tool.Flags.Float64("rate", 1, "a tool's own flag")
	err := tool.Parse([]string{"-i", "veth0", "-q", "2", "-xdp-mode", "native", "-bind", "zerocopy",
		"-keep-mgmt=false", "-duration", "1500ms", "-json", "-rate", "7.5"})
	if err != nil {
		t.Fatal(err)
	}
	if tool.Iface != "veth0" || tool.Queue != 2 || tool.XDPMode != redirect.ModeDriver ||
		tool.Bind != afxdp.BindZeroCopy || tool.KeepMgmt || tool.Duration != 1500*time.Millisecond ||
		!tool.JSON || tool.Filter != "udp" || *rate != 7.5 {
		t.Errorf("parsed %+v, rate %v", tool, *rate)
	}
}

func TestParseHelp(t *testing.T) {
	tool, _, stderr := newTool("")
	if err := tool.Parse([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("Parse(-h) = %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"xdp-test: a test tool", "Usage: xdp-test -i IFACE", "-xdp-mode", "-queues"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, stderr)
		}
	}
}

func TestWorkerQueues(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		numQueues  int
		wantQueues []int
		wantCPUs   []int // nil: spread; empty: unpinned
		wantErr    string
	}{
		{[]string{"-q", "3"}, 4, []int{3}, []int{}, ""},
		{[]string{"-queues", "all"}, 4, []int{0, 1, 2, 3}, nil, ""},
		{[]string{"-queues", "0,2", "-cpus", "0,0"}, 4, []int{0, 2}, []int{0, 0}, ""},
		{[]string{"-queues", "0-"}, 4, nil, nil, "-queues"},
		{[]string{"-queues", "0", "-cpus", "x"}, 4, nil, nil, "-cpus"},
	} {
		tool, _, _ := newTool("")
		if err := tool.Parse(append([]string{"-i", "eth0"}, tc.args...)); err != nil {
			t.Fatal(err)
		}
		queues, cpus, err := tool.WorkerQueues(tc.numQueues)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: err %v, want one with %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(queues, tc.wantQueues) || !slices.Equal(cpus, tc.wantCPUs) || (cpus == nil) != (tc.wantCPUs == nil) {
			t.Errorf("%q: WorkerQueues = %v, %#v, %v; want %v, %#v", tc.args, queues, cpus, err, tc.wantQueues, tc.wantCPUs)
		}
	}
}

func TestRedirectOptions(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		wantFilter bool
		wantErr    string
	}{
		{[]string{"-keep-mgmt=false"}, false, ""},
		{[]string{"-keep-mgmt=false", "-xdp-mode", "generic", "-filter", "udp port 9000"}, true, ""},
		{nil, true, ""}, // -keep-mgmt alone needs a filter program too
		{[]string{"-filter", "udp port"}, false, "udp port"},
	} {
		tool, _, _ := newTool("")
		if err := tool.Parse(append([]string{"-i", "eth0"}, tc.args...)); err != nil {
			t.Fatal(err)
		}
		opts, err := tool.RedirectOptions()
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: err %v, want one naming %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if (opts.Filter != nil) != tc.wantFilter || opts.Mode != tool.XDPMode {
			t.Errorf("%q: options %+v, want filter %v and mode %v", tc.args, opts, tc.wantFilter, tool.XDPMode)
		}
		if err := opts.Validate(); err != nil {
			t.Errorf("%q: options do not validate: %v", tc.args, err)
		}
	}
}

func TestSummary(t *testing.T) {
	st := pipeline.Stats{RXPackets: 10, RXBytes: 640, TXPackets: 4, Forwarded: 2, TXBytes: 384, Dropped: 4, Duration: 2 * time.Second}
	tool, stdout, stderr := newTool("")
	if err := tool.Parse([]string{"-i", "eth0", "-json"}); err != nil {
		t.Fatal(err)
	}
	if err := tool.Summary(st, nil, func() map[string]any { return map[string]any{"own": 7} }); err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s", err, stdout)
	}
	for k, want := range map[string]float64{"rx_packets": 10, "rx_bytes": 640, "tx_packets": 6, "tx_bytes": 384, "dropped": 4, "duration_s": 2, "own": 7} {
		if got, ok := out[k].(float64); !ok || got != want {
			t.Errorf("%s = %v, want %v (summary %s)", k, out[k], want, stdout)
		}
	}
	if stderr.Len() != 0 {
		t.Errorf("-json wrote %q on stderr", stderr)
	}

	tool, stdout, stderr = newTool("")
	if err := tool.Parse([]string{"-i", "eth0"}); err != nil {
		t.Fatal(err)
	}
	if err := tool.Summary(st, nil, nil); err != nil {
		t.Fatal(err)
	}
	if want := "xdp-test: 10 packets (640 bytes) received, 6 transmitted, 4 dropped in 2.0s\n"; stderr.String() != want || stdout.Len() != 0 {
		t.Errorf("summary without -json: stderr %q, stdout %q; want %q on stderr", stderr, stdout, want)
	}
}

func TestLiveRate(t *testing.T) {
	tool, _, stderr := newTool("")
	var mu sync.Mutex
	var st pipeline.Stats
	stop := tool.LiveRate(func() pipeline.Stats {
		mu.Lock()
		defer mu.Unlock()
		st.RXPackets += 1000 // called from LiveRate's goroutine
		st.RXBytes += 64000
		return st
	}, func() string { return "extra" })
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(stderr.String(), "\n") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	line, _, _ := strings.Cut(stderr.String(), "\n")
	if !strings.HasPrefix(line, "xdp-test: rx ") || !strings.Contains(line, "pps") || !strings.HasSuffix(line, "  extra") {
		t.Errorf("live line %q", line)
	}
	n := stderr.Len()
	time.Sleep(1200 * time.Millisecond)
	if stderr.Len() != n {
		t.Errorf("LiveRate printed after stop: %q", stderr.String()[n:])
	}
}

// syncBuffer is a bytes.Buffer safe for LiveRate's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Bytes() []byte { return []byte(s.String()) }

func (s *syncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}

func TestRefuse(t *testing.T) {
	tool, _, _ := newTool("")
	tool.Refuse("run one process per queue", "queues", "shared-umem")
	err := tool.Parse([]string{"-i", "eth0", "-shared-umem"})
	if want := "-shared-umem does not apply to xdp-test: run one process per queue"; err == nil || err.Error() != want {
		t.Errorf("Parse = %v, want %q", err, want)
	}
	tool, _, _ = newTool("")
	tool.Refuse("no", "queues")
	if err := tool.Parse([]string{"-i", "eth0", "-q", "0"}); err != nil {
		t.Errorf("a flag not refused: %v", err)
	}
	if !tool.IsSet("q") || !tool.IsSet("i") || tool.IsSet("queues") || tool.IsSet("bind") {
		t.Errorf("IsSet after -i eth0 -q 0: q %v, i %v, queues %v, bind %v",
			tool.IsSet("q"), tool.IsSet("i"), tool.IsSet("queues"), tool.IsSet("bind"))
	}
}

func TestCoalesceByDefault(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want time.Duration
	}{
		{[]string{"-i", "eth0"}, cli.SinkCoalesce},
		{[]string{"-i", "eth0", "-coalesce", "0"}, 0},
		{[]string{"-i", "eth0", "-coalesce", "200us"}, 200 * time.Microsecond},
	} {
		tool, _, stderr := newTool("")
		tool.CoalesceByDefault(cli.SinkCoalesce)
		if err := tool.Parse(tc.args); err != nil {
			t.Fatalf("Parse(%q): %v", tc.args, err)
		}
		if tool.Coalesce != tc.want {
			t.Errorf("Parse(%q): Coalesce %v, want %v", tc.args, tool.Coalesce, tc.want)
		}
		if tool.IsSet("coalesce") != (len(tc.args) > 2) {
			t.Errorf("Parse(%q): IsSet(coalesce) = %v", tc.args, tool.IsSet("coalesce"))
		}
		if err := tool.Parse([]string{"-h"}); !errors.Is(err, flag.ErrHelp) || !strings.Contains(stderr.String(), "(default 50µs)") {
			t.Errorf("usage does not give the default 50µs:\n%s", stderr)
		}
	}
	// Without it, coalescing is off, as in afxdp.Config.
	tool, _, _ := newTool("")
	if err := tool.Parse([]string{"-i", "eth0"}); err != nil || tool.Coalesce != 0 {
		t.Errorf("Parse: %v, Coalesce %v, want 0", err, tool.Coalesce)
	}
}
