//go:build linux

package main

import (
	"encoding/binary"
	"net"
	"testing"
)

func TestTXFlags(t *testing.T) {
	f := txFlags{Src: "10.235.0.1:9", Dst: "10.235.0.2:9", DstMAC: "02:bb:00:00:00:01", Size: 64}
	src := net.HardwareAddr{2, 0xbb, 0, 0, 0, 0}
	for _, size := range []int{64, 1500} {
		f.Size = size
		b, err := f.builder(src)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2048)
		n := b.Build(buf, 0, true)
		if n != size {
			t.Fatalf("frame of %d bytes, want %d (without FCS)", n, size)
		}
		fr := buf[:n]
		if dst, srcMAC := fr[0:6], fr[6:12]; string(dst) != "\x02\xbb\x00\x00\x00\x01" || string(srcMAC) != string(src) {
			t.Errorf("MACs % x > % x", srcMAC, dst)
		}
		if et := binary.BigEndian.Uint16(fr[12:]); et != 0x0800 || fr[23] != 17 {
			t.Errorf("EtherType %#x, IP protocol %d: want IPv4/UDP", et, fr[23])
		}
		if src, dst := fr[26:30], fr[30:34]; string(src) != "\x0a\xeb\x00\x01" || string(dst) != "\x0a\xeb\x00\x02" {
			t.Errorf("addresses % x > % x", src, dst)
		}
		if sp, dp := binary.BigEndian.Uint16(fr[34:]), binary.BigEndian.Uint16(fr[36:]); sp != 9 || dp != 9 {
			t.Errorf("ports %d > %d, want 9 > 9", sp, dp)
		}
	}
	for _, bad := range []txFlags{
		{Src: "10.235.0.1", Dst: f.Dst, DstMAC: f.DstMAC, Size: 64},
		{Src: f.Src, Dst: "x", DstMAC: f.DstMAC, Size: 64},
		{Src: f.Src, Dst: f.Dst, DstMAC: "02:bb", Size: 64},
		{Src: f.Src, Dst: f.Dst, DstMAC: f.DstMAC, Size: 20},
	} {
		if _, err := bad.builder(src); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}
