package xsk

import "github.com/xdpkit/xdpkit/ring"

// AlignedFrame is UMEM.DescFrame for an aligned area of frames of
// 1<<shift bytes (UMEM.AlignedArea): d's Len bytes with capacity to its
// frame's end, or nil if d runs past its frame or the area. A shift and a
// slice, small enough to inline into the loops that call it.
func AlignedFrame(area []byte, shift uint, d ring.Desc) []byte {
	a := d.Addr
	end := (a>>shift + 1) << shift // of a's frame; 0 if a is past 2^64 - frame size
	if a+uint64(d.Len) > end || end > uint64(len(area)) {
		return nil
	}
	return area[a : a+uint64(d.Len) : end]
}
