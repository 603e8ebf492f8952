//go:build linux

package metrics_test

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/xdpkit/xdpkit/metrics"
)

func TestAnnounce(t *testing.T) {
	t.Parallel()
	r, sock := running(t, 2)
	c := metrics.New()
	c.AddRunner("memory", 0, r, sock)
	dir := t.TempDir()
	a, err := metrics.Announce(dir, "test-tool", c)
	if err != nil {
		t.Fatal(err)
	}
	// A stale entry: a socket file nobody listens on, of a pid that
	// cannot exist.
	ln, err := net.Listen("unix", filepath.Join(dir, "2147483647.sock"))
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	procs, stale, err := metrics.Peers(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != 1 || procs[0].PID != os.Getpid() || procs[0].Name != "test-tool" || stale != 1 {
		t.Fatalf("peers %+v, %d stale; want this process and 1 stale", procs, stale)
	}
	found := false
	for _, s := range procs[0].Series {
		if s.Name == "xdpkit_rx_packets_total" && s.Labels["interface"] == "memory" && s.Value == 3 {
			found = true
		}
	}
	if !found {
		t.Errorf("no xdpkit_rx_packets_total{interface=memory} 3 in %+v", procs[0].Series)
	}
	// The socket's set-up, as the socket itself reports it.
	rs, u := sock.RingSizes(), sock.UMEM()
	want := metrics.Socket{Interface: sock.Interface(), Queue: sock.Queue(), ZeroCopy: sock.ZeroCopy(),
		RX: rs.RX, TX: rs.TX, Fill: rs.Fill, Completion: rs.Completion, Frames: u.FrameCount(), FrameSize: u.FrameSize()}
	if len(procs[0].Sockets) != 1 {
		t.Fatalf("sockets %+v, want one", procs[0].Sockets)
	}
	got := procs[0].Sockets[0]
	if got.FreeFrames <= 0 || got.FreeFrames > int(want.Frames) || rs.RX == 0 || rs.Fill == 0 {
		t.Errorf("socket %+v (rings %+v): sizes or free frames out of range", got, rs)
	}
	if got.FreeFrames = 0; got != want {
		t.Errorf("socket %+v, want %+v", got, want)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if procs, stale, err := metrics.Peers(dir); err != nil || len(procs) != 0 || stale != 0 {
		t.Errorf("after Close: %+v, %d stale, %v; want nothing", procs, stale, err)
	}
}
