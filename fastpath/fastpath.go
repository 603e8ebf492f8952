package fastpath

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/xdpkit/xdpkit/internal/clock"
)

// FastPath holds the maps of the fast path: the flow table, the
// policer's source table, the prefix lists, its config and counters. Its
// instructions go into an XDP program (redirect.Options.FastPath does
// that); its methods change what that program does, live.
//
// All methods are safe for concurrent use. Close releases the maps' file
// descriptors; a program loaded with them keeps them alive in the kernel
// and keeps working as last configured, so close the FastPath after the
// program (or when the program is gone).
type FastPath struct {
	cfg Config

	mu       sync.Mutex // guards the fields below and the config map
	closed   bool
	flags    uint64
	prefixes map[netip.Prefix]Policy
	tickNs   uint64 // the policer clock's resolution; 0 with Config.PreciseClock

	flows4, flows6, sources4, sources6, lpm, conf, counters *ebpf.Map
}

// New creates the fast path's maps. A nil cfg is the zero Config: no
// policies, an empty flow table, Default Redirect. It needs what loading
// an XDP program needs: root (CAP_BPF and CAP_NET_ADMIN), Linux 5.18+.
func New(cfg *Config) (_ *FastPath, err error) {
	c, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	fp := &FastPath{cfg: c, prefixes: map[netip.Prefix]Policy{}}
	if !c.PreciseClock {
		if fp.tickNs, err = clock.CoarseResolutionNs(); err != nil {
			return nil, fmt.Errorf("fastpath: resolution of CLOCK_MONOTONIC_COARSE: %w", err)
		}
	}
	defer func() {
		if err != nil {
			fp.closeMaps()
		}
	}()
	specs := []struct {
		m    **ebpf.Map
		spec ebpf.MapSpec
	}{
		{&fp.flows4, ebpf.MapSpec{Name: flows4MapName, Type: ebpf.LRUHash, KeySize: key4Size, ValueSize: valueSize, MaxEntries: uint32(c.Flows)}},
		{&fp.flows6, ebpf.MapSpec{Name: flows6MapName, Type: ebpf.LRUHash, KeySize: key6Size, ValueSize: valueSize, MaxEntries: uint32(c.Flows)}},
		{&fp.sources4, ebpf.MapSpec{Name: sources4MapName, Type: ebpf.LRUHash, KeySize: 4, ValueSize: sourceValSz, MaxEntries: uint32(c.Sources)}},
		{&fp.sources6, ebpf.MapSpec{Name: sources6MapName, Type: ebpf.LRUHash, KeySize: 16, ValueSize: sourceValSz, MaxEntries: uint32(c.Sources)}},
		{&fp.lpm, ebpf.MapSpec{Name: prefixesMapName, Type: ebpf.LPMTrie, KeySize: lpmKeySize, ValueSize: 4, MaxEntries: uint32(c.Prefixes), Flags: bpfFNoPrealloc}},
		{&fp.conf, ebpf.MapSpec{Name: configMapName, Type: ebpf.Array, KeySize: 4, ValueSize: cfgSize, MaxEntries: 1}},
		{&fp.counters, ebpf.MapSpec{Name: countersMapName, Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: numCounters}},
	}
	for _, s := range specs {
		m, err := ebpf.NewMap(&s.spec)
		if err != nil {
			return nil, createError(s.spec.Name, err)
		}
		*s.m = m
	}
	if err := fp.setRate(c.Rate); err != nil {
		return nil, err
	}
	return fp, nil
}

// bpfFNoPrealloc is BPF_F_NO_PREALLOC, which LPM tries require.
const bpfFNoPrealloc = 1

// errNoSpace is what a full LPM trie returns.
var errNoSpace = syscall.ENOSPC

func createError(name string, err error) error {
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("fastpath: create map %s: %w (needs CAP_BPF and CAP_NET_ADMIN: run as root)", name, err)
	}
	return fmt.Errorf("fastpath: create map %s: %w", name, err)
}

func (fp *FastPath) closeMaps() error {
	var errs []error
	for _, m := range []*ebpf.Map{fp.flows4, fp.flows6, fp.sources4, fp.sources6, fp.lpm, fp.conf, fp.counters} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	return errors.Join(errs...)
}

// Close releases the maps. It is idempotent; every other method fails
// with os.ErrClosed afterwards.
func (fp *FastPath) Close() error {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if fp.closed {
		return nil
	}
	fp.closed = true
	return fp.closeMaps()
}

// Config returns the configuration New was given, with defaults filled
// in (Rate as last set by SetRate).
func (fp *FastPath) Config() Config {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return fp.cfg
}

// Instructions returns the fast path's eBPF instructions, with its maps
// associated, for an XDP program of your own (redirect.Options.FastPath
// splices them in for you). On entry R6 must hold the struct xdp_md
// context; they leave R6 unchanged and use R0 to R5, R7 to R9 and 64
// bytes of stack. A frame that goes to the socket jumps to the
// instruction labelled xsk, which must redirect it (bpf_redirect_map on
// the XSKMAP); every other frame returns its verdict. The labels are
// unique to each call, and the first instruction has none, so that the
// caller can label it as the entry (redirect labels it
// filter.RedirectSymbol).
func (fp *FastPath) Instructions(xsk string) (asm.Instructions, error) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if fp.closed {
		return nil, fmt.Errorf("fastpath: instructions: %w", os.ErrClosed)
	}
	insns := instructions(fp.cfg.Default, fp.cfg.PreciseClock, fp.cfg.AtomicCounters, xsk)
	for name, m := range map[string]*ebpf.Map{
		flows4MapName: fp.flows4, flows6MapName: fp.flows6, sources4MapName: fp.sources4, sources6MapName: fp.sources6, prefixesMapName: fp.lpm,
		configMapName: fp.conf, countersMapName: fp.counters,
	} {
		if err := insns.AssociateMap(name, m); err != nil {
			return nil, fmt.Errorf("fastpath: instructions: %w", err)
		}
	}
	return insns, nil
}

// writeConfig stores the config map's value. fp.mu is held.
func (fp *FastPath) writeConfig(rate, burst, fill uint64) error {
	var v [cfgSize]byte
	binary.LittleEndian.PutUint64(v[cfgFlags:], fp.flags)
	binary.LittleEndian.PutUint64(v[cfgRate:], rate)
	binary.LittleEndian.PutUint64(v[cfgBurst:], burst)
	binary.LittleEndian.PutUint64(v[cfgFill:], fill)
	binary.LittleEndian.PutUint64(v[cfgIdle:], uint64(fp.cfg.IdleTimeout.Nanoseconds()))
	if err := fp.conf.Update(uint32(0), v[:], ebpf.UpdateAny); err != nil {
		return fmt.Errorf("fastpath: write config: %w", err)
	}
	return nil
}

// check returns os.ErrClosed after Close. fp.mu is held.
func (fp *FastPath) check(op string) error {
	if fp.closed {
		return fmt.Errorf("fastpath: %s: %w", op, os.ErrClosed)
	}
	return nil
}

// SetRate sets the per-source policer, live: each source address gets a
// token bucket of r.Burst packets refilled at r.PerSecond; a frame that
// finds its bucket empty is dropped (Counters.RateDropped), the others go
// on to the flow table (Counters.RatePassed). A source seen for the first
// time, or again after eviction from the Config.Sources table, starts
// with a full bucket. The zero Rate turns the policer off. Sources in an
// Allow prefix are not policed.
//
// The buckets are shared by all CPUs without a lock, so frames of one
// source arriving on several queues at once may pass slightly over the
// rate.
func (fp *FastPath) SetRate(r Rate) error {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if err := fp.check("set rate"); err != nil {
		return err
	}
	return fp.setRate(r)
}

func (fp *FastPath) setRate(r Rate) error {
	rate, burst, fill, err := r.resolve(fp.tickNs)
	if err != nil {
		return err
	}
	fp.flags &^= cfgHasPolicer
	if rate > 0 {
		fp.flags |= cfgHasPolicer
	}
	if err := fp.writeConfig(rate, burst, fill); err != nil {
		return err
	}
	fp.cfg.Rate = r
	return nil
}

func (fp *FastPath) rewriteConfig() error {
	rate, burst, fill, _ := fp.cfg.Rate.resolve(fp.tickNs)
	return fp.writeConfig(rate, burst, fill)
}

// SetPolicy blocks or allows the source addresses in prefix, live. The
// longest matching prefix decides: Allow 10.1.0.0/16 inside Block
// 10.0.0.0/8 lets 10.1.x.x through. IPv4 prefixes also match
// IPv4-mapped IPv6 sources. At most Config.Prefixes prefixes.
func (fp *FastPath) SetPolicy(prefix netip.Prefix, p Policy) error {
	if p != Block && p != Allow {
		return fmt.Errorf("fastpath: set policy %s: invalid policy %d: %w", prefix, uint8(p), ErrInvalid)
	}
	k, err := lpmKey(prefix)
	if err != nil {
		return err
	}
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if err := fp.check("set policy"); err != nil {
		return err
	}
	if err := fp.lpm.Update(k[:], uint32(p), ebpf.UpdateAny); err != nil {
		if errors.Is(err, errNoSpace) {
			return fmt.Errorf("fastpath: set policy %s %s: the lists are full (Config.Prefixes %d): %w", p, prefix, fp.cfg.Prefixes, err)
		}
		return fmt.Errorf("fastpath: set policy %s %s: %w", p, prefix, err)
	}
	fp.prefixes[prefix.Masked()] = p
	if fp.flags&cfgHasPrefix == 0 {
		fp.flags |= cfgHasPrefix
		return fp.rewriteConfig()
	}
	return nil
}

// DeletePolicy removes prefix from the lists. Deleting a prefix that is
// not there is not an error.
func (fp *FastPath) DeletePolicy(prefix netip.Prefix) error {
	k, err := lpmKey(prefix)
	if err != nil {
		return err
	}
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if err := fp.check("delete policy"); err != nil {
		return err
	}
	if err := fp.lpm.Delete(k[:]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("fastpath: delete policy %s: %w", prefix, err)
	}
	delete(fp.prefixes, prefix.Masked())
	if len(fp.prefixes) == 0 && fp.flags&cfgHasPrefix != 0 {
		fp.flags &^= cfgHasPrefix
		return fp.rewriteConfig()
	}
	return nil
}

// Policies returns the prefixes set with SetPolicy.
func (fp *FastPath) Policies() map[netip.Prefix]Policy {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	out := make(map[netip.Prefix]Policy, len(fp.prefixes))
	for k, v := range fp.prefixes {
		out[k] = v
	}
	return out
}

// Install puts (or replaces) the entry for flow f: from now on the XDP
// program applies e to f's frames instead of sending them to the socket.
// Frames the program cannot match to a 5-tuple never hit an entry: IPv4
// with options or fragmented, IPv6 with extension headers, VLAN-tagged.
// A full table evicts its least recently used entry. The entry's
// counters start at zero.
func (fp *FastPath) Install(f Flow, e Entry) error {
	v4, err := f.check()
	if err != nil {
		return err
	}
	now, err := clock.MonotonicNs()
	if err != nil {
		return fmt.Errorf("fastpath: install %s: %w", f, err)
	}
	val, err := marshalValue(f, v4, e, now)
	if err != nil {
		return err
	}
	key := marshalKey(f, v4)
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if err := fp.check("install"); err != nil {
		return err
	}
	if err := fp.table(v4).Update(key, val[:], ebpf.UpdateAny); err != nil {
		return fmt.Errorf("fastpath: install %s: %w", f, err)
	}
	if fp.flags&cfgHasFlows == 0 {
		fp.flags |= cfgHasFlows
		return fp.rewriteConfig()
	}
	return nil
}

// Remove deletes the entry for f; its frames go to the default again. It
// returns an error matching ErrNoEntry if there is none.
func (fp *FastPath) Remove(f Flow) error {
	v4, err := f.check()
	if err != nil {
		return err
	}
	key := marshalKey(f, v4)
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if err := fp.check("remove"); err != nil {
		return err
	}
	if err := fp.table(v4).Delete(key); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("fastpath: remove %s: %w", f, ErrNoEntry)
		}
		return fmt.Errorf("fastpath: remove %s: %w", f, err)
	}
	return nil
}

// Lookup returns the entry for f and its counters, or an error matching
// ErrNoEntry.
func (fp *FastPath) Lookup(f Flow) (Entry, EntryStats, error) {
	v4, err := f.check()
	if err != nil {
		return Entry{}, EntryStats{}, err
	}
	key := marshalKey(f, v4)
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if err := fp.check("lookup"); err != nil {
		return Entry{}, EntryStats{}, err
	}
	var val [valueSize]byte
	if err := fp.table(v4).Lookup(key, val[:]); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return Entry{}, EntryStats{}, fmt.Errorf("fastpath: lookup %s: %w", f, ErrNoEntry)
		}
		return Entry{}, EntryStats{}, fmt.Errorf("fastpath: lookup %s: %w", f, err)
	}
	e, st, last := unmarshalValue(f, val[:])
	st.LastSeen = clock.FromMonotonic(last)
	return e, st, nil
}

// Entries returns a snapshot of the flow table. Entries the program
// installs or evicts meanwhile may or may not be in it.
func (fp *FastPath) Entries() ([]FlowEntry, error) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if err := fp.check("entries"); err != nil {
		return nil, err
	}
	var out []FlowEntry
	for _, m := range []*ebpf.Map{fp.flows4, fp.flows6} {
		k := make([]byte, m.KeySize())
		var v [valueSize]byte
		it := m.Iterate()
		for it.Next(&k, &v) {
			f := unmarshalKey(k)
			e, st, last := unmarshalValue(f, v[:])
			st.LastSeen = clock.FromMonotonic(last)
			out = append(out, FlowEntry{Flow: f, Entry: e, Stats: st})
		}
		if err := it.Err(); err != nil {
			return out, fmt.Errorf("fastpath: entries: %w", err)
		}
	}
	return out, nil
}

// table is the flow table of a family.
func (fp *FastPath) table(v4 bool) *ebpf.Map {
	if v4 {
		return fp.flows4
	}
	return fp.flows6
}

// Expire removes the entries not matched for longer than idle (0 means
// Config.IdleTimeout) and returns how many it removed. Call it now and
// then when the table should hold only live flows: the program already
// ignores entries idle for longer than Config.IdleTimeout.
func (fp *FastPath) Expire(idle time.Duration) (int, error) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if err := fp.check("expire"); err != nil {
		return 0, err
	}
	if idle == 0 {
		idle = fp.cfg.IdleTimeout
	}
	if idle <= 0 {
		return 0, fmt.Errorf("fastpath: expire: no idle time given and Config.IdleTimeout is 0: %w", ErrInvalid)
	}
	now, err := clock.MonotonicNs()
	if err != nil {
		return 0, fmt.Errorf("fastpath: expire: %w", err)
	}
	n := 0
	for _, m := range []*ebpf.Map{fp.flows4, fp.flows6} {
		var old [][]byte
		k := make([]byte, m.KeySize())
		var v [valueSize]byte
		it := m.Iterate()
		for it.Next(&k, &v) {
			last := binary.LittleEndian.Uint64(v[valLast:])
			if now > last && time.Duration(now-last) > idle {
				old = append(old, append([]byte(nil), k...))
			}
		}
		if err := it.Err(); err != nil {
			return n, fmt.Errorf("fastpath: expire: %w", err)
		}
		for _, k := range old {
			switch err := m.Delete(k); {
			case err == nil:
				n++
			case errors.Is(err, ebpf.ErrKeyNotExist):
			default:
				return n, fmt.Errorf("fastpath: expire: %w", err)
			}
		}
	}
	return n, nil
}

// Counters returns the verdict counts so far, summed over CPUs.
func (fp *FastPath) Counters() (Counters, error) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if err := fp.check("counters"); err != nil {
		return Counters{}, err
	}
	var sums [numCounters]uint64
	var perCPU []uint64
	for k := range uint32(numCounters) {
		if err := fp.counters.Lookup(k, &perCPU); err != nil {
			return Counters{}, fmt.Errorf("fastpath: read counters: %w", err)
		}
		for _, v := range perCPU {
			sums[k] += v
		}
	}
	return countersFrom(&sums), nil
}
