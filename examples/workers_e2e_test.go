//go:build linux

package examples_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/deviceplugin"
	"github.com/xdpkit/xdpkit/internal/netlink"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/redirect"
)

func sendFlows(t *testing.T, v *testutils.Veth, peer *testutils.PacketSocket, flows, perFlow int) {
	t.Helper()
	var frames [][]byte
	for i := range flows * perFlow {
		frames = append(frames, udp(v, uint16(30000+i%flows), 7000, "mq"))
	}
	sendFrames(t, peer, frames)
}

// TestQueuesAndCPUs: -queues all -cpus runs a worker per queue and reports
// per-queue counts that add up to what was sent.
func TestQueuesAndCPUs(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 4})
	p := start(t, v, "xdp-drop", "-queues", "all", "-cpus", "0,1,0,1", "-shared-umem")
	peer := v.OpenPeerPacketSocket(t)
	sendFlows(t, v, peer, 64, 10)
	waitRedirected(t, v, 640)
	out := p.stop()
	if num(out, "rx_packets") != 640 {
		t.Errorf("rx_packets %v, want 640", out["rx_packets"])
	}
	t.Logf("summary: %v", out)
	pq, _ := out["per_queue"].(map[string]any)
	var sum float64
	busy := 0
	for q := range 4 {
		m, _ := pq[fmt.Sprint(q)].(map[string]any)
		sum += num(m, "rx_packets")
		if num(m, "rx_packets") > 0 {
			busy++
		}
	}
	if len(pq) != 4 || sum != 640 || busy < 2 {
		t.Errorf("per_queue %v: want 4 queues adding up to 640, traffic on several", pq)
	}
	noProgramLeft(t, v)
}

// TestPinnedProcesses: two processes, one per queue, share the program
// pinned under one name; each receives its queue's frames. The program
// stays attached after they exit until the pin is removed.
func TestPinnedProcesses(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 2})
	leaveBPFFSAsFound(t)
	name := fmt.Sprintf("xdpkit-e2e-%d", time.Now().UnixNano()%1e9)
	t.Cleanup(func() { _ = redirect.Unpin(name, nil) })
	p0 := start(t, v, "xdp-drop", "-pin", name, "-q", "0")
	l, _ := netlink.LinkByIndex(v.HostIndex)
	id := l.XDP.AnyProgID()
	p1 := start(t, v, "xdp-drop", "-pin", name, "-q", "1")
	if l, _ := netlink.LinkByIndex(v.HostIndex); l.XDP.AnyProgID() != id {
		t.Fatalf("second process attached another program: %d, was %d", l.XDP.AnyProgID(), id)
	}
	peer := v.OpenPeerPacketSocket(t)
	sendFlows(t, v, peer, 64, 10)
	waitRedirected(t, v, 640)
	o0, o1 := p0.stop(), p1.stop()
	r0, r1 := num(o0, "rx_packets"), num(o1, "rx_packets")
	if r0+r1 != 640 || r0 == 0 || r1 == 0 {
		t.Errorf("queue 0 got %v, queue 1 got %v: want 640 in all, on both", r0, r1)
	}
	if l, _ := netlink.LinkByIndex(v.HostIndex); l.XDP.AnyProgID() != id {
		t.Errorf("pinned program gone after the workers exited")
	}
	if err := redirect.Unpin(name, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if l, _ := netlink.LinkByIndex(v.HostIndex); !l.XDP.IsAttached() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("program still attached 5s after Unpin")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leaveBPFFSAsFound undoes, at cleanup, the BPF filesystem the tools
// mount at /sys/fs/bpf when there is none (as bpftool and libxdp do): a
// test must leave the machine as it found it.
func leaveBPFFSAsFound(t *testing.T) {
	const root = "/sys/fs/bpf"
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err == nil && uint32(st.Type) == uint32(unix.BPF_FS_MAGIC) {
		// Mounted before: not ours to undo, but the pin base directory
		// is, if the tools create it (Remove fails if others pinned there).
		if _, err := os.Stat(redirect.DefaultPinDir); errors.Is(err, fs.ErrNotExist) {
			t.Cleanup(func() { _ = os.Remove(redirect.DefaultPinDir) })
		}
		return
	}
	t.Cleanup(func() {
		if err := unix.Statfs(root, &st); err != nil || uint32(st.Type) != uint32(unix.BPF_FS_MAGIC) {
			return
		}
		_ = os.Remove(filepath.Join(root, "xdpkit")) // empty once the pins are gone
		if err := unix.Unmount(root, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount the bpffs the test's tools mounted: %v", err)
		}
	})
}

// TestDevicePlugin: a tool with -dp uds gets the XSKMAP from the AF_XDP
// device plugin's socket (a plugin in the test suite that answers as the
// real one does) and receives its queue's traffic, attaching nothing;
// -dp pinned opens the plugin's pinned map.
func TestDevicePlugin(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	prog, err := redirect.Attach(v.HostIndex, nil) // the plugin's part, on the node
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	host, _ := os.Hostname()
	dir := t.TempDir()
	testutils.StartFakeDevicePlugin(t, deviceplugin.SocketPath(dir, v.Host), &testutils.FakeDevicePlugin{
		Pods: map[string]bool{host: true}, Devices: map[string]int{v.Host: prog.Map().FD()},
	})
	bpffs := filepath.Join(dir, "pinned", v.Host)
	if err := os.MkdirAll(bpffs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("bpf", bpffs, "bpf", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(bpffs, unix.MNT_DETACH) })
	if err := prog.Map().Pin(deviceplugin.PinnedMapPath(filepath.Join(dir, "pinned"), v.Host)); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []struct{ dp, path string }{{"uds", dir}, {"pinned", filepath.Join(dir, "pinned")}} {
		cmd := exec.Command(binary(t, "xdp-drop"), "-i", v.Host, "-dp", mode.dp, "-dp-path", mode.path, "-json")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		time.Sleep(1500 * time.Millisecond) // registered by then
		peer := v.OpenPeerPacketSocket(t)
		var frames [][]byte
		for range 40 {
			frames = append(frames, udp(v, 1000, 7000, "via the device plugin"))
		}
		sendFrames(t, peer, frames)
		time.Sleep(300 * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("-dp %s: %v\n%s", mode.dp, err, stderr.String())
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("-dp %s: no exit", mode.dp)
		}
		var out map[string]any
		if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || num(out, "rx_packets") != 40 {
			t.Errorf("-dp %s: %v (%v), want 40 frames received\n%s", mode.dp, out, err, stderr.String())
		}
	}
	// The tool refuses what the plugin's program decides.
	out, err := exec.Command(binary(t, "xdp-drop"), "-i", v.Host, "-dp", "uds", "-dp-path", dir, "-filter", "udp").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "-filter does not apply with -xskmap or -dp") {
		t.Errorf("-dp with -filter: %v %s", err, out)
	}
}
