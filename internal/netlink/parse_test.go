//go:build linux

package netlink

import (
	"encoding/binary"
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// message builds one netlink message with the given header fields.
func message(typ, flags uint16, seq, pid uint32, body []byte) []byte {
	b := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(body)+4)
	binary.NativeEndian.PutUint32(b[0:], uint32(unix.SizeofNlMsghdr+len(body)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	binary.NativeEndian.PutUint16(b[6:], flags)
	binary.NativeEndian.PutUint32(b[8:], seq)
	binary.NativeEndian.PutUint32(b[12:], pid)
	b = append(b, body...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func le32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// errCode encodes nlmsgerr.error: the negated errno.
func errCode(e unix.Errno) []byte { return le32(-uint32(e)) }

func newLinkBody() []byte {
	ifi := make([]byte, unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(ifi[4:], 7)
	b := appendAttr(ifi, unix.IFLA_IFNAME, []byte("veth0\x00"))
	b = appendAttr(b, unix.IFLA_MTU, le32(1500))
	b = appendAttr(b, unix.IFLA_NUM_RX_QUEUES, le32(4))
	b = appendAttr(b, unix.IFLA_NUM_TX_QUEUES, le32(3))
	xdp := appendAttr(nil, unix.IFLA_XDP_ATTACHED, []byte{XDPAttachedMulti})
	xdp = appendAttr(xdp, unix.IFLA_XDP_DRV_PROG_ID, le32(42))
	xdp = appendAttr(xdp, unix.IFLA_XDP_HW_PROG_ID, le32(43))
	return appendAttr(b, unix.IFLA_XDP|unix.NLA_F_NESTED, xdp)
}

func TestParseAnswer(t *testing.T) {
	t.Parallel()
	// A stale answer to another request comes first and must be skipped.
	stale := message(unix.RTM_NEWLINK, 0, 9, 100, []byte("garbage that is never parsed"))
	b := append(stale, message(unix.RTM_NEWLINK, 0, 5, 100, newLinkBody())...)
	got, done, err := parseAnswer(b, 5, 100)
	if err != nil || !done {
		t.Fatalf("parseAnswer: done %v, err %v", done, err)
	}
	want := Link{Index: 7, Name: "veth0", MTU: 1500, NumRXQueues: 4, NumTXQueues: 3,
		XDP: XDPInfo{Attached: XDPAttachedMulti, DrvProgID: 42, HWProgID: 43}}
	if got != want {
		t.Errorf("parseAnswer = %+v, want %+v", got, want)
	}
	if s := got.XDP.String(); s != "multi (driver prog 42, offload prog 43)" {
		t.Errorf("String() = %q", s)
	}

	if _, done, err := parseAnswer(b[:len(stale)], 5, 100); done || err != nil {
		t.Errorf("no matching message: done %v err %v, want not done", done, err)
	}
}

func TestParseError(t *testing.T) {
	t.Parallel()
	req := buildGetLink(3, 99, "")
	body := append(errCode(unix.ENODEV), req...)
	body = appendAttr(body, unix.NLMSGERR_ATTR_MSG, []byte("no such thing\x00"))
	_, done, err := parseAnswer(message(unix.NLMSG_ERROR, unix.NLM_F_ACK_TLVS, 3, 1, body), 3, 1)
	if !done || !errors.Is(err, unix.ENODEV) {
		t.Fatalf("done %v, err %v, want ENODEV", done, err)
	}
	if want := "no such device (kernel: no such thing)"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}

	capped := append(errCode(unix.EPERM), req[:unix.SizeofNlMsghdr]...)
	_, _, err = parseAnswer(message(unix.NLMSG_ERROR, unix.NLM_F_CAPPED, 3, 1, capped), 3, 1)
	if !errors.Is(err, unix.EPERM) {
		t.Errorf("capped error: %v, want EPERM", err)
	}
}

func TestParseMalformed(t *testing.T) {
	t.Parallel()
	good := message(unix.RTM_NEWLINK, 0, 1, 1, newLinkBody())
	bad := append([]byte(nil), good...)
	binary.NativeEndian.PutUint32(bad[0:], uint32(len(bad)+8))
	if _, _, err := parseAnswer(bad, 1, 1); err == nil {
		t.Error("message longer than the datagram: no error")
	}
	bad = append([]byte(nil), good...)
	// First attribute after ifinfomsg claims more bytes than remain.
	binary.NativeEndian.PutUint16(bad[unix.SizeofNlMsghdr+unix.SizeofIfInfomsg:], 0xfff0)
	if _, _, err := parseAnswer(bad, 1, 1); err == nil {
		t.Error("oversized attribute: no error")
	}
	if _, _, err := parseAnswer(message(unix.RTM_NEWLINK, 0, 1, 1, []byte{1, 2}), 1, 1); err == nil {
		t.Error("truncated ifinfomsg: no error")
	}
}

func TestXDPInfoHelpers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		x        XDPInfo
		attached bool
		id       uint32
		s        string
	}{
		{XDPInfo{}, false, 0, "none"},
		{XDPInfo{Attached: XDPAttachedDrv, ProgID: 5, DrvProgID: 5}, true, 5, "driver prog 5"},
		{XDPInfo{Attached: XDPAttachedSKB, ProgID: 6, SKBProgID: 6}, true, 6, "generic prog 6"},
		{XDPInfo{Attached: XDPAttachedHW, ProgID: 7, HWProgID: 7}, true, 7, "offload prog 7"},
		{XDPInfo{Attached: XDPAttachedMulti, DrvProgID: 8, HWProgID: 9}, true, 8, "multi (driver prog 8, offload prog 9)"},
	} {
		if tc.x.IsAttached() != tc.attached || tc.x.AnyProgID() != tc.id || tc.x.String() != tc.s {
			t.Errorf("%+v: IsAttached %v AnyProgID %d String %q, want %v %d %q",
				tc.x, tc.x.IsAttached(), tc.x.AnyProgID(), tc.x.String(), tc.attached, tc.id, tc.s)
		}
	}
}

func FuzzParseAnswer(f *testing.F) {
	f.Add(message(unix.RTM_NEWLINK, 0, 1, 1, newLinkBody()))
	f.Add(message(unix.NLMSG_ERROR, unix.NLM_F_ACK_TLVS, 1, 1, append(errCode(unix.ENODEV), buildGetLink(1, 1, "x")...)))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = parseAnswer(b, 1, 1)
	})
}
