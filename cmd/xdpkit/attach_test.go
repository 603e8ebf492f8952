//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	xnl "github.com/xdpkit/xdpkit/internal/netlink"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/redirect"
)

// TestSplitPrivileges: a privileged `xdpkit attach`, then xdp-drop started
// with CAP_NET_RAW and CAP_IPC_LOCK only (every other capability dropped
// from its bounding set, so even as uid 0 it has no CAP_BPF,
// CAP_NET_ADMIN or CAP_SYS_ADMIN) receives the queue's traffic through
// the pinned XSKMAP; without CAP_NET_RAW it fails and says so; `xdpkit
// detach` takes the program off once the worker is gone.
func TestSplitPrivileges(t *testing.T) {
	testutils.RequirePrivileged(t)
	setpriv := testutils.NeedCommand(t, "setpriv", "apt-get install util-linux")
	xdpkit, xdpDrop := binaries(t)
	v := testutils.NewVeth(t, testutils.VethOptions{})
	name := fmt.Sprintf("split%d", os.Getpid())
	// The base directories go again if this test makes them and leaves
	// them empty (os.Remove fails harmlessly if others have pins there).
	for _, base := range []string{redirect.DefaultPinDir, "/sys/fs/bpf/xdpkit-shared"} {
		if _, err := os.Stat(base); os.IsNotExist(err) {
			t.Cleanup(func() { _ = os.Remove(base) })
		}
	}
	t.Cleanup(func() { _ = redirect.Unpin(name, nil) })
	out, err := exec.Command(xdpkit, "attach", "-i", v.Host, "-pin", name, "-filter", "udp").CombinedOutput()
	if err != nil {
		t.Fatalf("xdpkit attach: %v\n%s", err, out)
	}
	xsks := filepath.Join(redirect.DefaultPinDir, name, "xsks")
	if !strings.Contains(string(out), "-xskmap "+xsks) {
		t.Errorf("attach output %q does not tell the workers' flag", out)
	}
	if l, err := xnl.LinkByIndex(v.HostIndex); err != nil || !l.XDP.IsAttached() {
		t.Fatalf("after attach exited: XDP %+v, %v; want the pinned program attached", l.XDP, err)
	}

	worker := func(caps string, args ...string) *exec.Cmd {
		return exec.Command(setpriv, append([]string{"--bounding-set", caps, "--inh-caps", "-all", "--", xdpDrop, "-i", v.Host, "-xskmap", xsks, "-json"}, args...)...)
	}
	// Without CAP_NET_RAW: the socket cannot be made, and the error says why.
	msg, err := worker("-all,+ipc_lock", "-duration", "1s").CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "CAP_NET_RAW") {
		t.Errorf("without CAP_NET_RAW: %v: %s; want a failure naming CAP_NET_RAW", err, msg)
	}

	w := worker("-all,+net_raw,+ipc_lock", "-duration", "4s")
	var stdout, stderr bytes.Buffer
	w.Stdout, w.Stderr = &stdout, &stderr
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Wait() }()
	t.Cleanup(func() {
		_ = w.Process.Kill()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
	})
	// Wait until its socket is in the map: frames then reach it.
	time.Sleep(1500 * time.Millisecond)
	peer := v.OpenPeerPacketSocket(t)
	frame := testutils.UDPFrame(v.HostMAC, v.PeerMAC, v.PeerIP.As4(), v.HostIP.As4(), 5000, 7000, []byte("to an unprivileged worker"))
	for range 100 {
		if err := peer.Send(frame); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the worker: %v\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("the worker did not end\n%s", stderr.String())
	}
	var sum map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("summary: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	if sum["rx_packets"] != float64(100) {
		t.Errorf("the unprivileged worker received %v frames, want 100\n%s", sum["rx_packets"], stderr.String())
	}

	out, err = exec.Command(xdpkit, "detach", "-pin", name).CombinedOutput()
	if err != nil {
		t.Fatalf("xdpkit detach: %v\n%s", err, out)
	}
	// The kernel frees the link from a work queue: allow it a moment.
	for deadline := time.Now().Add(3 * time.Second); ; {
		l, err := xnl.LinkByIndex(v.HostIndex)
		if err == nil && !l.XDP.IsAttached() {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("3 s after detach, with no worker left: XDP %+v, %v; want none", l.XDP, err)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out, err := exec.Command(xdpkit, "detach", "-pin", name).CombinedOutput(); err == nil || !strings.Contains(string(out), "nothing pinned") {
		t.Errorf("a second detach: %v %s", err, out)
	}

	// -gid: a worker of that group, not root, opens the group's copy of
	// the pin; the pin directory stays root's and mode 0700.
	if err := os.Chmod(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A bpffs xdpkit mounted itself is mode 0700: let others traverse it
	// for this part, and put it back.
	if fi, err := os.Stat("/sys/fs/bpf"); err == nil && fi.Mode().Perm()&0o001 == 0 {
		mode := fi.Mode().Perm()
		if err := os.Chmod("/sys/fs/bpf", mode|0o011); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod("/sys/fs/bpf", mode) })
	}
	out, err = exec.Command(xdpkit, "attach", "-i", v.Host, "-pin", name, "-filter", "udp", "-gid", "65534").CombinedOutput()
	if err != nil {
		t.Fatalf("xdpkit attach -gid: %v\n%s", err, out)
	}
	shared := filepath.Join("/sys/fs/bpf/xdpkit-shared", name, "xsks")
	if !strings.Contains(string(out), "-xskmap "+shared) {
		t.Errorf("attach -gid output %q does not name %s", out, shared)
	}
	if fi, err := os.Stat(filepath.Join(redirect.DefaultPinDir, name)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the pin directory: %v, %v; want it root's, 0700", fi.Mode(), err)
	}
	nobody := exec.Command(setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups",
		"--inh-caps", "-all,+net_raw,+ipc_lock", "--ambient-caps", "-all,+net_raw,+ipc_lock", "--",
		xdpDrop, "-i", v.Host, "-xskmap", shared, "-json", "-duration", "4s")
	stdout.Reset()
	stderr.Reset()
	nobody.Stdout, nobody.Stderr = &stdout, &stderr
	if err := nobody.Start(); err != nil {
		t.Fatal(err)
	}
	ndone := make(chan error, 1)
	go func() { ndone <- nobody.Wait() }()
	t.Cleanup(func() {
		_ = nobody.Process.Kill()
		select {
		case <-ndone:
		case <-time.After(5 * time.Second):
		}
	})
	time.Sleep(1500 * time.Millisecond)
	for range 100 {
		if err := peer.Send(frame); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-ndone:
		if err != nil {
			t.Fatalf("the worker as nobody: %v\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("the worker as nobody did not end\n%s", stderr.String())
	}
	sum = nil
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil || sum["rx_packets"] != float64(100) {
		t.Errorf("the worker as nobody: %v, %v\n%s", sum["rx_packets"], err, stderr.String())
	}
	if out, err := exec.Command(xdpkit, "detach", "-pin", name).CombinedOutput(); err != nil {
		t.Fatalf("detach: %v %s", err, out)
	}
	if _, err := os.Stat(filepath.Dir(shared)); !os.IsNotExist(err) {
		t.Errorf("after detach the group's pin is still there (%v)", err)
	}
}
