//go:build linux

package xsk

import (
	"fmt"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// enc is an unaligned-mode descriptor address: chunk base, offset in the
// top 16 bits.
func enc(base, off uint64) uint64 { return base | off<<unalignedOffsetShift }

// areaOffset returns where b starts in u's area, or -1.
func areaOffset(u *UMEM, b []byte) int {
	if b == nil {
		return -1
	}
	if len(b) == 0 {
		return int(u.size) // only Bytes(size, 0) returns an empty slice
	}
	return int(uintptr(unsafe.Pointer(&b[0])) - u.start)
}

func TestAlignedGeometry(t *testing.T) {
	t.Parallel()
	u := newTestUMEM(t, Config{FrameCount: 16, FrameSize: 2048}) // 32768 bytes
	for _, tc := range []struct {
		addr      uint64
		start     uint64
		index     uint64
		inside    bool
		frameSize int // len(Frame(addr)), -1 for nil
	}{
		{0, 0, 0, true, 2048},
		{256, 0, 0, true, 1792},
		{2047, 0, 0, true, 1},
		{2048, 2048, 1, true, 2048},
		{15*2048 + 100, 15 * 2048, 15, true, 1948},
		{32767, 15 * 2048, 15, true, 1},
		{32768, 32768, 0, false, -1},
		{enc(2048, 5), enc(2048, 5), 0, false, -1}, // aligned mode does not decode offsets
		{^uint64(0), ^uint64(2047), 0, false, -1},
	} {
		if got := u.DataAddr(tc.addr); got != tc.addr {
			t.Errorf("DataAddr(%#x) = %#x, want the address itself", tc.addr, got)
		}
		if got := u.FrameStart(tc.addr); got != tc.start {
			t.Errorf("FrameStart(%#x) = %#x, want %#x", tc.addr, got, tc.start)
		}
		if i, ok := u.index(tc.addr); ok != tc.inside || ok && i != tc.index {
			t.Errorf("index(%#x) = %d, %v; want %d, %v", tc.addr, i, ok, tc.index, tc.inside)
		}
		fr := u.Frame(tc.addr)
		if tc.frameSize < 0 && fr != nil || tc.frameSize >= 0 && (len(fr) != tc.frameSize || cap(fr) != tc.frameSize || areaOffset(u, fr) != int(tc.addr)) {
			t.Errorf("Frame(%#x): %d bytes (cap %d) at %d; want %d at %d", tc.addr, len(fr), cap(fr), areaOffset(u, fr), tc.frameSize, tc.addr)
		}
	}
	for _, tc := range []struct {
		addr uint64
		n    uint32
		ok   bool
	}{
		{0, 2048, true},
		{100, 4000, true}, // Bytes checks the UMEM's bounds, not the frame's
		{32760, 8, true},
		{32760, 9, false},
		{32768, 0, true},
		{32769, 0, false},
		{0, 32768, true},
		{0, 32769, false},
		{^uint64(0) - 1, 4, false}, // end wraps
		{1 << 63, 1, false},
	} {
		b := u.Bytes(tc.addr, tc.n)
		if tc.ok != (b != nil) || b != nil && (len(b) != int(tc.n) || cap(b) != int(tc.n) || areaOffset(u, b) != int(tc.addr)) {
			t.Errorf("Bytes(%#x, %d): %d bytes at %d, want ok=%v", tc.addr, tc.n, len(b), areaOffset(u, b), tc.ok)
		}
	}
}

func TestUnalignedGeometry(t *testing.T) {
	t.Parallel()
	for _, fs := range []uint64{2048, 3000, 4001, 4096} {
		t.Run(fmt.Sprint(fs), func(t *testing.T) {
			t.Parallel()
			const frames = 8
			u := newTestUMEM(t, Config{FrameCount: frames, FrameSize: uint32(fs), Unaligned: true})
			size := frames * fs
			for i := range uint64(frames) {
				base := i * fs
				for _, off := range []uint64{0, 1, 256, fs - 1} {
					for _, addr := range []uint64{enc(base, off), base + off} {
						data := base + off
						if got := u.DataAddr(addr); got != data {
							t.Errorf("DataAddr(%#x) = %#x, want %#x", addr, got, data)
						}
						if got := u.FrameStart(addr); got != base {
							t.Errorf("FrameStart(%#x) = %#x, want %#x", addr, got, base)
						}
						if got, ok := u.index(addr); !ok || got != i {
							t.Errorf("index(%#x) = %d, %v; want %d", addr, got, ok, i)
						}
						if fr := u.Frame(addr); len(fr) != int(fs-off) || areaOffset(u, fr) != int(data) {
							t.Errorf("Frame(%#x): %d bytes at %d, want %d at %d", addr, len(fr), areaOffset(u, fr), fs-off, data)
						}
						if b := u.Bytes(addr, uint32(fs-off)); len(b) != int(fs-off) || areaOffset(u, b) != int(data) {
							t.Errorf("Bytes(%#x, %d): %d bytes at %d", addr, fs-off, len(b), areaOffset(u, b))
						}
						if b := u.Bytes(addr, uint32(size-data+1)); b != nil {
							t.Errorf("Bytes(%#x, %d) runs past the UMEM but returned %d bytes", addr, size-data+1, len(b))
						}
						if got, ok := u.Within(addr, u.Frame(addr)); !ok || got != data {
							t.Errorf("Within(%#x, its Frame) = %#x, %v; want %#x", addr, got, ok, data)
						}
						for _, v := range []struct {
							n    uint32
							want Reason
						}{{1, OK}, {uint32(fs - off), OK}, {uint32(fs - off + 1), CrossesFrame}, {0, ZeroLength}} {
							if r := u.ValidTX(&unix.XDPDesc{Addr: addr, Len: v.n}); r != v.want {
								t.Errorf("ValidTX(%#x, %d) = %d, want %d", addr, v.n, r, v.want)
							}
						}
					}
				}
			}
			// An offset past the chunk points into the next frame: the
			// frame is the one the data address falls in.
			if got, ok := u.index(enc(fs, fs+5)); !ok || got != 2 || u.FrameStart(enc(fs, fs+5)) != 2*fs {
				t.Errorf("index(enc(%d, %d)) = %d, %v; FrameStart %#x", fs, fs+5, got, ok, u.FrameStart(enc(fs, fs+5)))
			}
			for _, addr := range []uint64{size, enc((frames-1)*fs, fs), enc(0, size), enc(size, 0), ^uint64(0)} {
				if _, ok := u.index(addr); ok || u.Frame(addr) != nil || u.Bytes(addr, 1) != nil {
					t.Errorf("%#x (data %#x) is outside, but index/Frame/Bytes accept it", addr, u.DataAddr(addr))
				}
				if r := u.ValidTX(&unix.XDPDesc{Addr: addr, Len: 1}); r != OutsideUMEM {
					t.Errorf("ValidTX(%#x) = %d, want OutsideUMEM", addr, r)
				}
			}
		})
	}
}

func TestValidTXAligned(t *testing.T) {
	t.Parallel()
	u := newTestUMEM(t, Config{FrameCount: 4, FrameSize: 4096})
	for _, tc := range []struct {
		addr uint64
		n    uint32
		want Reason
	}{
		{0, 1, OK},
		{0, 4096, OK},
		{4095, 1, OK},
		{3*4096 + 100, 3996, OK},
		{0, 0, ZeroLength},
		{16384, 0, ZeroLength}, // length is checked first
		{16384, 1, OutsideUMEM},
		{enc(0, 1), 1, OutsideUMEM},
		{0, 4097, CrossesFrame},
		{4095, 2, CrossesFrame},
		{3*4096 + 1, 4096, CrossesFrame}, // and past the UMEM
		{100, ^uint32(0), CrossesFrame},
	} {
		d := unix.XDPDesc{Addr: tc.addr, Len: tc.n, Options: 0xffffffff} // options are not ValidTX's business
		if r := u.ValidTX(&d); r != tc.want {
			t.Errorf("ValidTX(%#x, %d) = %d, want %d", tc.addr, tc.n, r, tc.want)
		}
	}
}

func TestWithin(t *testing.T) {
	t.Parallel()
	u := newTestUMEM(t, Config{FrameCount: 4, FrameSize: 2048})
	uu := newTestUMEM(t, Config{FrameCount: 4, FrameSize: 3000, Unaligned: true})
	a, ua := u.area, uu.area
	other := make([]byte, 4096)
	for _, tc := range []struct {
		name string
		u    *UMEM
		addr uint64
		b    []byte
		want int // area address, -1 for not ok
	}{
		{"whole frame", u, 2048 + 300, a[2048:4096], 2048},
		{"inside", u, 2048 + 300, a[2100:2200], 2100},
		{"before the descriptor's address", u, 2048 + 300, a[2048:2049], 2048},
		{"last byte", u, 2048 + 300, a[4095:4096], 4095},
		{"spare capacity does not matter", u, 2048, a[4000:4010:4096], 4000},
		{"last frame", u, 3 * 2048, a[3*2048 : 4*2048], 3 * 2048},
		{"empty", u, 2048 + 300, a[2100:2100], -1},
		{"nil", u, 2048 + 300, nil, -1},
		{"previous frame", u, 2048 + 300, a[0:10], -1},
		{"next frame", u, 2048 + 300, a[4096:4100], -1},
		{"straddles the end", u, 2048 + 300, a[4000:4100], -1},
		{"straddles the start", u, 2048 + 300, a[2040:2050], -1},
		{"longer than a frame", u, 2048, a[2048:6144], -1},
		{"not UMEM memory", u, 2048, other[100:200], -1},
		{"another UMEM", u, 0, ua[0:10], -1},
		{"unaligned: whole frame", uu, enc(3000, 100), ua[3000:6000], 3000},
		{"unaligned: last byte", uu, enc(3000, 100), ua[5999:6000], 5999},
		{"unaligned: straddles the end", uu, enc(3000, 100), ua[5999:6001], -1},
		{"unaligned: previous frame", uu, enc(3000, 100), ua[2999:3000], -1},
		{"unaligned: plain address", uu, 3100, ua[3000:3001], 3000},
	} {
		got, ok := tc.u.Within(tc.addr, tc.b)
		if tc.want < 0 && ok || tc.want >= 0 && (!ok || got != uint64(tc.want)) {
			t.Errorf("%s: Within(%#x, ...) = %d, %v; want %d", tc.name, tc.addr, got, ok, tc.want)
		}
	}
}
