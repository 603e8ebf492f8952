//go:build linux

package afxdp_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/internal/testframes"
	"github.com/xdpkit/xdpkit/packet"
	"github.com/xdpkit/xdpkit/ring"
	"github.com/xdpkit/xdpkit/umem"
)

// finishChecksum does what the kernel does for a CHECKSUM_PARTIAL packet
// (skb_checksum_help): sums from start to the end of frame, the checksum
// field's pseudo-header sum included, and stores the complement at
// start+off, a zero as 0xffff.
func finishChecksum(frame []byte, start, off uint16) {
	cs := packet.Checksum(frame[start:], 0)
	if cs == 0 {
		cs = 0xffff
	}
	binary.BigEndian.PutUint16(frame[start+off:], cs)
}

// TestPrepareL4Checksum checks that the pseudo-header sum it writes, once
// the kernel finishes the checksum, gives the checksum gopacket computed
// for the frame, for UDP and TCP over IPv4 (with and without VLAN tag and
// Ethernet padding) and IPv6, and that it refuses what it cannot prepare.
func TestPrepareL4Checksum(t *testing.T) {
	t.Parallel()
	tcp4 := testframes.Build(testframes.Spec{
		Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("198.51.100.2"), Proto: 6, TTL: 64,
		SrcPort: 40000, DstPort: 80, Seq: 1, Ack: 2, Window: 512, Payload: []byte("some tcp payload"),
	})
	padded := testframes.Build(testframes.Spec{ // 42 + 5 bytes, padded to 60 with zeros
		Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("198.51.100.2"), Proto: 17, TTL: 64,
		SrcPort: 1, DstPort: 2, Payload: []byte("hello"),
	})
	for _, tc := range []struct {
		name       string
		frame      []byte
		start, off uint16
	}{
		{"UDP4", testframes.UDP4, 34, 6},
		{"UDP4 VLAN", testframes.UDP4VLAN, 38, 6},
		{"UDP4 padded", padded, 34, 6},
		{"TCP4", tcp4, 34, 16},
		{"UDP6", testframes.UDP6, 54, 6},
		{"TCP6", testframes.TCP6, 54, 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := bytes.Clone(tc.frame)
			f := bytes.Clone(tc.frame)
			binary.BigEndian.PutUint16(f[tc.start+tc.off:], 0x1234) // whatever was there
			start, off, ok := afxdp.PrepareL4Checksum(f)
			if !ok || start != tc.start || off != tc.off {
				t.Fatalf("PrepareL4Checksum = %d, %d, %v; want %d, %d, true", start, off, ok, tc.start, tc.off)
			}
			if !bytes.Equal(f[:start+off], want[:start+off]) || !bytes.Equal(f[start+off+2:], want[start+off+2:]) {
				t.Fatal("PrepareL4Checksum changed more than the checksum field")
			}
			finishChecksum(f, start, off)
			if !bytes.Equal(f, want) {
				t.Fatalf("finished checksum %#04x, gopacket's %#04x", binary.BigEndian.Uint16(f[start+off:]), binary.BigEndian.Uint16(want[start+off:]))
			}
			testframes.CheckChecksums(t, f)
		})
	}
	trailer := append(bytes.Clone(testframes.UDP4), 0, 0, 1)
	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{"ICMP4", testframes.ICMP4},
		{"ICMP6", testframes.ICMP6},
		{"fragment", testframes.Frag4Rest},
		{"truncated", testframes.UDP4[:40]},
		{"non-zero trailer", trailer},
		{"not IP", make([]byte, 60)},
	} {
		f := bytes.Clone(tc.frame)
		if _, _, ok := afxdp.PrepareL4Checksum(f); ok || !bytes.Equal(f, tc.frame) {
			t.Errorf("%s: PrepareL4Checksum = %v (frame changed: %v), want false and the frame untouched", tc.name, ok, !bytes.Equal(f, tc.frame))
		}
	}
}

func TestTXFeaturesString(t *testing.T) {
	t.Parallel()
	for f, want := range map[afxdp.TXFeatures]string{
		0: "none",
		afxdp.TXFeatureTimestamp | afxdp.TXFeatureChecksum: "tx-timestamp,tx-checksum",
		afxdp.TXFeatureLaunchTime | 1<<7:                   "tx-launch-time-fifo,0x80",
	} {
		if got := f.String(); got != want {
			t.Errorf("TXFeatures(%#x) = %q, want %q", uint64(f), got, want)
		}
	}
	if !(afxdp.TXFeatureChecksum | afxdp.TXFeatureTimestamp).Has(afxdp.TXFeatureChecksum) || afxdp.TXFeatureChecksum.Has(afxdp.TXFeatureChecksum|afxdp.TXFeatureTimestamp) {
		t.Error("Has")
	}
}

// newMemoryTXMD is a memory socket on a UMEM with TX metadata.
func newMemoryTXMD(t testing.TB) (*afxdp.Socket, *afxdp.MemoryKernel) {
	t.Helper()
	return newMemory(t, &afxdp.Config{
		UMEMOptions: &umem.Options{FrameCount: 64, FrameSize: 2048, FillRingSize: 16, CompletionRingSize: 16, TXMetadata: true},
		RXRingSize:  16, TXRingSize: 16,
	})
}

// txFrame allocates a frame of s's pool and puts frame in it at off bytes
// from its start.
func txFrame(t testing.TB, s *afxdp.Socket, frame []byte, off uint64) afxdp.Desc {
	t.Helper()
	a, ok := s.Pool().Alloc()
	if !ok {
		t.Fatal("no free frame")
	}
	return afxdp.Desc{Addr: a + off, Len: uint32(copy(s.UMEM().Frame(a+off), frame))}
}

// TestTXMetadataMemory drives the requests through a memory socket: the
// metadata lands in front of the packet as the kernel reads it, the
// memory kernel's software timestamps come back through TXTimestamps in
// order, and the frame accounting stays right.
func TestTXMetadataMemory(t *testing.T) {
	s, k := newMemoryTXMD(t)
	u := s.UMEM()
	if u.TXMetadataLen() != umem.TXMetadataLen || umem.TXMetadataLen != 24 {
		t.Fatalf("TXMetadataLen = %d, umem.TXMetadataLen = %d", u.TXMetadataLen(), umem.TXMetadataLen)
	}
	descs := make([]afxdp.Desc, 8)
	for i := range descs {
		descs[i] = txFrame(t, s, testframes.UDP4, 256)
		if i%2 == 0 {
			if err := s.RequestTXTimestamp(&descs[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.RequestL4Checksum(&descs[i]); err != nil {
			t.Fatal(err)
		}
		if err := s.RequestLaunchTime(&descs[i], 12345); err != nil {
			t.Fatal(err)
		}
	}
	md := u.Bytes(descs[0].Addr-24, 24)
	if flags := binary.NativeEndian.Uint64(md); flags != unix.XDP_TXMD_FLAGS_TIMESTAMP|unix.XDP_TXMD_FLAGS_CHECKSUM|unix.XDP_TXMD_FLAGS_LAUNCH_TIME ||
		binary.NativeEndian.Uint16(md[8:]) != 34 || binary.NativeEndian.Uint16(md[10:]) != 6 || binary.NativeEndian.Uint64(md[16:]) != 12345 ||
		descs[0].Options != ring.TXMetadata {
		t.Fatalf("metadata %x, options %#x", md, descs[0].Options)
	}
	if flags := binary.NativeEndian.Uint64(u.Bytes(descs[1].Addr-24, 8)); flags != unix.XDP_TXMD_FLAGS_CHECKSUM|unix.XDP_TXMD_FLAGS_LAUNCH_TIME {
		t.Fatalf("second frame's flags %#x", flags)
	}
	before := clockTAI(t)
	if n, err := s.Transmit(descs); n != len(descs) || err != nil {
		t.Fatalf("Transmit: %d, %v", n, err)
	}
	if n := k.Transmitted(nil); n != len(descs) {
		t.Fatalf("Transmitted %d", n)
	}
	after := clockTAI(t)
	ts := make([]afxdp.TXTimestamp, 16)
	n := s.TXTimestamps(ts)
	if n != 4 {
		t.Fatalf("TXTimestamps = %d, want 4: %v", n, ts[:n])
	}
	for i, x := range ts[:n] {
		if x.Addr != descs[2*i].Addr || x.Time < before || x.Time > after {
			t.Errorf("timestamp %d: %+v, want addr %#x, time in [%d, %d]", i, x, descs[2*i].Addr, before, after)
		}
	}
	if n := s.TXTimestamps(ts); n != 0 {
		t.Errorf("TXTimestamps again: %d", n)
	}
	checkAccounting(t, s)
	if c := u.Counts(); c.App != 0 || c.TX != 0 {
		t.Errorf("counts after completion: %+v", c)
	}

	// More timestamps than the completion ring's 16 slots before anyone
	// asks: the oldest are dropped and counted.
	for range 3 {
		for i := range descs {
			descs[i] = txFrame(t, s, testframes.UDP4, 24)
			if err := s.RequestTXTimestamp(&descs[i]); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := s.Transmit(descs); n != len(descs) || err != nil {
			t.Fatalf("Transmit: %d, %v", n, err)
		}
		k.Transmitted(nil)
		s.Complete()
	}
	if n := s.TXTimestamps(ts); n != 16 || ts[15].Addr != descs[7].Addr {
		t.Errorf("TXTimestamps after 24 = %d, last %+v; want 16, the last one sent (%#x)", n, ts[15], descs[7].Addr)
	}
	if st, _ := s.Stats(); st.TXTimestampsLost != 8 {
		t.Errorf("TXTimestampsLost = %d, want 8", st.TXTimestampsLost)
	}
	checkAccounting(t, s)
}

func clockTAI(t testing.TB) uint64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_TAI, &ts); err != nil {
		t.Fatal(err)
	}
	return uint64(ts.Nano())
}

// TestTXMetadataRefused: requests and descriptors a UMEM with TX
// metadata cannot take, and XDP_TX_METADATA on one without, are refused
// with clear errors, and the frames stay the application's.
func TestTXMetadataRefused(t *testing.T) {
	s, k := newMemoryTXMD(t)
	u := s.UMEM()
	for _, tc := range []struct {
		name string
		try  func(d *afxdp.Desc) error
		off  uint64
	}{
		{"checksum past the packet", func(d *afxdp.Desc) error { return s.RequestTXChecksum(d, 40, uint16(d.Len)-40-1) }, 256},
		{"timestamp at the frame's start", func(d *afxdp.Desc) error { return s.RequestTXTimestamp(d) }, 0},
		{"checksum 23 bytes in", func(d *afxdp.Desc) error { return s.RequestTXChecksum(d, 34, 6) }, 23},
		{"L4 checksum of ICMP", func(d *afxdp.Desc) error {
			d.Len = uint32(copy(u.Frame(d.Addr), testframes.ICMP4))
			return s.RequestL4Checksum(d)
		}, 256},
		{"outside the UMEM", func(d *afxdp.Desc) error {
			d2 := afxdp.Desc{Addr: 1 << 40, Len: 60}
			return s.RequestTXTimestamp(&d2)
		}, 256},
	} {
		d := txFrame(t, s, testframes.UDP4, tc.off)
		saved := d
		if err := tc.try(&d); !errors.Is(err, afxdp.ErrInvalidDescriptor) {
			t.Errorf("%s: %v, want ErrInvalidDescriptor", tc.name, err)
		}
		if d.Options != saved.Options {
			t.Errorf("%s: refused request changed Options to %#x", tc.name, d.Options)
		}
		if err := s.Release([]afxdp.Desc{d}); err != nil {
			t.Fatal(err)
		}
	}

	// Transmit refuses a descriptor without room in front of it, and
	// metadata the kernel would fail every send on.
	good := txFrame(t, s, testframes.UDP4, 256)
	noRoom := txFrame(t, s, testframes.UDP4, 8)
	badFlags := txFrame(t, s, testframes.UDP4, 256)
	binary.NativeEndian.PutUint64(u.Bytes(badFlags.Addr-24, 8), 1<<6)
	badFlags.Options = ring.TXMetadata
	pastEnd := txFrame(t, s, testframes.UDP4, 256)
	if err := s.RequestTXChecksum(&pastEnd, 34, 6); err != nil {
		t.Fatal(err)
	}
	pastEnd.Len = 40 // shrunk after the request
	for _, d := range []afxdp.Desc{noRoom, badFlags, pastEnd} {
		n, err := s.Transmit([]afxdp.Desc{good, d})
		if n != 1 || !errors.Is(err, afxdp.ErrInvalidDescriptor) {
			t.Errorf("Transmit(good, %+v) = %d, %v; want 1, ErrInvalidDescriptor", d, n, err)
		}
		if st, ok := s.Pool().StateOf(d.Addr); !ok || st != umem.StateApp {
			t.Errorf("refused frame %#x is %v", d.Addr, st)
		}
		k.Transmitted(nil)
		s.Complete()
		good = txFrame(t, s, testframes.UDP4, 256) // the last one went
	}
	if err := s.Release([]afxdp.Desc{good, noRoom, badFlags, pastEnd}); err != nil {
		t.Fatal(err)
	}
	checkAccounting(t, s)
	if c := u.Counts(); c.App != 0 {
		t.Errorf("frames held at the end: %+v", c)
	}

	// A UMEM without TX metadata refuses the requests and the option.
	plain, _ := newMemory(t, &afxdp.Config{UMEMOptions: &umem.Options{FrameCount: 64, FrameSize: 2048, FillRingSize: 16, CompletionRingSize: 16}, RXRingSize: 16, TXRingSize: 16})
	d := txFrame(t, plain, testframes.UDP4, 256)
	for name, err := range map[string]error{
		"RequestTXChecksum":  plain.RequestTXChecksum(&d, 34, 6),
		"RequestTXTimestamp": plain.RequestTXTimestamp(&d),
		"RequestLaunchTime":  plain.RequestLaunchTime(&d, 1),
		"RequestL4Checksum":  plain.RequestL4Checksum(&d),
	} {
		if !errors.Is(err, afxdp.ErrInvalidDescriptor) || !bytes.Contains([]byte(err.Error()), []byte("umem.Options.TXMetadata")) {
			t.Errorf("%s on a UMEM without TX metadata: %v", name, err)
		}
	}
	d.Options = ring.TXMetadata
	if n, err := plain.Transmit([]afxdp.Desc{d}); n != 0 || !errors.Is(err, afxdp.ErrInvalidDescriptor) || !bytes.Contains([]byte(err.Error()), []byte("umem.Options.TXMetadata")) {
		t.Errorf("Transmit with XDP_TX_METADATA on a UMEM without: %d, %v", n, err)
	}
	if err := plain.Release([]afxdp.Desc{d}); err != nil {
		t.Fatal(err)
	}
	checkAccounting(t, plain)
}

// TestTXMetadataTransmitBytes: TransmitBytes and WritePacket leave room
// for the metadata in front of every frame's data.
func TestTXMetadataTransmitBytes(t *testing.T) {
	s, k := newMemoryTXMD(t)
	if n, err := s.TransmitBytes([][]byte{testframes.UDP4, testframes.UDP6}); n != 2 || err != nil {
		t.Fatalf("TransmitBytes: %d, %v", n, err)
	}
	var got [][]byte
	k.Transmitted(func(f []byte) { got = append(got, bytes.Clone(f)) })
	if len(got) != 2 || !bytes.Equal(got[0], testframes.UDP4) || !bytes.Equal(got[1], testframes.UDP6) {
		t.Fatalf("transmitted %x", got)
	}
	// The largest packet that fits a frame with the metadata in front.
	if n, err := s.TransmitBytes([][]byte{make([]byte, 2048-24)}); n != 1 || err != nil {
		t.Errorf("TransmitBytes of %d bytes: %d, %v", 2048-24, n, err)
	}
	if n, err := s.TransmitBytes([][]byte{make([]byte, 2048-23)}); n != 0 || !errors.Is(err, afxdp.ErrPacketTooLong) {
		t.Errorf("TransmitBytes of %d bytes: %d, %v; want ErrPacketTooLong", 2048-23, n, err)
	}
	descs := make([]afxdp.Desc, 1)
	if n, err := s.WritePacket(descs, make([]byte, 2048-24)); n != 1 || err != nil || descs[0].Addr%2048 != 24 {
		t.Errorf("WritePacket: %d, %v, %+v", n, err, descs[0])
	}
	if n, err := s.WritePacket(descs, make([]byte, 2048-23)); n != 0 || !errors.Is(err, afxdp.ErrInvalidPacket) {
		t.Errorf("WritePacket of one byte too many on a single-buffer socket: %d, %v", n, err)
	}
	if n, err := s.Transmit(descs); n != 1 || err != nil {
		t.Errorf("Transmit of WritePacket's frame: %d, %v", n, err)
	}
	k.Transmitted(nil)
	s.Complete()
	checkAccounting(t, s)
}

// TestTXMetadataAllocs: building requests, transmitting, completing and
// reading the timestamps allocates nothing.
func TestTXMetadataAllocs(t *testing.T) {
	s, k := newMemoryTXMD(t)
	descs := make([]afxdp.Desc, 4)
	ts := make([]afxdp.TXTimestamp, 8)
	addrs := make([]uint64, len(descs))
	var stamped int
	allocs := testing.AllocsPerRun(1000, func() {
		n := s.Pool().AllocInto(addrs)
		for i := range n {
			d := &descs[i]
			*d = afxdp.Desc{Addr: addrs[i] + 256, Len: uint32(copy(s.UMEM().Frame(addrs[i]+256), testframes.UDP4))}
			if s.RequestL4Checksum(d) != nil || s.RequestTXTimestamp(d) != nil || s.RequestLaunchTime(d, 1) != nil {
				panic("request refused")
			}
		}
		sent, _ := s.Transmit(descs[:n])
		_ = s.Release(descs[sent:n])
		k.Transmitted(nil)
		stamped += s.TXTimestamps(ts)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per round, want 0", allocs)
	}
	if stamped < 1000*len(descs) {
		t.Errorf("%d timestamps in 1000 rounds of %d", stamped, len(descs))
	}
	var buf [60]byte
	copy(buf[:], testframes.UDP4)
	if a := testing.AllocsPerRun(1000, func() { afxdp.PrepareL4Checksum(buf[:]) }); a != 0 {
		t.Errorf("PrepareL4Checksum: %v allocations, want 0", a)
	}
	checkAccounting(t, s)
}
