//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/metrics"
)

func statusRun(t *testing.T, args ...string) statusReport {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(append([]string{"status", "-json"}, args...), &out, &errb); code != 0 {
		t.Fatalf("status: exit %d: %s", code, errb.String())
	}
	var r statusReport
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("status output: %v\n%s", err, out.String())
	}
	return r
}

func rowOf(r statusReport, pid int) (socketRow, bool) {
	for _, s := range r.Sockets {
		if s.PID == pid {
			return s, true
		}
	}
	return socketRow{}, false
}

// child is a tool started by a test, announced in metrics.RunDir.
type child struct {
	cmd    *exec.Cmd
	pid    int
	entry  string
	exited chan struct{}
	stderr bytes.Buffer
}

// startTool starts bin with args and waits until it has announced itself.
func startTool(t *testing.T, bin string, args ...string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	c.cmd.Stderr = &c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.cmd.Wait(); close(c.exited) }()
	t.Cleanup(func() { _ = c.cmd.Process.Kill(); <-c.exited })
	c.pid = c.cmd.Process.Pid
	c.entry = filepath.Join(metrics.RunDir, strconv.Itoa(c.pid)+".sock")
	for deadline := time.Now().Add(15 * time.Second); ; {
		if _, err := os.Stat(c.entry); err == nil {
			return c
		}
		select {
		case <-c.exited:
			t.Fatalf("%s exited before announcing itself:\n%s", bin, c.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not announce itself in 15 s:\n%s", bin, c.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStatus: another xdpkit process (xdp-drop, a child) is listed with
// its interface, queue, rings, UMEM and counters; killed with SIGKILL, its
// entry is found stale and removed. A socket of a process that did not
// announce itself is listed from what the kernel says.
func TestStatus(t *testing.T) {
	testutils.RequirePrivileged(t)
	_, xdpDrop := binaries(t)
	v := testutils.NewVeth(t, testutils.VethOptions{})
	c := startTool(t, xdpDrop, "-i", v.Host)
	pid, entry := c.pid, c.entry
	peer := v.OpenPeerPacketSocket(t)
	const n = 64
	frame := testutils.UDPFrame(v.HostMAC, v.PeerMAC, v.PeerIP.As4(), v.HostIP.As4(), 5000, 7000, []byte("status"))
	for range n {
		if err := peer.Send(frame); err != nil {
			t.Fatal(err)
		}
	}
	var row socketRow
	var r statusReport
	for deadline := time.Now().Add(10 * time.Second); ; {
		r = statusRun(t)
		var ok bool
		if row, ok = rowOf(r, pid); ok && row.Counters["rx_packets"] == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed pid %d with %d frames received: %+v", pid, n, r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if row.Interface != v.Host || row.Queue != "0" || row.Process != "xdp-drop" || row.Counters["dropped_packets"] != n {
		t.Errorf("row %+v, want xdp-drop on %s queue 0 with %d dropped", row, v.Host, n)
	}
	// xdp-drop opens its socket with the defaults: 2048-slot rings, a UMEM
	// of 4096 x 4096-byte frames, copy mode on a veth.
	want := metrics.Socket{Interface: v.Host, Queue: 0, RX: 2048, TX: 2048, Fill: 2048, Completion: 2048, Frames: 4096, FrameSize: 4096}
	if s := row.Setup; s == nil {
		t.Error("the row has no rings or UMEM")
	} else if got := *s; got.FreeFrames <= 0 || got.FreeFrames > 4096 {
		t.Errorf("setup %+v: free frames out of range", got)
	} else if got.FreeFrames = 0; got != want {
		t.Errorf("setup %+v, want %+v", got, want)
	}
	for _, k := range r.Kernel {
		if k.Interface == v.Host && k.Queue == 0 {
			t.Errorf("xdp-drop's socket is listed again as a kernel socket: %+v", k)
		}
	}

	// A socket of this process, which does not announce itself, on queue 1
	// of another veth.
	v2 := testutils.NewVeth(t, testutils.VethOptions{Queues: 2})
	own, err := afxdp.Open(v2.Host, 1, &afxdp.Config{Steering: afxdp.NoSteering})
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	r = statusRun(t)
	found := false
	for _, k := range r.Kernel {
		if k.Interface == v2.Host && k.Queue == 1 {
			found = true
			if k.Socket != nil && (len(k.Owners) == 0 || k.Owners[0].PID != os.Getpid()) {
				t.Errorf("xsk_diag row %+v: want this process as the owner", k)
			}
		}
	}
	if !found {
		t.Errorf("the unannounced socket on %s queue 1 is not listed: %+v (xsk_diag: %s)", v2.Host, r.Kernel, r.XSKDiag)
	}
	var text bytes.Buffer
	printStatus(&text, r)
	if !strings.Contains(text.String(), "2048/2048/2048/2048") || !strings.Contains(text.String(), "queue 1 is bound") && !strings.Contains(text.String(), "queue 1,") {
		t.Errorf("text report lacks the rings or the kernel socket:\n%s", text.String())
	}
	t.Logf("status:\n%s", text.String())
	own.Close()

	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.exited
	if _, err := os.Stat(entry); err != nil {
		t.Fatalf("the killed process's entry is gone already (%v): nothing stale to detect", err)
	}
	r = statusRun(t)
	if _, ok := rowOf(r, pid); ok || r.Stale < 1 {
		t.Errorf("after SIGKILL: listed %v, %d stale removed; want it gone and counted", ok, r.Stale)
	}
	if _, err := os.Stat(entry); err == nil {
		t.Error("the stale entry is still there")
	}
}

// TestStatusWatch: `xdpkit status -watch` refreshes with per-socket rates
// while traffic flows, and ends on Ctrl-C (SIGINT) with exit 0.
func TestStatusWatch(t *testing.T) {
	testutils.RequirePrivileged(t)
	xdpkit, xdpDrop := binaries(t)
	v := testutils.NewVeth(t, testutils.VethOptions{})
	c := startTool(t, xdpDrop, "-i", v.Host)
	watch := exec.Command(xdpkit, "status", "-json", "-watch", "300ms")
	out, err := watch.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- watch.Wait() }()
	t.Cleanup(func() {
		_ = watch.Process.Kill()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
	})

	peer := v.OpenPeerPacketSocket(t)
	frame := testutils.UDPFrame(v.HostMAC, v.PeerMAC, v.PeerIP.As4(), v.HostIP.As4(), 5000, 7000, []byte("watch"))
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() { // about 2 kpps until stopped, at most 10 s
		defer close(sent)
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			for range 10 {
				_ = peer.Send(frame)
			}
		}
	}()
	defer func() { close(stop); <-sent }()

	reports := make(chan statusReport)
	go func() {
		dec := json.NewDecoder(out)
		for {
			var r statusReport
			if dec.Decode(&r) != nil {
				close(reports)
				return
			}
			reports <- r
		}
	}()
	var rate float64
	n := 0
	for deadline := time.After(10 * time.Second); rate <= 0; {
		select {
		case r, ok := <-reports:
			if !ok {
				t.Fatalf("status -watch ended after %d reports", n)
			}
			n++
			if row, ok := rowOf(r, c.pid); ok && row.Rates != nil {
				rate = row.Rates["rx_packets"]
			}
		case <-deadline:
			t.Fatalf("no report with a receive rate for pid %d in 10 s (%d reports)", c.pid, n)
		}
	}
	if n < 2 {
		t.Errorf("a rate after %d reports: the first has nothing to compare with", n)
	}
	if rate > 1e6 {
		t.Errorf("rx rate %.0f/s for about 2 kpps sent", rate)
	}
	t.Logf("rx rate %.0f/s after %d reports", rate, n)
	if err := watch.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range reports { // drain so the decoder sees EOF
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("status -watch after SIGINT: %v, want exit 0", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("status -watch did not end within 5 s of SIGINT")
	}
}
