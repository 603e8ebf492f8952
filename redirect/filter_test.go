//go:build linux

package redirect_test

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/filter"
	"github.com/xdpkit/xdpkit/internal/netlink"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/redirect"
)

func mustCompile(tb testing.TB, expr string, match, nomatch filter.Action, keep bool) *filter.Program {
	tb.Helper()
	f, err := filter.CompileWithOptions(expr, match, nomatch, &filter.CompileOptions{KeepManagement: keep})
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// The filter decides per frame between the socket, the stack and a drop;
// the program is checked with BPF_PROG_TEST_RUN, without attaching it.
func TestLoadWithFilter(t *testing.T) {
	testutils.RequirePrivileged(t)
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 2})
	udp := func(dport uint16) []byte {
		return testutils.UDPFrame(v.HostMAC, v.PeerMAC, v.PeerIP.As4(), v.HostIP.As4(), 1000, dport, []byte("hello"))
	}
	ssh := udp(22)
	ssh[14+9] = 6 // TCP to port 22

	xsk, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(xsk)

	for _, tc := range []struct {
		name           string
		expr           string
		match, nomatch filter.Action
		keep           bool
		frames         map[string][]byte
		want           map[string]uint32 // queue 1 has a socket (if the kernel takes an unbound one)
	}{
		{
			name: "redirect udp 9999", expr: "udp port 9999", match: filter.Redirect, nomatch: filter.Pass,
			frames: map[string][]byte{"9999": udp(9999), "8888": udp(8888)},
			want:   map[string]uint32{"9999": xdpRedirect, "8888": xdpPass},
		},
		{
			name: "drop udp 7777", expr: "udp dst port 7777", match: filter.Drop, nomatch: filter.Redirect,
			frames: map[string][]byte{"7777": udp(7777), "8888": udp(8888)},
			want:   map[string]uint32{"7777": xdpDrop, "8888": xdpRedirect},
		},
		{
			name: "never redirects", expr: "udp", match: filter.Drop, nomatch: filter.Pass,
			frames: map[string][]byte{"udp": udp(1), "ssh": ssh},
			want:   map[string]uint32{"udp": xdpDrop, "ssh": xdpPass},
		},
		{
			name: "keep management", expr: "", match: filter.Redirect, nomatch: filter.Redirect, keep: true,
			frames: map[string][]byte{"dns": udp(53), "ssh": ssh, "other": udp(9999)},
			want:   map[string]uint32{"dns": xdpPass, "ssh": xdpPass, "other": xdpRedirect},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := mustCompile(t, tc.expr, tc.match, tc.nomatch, tc.keep)
			prog, xsks, err := redirect.LoadWithFilter(2, f)
			if err != nil {
				t.Fatal(err)
			}
			defer xsks.Close()
			defer prog.Close()
			registered := xsks.Update(uint32(1), uint32(xsk), 0) == nil
			for name, frame := range tc.frames {
				want := tc.want[name]
				// Queue 0 has no socket: a redirect falls back to XDP_PASS.
				want0 := want
				if want0 == xdpRedirect {
					want0 = xdpPass
				}
				if got := run(t, prog, frame, v.HostIndex, 0); got != want0 {
					t.Errorf("%s on queue 0: action %d, want %d", name, got, want0)
				}
				if registered {
					if got := run(t, prog, frame, v.HostIndex, 1); got != want {
						t.Errorf("%s on queue 1: action %d, want %d", name, got, want)
					}
				}
			}
		})
	}
}

// End to end: Attach with a filter in driver mode on a veth, an AF_XDP
// socket on the queue, and frames from the peer. Only the frames the
// filter matches reach the socket; the others reach the kernel stack,
// where a UDP socket receives them.
func TestAttachFilterEndToEnd(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	f := mustCompile(t, "udp port 9999", filter.Redirect, filter.Pass, false)
	p, err := redirect.Attach(v.HostIndex, &redirect.Options{Mode: redirect.ModeDriver, Filter: f})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Filter() != f {
		t.Errorf("Filter() = %v, want %v", p.Filter(), f)
	}
	wantAttached(t, v.HostIndex, p.XDPProgram(), netlink.XDPAttachedDrv)

	s, err := afxdp.OpenIndex(v.HostIndex, 0, &afxdp.Config{Steering: p})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// The kernel's side: a UDP socket on the host address, port 8888.
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: v.HostIP.AsSlice(), Port: 8888})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	peer := v.OpenPeerPacketSocket(t)
	const n = 20
	frame := func(dport uint16, i int) []byte {
		payload := []byte("xdpkit-filter-" + string(rune('a'+i)))
		return testutils.UDPFrame(v.HostMAC, v.PeerMAC, v.PeerIP.As4(), v.HostIP.As4(), 4000, dport, payload)
	}
	for i := range n {
		for _, port := range []uint16{9999, 8888} {
			if err := peer.Send(frame(port, i)); err != nil {
				t.Fatal(err)
			}
		}
	}

	// The socket gets the n frames to port 9999, and nothing for 8888.
	got := 0
	descs := make([]unix.XDPDesc, 64)
	deadline := time.Now().Add(5 * time.Second)
	for got < n && time.Now().Before(deadline) {
		if err := s.Wait(100 * time.Millisecond); err != nil && !errors.Is(err, afxdp.ErrTimeout) {
			t.Fatal(err)
		}
		k, err := s.Receive(descs)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range descs[:k] {
			fr := s.Frame(d)
			if !bytes.Contains(fr, []byte("xdpkit-filter-")) {
				continue // the peer kernel's own traffic
			}
			if len(fr) < 42 || fr[36] != 0x27 || fr[37] != 0x0f {
				t.Errorf("the socket got a frame to port %d: % x", int(fr[36])<<8|int(fr[37]), fr)
			}
			got++
		}
		if err := s.Release(descs[:k]); err != nil {
			t.Fatal(err)
		}
	}
	if got != n {
		t.Errorf("the AF_XDP socket got %d frames to port 9999, want %d", got, n)
	}

	// The kernel gets the n datagrams to port 8888.
	buf := make([]byte, 2048)
	for i := range n {
		if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		k, _, err := conn.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("UDP socket, datagram %d of %d: %v", i+1, n, err)
		}
		if !strings.HasPrefix(string(buf[:k]), "xdpkit-filter-") {
			t.Errorf("UDP socket got %q", buf[:k])
		}
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	wantDetached(t, v.HostIndex)
}

func TestAttachProgramRejectsFilter(t *testing.T) {
	testutils.RequirePrivileged(t)
	prog, xsks := userProgram(t, 2)
	f := mustCompile(t, "udp", filter.Redirect, filter.Pass, false)
	p, err := redirect.AttachProgram(1, prog, xsks, &redirect.Options{Filter: f})
	if err == nil {
		p.Close()
		t.Fatal("AttachProgram with a filter succeeded")
	}
	if !strings.Contains(err.Error(), "Options.Filter is only for Attach") {
		t.Errorf("err = %v", err)
	}
}
