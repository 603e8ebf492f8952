//go:build linux

package afxdp_test

import (
	"errors"
	"math/bits"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/redirect"
)

// fuzzDescs makes descriptors from b, 3 bytes each: Options (bit 0 is
// XDP_PKT_CONTD, the rest noise the chain walk must ignore), then a
// little-endian length. Addresses number the descriptors.
func fuzzDescs(b []byte) []unix.XDPDesc {
	d := make([]unix.XDPDesc, len(b)/3)
	for i := range d {
		d[i] = unix.XDPDesc{Addr: uint64(i) << 12, Options: uint32(b[3*i]), Len: uint32(b[3*i+1]) | uint32(b[3*i+2])<<8}
	}
	return d
}

// refPacket is a packet the reference finds: descs[start:end].
type refPacket struct{ start, end int }

// refPackets is the obvious chain walk: a packet ends at each descriptor
// without XDP_PKT_CONTD. whole is how many descriptors the complete
// packets take; the rest is an unfinished packet.
func refPackets(descs []unix.XDPDesc) (pkts []refPacket, whole int) {
	for i, d := range descs {
		if d.Options&unix.XDP_PKT_CONTD == 0 {
			pkts = append(pkts, refPacket{whole, i + 1})
			whole = i + 1
		}
	}
	return pkts, whole
}

// FuzzPackets compares NextPacket, Packets (walked fully and stopped
// early), PacketLen and the whole-packet cut of ReceivePackets and
// Transmit with the reference on random descriptor chains.
func FuzzPackets(f *testing.F) {
	const c = unix.XDP_PKT_CONTD
	f.Add([]byte{})
	f.Add([]byte{0, 60, 0})                                     // one single-descriptor packet
	f.Add([]byte{c, 0, 15, c, 0, 15, 0, 54, 5, 0, 60, 0})       // 9014 bytes in three, then 60
	f.Add([]byte{0, 60, 0, c, 0, 15, c, 0, 15})                 // ends unfinished
	f.Add([]byte{c, 0, 0, c | 2, 1, 0, 0xfe, 0, 1, 0xff, 1, 1}) // noise bits, zero length, unfinished
	f.Fuzz(func(t *testing.T, b []byte) {
		descs := fuzzDescs(b)
		pkts, whole := refPackets(descs)

		// NextPacket at every packet start, and where a packet is unfinished.
		for _, p := range pkts {
			if got := afxdp.NextPacket(descs[p.start:]); got != p.end-p.start {
				t.Fatalf("NextPacket(descs[%d:]) = %d, want %d", p.start, got, p.end-p.start)
			}
		}
		if got := afxdp.NextPacket(descs[whole:]); got != 0 {
			t.Fatalf("NextPacket of the unfinished tail descs[%d:] = %d, want 0", whole, got)
		}
		if got := afxdp.WholePacketsForTest(descs); got != whole {
			t.Fatalf("wholePackets = %d, want %d", got, whole)
		}

		// Packets, walked fully: the reference's packets, in place.
		i, next := 0, 0
		for pkt := range afxdp.Packets(descs) {
			if i >= len(pkts) {
				t.Fatalf("Packets yielded a packet %d at descriptor %d; the reference has %d packets", i, next, len(pkts))
			}
			p := pkts[i]
			if len(pkt) != p.end-p.start || &pkt[0] != &descs[p.start] {
				t.Fatalf("packet %d: %d descriptors at %#x, want descs[%d:%d]", i, len(pkt), pkt[0].Addr, p.start, p.end)
			}
			for j, d := range pkt {
				if last := j == len(pkt)-1; last == (d.Options&unix.XDP_PKT_CONTD != 0) {
					t.Fatalf("packet %d descriptor %d of %d has Options %#x", i, j, len(pkt), d.Options)
				}
			}
			n := 0
			for _, d := range descs[p.start:p.end] {
				n += int(d.Len)
			}
			if got := afxdp.PacketLen(pkt); got != n {
				t.Fatalf("PacketLen(packet %d) = %d, want %d", i, got, n)
			}
			i++
			next = p.end
		}
		if i != len(pkts) || next != whole {
			t.Fatalf("Packets yielded %d packets covering %d descriptors; want %d covering %d", i, next, len(pkts), whole)
		}

		// Stopped early: no packet after the break (range-over-func would
		// panic if Packets called yield again).
		for _, stop := range []int{1, 2, len(pkts) / 2, len(pkts) - 1} {
			if stop < 1 || stop > len(pkts) {
				continue
			}
			n := 0
			for pkt := range afxdp.Packets(descs) {
				if &pkt[0] != &descs[pkts[n].start] {
					t.Fatalf("stopping after %d: packet %d is at the wrong place", stop, n)
				}
				n++
				if n == stop {
					break
				}
			}
			if n != stop {
				t.Fatalf("stopping after %d packets: got %d", stop, n)
			}
		}
	})
}

// refCheckPackets is the reference for checkPackets: the complete packets
// of at most maxFrags descriptors at the front, and what is wrong with
// the next one.
func refCheckPackets(descs []unix.XDPDesc, maxFrags int, txSize uint32) (int, error) {
	pkts, whole := refPackets(descs)
	if whole < len(descs) {
		pkts = append(pkts, refPacket{whole, len(descs)}) // unfinished
	}
	for _, p := range pkts {
		switch {
		case p.end-p.start > maxFrags && maxFrags == int(txSize):
			return p.start, afxdp.ErrLongerThanTXRingForTest
		case p.end-p.start > maxFrags:
			return p.start, afxdp.ErrTooManyFramesForTest
		case p.end == len(descs) && p.end > whole:
			return p.start, afxdp.ErrIncompleteForTest
		}
	}
	return len(descs), nil
}

// FuzzCheckPackets compares Transmit's packet structure check (chains
// that end, at most MaxPacketFrames descriptors, at most the TX ring)
// with the reference.
func FuzzCheckPackets(f *testing.F) {
	const c = unix.XDP_PKT_CONTD
	f.Add(uint8(18), uint8(11), []byte{c, 0, 15, c, 0, 15, 0, 54, 5, 0, 60, 0})
	f.Add(uint8(2), uint8(11), []byte{0, 60, 0, c, 0, 15, c, 0, 15, 0, 1, 0})                // second packet too long
	f.Add(uint8(4), uint8(2), []byte{0, 60, 0, c, 0, 15, c, 0, 15, c, 0, 15, c, 0, 15})      // limited by a 4-slot TX ring
	f.Add(uint8(18), uint8(11), []byte{0, 60, 0, c, 0, 15})                                  // unfinished
	f.Add(uint8(1), uint8(0), []byte{c, 0, 15})                                              // 1-slot ring, unfinished
	f.Add(uint8(0), uint8(11), []byte{0, 1, 0, 0, 1, 0, 0, 1, 0, c, 1, 0, c, 1, 0, 0, 1, 0}) // limit 1: singles only
	f.Fuzz(func(t *testing.T, frags, txLog uint8, b []byte) {
		txSize := uint32(1) << (txLog % 12)
		// As Open sets it: at most the TX ring, at least 1.
		maxFrags := min(1+int(frags)%64, int(txSize))
		descs := fuzzDescs(b)
		want, wantErr := refCheckPackets(descs, maxFrags, txSize)
		got, err := afxdp.CheckPacketsForTest(descs, maxFrags, txSize)
		if got != want || err != wantErr {
			t.Fatalf("checkPackets(%d descriptors, max %d, TX ring %d) = %d, %v; want %d, %v", len(descs), maxFrags, txSize, got, err, want, wantErr)
		}
		if err == afxdp.ErrIncompleteForTest && !errors.Is(err, afxdp.ErrInvalidPacket) ||
			err != nil && err != afxdp.ErrIncompleteForTest && !errors.Is(err, afxdp.ErrPacketTooLong) {
			t.Fatalf("checkPackets error %v: an unfinished packet must match ErrInvalidPacket, a long one ErrPacketTooLong", err)
		}
		if w := afxdp.WholePacketsForTest(descs[:got]); w != got {
			t.Fatalf("checkPackets took %d descriptors, of which only %d are whole packets", got, w)
		}
	})
}

// validRingSize is the reference for the ring size rule: zero (the
// default) or a power of two up to 1<<20.
func validRingSize(n uint32) bool { return n == 0 || n <= 1<<20 && bits.OnesCount32(n) == 1 }

// FuzzConfig checks Config.Validate against the documented rules: it never
// panics, accepts exactly the configurations that follow them, wraps
// ErrInvalidConfig when it refuses one, and leaves the Config alone.
func FuzzConfig(f *testing.F) {
	f.Add(uint32(0), uint32(0), 0, 0, int64(0), 0, 0, int64(0), int64(0), int64(0), false, false, 0)
	f.Add(uint32(2048), uint32(4096), 2, 64, int64(50*time.Microsecond), 8, 2, int64(200*time.Microsecond), int64(time.Second), int64(time.Second), true, true, 2)
	f.Add(uint32(1000), uint32(1<<21), 3, -1, int64(-1), -1, -1, int64(-1), int64(-1), int64(-1), true, false, 7)
	f.Add(uint32(1), uint32(1<<20), -1, 0, int64(0), 0, 0, int64(0), int64(0), int64(0), false, true, -1)
	f.Fuzz(func(t *testing.T, rx, tx uint32, bind, txBudget int, bpTimeout int64, bpBudget, deferIRQs int, groFlush, stall, retry int64,
		prefer, multiBuffer bool, xdpMode int) {
		c := afxdp.Config{
			RXRingSize: rx, TXRingSize: tx, Bind: afxdp.BindMode(bind), TXBudget: txBudget,
			BusyPoll:       afxdp.BusyPoll{Prefer: prefer, Timeout: time.Duration(bpTimeout), Budget: bpBudget},
			TXStallTimeout: time.Duration(stall), BindRetryTimeout: time.Duration(retry),
			MultiBuffer: multiBuffer, Redirect: &redirect.Options{Mode: redirect.Mode(xdpMode)},
		}
		orig := c
		err := c.Validate()
		ok := validRingSize(rx) && validRingSize(tx) &&
			bind >= int(afxdp.BindAuto) && bind <= int(afxdp.BindCopy) &&
			txBudget >= 0 && bpTimeout >= 0 && bpBudget >= 0 &&
			stall >= 0 && retry >= 0
		switch {
		case ok && err != nil:
			t.Fatalf("Validate(%+v) refused a valid configuration: %v", c, err)
		case !ok && err == nil:
			t.Fatalf("Validate(%+v) accepted an invalid configuration", c)
		case err != nil && !errors.Is(err, afxdp.ErrInvalidConfig):
			t.Fatalf("Validate error %v does not wrap ErrInvalidConfig", err)
		}
		if c != orig {
			t.Fatalf("Validate changed the Config: %+v, was %+v", c, orig)
		}
	})
}
