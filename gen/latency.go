package gen

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram counts durations in log-linear buckets: exact below 128 ns,
// then 64 buckets per power of two, so a quantile is within 1.6 % of the
// true value. Add and the readers are safe for concurrent use and
// allocate nothing.
type Histogram struct {
	counts [64*58 + 128]atomic.Uint64
	n      atomic.Uint64
	max    atomic.Int64
	sum    atomic.Int64
}

func bucketOf(v uint64) int {
	if v < 128 {
		return int(v)
	}
	e := bits.Len64(v) - 7
	return 64*e + int(v>>e)
}

// bucketLow is the smallest value in bucket i.
func bucketLow(i int) uint64 {
	if i < 128 {
		return uint64(i)
	}
	e := (i - 64) / 64
	m := uint64(i - 64*e)
	return m << e
}

// Add counts d (negative durations count as 0).
func (h *Histogram) Add(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[bucketOf(uint64(v))].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Count is how many durations were added.
func (h *Histogram) Count() uint64 { return h.n.Load() }

// Max is the largest duration added.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Mean is the mean duration.
func (h *Histogram) Mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / int64(n))
}

// Quantile returns the duration below which a fraction q (0 to 1) of the
// added ones lie, to the bucket's precision; 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	var total uint64
	for i := range h.counts {
		total += h.counts[i].Load()
	}
	if total == 0 {
		return 0
	}
	rank := uint64(q*float64(total) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return time.Duration(min(bucketLow(i), uint64(h.max.Load())))
		}
	}
	return h.Max()
}

// Tracker matches replies to the sequence numbers one sender stamped:
// which came back, twice, or out of order, and their round-trip times.
// Its window is how many frames may be in flight at once; a reply older
// than that is counted as late, not matched. Sent is called by the sender
// and Reply by whatever receives, on any goroutine; neither allocates.
type Tracker struct {
	window uint64 // a power of two
	seen   []atomic.Uint64
	sent   atomic.Uint64 // frames stamped: sequence numbers 0 to sent-1
	uniq   atomic.Uint64
	dups   atomic.Uint64
	reord  atomic.Uint64
	late   atomic.Uint64
	high   atomic.Uint64 // 1 + the highest sequence number replied
	RTT    Histogram
}

// NewTracker returns a Tracker for up to window frames in flight, rounded
// up to a power of two (0: 1<<22).
func NewTracker(window int) *Tracker {
	if window <= 0 {
		window = 1 << 22
	}
	w := uint64(1) << bits.Len64(uint64(window-1))
	return &Tracker{window: w, seen: make([]atomic.Uint64, (w+63)/64)}
}

// Sending clears seq's slot in the window for its reply: call it before
// the frame stamped with seq goes out.
func (t *Tracker) Sending(seq uint64) {
	k := seq & (t.window - 1)
	t.seen[k/64].And(^(1 << (k % 64)))
}

// SentUpTo records that sequence numbers 0 to n-1 went out.
func (t *Tracker) SentUpTo(n uint64) { t.sent.Store(n) }

// Sent is Sending(seq) and SentUpTo(seq+1), for one frame at a time.
func (t *Tracker) Sent(seq uint64) {
	t.Sending(seq)
	t.SentUpTo(seq + 1)
}

// Reply records the reply to seq after rtt.
func (t *Tracker) Reply(seq uint64, rtt time.Duration) {
	sent := t.sent.Load()
	if seq >= sent || sent-seq > t.window {
		t.late.Add(1) // never sent, or its slot was reused
		return
	}
	k := seq & (t.window - 1)
	bit := uint64(1) << (k % 64)
	if t.seen[k/64].Or(bit)&bit != 0 {
		t.dups.Add(1)
		return
	}
	t.uniq.Add(1)
	t.RTT.Add(rtt)
	for {
		h := t.high.Load()
		if seq+1 <= h {
			t.reord.Add(1)
			return
		}
		if t.high.CompareAndSwap(h, seq+1) {
			return
		}
	}
}

// TrackerStats are a Tracker's counts.
type TrackerStats struct {
	Sent       uint64 // frames stamped
	Replied    uint64 // distinct sequence numbers that came back
	Lost       uint64 // Sent - Replied
	Duplicates uint64 // replies to a sequence number already replied
	Reordered  uint64 // replies to a lower sequence number than one replied before
	Late       uint64 // replies outside the window (or to numbers never sent)
}

// Stats returns the counts so far; Lost counts replies still in flight.
func (t *Tracker) Stats() TrackerStats {
	s := TrackerStats{Sent: t.sent.Load(), Replied: t.uniq.Load(), Duplicates: t.dups.Load(), Reordered: t.reord.Load(), Late: t.late.Load()}
	if s.Sent > s.Replied {
		s.Lost = s.Sent - s.Replied
	}
	return s
}

// Merge adds o's counts to h. o should not change meanwhile.
func (h *Histogram) Merge(o *Histogram) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c != 0 {
			h.counts[i].Add(c)
		}
	}
	h.n.Add(o.n.Load())
	h.sum.Add(o.sum.Load())
	if m := o.max.Load(); m > h.max.Load() {
		h.max.Store(m)
	}
}
