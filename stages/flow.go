package stages

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"strconv"

	"github.com/xdpkit/xdpkit/packet"
	"github.com/xdpkit/xdpkit/pipeline"
)

// DefaultFlowCapacity is the number of flows a FlowCounter tracks when
// NewFlowCounter is given 0.
const DefaultFlowCapacity = 4096

// ProtoClass is a protocol category a FlowCounter counts packets in.
type ProtoClass uint8

// Protocol classes. An IP packet is classed by its L4 protocol number
// (after IPv6 extension headers), whatever the IP version.
const (
	ClassTCP     ProtoClass = iota // IP protocol 6
	ClassUDP                       // IP protocol 17
	ClassICMP                      // IP protocol 1
	ClassICMPv6                    // IP protocol 58
	ClassOtherIP                   // any other IP protocol
	ClassARP                       // EtherType 0x0806
	ClassOther                     // any other EtherType
	NumProtoClasses
)

var protoClassNames = [NumProtoClasses]string{"tcp", "udp", "icmp", "icmp6", "other-ip", "arp", "other"}

// String returns the name Protocols uses: "tcp", "udp", "icmp", "icmp6",
// "other-ip", "arp" or "other".
func (c ProtoClass) String() string {
	if c < NumProtoClasses {
		return protoClassNames[c]
	}
	return "ProtoClass(" + strconv.Itoa(int(c)) + ")"
}

// classify returns the class of a frame that parsed.
func classify(h *packet.Headers) ProtoClass {
	if !h.IPv4 && !h.IPv6 {
		if h.EtherType == packet.EtherTypeARP {
			return ClassARP
		}
		return ClassOther
	}
	switch h.IPProto {
	case packet.ProtoTCP:
		return ClassTCP
	case packet.ProtoUDP:
		return ClassUDP
	case packet.ProtoICMP:
		return ClassICMP
	case packet.ProtoICMPv6:
		return ClassICMPv6
	}
	return ClassOtherIP
}

// ProtoName returns the name Flow's JSON uses for an IP protocol number:
// "tcp", "udp", "icmp", "icmp6", a few other well-known names, or the
// number in decimal.
func ProtoName(proto uint8) string {
	switch proto {
	case packet.ProtoTCP:
		return "tcp"
	case packet.ProtoUDP:
		return "udp"
	case packet.ProtoICMP:
		return "icmp"
	case packet.ProtoICMPv6:
		return "icmp6"
	case 2:
		return "igmp"
	case 47:
		return "gre"
	case 50:
		return "esp"
	case 51:
		return "ah"
	case 132:
		return "sctp"
	}
	return strconv.Itoa(int(proto))
}

// parseProtoName is the inverse of ProtoName.
func parseProtoName(s string) (uint8, error) {
	for p := range 256 {
		if ProtoName(uint8(p)) == s {
			return uint8(p), nil
		}
	}
	return 0, fmt.Errorf("unknown IP protocol %q", s)
}

// Flow is one 5-tuple's counters, as TopN returns them. Ports are 0 for
// protocols without ports and for non-first fragments.
type Flow struct {
	Src     netip.Addr `json:"src"`
	Dst     netip.Addr `json:"dst"`
	SrcPort uint16     `json:"sport"`
	DstPort uint16     `json:"dport"`
	Proto   uint8      `json:"proto"` // JSON: the ProtoName, "udp"
	Packets uint64     `json:"packets"`
	Bytes   uint64     `json:"bytes"` // whole frames, Ethernet header included
}

// flowJSON is Flow as JSON has it: the protocol by name.
type flowJSON struct {
	Src     netip.Addr `json:"src"`
	Dst     netip.Addr `json:"dst"`
	SrcPort uint16     `json:"sport"`
	DstPort uint16     `json:"dport"`
	Proto   string     `json:"proto"`
	Packets uint64     `json:"packets"`
	Bytes   uint64     `json:"bytes"`
}

// MarshalJSON writes f with the protocol as its ProtoName:
//
//	{"src":"10.0.0.1","dst":"10.0.0.2","sport":1234,"dport":53,"proto":"udp","packets":3,"bytes":222}
func (f Flow) MarshalJSON() ([]byte, error) {
	return json.Marshal(flowJSON{f.Src, f.Dst, f.SrcPort, f.DstPort, ProtoName(f.Proto), f.Packets, f.Bytes})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (f *Flow) UnmarshalJSON(b []byte) error {
	var j flowJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	proto, err := parseProtoName(j.Proto)
	if err != nil {
		return err
	}
	*f = Flow{j.Src, j.Dst, j.SrcPort, j.DstPort, proto, j.Packets, j.Bytes}
	return nil
}

// flowKey is a 5-tuple in words, compared and hashed a word at a time
// (comparing a struct of bytes calls runtime.memequal).
type flowKey struct {
	srcHi, srcLo uint64 // see addrScratch.words
	dstHi, dstLo uint64
	// meta is family<<40 | proto<<32 | sport<<16 | dport. The family
	// is 4 or 6, so 0 marks an empty slot.
	meta uint64
}

func (k *flowKey) equal(o *flowKey) bool {
	return k.meta == o.meta && k.srcLo == o.srcLo && k.dstLo == o.dstLo && k.srcHi == o.srcHi && k.dstHi == o.dstHi
}

func (k *flowKey) family() uint8 { return uint8(k.meta >> 40) }

// wordsAddr is the inverse of addrScratch.words.
func wordsAddr(hi, lo, family uint64) netip.Addr {
	if family == 4 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(lo))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	return netip.AddrFrom16(b)
}

// flowSlot is one table entry: 64 bytes, a cache line.
type flowSlot struct {
	key     flowKey
	packets uint64
	bytes   uint64
	seen    uint64 // FlowCounter.tick when last seen
}

// FlowCounter is a stage that counts packets and bytes per 5-tuple
// (source and destination address, ports, IP protocol; IPv4 and IPv6), and
// packets per protocol class. It passes every packet on (Continue).
//
// Flows live in a table allocated by NewFlowCounter; it never grows. A
// flow's hash picks a slot, and the flow lives in that slot or one of the
// next 7. When all 8 hold other flows, the new flow replaces the one seen
// least recently among them, and Overflow counts the eviction: the evicted
// flow's counts are lost (the protocol counts keep them), and the new
// flow starts from its first packet. So a table can overflow before every
// slot is used; a table with twice the slots of the expected number of
// flows rarely does. The hash is seeded at random for each FlowCounter,
// so senders cannot pick addresses that collide.
//
// A FlowCounter is a [pipeline.FrameStage]: it reads each frame's tuple
// from its bytes (the common UDP and TCP frames directly, any other
// through packet.Parse), so a Runner need not parse for it, and it takes
// the Runner's batches whole, hashing every frame of a batch before it
// looks up any, so that the table's cache misses overlap. Frames that do
// not parse (packet.Parse fails) are counted by Malformed only. Bytes are
// whole frames, Ethernet header included.
//
// Handle and HandleFrames allocate nothing. A FlowCounter is not safe for
// concurrent use: call its other methods on the Runner's goroutine (from
// a Config.Tick, for one) or after Run has returned.
type FlowCounter struct {
	slots     []flowSlot
	mask      uint64
	window    int
	seed      keySeed
	tick      uint64 // packets seen, the clock for least-recently-seen
	used      int
	overflow  uint64
	malformed uint64
	protos    [NumProtoClasses]uint64
	scratch   addrScratch
	hdr       packet.Headers // for frames fastTuple does not read
	sink      uint64         // the loads that start a batch's cache misses
	tuples    [tupleBatch]frameTuple
}

// tupleBatch is how many frames a stage reads the tuples of before it
// looks them up in its table.
const tupleBatch = 64

var _ interface {
	pipeline.FrameStage
	pipeline.Named
} = (*FlowCounter)(nil)

// NewFlowCounter returns a FlowCounter with room for capacity flows,
// rounded up to a power of two; 0 means DefaultFlowCapacity. The table
// takes 64 bytes a flow, allocated here. capacity must be at most 2^24.
func NewFlowCounter(capacity int) (*FlowCounter, error) {
	n, err := tableSlots(capacity, DefaultFlowCapacity)
	if err != nil {
		return nil, fmt.Errorf("stages: flow counter: %w", err)
	}
	c := &FlowCounter{
		slots:  make([]flowSlot, n),
		mask:   uint64(n - 1),
		window: min(probeWindow, n),
		seed:   newKeySeed(),
	}
	return c, nil
}

// Name returns "flows".
func (c *FlowCounter) Name() string { return "flows" }

// Raw marks FlowCounter as a stage that reads only Packet.Data.
func (c *FlowCounter) Raw() {}

// InPlace marks the FlowCounter as a FrameStage that leaves its frames as
// they are (pipeline.InPlace).
func (c *FlowCounter) InPlace() {}

// Handle counts p.Data and returns Continue.
func (c *FlowCounter) Handle(p *pipeline.Packet) pipeline.Verdict {
	frames := [1][]byte{p.Data}
	c.countFrames(frames[:])
	return pipeline.Continue
}

// HandleFrames counts the frames of b, which it passes on (Continue).
func (c *FlowCounter) HandleFrames(b *pipeline.FrameBatch) {
	for start := 0; start < len(b.Frames); start += tupleBatch {
		c.countFrames(b.Frames[start:min(start+tupleBatch, len(b.Frames))])
	}
}

// countFrames counts at most tupleBatch frames, in passes over them
// without a call per frame on the common path: read the tuples, hash
// them and load their slots, count.
func (c *FlowCounter) countFrames(frames [][]byte) {
	readTuples(frames, c.tuples[:], &c.hdr, &c.scratch)
	tuples := c.tuples[:len(frames)]
	// Load the batch's slots before any count, in a loop of their own:
	// its few instructions per frame let many of the loads be in flight
	// at once, so their cache misses overlap.
	c.sink = c.hashTuples(tuples, c.sink)
	for i := 0; i < len(frames); i++ {
		// The common case in a loop of its own, without calls (each
		// would store and reload its values), up to the first frame it
		// leaves: count sorts that one out.
		if i += c.countHits(frames[i:], tuples[i:]); i == len(frames) {
			break
		}
		c.tick++
		c.count(&tuples[i].key, tuples[i].hash, uint64(len(frames[i])))
	}
}

// hashTuples sets the hash of the flow of each of tuples, for
// IP frames, and adds a word of the slot it picks to sink, which it
// returns (so that the load is not optimized away).
//
//go:noinline because inlined into its caller, which calls, its values would be spilled on every iteration
func (c *FlowCounter) hashTuples(tuples []frameTuple, sink uint64) uint64 {
	slots, mask := c.slots, c.mask
	for i := range tuples {
		if t := &tuples[i]; !t.bad && t.class < ClassARP {
			h := t.key.hash(&c.seed)
			t.hash = h
			sink += slots[h&mask].key.meta
		}
	}
	return sink
}

// countHits is countFrames' common case: it counts frames that did not
// parse, that are not IP, and of flows in the slot their hash picks, and
// stops at the first other frame (whose protocol it counted, not its
// tick), returning its index, or len(frames).
//
//go:noinline because inlined into its caller, which calls, its values would be spilled on every iteration
func (c *FlowCounter) countHits(frames [][]byte, tuples []frameTuple) int {
	tuples = tuples[:len(frames)]
	slots, mask, tick := c.slots, c.mask, c.tick
	for i, f := range frames {
		t := &tuples[i]
		if t.bad {
			tick++
			c.malformed++
			continue
		}
		c.protos[t.class]++
		if t.class >= ClassARP { // not IP: no flow
			tick++
			continue
		}
		// Most frames are of a flow in the slot its hash picks.
		s := &slots[t.hash&mask]
		if !s.key.equal(&t.key) {
			c.tick = tick
			return i
		}
		tick++
		s.packets++
		s.bytes += uint64(len(f))
		s.seen = tick
	}
	c.tick = tick
	return len(frames)
}

// count adds a packet of n bytes to k's flow, whose hash is i, making
// room for it if need be.
func (c *FlowCounter) count(k *flowKey, i, n uint64) {
	victim := &c.slots[i&c.mask]
	for range c.window {
		s := &c.slots[i&c.mask]
		if s.key.equal(k) {
			s.packets++
			s.bytes += n
			s.seen = c.tick
			return
		}
		if s.key.meta == 0 {
			// Slots are never emptied (evictions overwrite), so a flow
			// is never behind an empty slot: k is new.
			*s = flowSlot{key: *k, packets: 1, bytes: n, seen: c.tick}
			c.used++
			return
		}
		if s.seen < victim.seen {
			victim = s
		}
		i++
	}
	c.overflow++
	*victim = flowSlot{key: *k, packets: 1, bytes: n, seen: c.tick}
}

// keySeed is a flowKey hash's random keys (newKeySeed), one per word of
// the key. Fields, not an array: indexing an array pointer costs more of
// the inlining budget, and hash must inline into the loops that call it.
type keySeed struct{ srcHi, srcLo, dstHi, dstLo, meta uint64 }

// newKeySeed returns random keys for a table's flowKey hash.
func newKeySeed() keySeed {
	var s [5]uint64
	newSeed(s[:])
	return keySeed{s[0], s[1], s[2], s[3], s[4]}
}

// hash returns k's hash under seed, a wyhash-style multiply-fold of the
// key's words: mix(mix(mix(srcHi, srcLo) ^ mix(dstHi, dstLo) ^ meta, c1),
// c2), with the seed, written out so that it is cheap enough to inline
// into the loops that call it (cost 78 of the inliner's 80).
//
// The ports meet the first two rounds only in a multiply by a constant,
// whose low bits follow them almost linearly: without the last round,
// flows that differ in a port alone (one client's connections) hashed to
// runs of neighbouring slots, which linear probing made twice as long as
// a random hash's, and 8-slot windows overflowed in a table a quarter
// full (TestFlowHashSpreadsPorts). The last round folds the well-mixed
// high bits into the low ones that pick the slot.
func (k *flowKey) hash(seed *keySeed) uint64 {
	a, b := bits.Mul64(k.srcHi^seed.srcHi, k.srcLo^seed.srcLo)
	c, d := bits.Mul64(k.dstHi^seed.dstHi, k.dstLo^seed.dstLo)
	return hashTail(a ^ b ^ c ^ d ^ k.meta ^ seed.meta)
}

// hashTail is hash's last two rounds over the mixed words x.
func hashTail(x uint64) uint64 {
	e, f := bits.Mul64(x, 0xe7037ed1a0b428db)
	e, f = bits.Mul64(e^f, 0xa0761d6478bd642f)
	return e ^ f
}

// srcHash is hash without the destination's words, for a table whose
// flows all have one destination address (the LoadBalancer's connection
// table: every flow it balances is to the VIP), which would add nothing
// to the mix but a multiply. Keys are still compared whole.
func (k *flowKey) srcHash(seed *keySeed) uint64 {
	a, b := bits.Mul64(k.srcHi^seed.srcHi, k.srcLo^seed.srcLo)
	return hashTail(a ^ b ^ k.meta ^ seed.meta)
}

// flow returns the Flow of the key and counts in s.
func (s *flowSlot) flow() Flow {
	fam := uint64(s.key.family())
	return Flow{
		Src:     wordsAddr(s.key.srcHi, s.key.srcLo, fam),
		Dst:     wordsAddr(s.key.dstHi, s.key.dstLo, fam),
		SrcPort: uint16(s.key.meta >> 16),
		DstPort: uint16(s.key.meta),
		Proto:   uint8(s.key.meta >> 32),
		Packets: s.packets,
		Bytes:   s.bytes,
	}
}

// Len returns how many flows the table holds.
func (c *FlowCounter) Len() int { return c.used }

// Capacity returns how many flows the table has room for.
func (c *FlowCounter) Capacity() int { return len(c.slots) }

// Overflow returns how many flows were evicted to make room for new ones.
func (c *FlowCounter) Overflow() uint64 { return c.overflow }

// Malformed returns how many frames did not parse.
func (c *FlowCounter) Malformed() uint64 { return c.malformed }

// Packets returns how many frames Handle saw, malformed ones included.
func (c *FlowCounter) Packets() uint64 { return c.tick }

// ProtoCounts returns the packet count of each ProtoClass. It does not
// allocate.
func (c *FlowCounter) ProtoCounts() [NumProtoClasses]uint64 { return c.protos }

// Protocols returns the packet count of each ProtoClass by name, all of
// them, zeros included. It allocates the map.
func (c *FlowCounter) Protocols() map[string]uint64 {
	m := make(map[string]uint64, NumProtoClasses)
	for cls, n := range c.protos {
		m[ProtoClass(cls).String()] = n
	}
	return m
}

// TopN returns the n flows with the most packets (ties: most bytes, then
// by address and port), most first; fewer if the table holds fewer. It
// copies and sorts the whole table, so it allocates and takes time
// proportional to the capacity: call it for reports, not per packet.
func (c *FlowCounter) TopN(n int) []Flow {
	if n <= 0 || c.used == 0 {
		return nil
	}
	flows := make([]Flow, 0, c.used)
	for i := range c.slots {
		s := &c.slots[i]
		if s.key.meta != 0 {
			flows = append(flows, s.flow())
		}
	}
	slices.SortFunc(flows, func(a, b Flow) int {
		return cmp.Or(
			cmp.Compare(b.Packets, a.Packets),
			cmp.Compare(b.Bytes, a.Bytes),
			a.Src.Compare(b.Src),
			a.Dst.Compare(b.Dst),
			cmp.Compare(a.Proto, b.Proto),
			cmp.Compare(a.SrcPort, b.SrcPort),
			cmp.Compare(a.DstPort, b.DstPort),
		)
	})
	if n < len(flows) {
		return slices.Clone(flows[:n]) // do not keep the whole table's copy alive
	}
	return flows
}

// Reset forgets every flow and zeroes the counters; the table is kept.
func (c *FlowCounter) Reset() {
	clear(c.slots)
	c.tick, c.used, c.overflow, c.malformed = 0, 0, 0, 0
	c.protos = [NumProtoClasses]uint64{}
}
