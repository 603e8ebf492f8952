//go:build linux

package netlink_test

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/netlink"
	"github.com/xdpkit/xdpkit/internal/testutils"
)

func TestLoopback(t *testing.T) {
	t.Parallel()
	want, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skipf("no lo in this namespace: %v", err)
	}
	byName, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	byIndex, err := netlink.LinkByIndex(want.Index)
	if err != nil {
		t.Fatal(err)
	}
	if byName != byIndex {
		t.Errorf("LinkByName(lo) = %+v, LinkByIndex(%d) = %+v", byName, want.Index, byIndex)
	}
	if byName.Index != want.Index || byName.Name != "lo" || byName.MTU != want.MTU {
		t.Errorf("LinkByName(lo) = %+v, want index %d, name lo, MTU %d", byName, want.Index, want.MTU)
	}
	if byName.NumRXQueues < 1 || byName.NumTXQueues < 1 {
		t.Errorf("lo queues rx %d tx %d, want >= 1", byName.NumRXQueues, byName.NumTXQueues)
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		get   func() (netlink.Link, error)
		errno bool // the kernel was asked and answered ENODEV
	}{
		{"missing name", func() (netlink.Link, error) { return netlink.LinkByName("xdpkit-nope0") }, true},
		{"missing index", func() (netlink.Link, error) { return netlink.LinkByIndex(1 << 30) }, true},
		{"empty name", func() (netlink.Link, error) { return netlink.LinkByName("") }, false},
		{"long name", func() (netlink.Link, error) { return netlink.LinkByName(strings.Repeat("x", 16)) }, false},
		{"zero index", func() (netlink.Link, error) { return netlink.LinkByIndex(0) }, false},
		{"negative index", func() (netlink.Link, error) { return netlink.LinkByIndex(-3) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.get()
			if !errors.Is(err, netlink.ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
			if tc.errno && !errors.Is(err, unix.ENODEV) {
				t.Errorf("err = %v, want unix.ENODEV reachable", err)
			}
			t.Log(err)
		})
	}
}

func TestVeth(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 4, MTU: 1400})

	l, err := netlink.LinkByIndex(v.HostIndex)
	if err != nil {
		t.Fatal(err)
	}
	if l.PeerIndex != v.PeerIndex || l.PeerNetNSID < 0 {
		t.Errorf("LinkByIndex(%d): peer index %d in netns id %d, want %d in the peer's namespace", v.HostIndex, l.PeerIndex, l.PeerNetNSID, v.PeerIndex)
	}
	want := netlink.Link{Index: v.HostIndex, Name: v.Host, MTU: 1400, NumRXQueues: 4, NumTXQueues: 4, PeerIndex: l.PeerIndex, PeerNetNSID: l.PeerNetNSID}
	if l != want {
		t.Errorf("LinkByIndex(%d) = %+v, want %+v", v.HostIndex, l, want)
	}
	byName, err := netlink.LinkByName(v.Host)
	if err != nil {
		t.Fatal(err)
	}
	if byName != l {
		t.Errorf("LinkByName(%s) = %+v, want %+v", v.Host, byName, l)
	}

	// The peer, read from here through its namespace's id.
	peer, err := netlink.LinkByIndexIn(l.PeerNetNSID, l.PeerIndex)
	if err != nil {
		t.Fatal(err)
	}
	if peer.Name != v.Peer || peer.MTU != 1400 || peer.PeerIndex != v.HostIndex {
		t.Errorf("LinkByIndexIn(%d, %d) = %+v, want %s with MTU 1400 and peer %d", l.PeerNetNSID, l.PeerIndex, peer, v.Peer, v.HostIndex)
	}
	if _, err := netlink.LinkByIndexIn(l.PeerNetNSID, 1<<30); !errors.Is(err, netlink.ErrNotFound) {
		t.Errorf("LinkByIndexIn of a missing index: err = %v, want ErrNotFound", err)
	}

	// The peer only exists in its namespace: the socket follows the thread.
	if _, err := netlink.LinkByName(v.Peer); !errors.Is(err, netlink.ErrNotFound) {
		t.Errorf("LinkByName(%s) outside its namespace: err = %v, want ErrNotFound", v.Peer, err)
	}
	v.InPeer(t, func() error {
		peer, err := netlink.LinkByName(v.Peer)
		if err != nil {
			return err
		}
		if peer.Index != v.PeerIndex || peer.NumRXQueues != 4 {
			t.Errorf("peer = %+v, want index %d with 4 RX queues", peer, v.PeerIndex)
		}
		return nil
	})
}

func TestXDPProgID(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 2})
	prog, id := passProgram(t)

	for _, tc := range []struct {
		flags    link.XDPAttachFlags
		attached uint8
		mode     string
	}{
		{link.XDPDriverMode, netlink.XDPAttachedDrv, "driver"},
		{link.XDPGenericMode, netlink.XDPAttachedSKB, "generic"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: v.HostIndex, Flags: tc.flags})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()

			got, err := netlink.LinkByIndex(v.HostIndex)
			if err != nil {
				t.Fatal(err)
			}
			want := netlink.XDPInfo{Attached: tc.attached, ProgID: id}
			if tc.attached == netlink.XDPAttachedDrv {
				want.DrvProgID = id
			} else {
				want.SKBProgID = id
			}
			if got.XDP != want {
				t.Errorf("XDP = %+v, want %+v", got.XDP, want)
			}
			if !got.XDP.IsAttached() || got.XDP.AnyProgID() != id || got.XDP.Mode() != tc.mode {
				t.Errorf("helpers: IsAttached %v AnyProgID %d Mode %q", got.XDP.IsAttached(), got.XDP.AnyProgID(), got.XDP.Mode())
			}
			t.Logf("attached: %s", got.XDP)

			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			got, err = netlink.LinkByIndex(v.HostIndex)
			if err != nil {
				t.Fatal(err)
			}
			if got.XDP != (netlink.XDPInfo{}) || got.XDP.IsAttached() {
				t.Errorf("after closing the link: XDP = %+v, want none", got.XDP)
			}
		})
	}
}

// passProgram loads an XDP program that returns XDP_PASS and returns it
// with its kernel ID.
func passProgram(tb testing.TB) (*ebpf.Program, uint32) {
	tb.Helper()
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
		tb.Fatal(err)
	}
	tb.Cleanup(func() { prog.Close() })
	info, err := prog.Info()
	if err != nil {
		tb.Fatal(err)
	}
	id, ok := info.ID()
	if !ok {
		tb.Fatal("kernel does not report program IDs")
	}
	return prog, uint32(id)
}

func TestNeighbor(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	mac, err := netlink.Neighbor(v.HostIndex, v.PeerIP)
	if err != nil {
		t.Fatal(err)
	}
	if mac.String() != v.PeerMAC.String() {
		t.Errorf("Neighbor(%s) = %s, want %s", v.PeerIP, mac, v.PeerMAC)
	}
	if _, err := netlink.Neighbor(v.HostIndex, netip.MustParseAddr("192.0.2.77")); !errors.Is(err, netlink.ErrNotFound) {
		t.Errorf("a missing entry: %v, want ErrNotFound", err)
	}
}
