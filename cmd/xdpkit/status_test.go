//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

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

// TestStatus: another xdpkit process (xdp-drop, a child) is listed with
// its interface, queue and counters; killed with SIGKILL, its entry is
// found stale and removed.
func TestStatus(t *testing.T) {
	testutils.RequirePrivileged(t)
	_, xdpDrop := binaries(t)
	v := testutils.NewVeth(t, testutils.VethOptions{})
	child := exec.Command(xdpDrop, "-i", v.Host)
	var stderr bytes.Buffer
	child.Stderr = &stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = child.Wait(); close(exited) }()
	t.Cleanup(func() { _ = child.Process.Kill(); <-exited })
	pid := child.Process.Pid
	entry := filepath.Join(metrics.RunDir, strconv.Itoa(pid)+".sock")
	for deadline := time.Now().Add(15 * time.Second); ; {
		if _, err := os.Stat(entry); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("xdp-drop did not announce itself in 15 s:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	peer := v.OpenPeerPacketSocket(t)
	const n = 64
	frame := testutils.UDPFrame(v.HostMAC, v.PeerMAC, v.PeerIP.As4(), v.HostIP.As4(), 5000, 7000, []byte("status"))
	for range n {
		if err := peer.Send(frame); err != nil {
			t.Fatal(err)
		}
	}
	var row socketRow
	for deadline := time.Now().Add(10 * time.Second); ; {
		r := statusRun(t)
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

	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	if _, err := os.Stat(entry); err != nil {
		t.Fatalf("the killed process's entry is gone already (%v): nothing stale to detect", err)
	}
	r := statusRun(t)
	if _, ok := rowOf(r, pid); ok || r.Stale < 1 {
		t.Errorf("after SIGKILL: listed %v, %d stale removed; want it gone and counted", ok, r.Stale)
	}
	if _, err := os.Stat(entry); err == nil {
		t.Error("the stale entry is still there")
	}
}
