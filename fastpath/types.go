package fastpath

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"time"
)

var (
	// ErrInvalid is matched by the error of every call given a Config,
	// Flow, Entry, Rate or prefix it cannot use; the error says which
	// field and why.
	ErrInvalid = errors.New("invalid argument")

	// ErrNoEntry is matched by the error of Lookup and Remove for a flow
	// the table does not hold (never installed, removed, expired or
	// evicted).
	ErrNoEntry = errors.New("no such flow entry")
)

// Action is what the XDP program does with the frames of an installed
// flow. The zero value is not a valid Action.
type Action uint8

const (
	// Redirect sends the frame to the queue's AF_XDP socket, as a miss
	// does with the default Config.Default.
	Redirect Action = iota + 1
	// Drop discards the frame in XDP (XDP_DROP).
	Drop
	// Pass hands the frame to the kernel network stack (XDP_PASS).
	Pass
	// Transmit rewrites the frame as the Entry says (MAC addresses,
	// destination address and port with their checksums) and sends it
	// back out of the interface it came in on (XDP_TX).
	Transmit
	// Encap prepends a new Ethernet header and an outer IPv4 header
	// (IPIP, protocol 4 for an IPv4 flow, 41 for IPv6) from
	// Entry.TunnelSrc to Entry.TunnelDst, and transmits the frame
	// (XDP_TX).
	Encap
)

var actionNames = [...]string{Redirect: "redirect", Drop: "drop", Pass: "pass", Transmit: "transmit", Encap: "encap"}

// String returns the action's name: redirect, drop, pass, transmit or
// encap.
func (a Action) String() string {
	if a >= Redirect && int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// MarshalText returns the action's name.
func (a Action) MarshalText() ([]byte, error) {
	if a < Redirect || int(a) >= len(actionNames) {
		return nil, fmt.Errorf("fastpath: invalid action %d: %w", uint8(a), ErrInvalid)
	}
	return []byte(actionNames[a]), nil
}

// UnmarshalText sets the action from its name, so an Action works with
// flag.TextVar and encoding/json.
func (a *Action) UnmarshalText(text []byte) error {
	for i, n := range actionNames {
		if n != "" && n == string(text) {
			*a = Action(i)
			return nil
		}
	}
	return fmt.Errorf("fastpath: invalid action %q: want redirect, drop, pass, transmit or encap: %w", text, ErrInvalid)
}

// Policy is what a source prefix gets (see FastPath.SetPolicy).
type Policy uint8

const (
	// Block drops every frame from the prefix in XDP.
	Block Policy = iota + 1
	// Allow exempts the prefix from the per-source policer; its frames
	// go on to the flow table.
	Allow
)

// String returns "block" or "allow".
func (p Policy) String() string {
	switch p {
	case Block:
		return "block"
	case Allow:
		return "allow"
	}
	return fmt.Sprintf("Policy(%d)", uint8(p))
}

// Flow is a flow table key: a TCP or UDP 5-tuple, IPv4 or IPv6. Src and
// Dst must be of the same family; an IPv4-mapped IPv6 address counts as
// IPv4.
type Flow struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Proto            uint8 // 6 (TCP) or 17 (UDP)
}

// Protocol numbers of the flows the table holds.
const (
	TCP = 6
	UDP = 17
)

// String formats the flow as "udp 10.0.0.1:1234 > 10.0.0.2:53".
func (f Flow) String() string {
	p := fmt.Sprintf("proto%d", f.Proto)
	switch f.Proto {
	case TCP:
		p = "tcp"
	case UDP:
		p = "udp"
	}
	return fmt.Sprintf("%s %s > %s", p, netip.AddrPortFrom(f.Src, f.SrcPort), netip.AddrPortFrom(f.Dst, f.DstPort))
}

// v4 reports whether the flow is IPv4, after validating it.
func (f Flow) check() (v4 bool, err error) {
	if !f.Src.IsValid() || !f.Dst.IsValid() {
		return false, fmt.Errorf("fastpath: flow %s: Src and Dst must be set: %w", f, ErrInvalid)
	}
	s, d := f.Src.Unmap(), f.Dst.Unmap()
	if s.Is4() != d.Is4() {
		return false, fmt.Errorf("fastpath: flow %s: Src and Dst are of different families: %w", f, ErrInvalid)
	}
	if f.Proto != TCP && f.Proto != UDP {
		return false, fmt.Errorf("fastpath: flow %s: Proto %d: the table holds TCP (6) and UDP (17) flows: %w", f, f.Proto, ErrInvalid)
	}
	return s.Is4(), nil
}

// Entry is what the XDP program does with a flow's frames.
type Entry struct {
	Action Action

	// For Transmit: SwapMAC exchanges the frame's destination and source
	// MAC addresses first (a reflector); DstMAC and SrcMAC, when set (6
	// bytes), are then written over them. For Encap, DstMAC and SrcMAC
	// are the new Ethernet header's and both are required.
	SwapMAC        bool
	DstMAC, SrcMAC net.HardwareAddr

	// For Transmit: NewDst, if valid, replaces the destination address
	// (same family as the flow) and NewDstPort, if not 0, the destination
	// port. The IPv4 header checksum and the TCP or UDP checksum are
	// updated incrementally (RFC 1624); a UDP over IPv4 datagram without
	// a checksum (0) keeps none.
	NewDst     netip.Addr
	NewDstPort uint16

	// For Encap: the outer IPv4 header's addresses (both required). The
	// outer header has TTL 64 and don't-fragment set.
	TunnelSrc, TunnelDst netip.Addr
}

// EntryStats are an installed flow's counters, kept by the XDP program.
type EntryStats struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	// LastSeen is when the program last matched the entry, or when it
	// was installed if it never did.
	LastSeen time.Time `json:"last_seen"`
}

// FlowEntry is one entry of the table, as Entries lists them.
type FlowEntry struct {
	Flow  Flow
	Entry Entry
	Stats EntryStats
}

// Rate configures the per-source policer: a token bucket per source
// address that refills at PerSecond packets per second up to Burst
// packets (or more with the coarse clock: see Config.PreciseClock). The
// zero Rate turns the policer off.
type Rate struct {
	PerSecond float64 // packets per second per source, 0.001 to 1e9; 0: off
	Burst     int     // bucket size in packets, 1 to 1,000,000; 0: PerSecond/10 rounded up, at least 1
}

// Limits of Rate.
const (
	minRate  = 0.001
	maxBurst = 1_000_000
	maxRate  = 1e9 // packets per second per source
	// maxCapUnits bounds a bucket: the program adds up to a full bucket's
	// refill to what a bucket holds, which must not overflow 64 bits.
	maxCapUnits = 4_000_000 * unitsPerPacket
	// unitsPerPacket is the policer's fixed point: a token is 1e-12
	// packet, so a rate in milli-packets per second is tokens per
	// nanosecond.
	unitsPerPacket = 1_000_000_000_000
)

// resolve checks r and returns the program's parameters. tickNs, if not
// 0, is the resolution of the clock the program reads: the bucket then
// holds at least what the rate refills in one tick, as the clock and so
// the refill advance a tick at a time.
func (r Rate) resolve(tickNs uint64) (rateMilli, capUnits, fillNs uint64, err error) {
	if r.PerSecond == 0 && r.Burst == 0 {
		return 0, 0, 0, nil
	}
	if !(r.PerSecond >= minRate) || r.PerSecond > maxRate {
		return 0, 0, 0, fmt.Errorf("fastpath: invalid Rate.PerSecond %g: must be 0 (off) or 0.001 to %g packets per second: %w", r.PerSecond, maxRate, ErrInvalid)
	}
	burst := r.Burst
	if burst == 0 {
		burst = max(1, int(math.Ceil(r.PerSecond/10)))
	}
	if burst < 1 || burst > maxBurst {
		return 0, 0, 0, fmt.Errorf("fastpath: invalid Rate.Burst %d: must be 0 (PerSecond/10) or 1 to %d packets: %w", r.Burst, maxBurst, ErrInvalid)
	}
	rateMilli = uint64(r.PerSecond*1000 + 0.5)
	capUnits = uint64(burst) * unitsPerPacket
	if tickNs > 0 {
		// rateMilli <= 1e12 and a tick <= 1e7 ns (HZ=100): at most 1e19,
		// within 64 bits.
		capUnits = min(max(capUnits, rateMilli*min(tickNs, 10_000_000)), maxCapUnits)
	}
	// After fillNs the bucket is full whatever it held: the program caps
	// the elapsed time there, so elapsed*rate cannot overflow.
	fillNs = (capUnits + rateMilli - 1) / rateMilli
	return rateMilli, capUnits, fillNs, nil
}

// Counters are the fast path's verdicts, summed over CPUs. A frame is
// counted once in each stage it reaches: Blocked, Allowed, RateDropped
// and RatePassed by the source policies, the Flow counters on a hit,
// Default when it got Config.Default.
type Counters struct {
	Unparsed        uint64 `json:"unparsed"`         // not IPv4 or IPv6 (ARP, VLAN-tagged, truncated): got the default at once
	Blocked         uint64 `json:"blocked"`          // dropped by a Block prefix
	Allowed         uint64 `json:"allowed"`          // from an Allow prefix: not policed
	RateDropped     uint64 `json:"rate_dropped"`     // over their source's rate: dropped
	RatePassed      uint64 `json:"rate_passed"`      // within their source's rate
	FlowDropped     uint64 `json:"flow_dropped"`     // flow entry hits, by action
	FlowPassed      uint64 `json:"flow_passed"`      //
	FlowRedirected  uint64 `json:"flow_redirected"`  //
	FlowTransmitted uint64 `json:"flow_transmitted"` //
	FlowEncapped    uint64 `json:"flow_encapped"`    //
	FlowErrors      uint64 `json:"flow_errors"`      // hits whose frame could not be rewritten (too short, no headroom): got the default
	Expired         uint64 `json:"expired"`          // hits on an entry idle for longer than Config.IdleTimeout: got the default
	Default         uint64 `json:"default"`          // frames no policy or flow decided: got Config.Default
}

// Offloaded is the number of frames the flow table decided.
func (c Counters) Offloaded() uint64 {
	return c.FlowDropped + c.FlowPassed + c.FlowRedirected + c.FlowTransmitted + c.FlowEncapped
}

// Counter indexes in the per-CPU counters map, in Counters' field order.
const (
	cntUnparsed = iota
	cntBlocked
	cntAllowed
	cntRateDropped
	cntRatePassed
	cntFlowDrop
	cntFlowPass
	cntFlowRedirect
	cntFlowTX
	cntFlowEncap
	cntFlowError
	cntExpired
	cntDefault
	numCounters
)

func countersFrom(s *[numCounters]uint64) Counters {
	return Counters{
		Unparsed: s[cntUnparsed], Blocked: s[cntBlocked], Allowed: s[cntAllowed],
		RateDropped: s[cntRateDropped], RatePassed: s[cntRatePassed],
		FlowDropped: s[cntFlowDrop], FlowPassed: s[cntFlowPass], FlowRedirected: s[cntFlowRedirect],
		FlowTransmitted: s[cntFlowTX], FlowEncapped: s[cntFlowEncap], FlowErrors: s[cntFlowError],
		Expired: s[cntExpired], Default: s[cntDefault],
	}
}

// Config configures New. A nil *Config is the zero value.
type Config struct {
	// Default is what happens to a frame no source policy drops and no
	// flow entry decides: Redirect (the zero value) sends it on to the
	// queue's socket, Pass to the kernel stack, Drop discards it.
	Default Action

	// Flows is the size of the flow table, of each family's (IPv4 and
	// IPv6 flows are in two tables); when full, installing a flow evicts
	// the least recently used one. Zero means 65536.
	Flows int

	// Sources is the size of the policer's per-source table, of each
	// family's (least recently used sources are evicted, so a flood of
	// spoofed sources cannot grow it). Zero means 65536.
	Sources int

	// Prefixes bounds the block and allow lists together. Zero means
	// 4096.
	Prefixes int

	// Rate is the initial per-source policer (see FastPath.SetRate).
	// The zero value is off.
	Rate Rate

	// PreciseClock makes the policer read bpf_ktime_get_ns instead of
	// bpf_ktime_get_coarse_ns. The coarse clock advances once per kernel
	// tick (1 to 10 ms, 4 ms at HZ=250), so a bucket refills a tick's
	// worth at a time and holds at least that much: a source may send
	// max(Burst, PerSecond × tick) packets back to back, and the rate is
	// kept over any longer time. The precise clock keeps Burst exact at
	// any rate, for the cost of reading the clock source per frame (30 ns
	// per frame on a KVM guest with TSC, against 3). Zero value: the
	// coarse clock.
	PreciseClock bool

	// AtomicCounters makes the program count each entry's packets and
	// bytes (EntryStats) with atomic adds. Without it they are plain
	// adds, about 10 ns per matched frame cheaper here (two lock-prefixed
	// instructions): exact while one CPU at a time handles a flow's
	// frames, which is how XDP runs when a flow arrives on one queue (RSS
	// hashes it to one; a queue's NAPI runs on one CPU at a time) and on
	// veth. Set it when one flow's frames can be handled on two CPUs at
	// the same instant, or they may be under-counted. Counters (the
	// per-CPU verdict counts) are exact either way.
	AtomicCounters bool

	// IdleTimeout makes an entry the program has not matched for that
	// long count as a miss (Counters.Expired), and FastPath.Expire
	// remove it. Zero: entries live until removed or evicted. At least a
	// millisecond otherwise.
	IdleTimeout time.Duration
}

const (
	defaultFlows    = 65536
	defaultSources  = 65536
	defaultPrefixes = 4096
	maxEntries      = 1 << 24
)

func (c *Config) resolve() (Config, error) {
	var o Config
	if c != nil {
		o = *c
	}
	if o.Default == 0 {
		o.Default = Redirect
	}
	switch o.Default {
	case Redirect, Pass, Drop:
	default:
		return o, fmt.Errorf("fastpath: invalid Config.Default %s: must be Redirect, Pass or Drop: %w", o.Default, ErrInvalid)
	}
	for _, f := range []struct {
		name string
		v    *int
		def  int
	}{{"Flows", &o.Flows, defaultFlows}, {"Sources", &o.Sources, defaultSources}, {"Prefixes", &o.Prefixes, defaultPrefixes}} {
		if *f.v == 0 {
			*f.v = f.def
		}
		if *f.v < 1 || *f.v > maxEntries {
			return o, fmt.Errorf("fastpath: invalid Config.%s %d: must be 0 (%d) or 1 to %d: %w", f.name, *f.v, f.def, maxEntries, ErrInvalid)
		}
	}
	if _, _, _, err := o.Rate.resolve(0); err != nil {
		return o, err
	}
	if o.IdleTimeout < 0 || (o.IdleTimeout > 0 && o.IdleTimeout < time.Millisecond) {
		return o, fmt.Errorf("fastpath: invalid Config.IdleTimeout %s: must be 0 (never) or at least 1ms: %w", o.IdleTimeout, ErrInvalid)
	}
	return o, nil
}

// Validate reports whether the config is usable; its error wraps
// ErrInvalid. A nil *Config is valid.
func (c *Config) Validate() error {
	_, err := c.resolve()
	return err
}

// The maps' layouts, shared by the program (program.go) and the Go side.
//
// Flow keys: IPv4 16 bytes, src[4] dst[4] sport dport (network order)
// proto pad[3]; IPv6 40 bytes, src[16] dst[16] sport dport proto pad[3].
// A key starts with the source address, the policer's key (4 or 16
// bytes). The prefix lists' key is the prefix length and the 16-byte
// address, IPv4 addresses IPv4-mapped (::ffff:a.b.c.d), so that one trie
// holds both families.
const (
	key4Size    = 16
	key4Src     = 0
	key4Dst     = 4
	key4Sport   = 8
	key4Proto   = 12
	key6Size    = 40
	key6Src     = 0
	key6Dst     = 16
	key6Sport   = 32
	key6Proto   = 36
	familyIPv4  = 4
	familyIPv6  = 6
	lpmKeySize  = 20 // prefixlen u32 + address[16]
	sourceValSz = 16 // tokens u64, last u64
)

// Flow entry value, 80 bytes.
const (
	valPackets  = 0  // u64, added to (atomically with Config.AtomicCounters)
	valBytes    = 8  // u64, added to (atomically with Config.AtomicCounters)
	valLast     = 16 // u64, bpf_ktime_get_coarse_ns of the last hit
	valAction   = 24 // u32
	valFlags    = 28 // u32
	valDstMAC   = 32 // [6]
	valSrcMAC   = 40 // [6]
	valL4Delta  = 48 // u32: ones' complement sum to add to the L4 checksum
	valIPDelta  = 52 // u32: to the IPv4 checksum; for Encap the outer header's fixed sum
	valNewPort  = 56 // u16, network order
	valNewDst   = 64 // [16]; IPv4 in the first 4 bytes
	valTunSrc   = 80 // [4]
	valTunDst   = 84 // [4]
	valueSize   = 88
	flagSwapMAC = 1 << 0
	flagDstMAC  = 1 << 1
	flagSrcMAC  = 1 << 2
	flagNewDst  = 1 << 3
	flagNewPort = 1 << 4
)

// Config map value: one entry, read by the program for every frame.
const (
	cfgFlags      = 0 // u64: cfgHas*
	cfgRate       = 8 // u64: milli-packets per second = tokens per ns
	cfgBurst      = 16
	cfgFill       = 24
	cfgIdle       = 32
	cfgSize       = 40
	cfgHasPrefix  = 1 << 0
	cfgHasPolicer = 1 << 1
	cfgHasFlows   = 1 << 2
)

func addr16(a netip.Addr) [16]byte { return netip.AddrFrom16(a.As16()).As16() }

// marshalKey lays f out as the program builds its keys: 16 bytes for
// IPv4, 40 for IPv6.
func marshalKey(f Flow, v4 bool) []byte {
	if v4 {
		k := make([]byte, key4Size)
		s, d := f.Src.Unmap().As4(), f.Dst.Unmap().As4()
		copy(k[key4Src:], s[:])
		copy(k[key4Dst:], d[:])
		binary.BigEndian.PutUint16(k[key4Sport:], f.SrcPort)
		binary.BigEndian.PutUint16(k[key4Sport+2:], f.DstPort)
		k[key4Proto] = f.Proto
		return k
	}
	k := make([]byte, key6Size)
	s, d := f.Src.As16(), f.Dst.As16()
	copy(k[key6Src:], s[:])
	copy(k[key6Dst:], d[:])
	binary.BigEndian.PutUint16(k[key6Sport:], f.SrcPort)
	binary.BigEndian.PutUint16(k[key6Sport+2:], f.DstPort)
	k[key6Proto] = f.Proto
	return k
}

func unmarshalKey(k []byte) Flow {
	if len(k) == key4Size {
		return Flow{
			Src: netip.AddrFrom4([4]byte(k[key4Src:])), Dst: netip.AddrFrom4([4]byte(k[key4Dst:])),
			SrcPort: binary.BigEndian.Uint16(k[key4Sport:]), DstPort: binary.BigEndian.Uint16(k[key4Sport+2:]),
			Proto: k[key4Proto],
		}
	}
	return Flow{
		Src: netip.AddrFrom16([16]byte(k[key6Src:])), Dst: netip.AddrFrom16([16]byte(k[key6Dst:])),
		SrcPort: binary.BigEndian.Uint16(k[key6Sport:]), DstPort: binary.BigEndian.Uint16(k[key6Sport+2:]),
		Proto: k[key6Proto],
	}
}

// csumAdd adds the 16-bit words of b (read as the program reads them,
// little-endian loads of network-order bytes) to a ones' complement sum.
// The sum of byte-swapped words is the byte-swapped sum, so the program
// can apply it to checksums loaded the same way.
func csumAdd(sum uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.LittleEndian.Uint16(b[i:]))
	}
	return sum
}

// csumSub adds the ones' complement of each word: subtracting them.
func csumSub(sum uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(^binary.LittleEndian.Uint16(b[i:]))
	}
	return sum
}

func fold(sum uint32) uint32 {
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return sum
}

// marshalValue checks e against the flow and lays it out for the map,
// with the checksum deltas precomputed: the program only adds them.
func marshalValue(f Flow, v4 bool, e Entry, lastNs uint64) ([valueSize]byte, error) {
	var v [valueSize]byte
	bad := func(format string, args ...any) ([valueSize]byte, error) {
		return v, fmt.Errorf("fastpath: flow %s: entry %s: %s: %w", f, e.Action, fmt.Sprintf(format, args...), ErrInvalid)
	}
	binary.LittleEndian.PutUint64(v[valLast:], lastNs)
	binary.LittleEndian.PutUint32(v[valAction:], uint32(e.Action))
	var flags uint32
	macs := func(need bool) error {
		for _, m := range []struct {
			name string
			mac  net.HardwareAddr
			off  int
			flag uint32
		}{{"DstMAC", e.DstMAC, valDstMAC, flagDstMAC}, {"SrcMAC", e.SrcMAC, valSrcMAC, flagSrcMAC}} {
			switch {
			case len(m.mac) == 6:
				copy(v[m.off:], m.mac)
				flags |= m.flag
			case len(m.mac) != 0:
				return fmt.Errorf("%s %s is not a 6-byte MAC address", m.name, m.mac)
			case need:
				return fmt.Errorf("%s is required", m.name)
			}
		}
		return nil
	}
	rewrite := e.SwapMAC || e.DstMAC != nil || e.SrcMAC != nil || e.NewDst.IsValid() || e.NewDstPort != 0
	tunnel := e.TunnelSrc.IsValid() || e.TunnelDst.IsValid()
	switch e.Action {
	case Redirect, Drop, Pass:
		if rewrite || tunnel {
			return bad("rewrite and tunnel fields are only for Transmit and Encap")
		}
	case Transmit:
		if tunnel {
			return bad("TunnelSrc and TunnelDst are only for Encap")
		}
		if e.SwapMAC {
			flags |= flagSwapMAC
		}
		if err := macs(false); err != nil {
			return bad("%v", err)
		}
		old := addr16(f.Dst.Unmap())
		var l4, ip uint32
		if e.NewDst.IsValid() {
			nd := e.NewDst.Unmap()
			if nd.Is4() != v4 {
				return bad("NewDst %s is not of the flow's family", e.NewDst)
			}
			n := addr16(nd)
			if v4 {
				copy(v[valNewDst:], n[12:])
				ip = csumAdd(csumSub(0, old[12:]), n[12:])
				l4 = ip // the pseudo-header holds the address
			} else {
				copy(v[valNewDst:], n[:])
				l4 = csumAdd(csumSub(0, old[:]), n[:])
			}
			flags |= flagNewDst
		}
		if e.NewDstPort != 0 {
			var o, n [2]byte
			binary.BigEndian.PutUint16(o[:], f.DstPort)
			binary.BigEndian.PutUint16(n[:], e.NewDstPort)
			l4 = csumAdd(csumSub(l4, o[:]), n[:])
			copy(v[valNewPort:], n[:])
			flags |= flagNewPort
		}
		binary.LittleEndian.PutUint32(v[valL4Delta:], fold(l4))
		binary.LittleEndian.PutUint32(v[valIPDelta:], fold(ip))
	case Encap:
		if e.SwapMAC || e.NewDst.IsValid() || e.NewDstPort != 0 {
			return bad("SwapMAC, NewDst and NewDstPort are only for Transmit")
		}
		if err := macs(true); err != nil {
			return bad("%v", err)
		}
		src, dst := e.TunnelSrc.Unmap(), e.TunnelDst.Unmap()
		if !src.Is4() || !dst.Is4() {
			return bad("TunnelSrc %s and TunnelDst %s must be IPv4 addresses", e.TunnelSrc, e.TunnelDst)
		}
		s4, d4 := src.As4(), dst.As4()
		copy(v[valTunSrc:], s4[:])
		copy(v[valTunDst:], d4[:])
		binary.LittleEndian.PutUint32(v[valIPDelta:], fold(csumAdd(0, outerHeader(v4, 0, s4, d4))))
	default:
		return bad("invalid action %d", uint8(e.Action))
	}
	binary.LittleEndian.PutUint32(v[valFlags:], flags)
	return v, nil
}

// outerHeader is the IPIP outer header the program writes, with the
// checksum field 0.
func outerHeader(inner4 bool, totalLen uint16, src, dst [4]byte) []byte {
	h := make([]byte, 20)
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], totalLen)
	h[6] = 0x40 // don't fragment
	h[8] = outerTTL
	h[9] = 41
	if inner4 {
		h[9] = 4
	}
	copy(h[12:], src[:])
	copy(h[16:], dst[:])
	return h
}

const outerTTL = 64

func unmarshalValue(f Flow, v []byte) (Entry, EntryStats, uint64) {
	var e Entry
	e.Action = Action(binary.LittleEndian.Uint32(v[valAction:]))
	flags := binary.LittleEndian.Uint32(v[valFlags:])
	e.SwapMAC = flags&flagSwapMAC != 0
	if flags&flagDstMAC != 0 {
		e.DstMAC = net.HardwareAddr(append([]byte(nil), v[valDstMAC:valDstMAC+6]...))
	}
	if flags&flagSrcMAC != 0 {
		e.SrcMAC = net.HardwareAddr(append([]byte(nil), v[valSrcMAC:valSrcMAC+6]...))
	}
	if flags&flagNewDst != 0 {
		if f.Dst.Unmap().Is4() {
			e.NewDst = netip.AddrFrom4([4]byte(v[valNewDst : valNewDst+4]))
		} else {
			e.NewDst = netip.AddrFrom16([16]byte(v[valNewDst : valNewDst+16]))
		}
	}
	if flags&flagNewPort != 0 {
		e.NewDstPort = binary.BigEndian.Uint16(v[valNewPort:])
	}
	if e.Action == Encap {
		e.TunnelSrc = netip.AddrFrom4([4]byte(v[valTunSrc : valTunSrc+4]))
		e.TunnelDst = netip.AddrFrom4([4]byte(v[valTunDst : valTunDst+4]))
	}
	st := EntryStats{Packets: binary.LittleEndian.Uint64(v[valPackets:]), Bytes: binary.LittleEndian.Uint64(v[valBytes:])}
	return e, st, binary.LittleEndian.Uint64(v[valLast:])
}

// lpmKey is the prefix lists' key: the prefix length over the
// IPv4-mapped 16-byte address.
func lpmKey(p netip.Prefix) ([lpmKeySize]byte, error) {
	var k [lpmKeySize]byte
	if !p.IsValid() {
		return k, fmt.Errorf("fastpath: invalid prefix %s: %w", p, ErrInvalid)
	}
	p = p.Masked()
	bits := p.Bits()
	a := p.Addr()
	if a.Is4() {
		bits += 96 // the IPv4-mapped prefix: ::ffff:a.b.c.d/96+bits
	}
	binary.LittleEndian.PutUint32(k[:], uint32(bits))
	a16 := addr16(a)
	copy(k[4:], a16[:])
	return k, nil
}
