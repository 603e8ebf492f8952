//go:build linux

package deviceplugin_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/deviceplugin"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/redirect"
)

func TestMain(m *testing.M) { testutils.LeakCheckMain(m) }

func newXSKMAP(t *testing.T) *ebpf.Map {
	t.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestHandshake(t *testing.T) {
	testutils.RequirePrivileged(t) // the fake plugin makes an XSKMAP
	m := newXSKMAP(t)
	dir := t.TempDir()
	testutils.StartFakeDevicePlugin(t, deviceplugin.SocketPath(dir, "eth9"), &testutils.FakeDevicePlugin{Pods: map[string]bool{"pod-a": true}, Devices: map[string]int{"eth9": m.FD()}})
	c, err := deviceplugin.Dial(deviceplugin.SocketPath(dir, "eth9"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect("pod-a"); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Version(); err != nil || v != "0.1" {
		t.Fatalf("Version = %q, %v", v, err)
	}
	if _, err := c.XSKMapFD("eth7"); !errors.Is(err, deviceplugin.ErrNoDevice) {
		t.Errorf("an unknown device: %v, want ErrNoDevice", err)
	}
	fd, err := c.XSKMapFD("eth9")
	if err != nil {
		t.Fatal(err)
	}
	x, err := redirect.XSKMapFromFD(fd)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if x.Queues() != 4 {
		t.Errorf("the received map has room for %d queues, want 4", x.Queues())
	}
	if err := c.ConfigBusyPoll(fd, 20, 64); !errors.Is(err, deviceplugin.ErrBusyPoll) {
		t.Errorf("busy poll on a plugin that refuses it: %v, want ErrBusyPoll", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// The plugin's refusals and failures: each a clear error, in bounded
// time.
func TestRefusals(t *testing.T) {
	testutils.RequirePrivileged(t)
	m := newXSKMAP(t)
	dir := t.TempDir()
	devs := map[string]int{"eth9": m.FD()}
	pods := map[string]bool{"pod-a": true}
	for _, tc := range []struct {
		name   string
		plugin testutils.FakeDevicePlugin
		host   string
		want   error
	}{
		{"unknown pod", testutils.FakeDevicePlugin{Pods: pods, Devices: devs}, "pod-b", deviceplugin.ErrHostRejected},
		{"plugin error", testutils.FakeDevicePlugin{Pods: pods, Devices: devs, ErrOnConnect: true}, "pod-a", deviceplugin.ErrPlugin},
		{"silent", testutils.FakeDevicePlugin{Pods: pods, Devices: devs, Silent: true}, "pod-a", os.ErrDeadlineExceeded},
		{"hang up", testutils.FakeDevicePlugin{Pods: pods, Devices: devs, HangUp: true}, "pod-a", nil},
		{"ack without fd", testutils.FakeDevicePlugin{Pods: pods, Devices: devs, AckNoFD: true}, "pod-a", deviceplugin.ErrProtocol},
		{"other version", testutils.FakeDevicePlugin{Pods: pods, Devices: devs, Version: "0.2"}, "pod-a", deviceplugin.ErrProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.plugin
			path := deviceplugin.SocketPath(filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")), "eth9")
			testutils.StartFakeDevicePlugin(t, path, &p)
			start := time.Now()
			err := handshake(path, tc.host)
			took := time.Since(start)
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if took > 2*time.Second {
				t.Errorf("took %v: the timeout is 500 ms a request", took)
			}
			t.Log(err)
		})
	}
	if _, err := deviceplugin.Dial(filepath.Join(dir, "nowhere", "afxdp.sock"), time.Second); err == nil || !strings.Contains(err.Error(), "mounted") {
		t.Errorf("a missing socket: %v, want the hint about the mount", err)
	}
}

// handshake is XSKMapFD's exchange with the given hostname.
func handshake(path, host string) error {
	c, err := deviceplugin.Dial(path, 500*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Connect(host); err != nil {
		return err
	}
	v, err := c.Version()
	if err != nil {
		return err
	}
	if v != deviceplugin.ProtocolVersion {
		return deviceplugin.ErrProtocol
	}
	fd, err := c.XSKMapFD("eth9")
	if err != nil {
		return err
	}
	unix.Close(fd)
	return nil
}

// receive opens a socket on v's queue 0 registered in x and checks that
// the peer's frames reach it.
func receive(t *testing.T, v *testutils.Veth, x afxdp.Registrar) *afxdp.Socket {
	t.Helper()
	s, err := afxdp.Open(v.Host, 0, &afxdp.Config{Steering: x})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	peer := v.OpenPeerPacketSocket(t)
	frame := testutils.UDPFrame(v.HostMAC, v.PeerMAC, v.PeerIP.As4(), v.HostIP.As4(), 5000, 7000, []byte("from the plugin's map"))
	for range 10 {
		if err := peer.Send(frame); err != nil {
			t.Fatal(err)
		}
	}
	descs := make([]afxdp.Desc, 16)
	got := 0
	for deadline := time.Now().Add(5 * time.Second); got < 10 && time.Now().Before(deadline); {
		if err := s.Wait(100 * time.Millisecond); err != nil && !errors.Is(err, afxdp.ErrTimeout) {
			t.Fatal(err)
		}
		n, _ := s.Receive(descs)
		got += n
		_ = s.Release(descs[:n])
	}
	if got != 10 {
		t.Fatalf("received %d of 10 frames through the plugin's XSKMAP", got)
	}
	return s
}

// TestTrafficUDS: the plugin attaches the program and hands its XSKMAP
// over the socket; the pod's socket gets the traffic, and the plugin sets
// its busy-poll options.
func TestTrafficUDS(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	prog, err := redirect.Attach(v.HostIndex, nil) // the plugin's part
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	host, _ := os.Hostname()
	dir := t.TempDir()
	testutils.StartFakeDevicePlugin(t, deviceplugin.SocketPath(dir, v.Host), &testutils.FakeDevicePlugin{
		Pods: map[string]bool{host: true}, Devices: map[string]int{v.Host: prog.Map().FD()},
		BusyPoll: func(fd, timeout, budget int) error {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PREFER_BUSY_POLL, 1); err != nil {
				return err
			}
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BUSY_POLL, timeout); err != nil {
				return err
			}
			return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BUSY_POLL_BUDGET, budget)
		},
	})
	x, err := deviceplugin.XSKMap(dir, v.Host, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	s := receive(t, v, x)

	c, err := deviceplugin.Dial(deviceplugin.SocketPath(dir, v.Host), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(host); err != nil {
		t.Fatal(err)
	}
	if err := c.ConfigBusyPoll(s.FD(), 20, 64); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if v, err := unix.GetsockoptInt(s.FD(), unix.SOL_SOCKET, unix.SO_BUSY_POLL); err != nil || v != 20 {
		t.Errorf("SO_BUSY_POLL after the plugin set it: %d, %v; want 20", v, err)
	}
}

// TestTrafficPinned: the plugin's pinned-map mode.
func TestTrafficPinned(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	prog, err := redirect.Attach(v.HostIndex, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	dir := t.TempDir()
	// The plugin mounts a bpffs for the pod and pins the map in it.
	bpffs := filepath.Join(dir, v.Host)
	if err := os.MkdirAll(bpffs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("bpf", bpffs, "bpf", 0, ""); err != nil {
		t.Fatalf("mount bpffs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(bpffs, unix.MNT_DETACH) })
	if err := prog.Map().Pin(deviceplugin.PinnedMapPath(dir, v.Host)); err != nil {
		t.Fatal(err)
	}
	x, err := deviceplugin.PinnedXSKMap(dir, v.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	receive(t, v, x)
	if _, err := deviceplugin.PinnedXSKMap(dir, "nosuch0"); err == nil {
		t.Error("a missing pin: no error")
	}
}
