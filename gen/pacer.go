package gen

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Pacer is a token bucket of frames: Take says how many frames may go now
// for a mean rate of Rate frames a second, in bursts of at most Burst.
// It keeps no clock of its own: callers pass the time, so one reading
// serves a whole batch. It is not safe for concurrent use; give each
// sender its own.
type Pacer struct {
	rate   float64 // frames per ns
	burst  float64
	tokens float64
	last   int64 // ns, the time tokens was computed for
}

// NewPacer returns a Pacer of rate frames a second (> 0) and bursts of
// burst frames (0: 1), starting with one burst's tokens at now (ns).
func NewPacer(rate float64, burst int, now int64) *Pacer {
	if burst < 1 {
		burst = 1
	}
	return &Pacer{rate: rate / 1e9, burst: float64(burst), tokens: float64(burst), last: now}
}

// Take returns how many of want frames may be sent at now, and takes
// them.
func (p *Pacer) Take(now int64, want int) int {
	if now > p.last {
		p.tokens = min(p.burst, p.tokens+float64(now-p.last)*p.rate)
		p.last = now
	}
	n := min(want, int(p.tokens))
	p.tokens -= float64(n)
	return n
}

// Wait returns how long until one more frame may go.
func (p *Pacer) Wait() time.Duration {
	if p.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - p.tokens) / p.rate)
}

// Return puts back n frames Take granted that were not sent (a full
// ring), so the mean rate holds.
func (p *Pacer) Return(n int) { p.tokens = min(p.burst, p.tokens+float64(n)) }

// Rate is a parsed -rate: frames a second, or bits a second (which a
// sender turns into frames with the mean frame size).
type Rate struct {
	PPS, BPS float64 // one of them is set; both zero: no limit
}

// ParseRate reads "100000", "100k", "1.5M" (frames a second) or "10Mbit",
// "1Gbit", "500kbit" (bits a second, counting the frame's bytes without
// FCS, preamble or gap). "" and "0" mean no limit.
func ParseRate(s string) (Rate, error) {
	bad := func() (Rate, error) {
		return Rate{}, fmt.Errorf("gen: rate %q: want frames a second (100k, 1.5M) or bits a second (10Mbit, 1Gbit)", s)
	}
	if s == "" || s == "0" {
		return Rate{}, nil
	}
	num, bits := strings.CutSuffix(s, "bit")
	mult := 1.0
	if n := len(num); n > 0 {
		switch num[n-1] {
		case 'k', 'K':
			mult, num = 1e3, num[:n-1]
		case 'M':
			mult, num = 1e6, num[:n-1]
		case 'G':
			mult, num = 1e9, num[:n-1]
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || v != v || v*mult > 1e12 {
		return bad()
	}
	if bits {
		return Rate{BPS: v * mult}, nil
	}
	return Rate{PPS: v * mult}, nil
}

// FramesPerSecond turns r into frames a second for frames of meanSize
// bytes on average; 0 means no limit.
func (r Rate) FramesPerSecond(meanSize float64) float64 {
	if r.BPS > 0 {
		return r.BPS / (8 * meanSize)
	}
	return r.PPS
}
