//go:build linux

package netlink

import (
	"encoding/binary"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

func le32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// attr encodes one attribute by hand, independently of the code under test.
func attr(typ uint16, data []byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(4+len(data)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func newLinkBody() []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(b[4:], 7)
	b = append(b, attr(unix.IFLA_IFNAME, []byte("veth0\x00"))...)
	b = append(b, attr(unix.IFLA_MTU, le32(1500))...)
	b = append(b, attr(unix.IFLA_NUM_RX_QUEUES, le32(4))...)
	b = append(b, attr(unix.IFLA_NUM_TX_QUEUES, le32(3))...)
	b = append(b, attr(unix.IFLA_LINK, le32(12))...)
	b = append(b, attr(unix.IFLA_LINK_NETNSID, le32(2))...)
	xdp := attr(unix.IFLA_XDP_ATTACHED, []byte{XDPAttachedMulti})
	xdp = append(xdp, attr(unix.IFLA_XDP_DRV_PROG_ID, le32(42))...)
	xdp = append(xdp, attr(unix.IFLA_XDP_HW_PROG_ID, le32(43))...)
	return append(b, attr(unix.IFLA_XDP|unix.NLA_F_NESTED, xdp)...)
}

func TestParseLink(t *testing.T) {
	t.Parallel()
	got, err := parseLink(newLinkBody())
	if err != nil {
		t.Fatal(err)
	}
	want := Link{Index: 7, Name: "veth0", MTU: 1500, NumRXQueues: 4, NumTXQueues: 3, PeerIndex: 12, PeerNetNSID: 2,
		XDP: XDPInfo{Attached: XDPAttachedMulti, DrvProgID: 42, HWProgID: 43}}
	if got != want {
		t.Errorf("parseLink = %+v, want %+v", got, want)
	}
	// Without IFLA_LINK_NETNSID the peer is in the caller's namespace.
	b := make([]byte, unix.SizeofIfInfomsg)
	b = append(b, attr(unix.IFLA_IFNAME, []byte("lo\x00"))...)
	if got, err := parseLink(b); err != nil || got.PeerNetNSID != -1 || got.Name != "lo" {
		t.Errorf("parseLink(lo) = %+v, %v; want PeerNetNSID -1", got, err)
	}
}

func TestParseMalformed(t *testing.T) {
	t.Parallel()
	if _, err := parseLink([]byte{1, 2}); err == nil {
		t.Error("truncated ifinfomsg: no error")
	}
	b := make([]byte, unix.SizeofIfInfomsg)
	b = append(b, 200, 0, byte(unix.IFLA_MTU), 0, 1, 2, 3, 4) // length past the end
	if _, err := parseLink(b); err == nil {
		t.Error("attribute longer than the message: no error")
	}
}

func TestBuildGetLink(t *testing.T) {
	t.Parallel()
	b, err := buildGetLink(9, "eth0", 3)
	if err != nil {
		t.Fatal(err)
	}
	if idx := int32(binary.NativeEndian.Uint32(b[4:])); idx != 9 {
		t.Errorf("ifi_index %d, want 9", idx)
	}
	ad, err := netlink.NewAttributeDecoder(b[unix.SizeofIfInfomsg:])
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint16]bool{}
	for ad.Next() {
		seen[ad.Type()] = true
		switch ad.Type() {
		case unix.IFLA_IFNAME:
			if s := ad.String(); s != "eth0" {
				t.Errorf("IFLA_IFNAME %q", s)
			}
		case iflaTargetNetnsid:
			if v := ad.Int32(); v != 3 {
				t.Errorf("IFLA_TARGET_NETNSID %d", v)
			}
		case unix.IFLA_EXT_MASK:
			if v := ad.Uint32(); v != rtextFilterSkipStats {
				t.Errorf("IFLA_EXT_MASK %#x", v)
			}
		}
	}
	if !seen[unix.IFLA_IFNAME] || !seen[iflaTargetNetnsid] || !seen[unix.IFLA_EXT_MASK] {
		t.Errorf("attributes %v", seen)
	}
	b, _ = buildGetLink(9, "", -1)
	if len(b) != unix.SizeofIfInfomsg+8 {
		t.Errorf("a request by index in the caller's namespace has %d bytes, want ifinfomsg and IFLA_EXT_MASK only", len(b))
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

func FuzzParseLink(f *testing.F) {
	f.Add(newLinkBody())
	f.Add(make([]byte, unix.SizeofIfInfomsg))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseLink(b)
	})
}
