//go:build linux

package deviceplugin_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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

// fakePlugin is the device plugin's side of the protocol, as its
// udsserver.go implements it: the first request must be /connect with a
// known pod, then /xsk_map_fd, /version, /config_busy_poll and /fin in
// any order until /fin.
type fakePlugin struct {
	ln      *net.UnixListener
	pods    map[string]bool
	devices map[string]int // netdev -> XSKMAP fd
	// misbehaviours
	silent       bool // never answer
	hangUp       bool // close after the first request
	errOnConnect bool // answer /connect with /error, then /host_nak
	ackNoFD      bool // /fd_ack without the fd
	version      string
	busyPoll     func(fd, timeout, budget int) error
	done         chan struct{}
}

func startPlugin(t *testing.T, path string, p *fakePlugin) *fakePlugin {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	p.ln, p.done = ln, make(chan struct{})
	if p.version == "" {
		p.version = "0.1"
	}
	go func() {
		defer close(p.done)
		for {
			c, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			p.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-p.done })
	return p
}

func (p *fakePlugin) serve(c *net.UnixConn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	read := func() (string, int, bool) {
		buf, oob := make([]byte, 64), make([]byte, syscall.CmsgSpace(4))
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			return "", -1, false
		}
		fd := -1
		if msgs, err := syscall.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if fds, err := syscall.ParseUnixRights(&m); err == nil && len(fds) > 0 {
					fd = fds[0]
				}
			}
		}
		return string(buf[:n]), fd, true
	}
	write := func(s string, fd int) {
		var oob []byte
		if fd >= 0 {
			oob = syscall.UnixRights(fd)
		}
		_, _, _ = c.WriteMsgUnix([]byte(s), oob, nil)
	}
	req, _, ok := read()
	if !ok || p.silent {
		if p.silent {
			time.Sleep(2 * time.Second)
		}
		return
	}
	if p.hangUp {
		return
	}
	words := strings.Split(req, ",")
	if len(words) != 2 || words[0] != "/connect" {
		write("/host_nak", -1)
		return
	}
	if p.errOnConnect {
		write("/error", -1)
		write("/host_nak", -1)
		return
	}
	if !p.pods[strings.ReplaceAll(words[1], " ", "")] {
		write("/host_nak", -1)
		return
	}
	write("/host_ok", -1)
	for {
		req, fd, ok := read()
		if !ok {
			return
		}
		if fd >= 0 {
			defer unix.Close(fd) // the pod's socket, received for busy poll
		}
		switch {
		case strings.HasPrefix(req, "/xsk_map_fd"):
			w := strings.Split(req, ",")
			mfd, known := -1, false
			if len(w) == 2 {
				mfd, known = p.devices[strings.ReplaceAll(w[1], " ", "")]
			}
			switch {
			case !known:
				write("/fd_nak", -1)
			case p.ackNoFD:
				write("/fd_ack", -1)
			default:
				write("/fd_ack", mfd)
			}
		case req == "/version":
			write(p.version, -1)
		case strings.HasPrefix(req, "/config_busy_poll"):
			w := strings.Split(req, ",")
			to, bud := 0, 0
			if len(w) == 3 {
				to, _ = strconv.Atoi(w[1])
				bud, _ = strconv.Atoi(w[2])
			}
			if fd < 0 || len(w) != 3 || p.busyPoll == nil || p.busyPoll(fd, to, bud) != nil {
				write("/config_busy_poll_nak", -1)
			} else {
				write("/config_busy_poll_ack", -1)
			}
		case req == "/fin":
			write("/fin_ack", -1)
			return
		default:
			write("/nak", -1)
		}
	}
}

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
	startPlugin(t, deviceplugin.SocketPath(dir, "eth9"), &fakePlugin{pods: map[string]bool{"pod-a": true}, devices: map[string]int{"eth9": m.FD()}})
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
		plugin fakePlugin
		host   string
		want   error
	}{
		{"unknown pod", fakePlugin{pods: pods, devices: devs}, "pod-b", deviceplugin.ErrHostRejected},
		{"plugin error", fakePlugin{pods: pods, devices: devs, errOnConnect: true}, "pod-a", deviceplugin.ErrPlugin},
		{"silent", fakePlugin{pods: pods, devices: devs, silent: true}, "pod-a", os.ErrDeadlineExceeded},
		{"hang up", fakePlugin{pods: pods, devices: devs, hangUp: true}, "pod-a", nil},
		{"ack without fd", fakePlugin{pods: pods, devices: devs, ackNoFD: true}, "pod-a", deviceplugin.ErrProtocol},
		{"other version", fakePlugin{pods: pods, devices: devs, version: "0.2"}, "pod-a", deviceplugin.ErrProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.plugin
			path := deviceplugin.SocketPath(filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")), "eth9")
			startPlugin(t, path, &p)
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
	startPlugin(t, deviceplugin.SocketPath(dir, v.Host), &fakePlugin{
		pods: map[string]bool{host: true}, devices: map[string]int{v.Host: prog.Map().FD()},
		busyPoll: func(fd, timeout, budget int) error {
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
