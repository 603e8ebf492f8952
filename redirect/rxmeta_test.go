package redirect_test

import (
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/xdpkit/xdpkit/redirect"
)

// littleEndian reports whether the host stores integers little end
// first, as the hex test areas below are written.
func littleEndian() bool { return binary.NativeEndian.Uint16([]byte{1, 0}) == 1 }

func mustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestParseRXMetadata(t *testing.T) {
	t.Parallel()
	if !littleEndian() {
		t.Skip("the areas below are written for a little-endian host")
	}
	for _, tc := range []struct {
		name string
		area string // the bytes in front of the frame's data
		want redirect.RXMetadata
		ok   bool
	}{
		{
			name: "all fields",
			area: "0807060504030201 d4c3b2a1 29000000 8100 6520 07014b58",
			want: redirect.RXMetadata{
				Timestamp: 0x0102030405060708, TimestampOK: true,
				Hash: 0xa1b2c3d4, HashType: redirect.RSSL3IPv4 | redirect.RSSL4 | redirect.RSSL4UDP, HashOK: true,
				VLANProto: 0x8100, VLANTCI: 0x2065, VLANOK: true,
			},
			ok: true,
		},
		{
			name: "hash only",
			area: "0000000000000000 78563412 08000000 0000 0000 02014b58",
			want: redirect.RXMetadata{Hash: 0x12345678, HashType: redirect.RSSL4, HashOK: true},
			ok:   true,
		},
		{
			// A field without its ok bit is not reported, even if not zero.
			name: "no ok bits",
			area: "0807060504030201 d4c3b2a1 29000000 8100 6520 00014b58",
			want: redirect.RXMetadata{},
			ok:   true,
		},
		{
			name: "longer headroom: only the last 24 bytes count",
			area: "ffffffffffffffff 0100000000000000 00000000 00000000 88a8 0a00 04014b58",
			want: redirect.RXMetadata{VLANProto: 0x88a8, VLANTCI: 10, VLANOK: true},
			ok:   true,
		},
		{name: "zero word (no room for the area)", area: "0807060504030201 d4c3b2a1 29000000 8100 6520 00000000"},
		{name: "other version", area: "0807060504030201 d4c3b2a1 29000000 8100 6520 07024b58"},
		{name: "other magic", area: "0807060504030201 d4c3b2a1 29000000 8100 6520 07014b59"},
		{name: "too short", area: "d4c3b2a1 29000000 8100 6520 07014b58"},
		{name: "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := redirect.ParseRXMetadata(mustHex(t, tc.area))
			if ok != tc.ok || got != tc.want {
				t.Errorf("ParseRXMetadata(%s) = %+v, %v; want %+v, %v", tc.area, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestRXMetadataString(t *testing.T) {
	t.Parallel()
	m := redirect.RXMetadata{Hash: 0xabc, HashType: redirect.RSSL4, HashOK: true, VLANProto: 0x8100, VLANTCI: 0x2065, VLANOK: true}
	if got, want := m.String(), "timestamp=- hash=0x00000abc/0x8 vlan=0x8100/8293"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := m.VLANID(); got != 0x065 {
		t.Errorf("VLANID() = %#x, want 0x65", got)
	}
}

func TestParseRXMetadataAllocs(t *testing.T) {
	area := mustHex(t, "0807060504030201 d4c3b2a1 29000000 8100 6520 07014b58")
	if n := testing.AllocsPerRun(100, func() { _, _ = redirect.ParseRXMetadata(area) }); n != 0 {
		t.Errorf("ParseRXMetadata allocates %v times per call, want 0", n)
	}
}

func FuzzParseRXMetadata(f *testing.F) {
	f.Add(make([]byte, redirect.RXMetadataSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, ok := redirect.ParseRXMetadata(b)
		if !ok && m != (redirect.RXMetadata{}) {
			t.Fatalf("not ok but %+v", m)
		}
		if ok && (!m.TimestampOK && m.Timestamp != 0 || !m.HashOK && (m.Hash != 0 || m.HashType != 0) || !m.VLANOK && (m.VLANProto != 0 || m.VLANTCI != 0)) {
			t.Fatalf("a field without its ok bit: %+v", m)
		}
	})
}
