package stages

import (
	"encoding/binary"
	"testing"

	"github.com/xdpkit/xdpkit/internal/testframes"
	"github.com/xdpkit/xdpkit/packet"
)

// fastTuple is readTuples' fast paths for one frame: fastTuples4, then
// fastTuples for what it left.
func fastTuple(f []byte, t *frameTuple) bool {
	ts := [1]frameTuple{*t}
	rest := fastTuples4([][]byte{f}, ts[:])
	ok := rest == 0 || fastTuples([][]byte{f}, ts[:], rest) == 0
	*t = ts[0]
	return ok
}

// generalTuple is fastTuples alone for one frame (it reads the frames
// fastTuples4 reads too).
func generalTuple(f []byte, t *frameTuple) bool {
	ts := [1]frameTuple{*t}
	ok := fastTuples([][]byte{f}, ts[:], 1) == 0
	*t = ts[0]
	return ok
}

// tupleSeeds are frames at the edges of what fastTuple reads: each
// field it checks, on both sides.
var tupleSeeds = [][]byte{
	// UDP 1234 -> 53 over IPv4, with a byte of padding.
	testframes.Hex("020000000002 020000000001 0800 4500 0020 0000 4000 4011 0000 0a000001 0a000002 04d2 0035 000c 0000 61626364 00"),
	// The same in VLAN 100, and in a QinQ tag (read by Parse).
	testframes.Hex("020000000002 020000000001 8100 0064 0800 4500 0020 0000 4000 4011 0000 0a000001 0a000002 04d2 0035 000c 0000 61626364"),
	testframes.Hex("020000000002 020000000001 88a8 0064 0800 4500 0020 0000 4000 4011 0000 0a000001 0a000002 04d2 0035 000c 0000 61626364"),
	// UDP length 13, one past the packet (ErrMalformed), and 7.
	testframes.Hex("020000000002 020000000001 0800 4500 0020 0000 4000 4011 0000 0a000001 0a000002 04d2 0035 000d 0000 61626364"),
	testframes.Hex("020000000002 020000000001 0800 4500 0020 0000 4000 4011 0000 0a000001 0a000002 04d2 0035 0007 0000 61626364"),
	// A first fragment (MF) and a non-first one.
	testframes.Hex("020000000002 020000000001 0800 4500 0020 0000 2000 4011 0000 0a000001 0a000002 04d2 0035 0010 0000 61626364"),
	testframes.Hex("020000000002 020000000001 0800 4500 0020 0000 0001 4011 0000 0a000001 0a000002 04d2 0035 000c 0000 61626364"),
	// IPv4 total length 19, and one past the frame.
	testframes.Hex("020000000002 020000000001 0800 4500 0013 0000 4000 4011 0000 0a000001 0a000002 04d2 0035 000c 0000 61626364"),
	testframes.Hex("020000000002 020000000001 0800 4500 0021 0000 4000 4011 0000 0a000001 0a000002 04d2 0035 000c 0000 61626364"),
	// TCP SYN over IPv4, data offset 5, 4 and 6 (past the packet).
	testframes.Hex("020000000002 020000000001 0800 4500 0028 0000 4000 4006 0000 0a000001 0a000002 1f90 c350 00000000 00000000 5002 ffff 0000 0000"),
	testframes.Hex("020000000002 020000000001 0800 4500 0028 0000 4000 4006 0000 0a000001 0a000002 1f90 c350 00000000 00000000 4002 ffff 0000 0000"),
	testframes.Hex("020000000002 020000000001 0800 4500 0028 0000 4000 4006 0000 0a000001 0a000002 1f90 c350 00000000 00000000 6002 ffff 0000 0000"),
	// TCP SYN over IPv6, and UDP over IPv6 with a payload length one past
	// the frame.
	testframes.Hex("020000000002 020000000001 86dd 6000 0000 0014 0640 20010db8000000000000000000000001 20010db8000000000000000000000002 1f90 c350 00000000 00000000 5002 ffff 0000 0000"),
	testframes.Hex("020000000002 020000000001 86dd 6000 0000 000d 1140 20010db8000000000000000000000001 20010db8000000000000000000000002 04d2 0035 000c 0000 61626364"),
	// An IPv4-mapped IPv6 address: still family 6.
	testframes.Hex("020000000002 020000000001 86dd 6000 0000 000c 1140 00000000000000000000ffff0a000001 00000000000000000000ffff0a000002 04d2 0035 000c 0000 61626364"),
	// ICMP, ARP, and 33 bytes.
	testframes.Hex("020000000002 020000000001 0800 4500 001c 0000 4000 4001 0000 0a000001 0a000003 0800 0000 0001 0001"),
	testframes.Hex("ffffffffffff 020000000001 0806 0001 0800 06 04 0001 020000000001 0a000001 000000000000 0a000002"),
	make([]byte, 33),
}

// The tuples fastTuple reads are the ones packet.Parse and
// addrScratch.flowKey make, whenever it reads one.
func checkTuple(t *testing.T, frame []byte) (fast bool) {
	t.Helper()
	var fastT, slowT frameTuple
	var h packet.Headers
	var s addrScratch
	slowTuple(frame, &slowT, &h, &s)
	var generalT frameTuple
	if generalTuple(frame, &generalT) && generalT != slowT {
		t.Fatalf("frame %x:\nfastTuples %+v\nslowTuple %+v", frame, generalT, slowT)
	}
	if !fastTuple(frame, &fastT) {
		return false
	}
	if fastT != slowT {
		t.Fatalf("frame %x:\nfastTuple %+v\nslowTuple %+v", frame, fastT, slowT)
	}
	return true
}

func TestFastTuple(t *testing.T) {
	fast := 0
	for _, f := range tupleSeeds {
		if checkTuple(t, f) {
			fast++
		}
	}
	// UDP, in VLAN 100, TCP with offset 5, TCP over IPv6, IPv4-mapped.
	if fast != 5 {
		t.Errorf("fastTuple read %d of the seeds, want 5", fast)
	}
	// It reads the ports and addresses where they are.
	f := tupleSeeds[0]
	binary.BigEndian.PutUint32(f[26:], 0xc0000201)
	var ft frameTuple
	if !fastTuple(f, &ft) || ft.key.srcLo != 0xc0000201 || ft.key.meta != 4<<40|17<<32|1234<<16|53 || ft.l3Off != 14 || ft.l4Off != 34 {
		t.Errorf("fastTuple = %+v", ft)
	}
}

func FuzzFrameTuple(f *testing.F) {
	for _, s := range tupleSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, frame []byte) { checkTuple(t, frame) })
}
