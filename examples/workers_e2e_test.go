//go:build linux

package examples_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

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
