package stages

import (
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/xdpkit/xdpkit/pipeline"
)

// DefaultRateLimitCapacity is the number of sources a RateLimiter tracks
// when RateLimitOptions.Capacity is 0.
const DefaultRateLimitCapacity = 65536

// RateLimitOptions configure a RateLimiter.
type RateLimitOptions struct {
	// Rate is how many packets per second each source address may send
	// over time. Required: more than 0, at most 1e9. Rates are kept as
	// the nanoseconds between two packets, rounded, so rates close to
	// 1e9 are coarse (5e8 and 4e8 become 2 and 3 ns).
	Rate float64
	// Burst is how many packets a source may send back to back after it
	// was quiet long enough; it also bounds how much unused rate a
	// source saves up. Zero means a tenth of a second's worth, Rate/10
	// rounded up, at least 1. Burst/Rate must be under 146 years.
	Burst int
	// Capacity is how many sources are tracked at once, rounded up to a
	// power of two: the table takes 32 bytes a source, allocated by
	// NewRateLimiter. Zero means DefaultRateLimitCapacity; at most 2^24.
	Capacity int
	// NonIP is the verdict for frames without an IP header (ARP, frames
	// cut short before the source address). Zero value: Continue.
	NonIP pipeline.Verdict
	// Now returns the time in nanoseconds on a clock that never goes
	// back. Nil means Go's monotonic clock (time.Since, read through the
	// vDSO, 20-50 ns). Tests inject a fake clock here.
	Now func() int64
}

// RateLimitStats are a RateLimiter's counters.
type RateLimitStats struct {
	Passed  uint64 `json:"passed"`  // IP frames within their source's rate
	Dropped uint64 `json:"dropped"` // IP frames over their source's rate
	NonIP   uint64 `json:"non_ip"`  // frames without an IP header, given NonIP
	Evicted uint64 `json:"evicted"` // sources forgotten before their bucket refilled, to make room
	Sources int    `json:"sources"` // sources in the table
}

// bucket is one source's state: 32 bytes.
type bucket struct {
	// tat is the theoretical arrival time of the source's next packet
	// (GCRA): now + (Burst - tokens left) * interval. A bucket whose tat
	// is not after now is full, the same as a new one.
	tat            int64
	addrHi, addrLo uint64 // see addrScratch.words
	family         uint64 // 4 or 6; 0 marks an empty slot
}

// RateLimiter is a stage that limits each source IP address (IPv4 or
// IPv6) to a rate, with a burst: a token bucket per source, kept as the
// generic cell rate algorithm's single timestamp. Frames over the rate get
// Drop, the others Continue; frames without an IP header get
// RateLimitOptions.NonIP. Frames that did not parse past the IP header
// are still limited by their source.
//
// # Memory
//
// Sources live in a table allocated by NewRateLimiter; it never grows, so
// a flood from spoofed addresses cannot exhaust memory. A source's hash
// (seeded at random, so senders cannot aim at one slot) picks a slot, and
// the source lives there or in one of the next 7. A new source takes an
// empty slot, or the slot of a source whose bucket has refilled (that
// loses nothing: a full bucket is what a new source gets). If all 8 are
// sources still short of tokens, the new source is admitted with a fresh
// bucket after evicting the least recently refilled one among them (the
// one with the most tokens back), and Stats counts an eviction. An
// evicted source starts over with a full burst when it comes back; a
// source held well over its rate is the last to be evicted.
//
// # Clock
//
// By default Handle reads Go's monotonic clock for every packet. To read
// it once per batch instead, call SetNow (or Tick, for the default clock)
// on the Runner's goroutine, say from pipeline.Config.Tick with a short
// TickInterval: from the first call on, Handle uses the last time set
// instead of reading a clock. A time set that seldom makes the limiter
// coarse: set it more often than Burst/Rate.
//
// Handle allocates nothing. A RateLimiter is not safe for concurrent use:
// call its other methods on the Runner's goroutine or after Run returned.
type RateLimiter struct {
	slots    []bucket
	mask     uint64
	window   int
	seed     [3]uint64
	interval int64 // nanoseconds between packets at Rate
	limit    int64 // Burst * interval
	nonIP    pipeline.Verdict
	clock    func() int64
	base     time.Time // zero of the default clock
	now      int64     // the time SetNow set
	manual   bool      // SetNow was called
	used     int
	stats    RateLimitStats
	scratch  addrScratch
}

var _ interface {
	pipeline.Stage
	pipeline.Named
} = (*RateLimiter)(nil)

// NewRateLimiter checks opts and returns a RateLimiter with an empty
// table.
func NewRateLimiter(opts RateLimitOptions) (*RateLimiter, error) {
	if !(opts.Rate > 0 && opts.Rate <= 1e9) { // also false for NaN
		return nil, fmt.Errorf("stages: rate limiter: invalid rate %v: must be more than 0 and at most 1e9 packets/s", opts.Rate)
	}
	burst := opts.Burst
	switch {
	case burst == 0:
		burst = max(1, int(math.Ceil(opts.Rate/10)))
	case burst < 0:
		return nil, fmt.Errorf("stages: rate limiter: invalid burst %d: must be at least 0", burst)
	}
	interval := max(1, math.Round(1e9/opts.Rate))
	if interval*float64(burst) > 1<<62 {
		return nil, fmt.Errorf("stages: rate limiter: invalid burst %d at rate %v: burst/rate must be under 146 years", burst, opts.Rate)
	}
	if opts.NonIP > pipeline.Malformed {
		return nil, fmt.Errorf("stages: rate limiter: invalid NonIP verdict %v", opts.NonIP)
	}
	n, err := tableSlots(opts.Capacity, DefaultRateLimitCapacity)
	if err != nil {
		return nil, fmt.Errorf("stages: rate limiter: %w", err)
	}
	r := &RateLimiter{
		slots:    make([]bucket, n),
		mask:     uint64(n - 1),
		window:   min(probeWindow, n),
		interval: int64(interval),
		limit:    int64(interval) * int64(burst),
		nonIP:    opts.NonIP,
		clock:    opts.Now,
		base:     time.Now(),
	}
	newSeed(r.seed[:])
	return r, nil
}

// Name returns "ratelimit".
func (r *RateLimiter) Name() string { return "ratelimit" }

// Handle takes a token from the bucket of p's source: Continue if there
// was one, Drop if not.
func (r *RateLimiter) Handle(p *pipeline.Packet) pipeline.Verdict {
	h := &p.Headers
	if !h.IPv4 && !h.IPv6 {
		r.stats.NonIP++
		return r.nonIP
	}
	now := r.now
	if !r.manual {
		if r.clock != nil {
			now = r.clock()
		} else {
			now = int64(time.Since(r.base))
		}
	}
	b := r.bucket(h.SrcIP, now)
	tat := max(b.tat, now) + r.interval
	if tat-now > r.limit {
		r.stats.Dropped++
		return pipeline.Drop
	}
	b.tat = tat
	r.stats.Passed++
	return pipeline.Continue
}

// bucket returns addr's bucket, making one if need be.
func (r *RateLimiter) bucket(addr netip.Addr, now int64) *bucket {
	hi, lo, fam := r.scratch.words(addr)
	i := mix(mix(hi^r.seed[0], lo^r.seed[1])^fam^r.seed[2], 0xe7037ed1a0b428db)
	var free *bucket // an empty or refilled slot to take
	victim := &r.slots[i&r.mask]
	for range r.window {
		b := &r.slots[i&r.mask]
		if b.addrLo == lo && b.addrHi == hi && b.family == fam {
			return b
		}
		if b.family == 0 {
			// Slots are never emptied (new sources overwrite), so a
			// source is never behind an empty slot: addr is new.
			if free == nil {
				free = b
				r.used++
			}
			break
		}
		if free == nil && b.tat <= now {
			free = b
		}
		if b.tat < victim.tat {
			victim = b
		}
		i++
	}
	if free == nil {
		free = victim
		r.stats.Evicted++
	}
	*free = bucket{tat: now, addrHi: hi, addrLo: lo, family: fam}
	return free
}

// SetNow sets the time Handle uses, in nanoseconds on the clock of
// RateLimitOptions.Now (or, with the default clock, since the RateLimiter
// was made: use Tick). From the first call on, Handle no longer reads a
// clock itself.
func (r *RateLimiter) SetNow(ns int64) {
	r.now, r.manual = ns, true
}

// Tick calls SetNow with now on the default clock (RateLimitOptions.Now
// nil). Its signature is pipeline.Config.Tick's:
//
//	pipeline.Config{Stages: []pipeline.Stage{rl}, Tick: rl.Tick, TickInterval: time.Millisecond}
func (r *RateLimiter) Tick(now time.Time) {
	r.SetNow(int64(now.Sub(r.base)))
}

// Stats returns the counters.
func (r *RateLimiter) Stats() RateLimitStats {
	s := r.stats
	s.Sources = r.used
	return s
}

// Len returns how many sources the table holds.
func (r *RateLimiter) Len() int { return r.used }

// Capacity returns how many sources the table has room for.
func (r *RateLimiter) Capacity() int { return len(r.slots) }

// Reset forgets every source and zeroes the counters. The clock is kept:
// a time set with SetNow stays in use.
func (r *RateLimiter) Reset() {
	clear(r.slots)
	r.used = 0
	r.stats = RateLimitStats{}
}
