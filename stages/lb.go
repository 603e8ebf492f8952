package stages

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xdpkit/xdpkit/fastpath"
	"github.com/xdpkit/xdpkit/packet"
	"github.com/xdpkit/xdpkit/pipeline"
)

// DefaultLBTableSize is the number of slots in a LoadBalancer's lookup
// table when LoadBalancerOptions.TableSize is 0.
const DefaultLBTableSize = 1 << 16

const (
	minLBTableSize = 1 << 10
	maxLBTableSize = 1 << 22
	maxLBBackends  = 1 << 16 // table entries are uint16
)

// Backend is a server a LoadBalancer sends flows to.
type Backend struct {
	// IP is the backend's address, written as the destination of the
	// frames sent to it. It must be of the VIP's family; an IPv4-mapped
	// IPv6 address is taken as IPv4.
	IP netip.Addr
	// MAC is the 6-byte Ethernet address frames to the backend are sent
	// to: the backend's own on the same link, or the next hop's.
	MAC net.HardwareAddr
	// TunnelIP is, in LBModeIPIP, the backend's IPv4 address the outer
	// header goes to. The zero value means IP, which must then be IPv4:
	// an IPv6 VIP's backends need one (6in4, IP protocol 41). Unused in
	// the other modes.
	TunnelIP netip.Addr
}

// BackendStats is a backend and how many packets a LoadBalancer sent it.
type BackendStats struct {
	Backend
	Packets uint64
}

// Tuple is a flow's 5-tuple, as a LoadBalancer hashes it.
type Tuple struct {
	Proto    uint8 // packet.ProtoUDP or packet.ProtoTCP
	Src, Dst netip.AddrPort
}

// LBMode is how a LoadBalancer hands a frame to its backend.
type LBMode uint8

const (
	// LBModeDSR, the zero value, is direct server return (IPVS "DR"):
	// only the Ethernet header changes, to the backend's MAC address; the
	// destination address stays the VIP. Each backend holds the VIP on a
	// loopback interface, without answering ARP for it (arp_ignore=1,
	// arp_announce=2), so it accepts the packet and answers the client
	// from the VIP, directly. The backends must be on the LoadBalancer's
	// link.
	LBModeDSR LBMode = iota
	// LBModeNAT rewrites the destination address to the backend's (with
	// incremental checksum updates) as well as the MAC. The backend then
	// answers from its own address, which a client of the VIP does not
	// accept (a TCP client resets the connection): use it only where
	// something translates the replies back, or for clients that take
	// answers from any address, as some UDP clients do.
	LBModeNAT
	// LBModeIPIP encapsulates the packet in IPIP (LVS "TUN", Katran):
	// a new Ethernet header to the backend's MAC address (its own, or
	// the next hop's) and an outer IPv4 header from
	// LoadBalancerOptions.TunnelSrc to the backend's IPv4 address
	// (Backend.TunnelIP, or IP), protocol 4 for an IPv4 VIP and 41 (6in4)
	// for an IPv6 one; the inner packet, to the VIP, is untouched. The
	// backend decapsulates with a tunnel device (ipip, or sit for 6in4),
	// holds the VIP on a loopback interface and answers the client
	// directly. The frame must have the 256 bytes of headroom a received
	// frame has (see pipeline.Packet.Prepend).
	LBModeIPIP
)

var lbModeNames = [...]string{LBModeDSR: "dsr", LBModeNAT: "nat", LBModeIPIP: "ipip"}

// String returns "dsr", "nat" or "ipip".
func (m LBMode) String() string {
	if int(m) < len(lbModeNames) {
		return lbModeNames[m]
	}
	return fmt.Sprintf("LBMode(%d)", uint8(m))
}

// MarshalText returns the mode's name.
func (m LBMode) MarshalText() ([]byte, error) {
	if int(m) >= len(lbModeNames) {
		return nil, fmt.Errorf("invalid load balancer mode %d", uint8(m))
	}
	return []byte(lbModeNames[m]), nil
}

// UnmarshalText sets the mode from its name (dsr, nat or ipip), so an LBMode
// works with flag.TextVar and encoding/json.
func (m *LBMode) UnmarshalText(text []byte) error {
	for i, n := range lbModeNames {
		if n == string(text) {
			*m = LBMode(i)
			return nil
		}
	}
	return fmt.Errorf("invalid load balancer mode %q: want dsr, nat or ipip", text)
}

// LoadBalancerOptions configure a LoadBalancer. The zero value is the
// default.
type LoadBalancerOptions struct {
	// Mode is how frames reach their backend. The zero value is
	// LBModeDSR, direct server return.
	Mode LBMode

	// SrcMAC is the source MAC address of the frames sent to backends:
	// the interface's own address, 6 bytes. Zero value (nil): the
	// frame's destination MAC address, which is the interface's own for
	// the unicast frames that reach it.
	SrcMAC net.HardwareAddr
	// Proto restricts balancing to packet.ProtoUDP or packet.ProtoTCP.
	// Zero value: both, to the same port.
	Proto uint8
	// Other is the verdict for frames that are not for the VIP. Zero
	// value: Continue.
	Other pipeline.Verdict
	// TableSize is the number of slots in the lookup table, a power of
	// two from 1024 to 1<<22; each slot is 2 bytes. A backend's share of
	// the flows is its share of the slots, which is within about
	// 2/sqrt(TableSize/backends) of even (±1.6% for 4 backends in the
	// default table), so keep TableSize above 100 slots per backend. Zero
	// value: DefaultLBTableSize.
	TableSize int
	// Seed seeds the flow hash and the table. LoadBalancers with the same
	// Seed, TableSize and backends send every flow to the same backend,
	// so a flow survives a change of LB instance. Zero value: a fixed
	// seed like any other.
	Seed uint64
	// Connections is the size of the connection table, which records
	// the backend of every flow the LoadBalancer has seen so that adding
	// or removing backends moves no established flow, except those whose
	// backend went away. Rounded up to a power of two, at most 2^24; each
	// entry is 56 bytes. When the slots a flow may use are all taken,
	// the least recently seen flow there loses its entry (ConnStats
	// counts it as Evicted) and would follow the hash if backends change.
	// Zero value: DefaultLBConnections. -1: no table, every flow follows
	// the hash (LoadBalancers configured alike then agree on every flow).
	Connections int
	// ConnIdle is how long a flow keeps its recorded backend without a
	// packet; then its entry is free, and the flow follows the hash
	// again. Zero value: DefaultLBConnIdle. The clock is Go's monotonic
	// one, or the time given to SetNow.
	ConnIdle time.Duration
	// TunnelSrc is the outer source address of LBModeIPIP's packets: an
	// IPv4 address of the LoadBalancer's host. Required in that mode,
	// unused in the others.
	TunnelSrc netip.Addr
	// FastPath, if set, is the fast path of the XDP program that feeds
	// the pipeline (also its pipeline.Config.FastPath): the LoadBalancer
	// installs each new flow's rewrite there, so the flow's next frames
	// are rewritten and transmitted by the XDP program without reaching
	// user space; when a backend is removed or changes its MAC address,
	// the entries of its flows are removed, and those flows come back.
	// Flows the XDP program cannot match (IPv4 options, VLAN tags) stay
	// in user space. Not with RecomputeL4Checksum, which the XDP program
	// cannot do. Zero value: every frame in user space.
	FastPath *fastpath.FastPath
	// RecomputeL4Checksum makes the LoadBalancer recompute the UDP and
	// TCP checksums of the frames it rewrites in full, instead of
	// updating them incrementally, for senders that leave partial
	// checksums (see [LoadBalancer]). Zero value: off.
	RecomputeL4Checksum bool
}

// LoadBalancer is a stage that spreads the UDP and TCP flows sent to a
// virtual IP address and port (the VIP) over a set of backends: it picks
// a backend by a consistent hash of the flow's 5-tuple, rewrites the
// frame's destination MAC address to the backend's and its source MAC
// address to the interface's own, and transmits it. In LBModeDSR, the
// default, that is all: the backends hold the VIP and answer the clients
// directly from it (direct server return). In LBModeNAT it also rewrites
// the destination IP address to the backend's; reverse translation of
// the backends' replies is then not its job.
//
// # Consistent hashing
//
// The backend of a flow is looked up in a table of TableSize slots built
// with rendezvous (highest random weight) hashing: each slot goes to the
// backend whose hash with the slot is highest. A flow hashes to a slot, so
// a lookup is one hash and one load, and the same 5-tuple always reaches
// the same backend. Since a slot's owner depends only on the backends in
// the set, removing a backend moves exactly the flows it had (to the
// others, evenly), and adding one moves only the flows it takes over:
// no other flow changes backend. LoadBalancers configured alike agree.
//
// # Connection table
//
// The hash alone would move, when a backend is added, the flows whose
// slots it takes over, breaking their TCP connections. So the
// LoadBalancer also records the backend of every flow it sees, in a table
// of LoadBalancerOptions.Connections entries: a flow it has seen keeps
// its backend while it has packets at least every ConnIdle, whatever
// backends come and go, unless its own backend is removed (then it takes
// the hash's choice among the others). New flows take the hash's
// choice. The table has a fixed size: when the slots a flow may use are
// full, the least recently seen flow among them is forgotten (Evicted in
// ConnStats), which only matters if backends change before it ends.
// LoadBalancers with the same backends and seed still agree on new
// flows; established ones stay where they started.
//
// # Checksums
//
// The IPv4 header checksum and the UDP or TCP checksum (whose
// pseudo-header holds the destination address) are updated incrementally
// (RFC 1624): TCP always, UDP unless it is 0 over IPv4 ("no checksum";
// over IPv6 a 0 is updated as 0xffff, its other form), with a result of 0
// written as 0xffff. That keeps a complete checksum right. A
// sender that leaves the L4 checksum to the NIC (TX checksum offload,
// CHECKSUM_PARTIAL) puts only the pseudo-header sum in the field; on a
// veth pair with offload on (the default) the peer's frames arrive at the
// XDP socket that way, and the backend's stack drops the rewritten frame
// as a bad checksum. Turn offload off on the sending side (`ethtool -K
// PEER tx off`) or set [LoadBalancerOptions.RecomputeL4Checksum].
//
// # Which frames
//
// A frame that did not parse (Packet.ParseErr set) is Malformed. A UDP or
// TCP frame to the VIP's address and port is rewritten and Transmitted,
// or Dropped if there are no backends. Everything else gets
// LoadBalancerOptions.Other (Continue by default): other addresses,
// ports and protocols, ICMP to the VIP, and non-first fragments, which
// carry no ports to hash. Fragmented datagrams are thus not balanced
// whole: their first fragment goes to the flow's backend, the rest get
// Other.
//
// In LBModeNAT Handle updates Packet.Headers.DstIP to the backend's
// address.
//
// # Batches
//
// In LBModeDSR and LBModeNAT without a FastPath a LoadBalancer is a
// [pipeline.FrameStage] (see TakesFrames): a Runner hands it whole
// batches, and it reads each frame's 5-tuple from the bytes (the common
// UDP and TCP frames directly, the rest through packet.Parse) and hashes
// the whole batch into the connection table before it looks any flow up,
// so that the table's cache misses overlap. It sends every frame where
// Handle would, byte for byte; the one difference is the clock, read
// once a batch instead of once a frame.
//
// # Concurrency
//
// Handle, HandleFrames, AddBackend, RemoveBackend, SetNow and Tick must
// be called from one goroutine, the one running the pipeline (or with the pipeline
// stopped): the table is rebuilt in place. To change the backends from
// another goroutine (an admin endpoint, a signal handler), give the new
// set to UpdateBackends: the next Tick applies it. Stats, Backends and
// UpdateBackends may be called from any goroutine.
type LoadBalancer struct {
	vip       netip.Addr
	vip4      uint32 // the VIP as a word, for the IPv4 header checksum
	vipPort   uint16
	proto     uint8
	other     pipeline.Verdict
	srcMAC    [6]byte
	srcMACLE  uint64 // srcMAC as a little-endian word, for the batch path's DSR rewrite
	hasSrcMAC bool
	recompute bool
	mode      LBMode
	seed      [4]uint64
	vipHash   uint64 // dstHash(vip)

	table    []uint16 // slot -> index into backends
	mask     uint64
	backends []lbBackend
	packets  []atomic.Uint64 // per backend, by index

	// The connection table (conntrack.go); conns is nil without one.
	conns     []connSlot
	connMask  uint64
	connSeed  keySeed
	connIdle  int64 // ns
	connUsed  int
	connStats ConnStats
	byID      map[uint32]int // lbBackend.id -> index into backends
	nextID    uint32
	scratch   addrScratch
	base      time.Time // the zero of the clock

	fp          *fastpath.FastPath
	offloadErrs uint64
	tunSrc      netip.Addr // LBModeIPIP's outer source
	encapErrs   uint64     // frames LBModeIPIP could not encapsulate (no headroom)

	// HandleFrames' state for one chunk of a batch (lbbatch.go).
	vipKey   flowKey   // the VIP as a flowKey's destination: dstHi, dstLo, and the family in meta
	vipMetas [2]uint64 // the flowKey.metas balanced, without the source port (vipMetaMask)
	hdr      packet.Headers
	tuples   [tupleBatch]frameTuple
	counts   []uint64 // per backend: frames of this chunk, added to packets after it
	sink     uint64

	mu      sync.Mutex // guards backends and packets for readers on other goroutines, and pending
	pending []Backend  // from UpdateBackends, for the next Tick; nil: none
	update  bool
	now     int64 // set by SetNow
	nowSet  bool
}

// macLE is mac as the low 48 bits of a little-endian word.
func macLE(mac [6]byte) uint64 {
	var b [8]byte
	copy(b[:], mac[:])
	return binary.LittleEndian.Uint64(b[:])
}

// lbBackend is a Backend with its fields in the forms Handle writes.
type lbBackend struct {
	Backend
	id   uint32     // never reused: the connection table's name for it
	tun  netip.Addr // LBModeIPIP: the outer destination, IPv4
	mac  [6]byte
	macW uint64 // mac as a little-endian word (macLE)
	ip4  uint32
	ip16 [16]byte
	key  [2]uint64 // the backend's hash identity, from its IP
}

var _ interface {
	pipeline.ConditionalFrameStage
	pipeline.Named
} = (*LoadBalancer)(nil)

// NewLoadBalancer returns a LoadBalancer for the flows to vip, spread over
// backends (which may be empty: frames to the VIP are then dropped until
// a backend is added). nil options mean the defaults. Building the table
// takes TableSize × len(backends) hashes.
func NewLoadBalancer(vip netip.AddrPort, backends []Backend, opts *LoadBalancerOptions) (*LoadBalancer, error) {
	if opts == nil {
		opts = &LoadBalancerOptions{}
	}
	addr := vip.Addr().Unmap()
	switch {
	case !vip.IsValid() || !addr.IsValid():
		return nil, fmt.Errorf("invalid VIP %v", vip)
	case addr.Zone() != "":
		return nil, fmt.Errorf("invalid VIP %v: has a zone", vip)
	case vip.Port() == 0:
		return nil, fmt.Errorf("invalid VIP %v: port 0", vip)
	case opts.Proto != 0 && opts.Proto != packet.ProtoUDP && opts.Proto != packet.ProtoTCP:
		return nil, fmt.Errorf("invalid protocol %d: must be 0 (UDP and TCP), %d (TCP) or %d (UDP)",
			opts.Proto, packet.ProtoTCP, packet.ProtoUDP)
	case opts.SrcMAC != nil && len(opts.SrcMAC) != 6:
		return nil, fmt.Errorf("invalid source MAC %v: must be 6 bytes", opts.SrcMAC)
	case opts.Other > pipeline.Malformed:
		return nil, fmt.Errorf("invalid verdict for other frames: %v", opts.Other)
	case opts.FastPath != nil && opts.Connections == -1:
		return nil, errors.New("FastPath needs the connection table (Connections -1 turns it off): it says which flows were offloaded")
	case opts.FastPath != nil && opts.RecomputeL4Checksum:
		return nil, errors.New("RecomputeL4Checksum cannot be offloaded: the XDP program only updates checksums; turn TX checksum offload off on the senders, or leave FastPath unset")
	case int(opts.Mode) >= len(lbModeNames):
		return nil, fmt.Errorf("invalid mode %v: must be LBModeDSR, LBModeNAT or LBModeIPIP", opts.Mode)
	case opts.Mode == LBModeIPIP && !opts.TunnelSrc.Unmap().Is4():
		return nil, fmt.Errorf("invalid tunnel source %v: ipip mode needs the IPv4 address of this host as TunnelSrc", opts.TunnelSrc)
	case opts.Mode == LBModeIPIP && opts.RecomputeL4Checksum:
		return nil, errors.New("RecomputeL4Checksum is not for ipip mode: the inner packet stays as it is")
	}
	size := opts.TableSize
	if size == 0 {
		size = DefaultLBTableSize
	}
	if size < minLBTableSize || size > maxLBTableSize || size&(size-1) != 0 {
		return nil, fmt.Errorf("invalid table size %d: must be a power of 2 from %d to %d", size, minLBTableSize, maxLBTableSize)
	}
	var conns int
	if opts.Connections != -1 {
		var err error
		if conns, err = tableSlots(opts.Connections, DefaultLBConnections); err != nil {
			return nil, fmt.Errorf("connection table: %w (or -1: none)", err)
		}
	}
	idle := opts.ConnIdle
	switch {
	case idle == 0:
		idle = DefaultLBConnIdle
	case idle < 0:
		return nil, fmt.Errorf("invalid connection idle time %v: must be 0 (%v) or more", idle, DefaultLBConnIdle)
	}
	lb := &LoadBalancer{
		vip:       addr,
		vipPort:   vip.Port(),
		proto:     opts.Proto,
		other:     opts.Other,
		hasSrcMAC: opts.SrcMAC != nil,
		recompute: opts.RecomputeL4Checksum,
		mode:      opts.Mode,
		table:     make([]uint16, size),
		mask:      uint64(size - 1),
		connIdle:  int64(idle),
		base:      time.Now(),
		fp:        opts.FastPath,
		tunSrc:    opts.TunnelSrc.Unmap(),
	}
	if conns > 0 {
		lb.conns, lb.connMask = make([]connSlot, conns), uint64(conns-1)
		lb.connSeed = newKeySeed()
	}
	if addr.Is4() {
		a := addr.As4()
		lb.vip4 = binary.BigEndian.Uint32(a[:])
	}
	copy(lb.srcMAC[:], opts.SrcMAC)
	lb.srcMACLE = macLE(lb.srcMAC)
	s := opts.Seed
	for i := range lb.seed {
		lb.seed[i] = splitmix64(&s)
	}
	lb.vipHash = lb.dstHash(addr)
	var fam uint64
	lb.vipKey.dstHi, lb.vipKey.dstLo, fam = lb.scratch.words(addr)
	lb.vipKey.meta = fam << 40
	// The metas of balanced flows, the source port masked off: UDP and
	// TCP unless the options name one.
	for i, proto := range [2]uint8{packet.ProtoUDP, packet.ProtoTCP} {
		if lb.proto != 0 {
			proto = lb.proto
		}
		lb.vipMetas[i] = fam<<40 | uint64(proto)<<32 | uint64(lb.vipPort)
	}
	bs := make([]lbBackend, 0, len(backends))
	for _, b := range backends {
		lbb, err := lb.newBackend(b, bs)
		if err != nil {
			return nil, err
		}
		bs = append(bs, lbb)
	}
	lb.setBackends(bs)
	return lb, nil
}

// newBackend checks b against the VIP and the backends in have, and
// gives it a new id.
func (lb *LoadBalancer) newBackend(b Backend, have []lbBackend) (lbBackend, error) {
	lbb, err := lb.checkBackend(b, have)
	if err != nil {
		return lbb, err
	}
	lb.nextID++
	lbb.id = lb.nextID
	return lbb, nil
}

// checkBackend checks b against the VIP and the backends in have and
// makes its entry, without an id. It reads only what NewLoadBalancer set,
// so it may run on any goroutine.
func (lb *LoadBalancer) checkBackend(b Backend, have []lbBackend) (lbBackend, error) {
	ip := b.IP.Unmap()
	switch {
	case !ip.IsValid():
		return lbBackend{}, fmt.Errorf("invalid backend IP %v", b.IP)
	case ip.Is4() != lb.vip.Is4():
		return lbBackend{}, fmt.Errorf("invalid backend %v: the VIP %v is of the other IP version", ip, lb.vip)
	case ip.Zone() != "":
		return lbBackend{}, fmt.Errorf("invalid backend %v: has a zone", b.IP)
	case len(b.MAC) != 6:
		return lbBackend{}, fmt.Errorf("invalid MAC %v of backend %v: must be 6 bytes", b.MAC, ip)
	case len(have) >= maxLBBackends || len(have) >= len(lb.table):
		return lbBackend{}, fmt.Errorf("too many backends: at most %d", min(maxLBBackends, len(lb.table)))
	}
	tun := b.TunnelIP.Unmap()
	if lb.mode == LBModeIPIP {
		if !tun.IsValid() {
			tun = ip
		}
		if !tun.Is4() {
			return lbBackend{}, fmt.Errorf("invalid backend %v: ipip mode needs an IPv4 address to tunnel to (Backend.TunnelIP)", ip)
		}
	} else {
		tun = netip.Addr{}
	}
	for i := range have {
		if have[i].IP == ip {
			return lbBackend{}, fmt.Errorf("duplicate backend %v", ip)
		}
	}
	lbb := lbBackend{Backend: Backend{IP: ip, MAC: slices.Clone(b.MAC), TunnelIP: b.TunnelIP.Unmap()}, ip16: ip.As16(), tun: tun}
	copy(lbb.mac[:], b.MAC)
	lbb.macW = macLE(lbb.mac)
	if ip.Is4() {
		a := ip.As4()
		lbb.ip4 = binary.BigEndian.Uint32(a[:])
	}
	lbb.key = [2]uint64{
		mix(binary.BigEndian.Uint64(lbb.ip16[:8])^lb.seed[0], binary.BigEndian.Uint64(lbb.ip16[8:])^lbK1),
		mix(binary.BigEndian.Uint64(lbb.ip16[8:])^lb.seed[1], binary.BigEndian.Uint64(lbb.ip16[:8])^lbK2),
	}
	return lbb, nil
}

// setBackends installs bs, carrying the packet counts of the backends that
// stay over, and rebuilds the table.
func (lb *LoadBalancer) setBackends(bs []lbBackend) {
	packets := make([]atomic.Uint64, len(bs))
	for i := range bs {
		for j := range lb.backends {
			if lb.backends[j].IP == bs[i].IP {
				packets[i].Store(lb.packets[j].Load())
			}
		}
	}
	for slot := range lb.table {
		sk := mix(uint64(slot)^lb.seed[2], lbK3)
		best, bestW := 0, uint64(0)
		for i := range bs {
			w := mix(sk^bs[i].key[0], uint64(slot)^bs[i].key[1])
			if i == 0 || w > bestW || w == bestW && bs[i].IP.Less(bs[best].IP) {
				best, bestW = i, w
			}
		}
		lb.table[slot] = uint16(best)
	}
	lb.forget(lb.backends, bs)
	lb.mu.Lock()
	lb.backends, lb.packets = bs, packets
	lb.mu.Unlock()
	lb.counts = make([]uint64, len(bs))
	lb.byID = make(map[uint32]int, len(bs))
	for i := range bs {
		lb.byID[bs[i].id] = i
	}
}

// AddBackend adds b to the backends; the flows whose table slots b wins
// (about 1/(n+1) of them) move to it. Not safe concurrently with Handle.
func (lb *LoadBalancer) AddBackend(b Backend) error {
	lbb, err := lb.newBackend(b, lb.backends)
	if err != nil {
		return fmt.Errorf("add backend: %w", err)
	}
	lb.setBackends(append(slices.Clip(lb.backends), lbb))
	return nil
}

// ErrNoBackend is returned by RemoveBackend for an address that is not a
// backend's.
var ErrNoBackend = errors.New("no such backend")

// RemoveBackend removes the backend with address ip; its flows spread
// over the others, and no other flow moves. Not safe concurrently with
// Handle.
func (lb *LoadBalancer) RemoveBackend(ip netip.Addr) error {
	ip = ip.Unmap()
	i := slices.IndexFunc(lb.backends, func(b lbBackend) bool { return b.IP == ip })
	if i < 0 {
		return fmt.Errorf("remove backend %v: %w", ip, ErrNoBackend)
	}
	lb.setBackends(slices.Delete(slices.Clone(lb.backends), i, i+1))
	return nil
}

// UpdateBackends replaces the backends with bs at the next Tick, from any
// goroutine. It checks bs now (an error leaves the backends as they are);
// a later call before the Tick replaces this one. A backend kept (same
// IP address) keeps its flows, also with a new MAC address; the flows of
// backends left out move to the others, and the new ones take over their
// share of new flows.
func (lb *LoadBalancer) UpdateBackends(bs []Backend) error {
	var check []lbBackend
	for _, b := range bs {
		lbb, err := lb.checkBackend(b, check)
		if err != nil {
			return fmt.Errorf("update backends: %w", err)
		}
		check = append(check, lbb)
	}
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.pending, lb.update = slices.Clone(bs), true
	return nil
}

// Tick is SetNow, and applies the backends given to UpdateBackends since
// the last Tick. Call it on the Runner's goroutine: pipeline.Config.Tick
// does.
func (lb *LoadBalancer) Tick(now time.Time) {
	lb.SetNow(now)
	lb.mu.Lock()
	bs, update := lb.pending, lb.update
	lb.pending, lb.update = nil, false
	lb.mu.Unlock()
	if !update {
		return
	}
	next := make([]lbBackend, 0, len(bs))
	for _, b := range bs {
		ip := b.IP.Unmap()
		if i := slices.IndexFunc(lb.backends, func(o lbBackend) bool { return o.IP == ip }); i >= 0 {
			kept := lb.backends[i] // same id: its flows stay
			lbb, err := lb.checkBackend(b, next)
			if err != nil {
				continue // checked by UpdateBackends: cannot happen
			}
			lbb.id = kept.id
			next = append(next, lbb)
			continue
		}
		lbb, err := lb.newBackend(b, next)
		if err != nil {
			continue // checked by UpdateBackends: cannot happen
		}
		next = append(next, lbb)
	}
	lb.setBackends(next)
}

// Backends returns a copy of the backends, in the order Backend and Stats
// index them: the order they were given and added in.
func (lb *LoadBalancer) Backends() []Backend {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	bs := make([]Backend, len(lb.backends))
	for i := range lb.backends {
		bs[i] = Backend{IP: lb.backends[i].IP, MAC: slices.Clone(lb.backends[i].MAC), TunnelIP: lb.backends[i].TunnelIP}
	}
	return bs
}

// Stats returns each backend's packet count, in the order of Backends.
// It may be called from any goroutine.
func (lb *LoadBalancer) Stats() []BackendStats {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	st := make([]BackendStats, len(lb.backends))
	for i := range lb.backends {
		st[i] = BackendStats{
			Backend: Backend{IP: lb.backends[i].IP, MAC: slices.Clone(lb.backends[i].MAC), TunnelIP: lb.backends[i].TunnelIP},
			Packets: lb.packets[i].Load(),
		}
	}
	return st
}

// Backend returns the index (into Backends) of the backend the hash
// picks for flow t, whatever its destination, or -1 if there are no
// backends. A flow in the connection table stays on the backend it was
// given, which may be another since backends changed.
func (lb *LoadBalancer) Backend(t Tuple) int {
	if len(lb.backends) == 0 {
		return -1
	}
	return int(lb.table[lb.slot(t.Proto, t.Src.Addr(), lb.dstHash(t.Dst.Addr()), t.Src.Port(), t.Dst.Port())])
}

// Name returns "lb".
func (lb *LoadBalancer) Name() string { return "lb" }

// Handle sends a UDP or TCP frame for the VIP to its flow's backend:
// Transmit, or Drop if there are no backends. See [LoadBalancer] for the
// other frames.
func (lb *LoadBalancer) Handle(p *pipeline.Packet) pipeline.Verdict {
	if p.ParseErr != nil {
		return pipeline.Malformed
	}
	h := &p.Headers
	if h.L4Off == 0 || h.DstPort != lb.vipPort || h.DstIP != lb.vip ||
		h.IPProto != packet.ProtoUDP && h.IPProto != packet.ProtoTCP ||
		lb.proto != 0 && h.IPProto != lb.proto {
		return lb.other
	}
	if len(lb.backends) == 0 {
		return pipeline.Drop
	}
	d := p.Data
	if len(d) < 14 {
		return pipeline.Malformed // resliced since it was parsed
	}
	// An established flow keeps its backend; a new one takes the hash's,
	// which is recorded.
	i := -1
	var conn *connSlot
	var now int64
	if lb.conns != nil {
		var k flowKey
		lb.scratch.flowKey(&k, h)
		now = lb.clock()
		if i, conn = lb.conn(&k, k.srcHash(&lb.connSeed), now); i < 0 {
			i = int(lb.table[lb.slot(h.IPProto, h.SrcIP, lb.vipHash, h.SrcPort, h.DstPort)])
			lb.record(conn, &k, i, now)
		}
	} else {
		i = int(lb.table[lb.slot(h.IPProto, h.SrcIP, lb.vipHash, h.SrcPort, h.DstPort)])
	}
	b := &lb.backends[i]
	if lb.fp != nil {
		// The rest of the flow in the XDP program, with the headers as
		// they arrived (before the rewrite below).
		src := lb.srcMAC[:]
		if !lb.hasSrcMAC {
			src = d[0:6]
		}
		lb.offload(p, conn, b, src, now)
	}

	if lb.mode == LBModeIPIP {
		return lb.encap(p, b, i) // writes a new Ethernet header of its own
	}
	lb.rewrite(d, h, b)
	lb.packets[i].Add(1)
	return pipeline.Transmit
}

// rewrite makes frame d, with headers h, one for backend b in LBModeDSR
// or LBModeNAT.
func (lb *LoadBalancer) rewrite(d []byte, h *packet.Headers, b *lbBackend) {
	if lb.hasSrcMAC {
		copy(d[6:12], lb.srcMAC[:])
	} else {
		copy(d[6:12], d[0:6])
	}
	copy(d[0:6], b.mac[:])
	if lb.mode == LBModeDSR {
		// The packet stays as it is, to the VIP; only a partial checksum
		// is completed if asked.
		if lb.recompute {
			packet.SetL4Checksum(d, h)
		}
		return
	}
	ip := d[h.L3Off:]
	if h.IPv4 {
		binary.BigEndian.PutUint32(ip[16:20], b.ip4)
		csum := binary.BigEndian.Uint16(ip[10:])
		binary.BigEndian.PutUint16(ip[10:], packet.UpdateChecksum32(csum, lb.vip4, b.ip4))
	} else {
		copy(ip[24:40], b.ip16[:])
	}
	h.DstIP = b.IP
	if !lb.recompute || !packet.SetL4Checksum(d, h) {
		packet.UpdateL4ChecksumAddr(d, h, lb.vip, b.IP)
	}
}

// encap wraps the IP packet of p in an outer IPv4 header to backend b
// (index i) and a new Ethernet header, in the frame's headroom.
func (lb *LoadBalancer) encap(p *pipeline.Packet, b *lbBackend, i int) pipeline.Verdict {
	h := &p.Headers
	const outer = 14 + 20
	src := lb.srcMAC
	if !lb.hasSrcMAC {
		copy(src[:], p.Data[0:6]) // the frame's destination: this interface
	}
	if h.L3Off > outer || h.IPLen == 0 || !p.Prepend(outer-h.L3Off) {
		lb.encapErrs++
		return pipeline.Drop
	}
	d := p.Data[:outer+h.IPLen] // without Ethernet padding
	p.Data = d
	copy(d[0:6], b.mac[:])
	copy(d[6:12], src[:])
	binary.BigEndian.PutUint16(d[12:], 0x0800)
	ip := d[14:outer]
	ip[0], ip[1] = 0x45, 0
	binary.BigEndian.PutUint16(ip[2:], uint16(20+h.IPLen))
	binary.BigEndian.PutUint16(ip[4:], 0)      // identification
	binary.BigEndian.PutUint16(ip[6:], 0x4000) // don't fragment
	ip[8], ip[9] = 64, 4                       // TTL, IPIP
	if h.IPv6 {
		ip[9] = 41 // 6in4
	}
	binary.BigEndian.PutUint16(ip[10:], 0)
	s4, d4 := lb.tunSrc.As4(), b.tun.As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	binary.BigEndian.PutUint16(ip[10:], packet.IPv4HeaderChecksum(ip))
	lb.packets[i].Add(1)
	p.Reparse()
	return pipeline.Transmit
}

// Multipliers from wyhash.
const (
	lbK1 = 0xa0761d6478bd642f
	lbK2 = 0xe7037ed1a0b428db
	lbK3 = 0x8ebc6af09c88c6e3
	lbK4 = 0x589965cc75374cc3
)

// dstHash is the destination address's part of a 5-tuple's hash. Handle
// uses the VIP's, computed once.
func (lb *LoadBalancer) dstHash(dst netip.Addr) uint64 {
	d := dst.As16()
	return mix(binary.BigEndian.Uint64(d[:8])^lb.seed[1], binary.BigEndian.Uint64(d[8:])^lbK2)
}

// slot returns the table slot of a 5-tuple, given its destination's
// dstHash.
func (lb *LoadBalancer) slot(proto uint8, src netip.Addr, dstHash uint64, sport, dport uint16) uint64 {
	s := src.As16()
	return lb.slotWords(proto, binary.BigEndian.Uint64(s[:8]), binary.BigEndian.Uint64(s[8:]), dstHash, sport, dport)
}

// slotWords is slot with the source address as the two words of its
// 16-byte form (IPv4-mapped for IPv4).
func (lb *LoadBalancer) slotWords(proto uint8, srcHi, srcLo, dstHash uint64, sport, dport uint16) uint64 {
	h := mix(srcHi^lb.seed[0], srcLo^lbK1) ^ dstHash
	h = mix(h^uint64(sport)<<24^uint64(dport)<<8^uint64(proto)^lb.seed[3], lbK4)
	return h & lb.mask
}

// splitmix64 returns the next value of the SplitMix64 sequence at *s.
func splitmix64(s *uint64) uint64 {
	*s += 0x9e3779b97f4a7c15
	z := *s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}
