//go:build linux

package doctor

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/testutils"
)

// xdpDiagMsgBytes is struct xdp_diag_msg, written field by field like the
// other structs of include/uapi/linux/xdp_diag.h below.
func xdpDiagMsgBytes(ino uint32, cookie uint64) []byte {
	b := []byte{unix.AF_XDP, unix.SOCK_RAW, 0, 0} // family, type, pad
	b = binary.NativeEndian.AppendUint32(b, ino)
	b = binary.NativeEndian.AppendUint32(b, uint32(cookie)) // xdiag_cookie[0]: low half
	return binary.NativeEndian.AppendUint32(b, uint32(cookie>>32))
}

func u32s(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.NativeEndian.AppendUint32(b, v)
	}
	return b
}

func u64s(vs ...uint64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.NativeEndian.AppendUint64(b, v)
	}
	return b
}

// umemBytes is struct xdp_diag_umem: u64 size, then id, num_pages,
// chunk_size, headroom, ifindex, queue_id, flags, refs.
func umemBytes() []byte {
	return append(u64s(1<<22), u32s(3, 1024, 4096, 256, 7, 2, 1, 2)...)
}

// statsBytes is struct xdp_diag_stats: six u64 counters.
func statsBytes() []byte { return u64s(11, 12, 13, 14, 15, 16) }

func withAttrs(tb testing.TB, hdr []byte, add func(ae *netlink.AttributeEncoder)) []byte {
	tb.Helper()
	ae := netlink.NewAttributeEncoder()
	add(ae)
	b, err := ae.Encode()
	if err != nil {
		tb.Fatal(err)
	}
	return append(hdr, b...)
}

// fullMsg has every attribute xsk_diag sends, plus MEMINFO and one this
// code does not know.
func fullMsg(tb testing.TB) []byte {
	return withAttrs(tb, xdpDiagMsgBytes(4242, 0x1122334455667788), func(ae *netlink.AttributeEncoder) {
		ae.Bytes(1, u32s(7, 2)) // XDP_DIAG_INFO: ifindex, queue_id
		ae.Bytes(2, u32s(1000)) // XDP_DIAG_UID
		ae.Bytes(3, u32s(2048)) // XDP_DIAG_RX_RING
		ae.Bytes(4, u32s(1024)) // XDP_DIAG_TX_RING
		ae.Bytes(5, umemBytes())
		ae.Bytes(6, u32s(4096))                   // XDP_DIAG_UMEM_FILL_RING
		ae.Bytes(7, u32s(512))                    // XDP_DIAG_UMEM_COMPLETION_RING
		ae.Bytes(8, u32s(0, 1, 2, 3, 4, 5, 6, 7)) // XDP_DIAG_MEMINFO, ignored
		ae.Bytes(9, statsBytes())
		ae.Bytes(200, []byte{1, 2, 3}) // unknown
	})
}

func TestParseXDPDiag(t *testing.T) {
	full := XSK{
		Inode: 4242, Cookie: 0x1122334455667788, UID: 1000, HasUID: true,
		Bound: true, Ifindex: 7, Queue: 2,
		RX: 2048, TX: 1024, Fill: 4096, Completion: 512,
		UMEM: &XSKUMEM{Size: 1 << 22, ID: 3, NumPages: 1024, ChunkSize: 4096, Headroom: 256,
			Ifindex: 7, Queue: 2, Flags: 1, Refs: 2, ZeroCopy: true},
		Stats: &XSKStats{RXDropped: 11, RXInvalid: 12, RXFull: 13, FillRingEmpty: 14, TXInvalid: 15, TXRingEmpty: 16},
	}
	for _, tc := range []struct {
		name string
		msg  []byte
		want XSK
	}{
		{"all attributes", fullMsg(t), full},
		{"no attributes", xdpDiagMsgBytes(9, 1<<40), XSK{Inode: 9, Cookie: 1 << 40}},
		{"never bound", withAttrs(t, xdpDiagMsgBytes(9, 5), func(ae *netlink.AttributeEncoder) {
			ae.Bytes(1, u32s(0, 0))
			ae.Bytes(2, u32s(0))
		}), XSK{Inode: 9, Cookie: 5, HasUID: true}},
		{"longer structs from a newer kernel", withAttrs(t, xdpDiagMsgBytes(9, 5), func(ae *netlink.AttributeEncoder) {
			ae.Bytes(1, u32s(3, 1, 99))
			ae.Bytes(5, append(umemBytes(), u32s(99)...))
		}), XSK{Inode: 9, Cookie: 5, Bound: true, Ifindex: 3, Queue: 1, UMEM: &XSKUMEM{Size: 1 << 22, ID: 3,
			NumPages: 1024, ChunkSize: 4096, Headroom: 256, Ifindex: 7, Queue: 2, Flags: 1, Refs: 2, ZeroCopy: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseXDPDiag(tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v %+v %+v\nwant %+v %+v %+v", got, got.UMEM, got.Stats, tc.want, tc.want.UMEM, tc.want.Stats)
			}
		})
	}
}

func TestParseXDPDiagMalformed(t *testing.T) {
	hdr := func() []byte { return xdpDiagMsgBytes(1, 2) }
	one := func(typ uint16, data []byte) []byte {
		return withAttrs(t, hdr(), func(ae *netlink.AttributeEncoder) { ae.Bytes(typ, data) })
	}
	wrongFamily := hdr()
	wrongFamily[0] = unix.AF_PACKET
	for _, tc := range []struct {
		name, want string
		msg        []byte
	}{
		{"empty", "truncated xdp_diag_msg", nil},
		{"truncated header", "truncated xdp_diag_msg", hdr()[:15]},
		{"wrong family", "family", wrongFamily},
		{"truncated info", "truncated XDP_DIAG_INFO", one(1, u32s(7))},
		{"truncated uid", "truncated XDP_DIAG_UID", one(2, []byte{1, 2})},
		{"truncated rx ring", "truncated XDP_DIAG_RX_RING", one(3, []byte{1, 2, 3})},
		{"truncated tx ring", "truncated XDP_DIAG_TX_RING", one(4, nil)},
		{"truncated fill ring", "truncated XDP_DIAG_UMEM_FILL_RING", one(6, []byte{1})},
		{"truncated completion ring", "truncated XDP_DIAG_UMEM_COMPLETION_RING", one(7, []byte{1, 2})},
		{"truncated umem", "truncated XDP_DIAG_UMEM", one(5, umemBytes()[:39])},
		{"truncated stats", "truncated XDP_DIAG_STATS", one(9, statsBytes()[:47])},
		{"partial attribute header", "attributes", append(hdr(), 8, 0)},
		{"attribute longer than message", "attributes", append(hdr(), 12, 0, 1, 0, 0, 0, 0, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, err := parseXDPDiag(tc.msg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %+v, error %v; want an error with %q", x, err, tc.want)
			}
		})
	}
}

func FuzzParseXDPDiag(f *testing.F) {
	f.Add(fullMsg(f))
	f.Add(xdpDiagMsgBytes(1, 2))
	f.Add(withAttrs(f, xdpDiagMsgBytes(1, 2), func(ae *netlink.AttributeEncoder) {
		ae.Bytes(5, umemBytes()[:20])
		ae.Bytes(9, statsBytes())
	}))
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := parseXDPDiag(b)
		if err != nil {
			return
		}
		if len(b) < sizeofXDPDiagMsg || x.Inode != uint64(binary.NativeEndian.Uint32(b[4:])) {
			t.Fatalf("accepted %x as %+v", b, x)
		}
	})
}

// TestDumpXSKOn checks the request against struct xdp_diag_req and the
// handling of answers, without a kernel.
func TestDumpXSKOn(t *testing.T) {
	dial := func(answer func(req netlink.Message) ([]netlink.Message, error)) *netlink.Conn {
		c := nltest.Dial(func(reqs []netlink.Message) ([]netlink.Message, error) { return answer(reqs[0]) })
		t.Cleanup(func() { c.Close() })
		return c
	}
	reply := func(req netlink.Message, bodies ...[]byte) ([]netlink.Message, error) {
		var msgs []netlink.Message
		for _, b := range append(bodies, nil) { // nil: the final NLMSG_DONE
			msgs = append(msgs, netlink.Message{
				Header: netlink.Header{Type: unix.SOCK_DIAG_BY_FAMILY, Sequence: req.Header.Sequence, PID: req.Header.PID},
				Data:   b,
			})
		}
		return nltest.Multipart(msgs)
	}
	// errorReply is an NLMSG_ERROR. nltest.Error keeps the request's flags,
	// whose NLM_F_ROOT reads as NLM_F_ACK_TLVS in an error; the kernel sets
	// its own.
	errorReply := func(errno unix.Errno, req netlink.Message) ([]netlink.Message, error) {
		msgs, err := nltest.Error(int(errno), []netlink.Message{req})
		msgs[0].Header.Flags = 0
		return msgs, err
	}

	t.Run("request and two sockets", func(t *testing.T) {
		var got netlink.Message
		c := dial(func(req netlink.Message) ([]netlink.Message, error) {
			got = req
			return reply(req, fullMsg(t), xdpDiagMsgBytes(77, 1))
		})
		xs, err := dumpXSKOn(c)
		if err != nil {
			t.Fatal(err)
		}
		if got.Header.Type != 20 || got.Header.Flags != netlink.Request|netlink.Dump {
			t.Errorf("request header %+v, want type SOCK_DIAG_BY_FAMILY (20), flags request|dump", got.Header)
		}
		// xdp_diag_req: family AF_XDP, protocol, pad, ino 0, show
		// INFO|RING_CFG|UMEM|STATS (not MEMINFO), cookie 0.
		want := append([]byte{44, 0, 0, 0, 0, 0, 0, 0}, binary.NativeEndian.AppendUint32(nil, 1|2|4|16)...)
		want = append(want, make([]byte, 8)...)
		if !reflect.DeepEqual(got.Data, want) {
			t.Errorf("request body % x, want % x", got.Data, want)
		}
		if len(xs) != 2 || xs[0].Inode != 4242 || xs[1].Inode != 77 {
			t.Errorf("got %+v, want sockets 4242 and 77", xs)
		}
	})

	t.Run("ENOENT means no xsk_diag", func(t *testing.T) {
		c := dial(func(req netlink.Message) ([]netlink.Message, error) { return errorReply(unix.ENOENT, req) })
		_, err := dumpXSKOn(c)
		for _, target := range []error{ErrNoXSKDiag, errors.ErrUnsupported, unix.ENOENT} {
			if !errors.Is(err, target) {
				t.Errorf("%v: does not match %v", err, target)
			}
		}
		if err == nil || !strings.Contains(err.Error(), "CONFIG_XDP_SOCKETS_DIAG") {
			t.Errorf("%v: no hint", err)
		}
	})

	t.Run("other errno", func(t *testing.T) {
		c := dial(func(req netlink.Message) ([]netlink.Message, error) { return errorReply(unix.EINVAL, req) })
		_, err := dumpXSKOn(c)
		if !errors.Is(err, unix.EINVAL) || errors.Is(err, ErrNoXSKDiag) {
			t.Errorf("%v: want EINVAL, not ErrNoXSKDiag", err)
		}
	})

	t.Run("malformed answer", func(t *testing.T) {
		c := dial(func(req netlink.Message) ([]netlink.Message, error) {
			return reply(req, xdpDiagMsgBytes(1, 2), xdpDiagMsgBytes(3, 4)[:10])
		})
		if xs, err := dumpXSKOn(c); err == nil || !strings.Contains(err.Error(), "message 1") {
			t.Errorf("got %+v, %v; want an error for message 1", xs, err)
		}
	})
}

func TestSocketOwnersFakeProc(t *testing.T) {
	proc := t.TempDir()
	mk := func(pid, comm string, links map[string]string) {
		fd := filepath.Join(proc, pid, "fd")
		if err := os.MkdirAll(fd, 0o755); err != nil {
			t.Fatal(err)
		}
		if comm != "" {
			if err := os.WriteFile(filepath.Join(proc, pid, "comm"), []byte(comm+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for n, target := range links {
			if err := os.Symlink(target, filepath.Join(fd, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk("200", "beta", map[string]string{"0": "socket:[42]", "1": "socket:[43]"})
	mk("100", "alpha", map[string]string{"3": "socket:[42]", "4": "socket:[42]", "5": "pipe:[7]",
		"6": "socket:[x]", "7": "socket:[44", "8": "/dev/null"})
	mk("300", "", map[string]string{"0": "socket:[45]"}) // exited: no comm
	mk("self", "gamma", map[string]string{"0": "socket:[46]"})
	if err := os.MkdirAll(filepath.Join(proc, "400"), 0o755); err != nil { // exited: no fd
		t.Fatal(err)
	}

	got, err := socketOwners(proc)
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64][]Owner{
		42: {{100, "alpha"}, {200, "beta"}},
		43: {{200, "beta"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// openXSK opens an unbound AF_XDP socket and returns its fd and inode.
func openXSK(t *testing.T) (int, uint64) {
	t.Helper()
	if os.Geteuid() != 0 {
		testutils.SkipOrFail(t, "needs root (CAP_NET_RAW) to open an AF_XDP socket")
	}
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("AF_XDP socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	return fd, st.Ino
}

func selfComm(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(string(b), "\n")
}

func TestSocketOwners(t *testing.T) {
	_, ino := openXSK(t)
	owners, err := SocketOwners()
	if err != nil {
		t.Fatal(err)
	}
	want := []Owner{{os.Getpid(), selfComm(t)}}
	if got := owners[ino]; !reflect.DeepEqual(got, want) {
		t.Errorf("owners of socket:[%d] = %v, want %v", ino, got, want)
	}
}

func TestXDPSockets(t *testing.T) {
	_, ino := openXSK(t)
	xs, err := XDPSockets()
	if errors.Is(err, ErrNoXSKDiag) {
		if !errors.Is(err, errors.ErrUnsupported) || !errors.Is(err, unix.ENOENT) {
			t.Errorf("%v: does not match errors.ErrUnsupported and ENOENT", err)
		}
		// The kernel decides, so this skips under CI too.
		t.Skipf("kernel lacks CONFIG_XDP_SOCKETS_DIAG: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range xs {
		if x.Inode != ino {
			continue
		}
		if x.Bound || x.RX != 0 || x.TX != 0 || x.UMEM != nil {
			t.Errorf("unbound socket reported as %+v", x)
		}
		if want := []Owner{{os.Getpid(), selfComm(t)}}; !reflect.DeepEqual(x.Owners, want) {
			t.Errorf("owners %v, want %v", x.Owners, want)
		}
		return
	}
	t.Errorf("socket:[%d] not among the %d sockets dumped: %+v", ino, len(xs), xs)
}
