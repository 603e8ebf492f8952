//go:build linux

package redirect_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/netlink"
)

const (
	xdpDrop     = 1
	xdpPass     = 2
	xdpRedirect = 4
)

// xdpMD is struct xdp_md, the context of BPF_PROG_TEST_RUN for XDP.
type xdpMD struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// run runs prog once on frame as if it arrived on ifindex's RX queue
// (ifindex 0: no context) and returns the XDP action.
func run(tb testing.TB, prog *ebpf.Program, frame []byte, ifindex, queue int) uint32 {
	tb.Helper()
	opts := &ebpf.RunOptions{Data: frame}
	if ifindex != 0 {
		opts.Context = xdpMD{DataEnd: uint32(len(frame)), IngressIfindex: uint32(ifindex), RxQueueIndex: uint32(queue)}
	}
	ret, err := prog.Run(opts)
	if err != nil {
		tb.Fatalf("BPF_PROG_TEST_RUN (ifindex %d, queue %d): %v", ifindex, queue, err)
	}
	return ret
}

// xdpInfo returns what the kernel reports as attached to ifindex.
func xdpInfo(tb testing.TB, ifindex int) netlink.XDPInfo {
	tb.Helper()
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		tb.Fatal(err)
	}
	return l.XDP
}

// wantAttached fails tb unless exactly prog is attached to ifindex in the
// netlink mode attached (netlink.XDPAttachedDrv or SKB).
func wantAttached(tb testing.TB, ifindex int, prog *ebpf.Program, attached uint8) {
	tb.Helper()
	id := progID(tb, prog)
	want := netlink.XDPInfo{Attached: attached, ProgID: id}
	switch attached {
	case netlink.XDPAttachedDrv:
		want.DrvProgID = id
	case netlink.XDPAttachedSKB:
		want.SKBProgID = id
	}
	if got := xdpInfo(tb, ifindex); got != want {
		tb.Errorf("XDP on ifindex %d = %s %+v, want %s %+v", ifindex, got, got, want, want)
	}
}

func wantDetached(tb testing.TB, ifindex int) {
	tb.Helper()
	if got := xdpInfo(tb, ifindex); got.IsAttached() {
		tb.Errorf("XDP on ifindex %d = %s, want none", ifindex, got)
	}
}

func progID(tb testing.TB, prog *ebpf.Program) uint32 {
	tb.Helper()
	info, err := prog.Info()
	if err != nil {
		tb.Fatal(err)
	}
	id, ok := info.ID()
	if !ok {
		tb.Fatal("kernel does not report program IDs")
	}
	return uint32(id)
}

// passProgram is a foreign XDP program that passes everything.
func passProgram(tb testing.TB) *ebpf.Program {
	tb.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "foreign_pass",
		Type:         ebpf.XDP,
		License:      "MIT",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, xdpPass), asm.Return()},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { prog.Close() })
	return prog
}

// userProgram builds a user's own redirect program and XSKMAP, the way an
// application with its own XDP code would.
func userProgram(tb testing.TB, queues int) (*ebpf.Program, *ebpf.Map) {
	tb.Helper()
	xsks, err := ebpf.NewMap(&ebpf.MapSpec{Name: "user_xsks", Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: uint32(queues)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { xsks.Close() })
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:    "user_redirect",
		Type:    ebpf.XDP,
		License: "MIT",
		Instructions: asm.Instructions{
			asm.LoadMem(asm.R2, asm.R1, 16, asm.Word), // rx_queue_index
			asm.LoadMapPtr(asm.R1, xsks.FD()),
			asm.Mov.Imm(asm.R3, xdpPass),
			asm.FnRedirectMap.Call(),
			asm.Return(),
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { prog.Close() })
	return prog, xsks
}

// setLinkXDPFD attaches (fd >= 0) or detaches (fd -1) an XDP program the
// old way, through RTM_SETLINK with IFLA_XDP, as ip link set dev X xdp
// does. Such an attachment is not a BPF link and outlives the process.
func setLinkXDPFD(ifindex, fd int, flags uint32) error {
	sock, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer unix.Close(sock)
	tv := unix.NsecToTimeval((2 * time.Second).Nanoseconds())
	if err := unix.SetsockoptTimeval(sock, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return err
	}
	if err := unix.Bind(sock, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}

	ne := binary.NativeEndian
	attr := func(b []byte, typ uint16, data []byte) []byte {
		b = ne.AppendUint16(b, uint16(4+len(data)))
		b = ne.AppendUint16(b, typ)
		b = append(b, data...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	xdp := attr(nil, unix.IFLA_XDP_FD, ne.AppendUint32(nil, uint32(int32(fd))))
	xdp = attr(xdp, unix.IFLA_XDP_FLAGS, ne.AppendUint32(nil, flags))

	msg := make([]byte, unix.SizeofNlMsghdr+unix.SizeofIfInfomsg)
	ne.PutUint16(msg[4:], unix.RTM_SETLINK)
	ne.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	ne.PutUint32(msg[8:], 1)
	ne.PutUint32(msg[unix.SizeofNlMsghdr+4:], uint32(ifindex))
	msg = attr(msg, unix.IFLA_XDP|unix.NLA_F_NESTED, xdp)
	ne.PutUint32(msg[0:], uint32(len(msg)))
	if err := unix.Sendto(sock, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}

	buf := make([]byte, 8192)
	n, _, err := unix.Recvfrom(sock, buf, 0)
	if err != nil {
		return fmt.Errorf("RTM_SETLINK ack: %w", err)
	}
	if n < unix.SizeofNlMsghdr+4 || ne.Uint16(buf[4:]) != unix.NLMSG_ERROR {
		return errors.New("RTM_SETLINK: unexpected answer")
	}
	if code := int32(ne.Uint32(buf[unix.SizeofNlMsghdr:])); code != 0 {
		return fmt.Errorf("RTM_SETLINK IFLA_XDP: %w", unix.Errno(-code))
	}
	return nil
}

// waitDetached polls until nothing is attached to ifindex, for at most
// timeout.
func waitDetached(tb testing.TB, ifindex int, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		x := xdpInfo(tb, ifindex)
		if !x.IsAttached() {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("XDP still attached to ifindex %d after %v: %s", ifindex, timeout, x)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
