//go:build linux

package sys_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/sys"
	"github.com/xdpkit/xdpkit/internal/testutils"
)

func TestMain(m *testing.M) { testutils.LeakCheckMain(m) }

// attachPass attaches an XDP_PASS program to ifindex in driver mode: veth
// runs its NAPI receive path, and counts per queue, only with XDP on.
func attachPass(t *testing.T, ifindex int) {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:    "xdpkit_pass",
		Type:    ebpf.XDP,
		License: "MIT",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, 2), // XDP_PASS
			asm.Return(),
		},
	})
	if err != nil {
		t.Fatalf("load XDP_PASS: %v", err)
	}
	t.Cleanup(func() { prog.Close() })
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: link.XDPDriverMode})
	if err != nil {
		t.Fatalf("attach XDP_PASS: %v", err)
	}
	t.Cleanup(func() { l.Close() })
}

func statMap(t *testing.T, st []sys.EthtoolStat) map[string]uint64 {
	t.Helper()
	m := map[string]uint64{}
	for _, s := range st {
		if _, dup := m[s.Name]; dup {
			t.Errorf("statistic %q reported twice", s.Name)
		}
		m[s.Name] = s.Value
	}
	return m
}

// peerSocket opens the ethtool socket inside v's peer namespace; it stays
// there, and is used from the test's goroutine.
func peerSocket(t *testing.T, v *testutils.Veth) int {
	t.Helper()
	var fd int
	v.InPeer(t, func() (err error) {
		fd, err = sys.EthtoolSocket()
		return err
	})
	t.Cleanup(func() { sys.Close(fd) })
	return fd
}

func TestEthtoolDrvinfo(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 2})
	info, err := sys.EthtoolDrvinfo(v.Host)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sys.EthtoolStats(v.Host)
	if err != nil {
		t.Fatal(err)
	}
	if info.Driver != "veth" || info.Version == "" || info.BusInfo != "" || info.NStats != len(st) {
		t.Errorf("driver info %+v, want driver veth, a version, no bus, %d statistics", info, len(st))
	}
	peer, err := sys.EthtoolDrvinfoFD(peerSocket(t, v), v.Peer)
	if err != nil || peer.Driver != "veth" {
		t.Errorf("peer through a socket of its namespace: %+v, %v", peer, err)
	}
}

// TestEthtoolStats reads a two-queue veth's counters: the per-queue names
// veth has, the peer's ifindex, and the XDP packet counters moving by
// exactly the frames sent.
func TestEthtoolStats(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 2})
	attachPass(t, v.HostIndex)
	before, err := sys.EthtoolStats(v.Host)
	if err != nil {
		t.Fatal(err)
	}
	b := statMap(t, before)
	for q := range 2 {
		for _, name := range []string{"rx_queue_%d_xdp_packets", "rx_queue_%d_xdp_bytes", "rx_queue_%d_xdp_redirect", "tx_queue_%d_xdp_xmit"} {
			if _, ok := b[fmt.Sprintf(name, q)]; !ok {
				t.Errorf("no statistic %q in %v", fmt.Sprintf(name, q), before)
			}
		}
	}
	if b["peer_ifindex"] != uint64(v.PeerIndex) {
		t.Errorf("peer_ifindex %d, want %d", b["peer_ifindex"], v.PeerIndex)
	}

	const frames = 100
	frame := testutils.UDPFrame(v.HostMAC, v.PeerMAC, v.PeerIP.As4(), v.HostIP.As4(), 4000, 9, []byte("ethtool"))
	peer := v.OpenPeerPacketSocket(t)
	for i := range frames {
		if err := peer.Send(frame); err != nil {
			t.Fatal(err)
		}
		if i%64 == 63 {
			time.Sleep(time.Millisecond) // do not overrun veth's 256-frame queue
		}
	}
	sum := func(m map[string]uint64, stat string) (n uint64) {
		for q := range 2 {
			n += m[fmt.Sprintf("rx_queue_%d_%s", q, stat)]
		}
		return n
	}
	var a map[string]uint64
	deadline := time.Now().Add(5 * time.Second)
	for {
		after, err := sys.EthtoolStats(v.Host)
		if err != nil {
			t.Fatal(err)
		}
		a = statMap(t, after)
		if sum(a, "xdp_packets")-sum(b, "xdp_packets") >= frames || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := sum(a, "xdp_packets") - sum(b, "xdp_packets"); got != frames {
		t.Errorf("rx_queue_*_xdp_packets moved by %d, sent %d frames", got, frames)
	}
	// veth counts the bytes after the Ethernet header (skb->len once
	// eth_type_trans has pulled it).
	if got, want := sum(a, "xdp_bytes")-sum(b, "xdp_bytes"), uint64(frames*(len(frame)-14)); got != want {
		t.Errorf("rx_queue_*_xdp_bytes moved by %d, want %d (%d frames of %d bytes, less the Ethernet header)", got, want, frames, len(frame))
	}

	// The values alone, into a reused slice, line up with the names.
	fd, err := sys.EthtoolSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close(fd)
	names, err := sys.EthtoolStatNamesFD(fd, v.Host)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]uint64, 0, 64)
	values, err := sys.EthtoolStatValuesFD(fd, v.Host, dst[:5])
	if err != nil {
		t.Fatal(err)
	}
	if len(values) != len(names) || &values[0] != &dst[:1][0] {
		t.Fatalf("%d values for %d names (into the caller's slice: %v)", len(values), len(names), &values[0] == &dst[:1][0])
	}
	for i, name := range names {
		if name == "rx_queue_0_xdp_packets" || name == "rx_queue_1_xdp_packets" {
			if values[i] != a[name] {
				t.Errorf("%s: %d alone, %d with the names (no traffic in between)", name, values[i], a[name])
			}
		}
	}
}

// The peer's statistics come through a socket opened in its namespace,
// read from the test's goroutine; in the test's own namespace the peer
// does not exist.
func TestEthtoolStatsOtherNamespace(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	st, err := sys.EthtoolStatsFD(peerSocket(t, v), v.Peer)
	if err != nil {
		t.Fatal(err)
	}
	if m := statMap(t, st); m["peer_ifindex"] != uint64(v.HostIndex) {
		t.Errorf("peer's peer_ifindex %d, want the host's %d", m["peer_ifindex"], v.HostIndex)
	}
	if _, err := sys.EthtoolStats(v.Peer); !errors.Is(err, unix.ENODEV) {
		t.Errorf("peer read in the test's namespace: err = %v, want ENODEV", err)
	}
}

func TestEthtoolErrors(t *testing.T) {
	testutils.RequirePrivileged(t)
	const missing = "xknoexist0"
	fd, err := sys.EthtoolSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close(fd)
	for name, call := range map[string]func(string) error{
		"EthtoolStats":        func(n string) error { _, err := sys.EthtoolStats(n); return err },
		"EthtoolDrvinfo":      func(n string) error { _, err := sys.EthtoolDrvinfo(n); return err },
		"EthtoolStatNamesFD":  func(n string) error { _, err := sys.EthtoolStatNamesFD(fd, n); return err },
		"EthtoolStatValuesFD": func(n string) error { _, err := sys.EthtoolStatValuesFD(fd, n, nil); return err },
	} {
		if err := call(missing); !errors.Is(err, unix.ENODEV) || !strings.Contains(err.Error(), missing) {
			t.Errorf("%s(%s): err = %v, want ENODEV naming the interface", name, missing, err)
		}
		if err := call("an-interface-name-too-long"); !errors.Is(err, unix.EINVAL) {
			t.Errorf("%s(too long): err = %v, want EINVAL", name, err)
		}
	}
	// Loopback has driver statistics no more than a driver.
	if _, err := sys.EthtoolStats("lo"); !errors.Is(err, unix.EOPNOTSUPP) {
		t.Errorf("EthtoolStats(lo): err = %v, want EOPNOTSUPP", err)
	}
}

// A count one short of the driver's must not make the kernel write past
// the buffer: kernels that copy the driver's count anyway fault on the
// guard page (EFAULT); fixed kernels copy nothing and report 0.
func TestEthtoolGuardPage(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	fd, err := sys.EthtoolSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close(fd)
	names, err := sys.EthtoolStatNamesFD(fd, v.Host)
	if err != nil {
		t.Fatal(err)
	}
	n := len(names) - 1
	var reported uint32
	err = sys.WithGuarded(sys.GstatsHeader+n*8, func(buf []byte) error {
		binary.NativeEndian.PutUint32(buf[0:], unix.ETHTOOL_GSTATS)
		binary.NativeEndian.PutUint32(buf[4:], uint32(n))
		err := sys.EthtoolIoctl(fd, v.Host, buf)
		reported = binary.NativeEndian.Uint32(buf[4:])
		return err
	})
	switch {
	case errors.Is(err, unix.EFAULT):
		t.Log("this kernel copies every statistic whatever the count: the guard page stopped it")
	case err == nil && reported == 0:
		t.Log("this kernel answers a wrong count with 0 statistics")
	default:
		t.Errorf("GSTATS into room for %d of %d values: err = %v, count %d; want EFAULT, or no error and count 0", n, len(names), err, reported)
	}
}
