package stages

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net/netip"

	"github.com/xdpkit/xdpkit/packet"
)

// The hash tables of FlowCounter and RateLimiter share the helpers below:
// a fixed number of slots allocated up front, a random seed per table, a
// key's slot picked by its hash and probed over a bounded window.
// LoadBalancer's rendezvous hash uses mix too.

// maxTableSlots bounds the tables of FlowCounter and RateLimiter: 2^24
// slots, 1 GiB of flows.
const maxTableSlots = 1 << 24

// probeWindow is how many consecutive slots a key may live in, from the
// slot its hash picks. A lookup reads at most this many slots (8 flow
// slots are 8 cache lines), so the cost per packet is bounded however
// full the table is.
const probeWindow = 8

// tableSlots checks a table capacity and rounds it up to a power of two.
func tableSlots(capacity, def int) (int, error) {
	switch {
	case capacity == 0:
		capacity = def
	case capacity < 0 || capacity > maxTableSlots:
		return 0, fmt.Errorf("invalid capacity %d: must be 0 (default %d) to %d", capacity, def, maxTableSlots)
	}
	return 1 << bits.Len(uint(capacity-1)), nil
}

// newSeed fills s with random hash keys. math/rand/v2's global generator
// is seeded from the operating system, so the keys cannot be guessed.
func newSeed(s []uint64) {
	for i := range s {
		s[i] = rand.Uint64()
	}
}

// mix multiplies a and b into 128 bits and folds the halves together.
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// addrScratch is room to copy an address into. It lives in the stage, so
// slicing it does not move anything to the heap.
type addrScratch [16]byte

// words returns a as two words and its family, 4 or 6, which tells IPv4
// from IPv4-mapped IPv6. An IPv4 address is its 4 bytes in lo.
//
// It avoids As16: As16 stores two words, and the copy of its result loads
// them as one 16-byte value, which store forwarding cannot serve; that
// stall took 9 ns an address, a third of FlowCounter.Handle's time.
// AppendBinary stores the words into s, where they are loaded as words.
func (s *addrScratch) words(a netip.Addr) (hi, lo, family uint64) {
	if a.Is4() {
		b := a.As4()
		return 0, uint64(binary.BigEndian.Uint32(b[:])), 4
	}
	// Without a zone, AppendBinary appends 16 bytes or, for the zero
	// Addr, none: s has room.
	b, _ := a.WithZone("").AppendBinary(s[:0])
	if len(b) < 16 {
		return 0, 0, 6
	}
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:16]), 6
}

// flowKey sets k to the 5-tuple of h as FlowCounter's and LoadBalancer's
// tables key it. It writes k in place: returning the 40 bytes by value
// doubled FlowCounter.Handle's time.
func (s *addrScratch) flowKey(k *flowKey, h *packet.Headers) {
	var family uint64
	k.srcHi, k.srcLo, family = s.words(h.SrcIP)
	k.dstHi, k.dstLo, _ = s.words(h.DstIP)
	k.meta = family<<40 | uint64(h.IPProto)<<32 | uint64(h.SrcPort)<<16 | uint64(h.DstPort)
}
