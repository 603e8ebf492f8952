package stages_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpkit/xdpkit/internal/testframes"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/stages"
)

// newRateLimiter returns a RateLimiter on a fake clock, and the clock.
func newRateLimiter(tb testing.TB, opts stages.RateLimitOptions) (*stages.RateLimiter, *int64) {
	tb.Helper()
	now := new(int64)
	opts.Now = func() int64 { return *now }
	r, err := stages.NewRateLimiter(opts)
	if err != nil {
		tb.Fatal(err)
	}
	return r, now
}

// A source sending at twice the rate gets half its packets dropped.
func TestRateLimiterTwiceTheRate(t *testing.T) {
	t.Parallel()
	r, now := newRateLimiter(t, stages.RateLimitOptions{Rate: 1000, Burst: 10})
	p := synthPacket(synthUDP4)
	const sent = 20000 // 10 s at 2000 packets/s
	dropped := 0
	for range sent {
		if r.Handle(p) == pipeline.Drop {
			dropped++
		}
		*now += int64(time.Second / 2000)
	}
	frac := float64(dropped) / sent
	t.Logf("dropped %d of %d (%.4f)", dropped, sent, frac)
	if math.Abs(frac-0.5) > 0.005 {
		t.Errorf("dropped %d of %d (%.4f), want half within 1%%", dropped, sent, frac)
	}
	st := r.Stats()
	if st.Dropped != uint64(dropped) || st.Passed != uint64(sent-dropped) || st.Sources != 1 || st.NonIP != 0 || st.Evicted != 0 {
		t.Errorf("Stats() = %+v, dropped %d", st, dropped)
	}
}

// A quiet source may send Burst packets at once, no more however long it
// was quiet, and then one per interval.
func TestRateLimiterBurst(t *testing.T) {
	t.Parallel()
	r, now := newRateLimiter(t, stages.RateLimitOptions{Rate: 100, Burst: 5})
	p := synthPacket(synthTCP6)
	send := func(n int) (passed int) {
		for range n {
			if r.Handle(p) == pipeline.Continue {
				passed++
			}
		}
		return passed
	}
	if got := send(8); got != 5 {
		t.Errorf("fresh source: %d of 8 back to back passed, want the burst, 5", got)
	}
	*now += 2 * int64(10*time.Millisecond)
	if got := send(5); got != 2 {
		t.Errorf("after two intervals: %d of 5 passed, want 2", got)
	}
	*now += int64(10*time.Millisecond) - 1
	if got := send(1); got != 0 {
		t.Errorf("after just under an interval: %d passed, want 0", got)
	}
	*now += int64(time.Hour)
	if got := send(100); got != 5 {
		t.Errorf("after an hour: %d of 100 passed, want the burst, 5", got)
	}
}

// Over 10 simulated seconds of irregular traffic, a source at ten times
// the rate gets the rate (and one burst), and a source under the rate
// loses nothing.
func TestRateLimiterRateHolds(t *testing.T) {
	t.Parallel()
	for _, rate := range []float64{3, 100, 12345} {
		const burst, seconds = 20, 10
		r, now := newRateLimiter(t, stages.RateLimitOptions{Rate: rate, Burst: burst})
		loud := synthPacket(synthUDP4)
		quiet := synthPacket(synthTCP6)
		rng := rand.New(rand.NewPCG(1, 2))
		end := int64(seconds * time.Second)
		nextLoud, nextQuiet := int64(0), int64(0)
		var loudPassed, quietSent, quietPassed int
		for min(nextLoud, nextQuiet) < end {
			if nextLoud <= nextQuiet {
				*now = nextLoud
				if r.Handle(loud) == pipeline.Continue {
					loudPassed++
				}
				nextLoud += int64(rng.ExpFloat64() * 1e9 / (10 * rate)) // Poisson, 10x the rate
			} else {
				*now = nextQuiet
				quietSent++
				if r.Handle(quiet) == pipeline.Continue {
					quietPassed++
				}
				nextQuiet += int64(1e9 / (rate / 2)) // evenly, half the rate
			}
		}
		want := rate*seconds + burst
		t.Logf("rate %v: loud source got %d through, want %v (%+.2f%%); quiet %d of %d", rate, loudPassed, want, 100*(float64(loudPassed)-want)/want, quietPassed, quietSent)
		if math.Abs(float64(loudPassed)-want) > want/10 {
			t.Errorf("rate %v: loud source got %d through in %d s, want %v within 10%%", rate, loudPassed, seconds, want)
		}
		if quietPassed != quietSent {
			t.Errorf("rate %v: quiet source got %d of %d through, want all", rate, quietPassed, quietSent)
		}
	}
}

// A flood from a million spoofed sources keeps the table at its capacity
// and the heap where it was, allocates nothing, and does not let a loud
// real source out of its limit by evicting it.
func TestRateLimiterSpoofedFlood(t *testing.T) {
	const capacity, rate, burst = 4096, 100, 20
	r, now := newRateLimiter(t, stages.RateLimitOptions{Rate: rate, Burst: burst, Capacity: capacity})
	spoofed := synthPacket(synthUDP4)
	loud := synthPacket(synthTCP6)
	loudPassed, i := 0, 0
	flood := func() { // a million packets in one simulated second
		for range 1 << 20 {
			i++
			*now += int64(time.Second) >> 20
			if i%10 == 0 {
				if r.Handle(loud) == pipeline.Continue {
					loudPassed++
				}
				continue
			}
			if i%2 == 0 {
				spoofed.Headers.SrcIP = netip.AddrFrom4([4]byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
			} else {
				spoofed.Headers.SrcIP = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
			}
			r.Handle(spoofed)
		}
	}
	before := heapAfterGC()
	allocs := testing.AllocsPerRun(1, flood) // runs flood twice
	after := heapAfterGC()
	if allocs != 0 {
		t.Errorf("%v allocations per million packets, want 0", allocs)
	}
	if after > before+64<<10 {
		t.Errorf("heap grew from %d to %d bytes", before, after)
	}
	st := r.Stats()
	if r.Capacity() != capacity || st.Sources != capacity || r.Len() != capacity {
		t.Errorf("Capacity() %d, Len() %d, Stats().Sources %d: want all %d", r.Capacity(), r.Len(), st.Sources, capacity)
	}
	if st.Evicted == 0 {
		t.Error("no evictions: the flood did not fill the table")
	}
	if want := 2*rate + burst; math.Abs(float64(loudPassed-want)) > float64(want)/10 {
		t.Errorf("loud source got %d through in 2 s, want %d within 10%%", loudPassed, want)
	}
	t.Logf("%d packets, %+v, heap %d -> %d bytes", i, st, before, after)
}

func TestRateLimiterNonIP(t *testing.T) {
	t.Parallel()
	// Only the IP header is needed: a UDP header with an impossible
	// length leaves the frame malformed but its source known.
	badUDP := testframes.Hex("020000000002 020000000001 0800" +
		"4500 0020 0000 4000 4011 0000 0a000001 0a000002" +
		"04d2 0035 0003 0000 61626364")
	if p := synthPacket(badUDP); p.ParseErr == nil || !p.Headers.IPv4 {
		t.Fatalf("badUDP: ParseErr %v, IPv4 %v: want an error after the IP header", p.ParseErr, p.Headers.IPv4)
	}
	for _, nonIP := range []pipeline.Verdict{pipeline.Continue, pipeline.Drop, pipeline.Malformed} {
		r, _ := newRateLimiter(t, stages.RateLimitOptions{Rate: 1, Burst: 1, NonIP: nonIP})
		for _, frame := range [][]byte{synthARP, synthLLDP, synthTruncated, synthMalformed, {1, 2, 3}} {
			synthHandle(t, r, frame, 3, nonIP)
		}
		synthHandle(t, r, badUDP, 1, pipeline.Continue)
		synthHandle(t, r, synthUDP4, 1, pipeline.Drop) // same source, no token left
		if st := r.Stats(); st.NonIP != 15 || st.Passed != 1 || st.Dropped != 1 || st.Sources != 1 {
			t.Errorf("NonIP %v: Stats() = %+v", nonIP, st)
		}
	}
}

// IPv4 10.0.0.1 and IPv6 ::ffff:10.0.0.1 are different sources.
func TestRateLimiterFamilies(t *testing.T) {
	t.Parallel()
	r, _ := newRateLimiter(t, stages.RateLimitOptions{Rate: 1, Burst: 1})
	v4 := netip.MustParseAddr("10.0.0.1")
	dst4 := netip.MustParseAddr("10.0.0.2")
	synthHandle(t, r, synthFrame(v4, dst4, 17, 1, 2, 0), 1, pipeline.Continue)
	synthHandle(t, r, synthFrame(netip.AddrFrom16(v4.As16()), netip.AddrFrom16(dst4.As16()), 17, 1, 2, 0), 1, pipeline.Continue)
	synthHandle(t, r, synthFrame(v4, dst4, 6, 1, 2, 0), 1, pipeline.Drop)
	if r.Len() != 2 {
		t.Errorf("Len() = %d, want 2", r.Len())
	}
	r.Reset()
	if st := r.Stats(); st != (stages.RateLimitStats{}) || r.Len() != 0 {
		t.Errorf("after Reset: Stats() = %+v, Len() = %d", st, r.Len())
	}
	synthHandle(t, r, synthFrame(v4, dst4, 6, 1, 2, 0), 1, pipeline.Continue)
}

// Once SetNow was called, Handle uses the time set, not the clock; Tick
// does that for the default clock.
func TestRateLimiterSetNow(t *testing.T) {
	t.Parallel()
	calls := 0
	r, err := stages.NewRateLimiter(stages.RateLimitOptions{Rate: 1, Burst: 1, Now: func() int64 { calls++; return 0 }})
	if err != nil {
		t.Fatal(err)
	}
	p := synthPacket(synthUDP4)
	r.Handle(p)
	if calls != 1 {
		t.Fatalf("Now called %d times for a packet, want 1", calls)
	}
	r.SetNow(int64(time.Second))
	synthHandle(t, r, synthUDP4, 1, pipeline.Continue)
	synthHandle(t, r, synthUDP4, 1, pipeline.Drop)
	r.SetNow(int64(2 * time.Second))
	synthHandle(t, r, synthUDP4, 1, pipeline.Continue)
	if calls != 1 {
		t.Errorf("Now called %d more times after SetNow, want 0", calls-1)
	}

	// Default clock: real time passes between packets, Tick fixes it.
	d, err := stages.NewRateLimiter(stages.RateLimitOptions{Rate: 1, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	d.Tick(t0)
	synthHandle(t, d, synthUDP4, 1, pipeline.Continue)
	time.Sleep(10 * time.Millisecond) // no effect: the time is set
	synthHandle(t, d, synthUDP4, 1, pipeline.Drop)
	d.Tick(t0.Add(999 * time.Millisecond))
	synthHandle(t, d, synthUDP4, 1, pipeline.Drop)
	d.Tick(t0.Add(time.Second))
	synthHandle(t, d, synthUDP4, 1, pipeline.Continue)
}

// The default clock runs: a source limited to a packet every 20 ms gets
// one through again after 25 ms.
func TestRateLimiterDefaultClock(t *testing.T) {
	t.Parallel()
	r, err := stages.NewRateLimiter(stages.RateLimitOptions{Rate: 50, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	synthHandle(t, r, synthUDP4, 1, pipeline.Continue)
	p := synthPacket(synthUDP4)
	if v := r.Handle(p); v != pipeline.Drop {
		t.Skipf("second packet at once got %v: the machine is too slow for this test", v) // 20 ms between two calls
	}
	time.Sleep(25 * time.Millisecond)
	synthHandle(t, r, synthUDP4, 1, pipeline.Continue)
}

func TestNewRateLimiterOptions(t *testing.T) {
	t.Parallel()
	for _, opts := range []stages.RateLimitOptions{
		{},
		{Rate: -1},
		{Rate: math.NaN()},
		{Rate: math.Inf(1)},
		{Rate: 2e9},
		{Rate: 1, Burst: -1},
		{Rate: 1e-9, Burst: 10},
		{Rate: 1, Capacity: -1},
		{Rate: 1, Capacity: 1<<24 + 1},
		{Rate: 1, NonIP: pipeline.Malformed + 1},
	} {
		if _, err := stages.NewRateLimiter(opts); err == nil {
			t.Errorf("NewRateLimiter(%+v): no error", opts)
		}
	}
	for _, tc := range []struct {
		opts                 stages.RateLimitOptions
		wantBurst, wantSlots int
	}{
		{stages.RateLimitOptions{Rate: 1000}, 100, stages.DefaultRateLimitCapacity},
		{stages.RateLimitOptions{Rate: 0.5, Capacity: 100}, 1, 128},
		{stages.RateLimitOptions{Rate: 1e9, Burst: 3, Capacity: 1}, 3, 1},
	} {
		r, now := newRateLimiter(t, tc.opts)
		*now = 1 << 40
		if r.Capacity() != tc.wantSlots {
			t.Errorf("%+v: Capacity() = %d, want %d", tc.opts, r.Capacity(), tc.wantSlots)
		}
		p := synthPacket(synthUDP4)
		for range 2 * tc.wantBurst {
			r.Handle(p)
		}
		if st := r.Stats(); st.Passed != uint64(tc.wantBurst) {
			t.Errorf("%+v: %d of %d back to back passed, want the burst, %d", tc.opts, st.Passed, 2*tc.wantBurst, tc.wantBurst)
		}
	}
}

func TestRateLimiterAllocs(t *testing.T) {
	r, err := stages.NewRateLimiter(stages.RateLimitOptions{Rate: 1000, Capacity: 256})
	if err != nil {
		t.Fatal(err)
	}
	for _, frame := range [][]byte{synthUDP4, synthTCP6, synthARP, synthTruncated} {
		p := synthPacket(frame)
		if n := testing.AllocsPerRun(1000, func() { r.Handle(p) }); n != 0 {
			t.Errorf("%x: %v allocations per packet, want 0", frame, n)
		}
	}
	p := synthPacket(synthUDP4)
	i := 0
	n := testing.AllocsPerRun(10000, func() {
		i++
		p.Headers.SrcIP = netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
		r.Handle(p)
	})
	if n != 0 {
		t.Errorf("new sources: %v allocations per packet, want 0", n)
	}
	r.Tick(time.Now())
	if n := testing.AllocsPerRun(1000, func() { r.Handle(p) }); n != 0 {
		t.Errorf("after Tick: %v allocations per packet, want 0", n)
	}
	for _, a := range []netip.Addr{netip.MustParseAddr("fe80::1%eth0"), {}} {
		p.Headers.SrcIP = a
		if n := testing.AllocsPerRun(100, func() { r.Handle(p) }); n != 0 {
			t.Errorf("source %v: %v allocations per packet, want 0", a, n)
		}
	}
}

// FuzzRateLimiter limits arbitrary frames at arbitrary times: no panic,
// the frame untouched, a verdict that fits, counters that add up.
func FuzzRateLimiter(f *testing.F) {
	for i, frame := range [][]byte{synthUDP4, synthTCP6, synthICMP4, synthICMP6, synthGRE4, synthARP, synthLLDP, synthTruncated, synthMalformed, {}} {
		f.Add(frame, int64(i)*int64(time.Millisecond))
	}
	f.Add(synthUDP4, int64(math.MaxInt64))
	f.Add(synthUDP4, int64(math.MinInt64))
	for i, frame := range edgeFrames {
		f.Add(frame, int64(i)*1_000_003)
	}
	r, now := newRateLimiter(f, stages.RateLimitOptions{Rate: 1000, Burst: 4, Capacity: 16, NonIP: pipeline.Malformed})
	var calls uint64
	f.Fuzz(func(t *testing.T, frame []byte, at int64) {
		*now = at
		p, check := synthGuarded(t, frame)
		v := r.Handle(p)
		calls++
		check()
		ip := p.Headers.IPv4 || p.Headers.IPv6
		if ip && v != pipeline.Continue && v != pipeline.Drop || !ip && v != pipeline.Malformed {
			t.Fatalf("IP %v: Handle = %v", ip, v)
		}
		st := r.Stats()
		if st.Passed+st.Dropped+st.NonIP != calls || st.Sources > r.Capacity() {
			t.Fatalf("Stats() = %+v after %d packets, capacity %d", st, calls, r.Capacity())
		}
	})
}

func BenchmarkRateLimiter(b *testing.B) {
	for _, tc := range []struct {
		name              string
		sources, capacity int
		setNow, ipv6      bool
	}{
		{"sources=1", 1, 1 << 16, false, false},
		{"sources=1/setnow", 1, 1 << 16, true, false},
		{"sources=1/setnow/ipv6", 1, 1 << 16, true, true},
		{"sources=64k", 1 << 16, 1 << 17, false, false},
		{"sources=64k/setnow", 1 << 16, 1 << 17, true, false},
		{"sources=64k/setnow/ipv6", 1 << 16, 1 << 17, true, true},
		{"sources=1M/evicting/setnow", 1 << 20, 1 << 16, true, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r, err := stages.NewRateLimiter(stages.RateLimitOptions{Rate: 1e4, Capacity: tc.capacity})
			if err != nil {
				b.Fatal(err)
			}
			if tc.setNow {
				r.Tick(time.Now())
			}
			p := synthPacket(synthUDP4)
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				benchRateLimit(r, p, i%tc.sources, tc.ipv6)
				i++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkt/s")
		})
	}
}

// benchRateLimit limits one packet from source i.
func benchRateLimit(r *stages.RateLimiter, p *pipeline.Packet, i int, ipv6 bool) pipeline.Verdict {
	if ipv6 {
		p.Headers.SrcIP = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
	} else {
		p.Headers.SrcIP = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	}
	return r.Handle(p)
}

func ExampleRateLimiter() {
	rl, err := stages.NewRateLimiter(stages.RateLimitOptions{Rate: 1000, Burst: 2})
	if err != nil {
		panic(err)
	}
	p := &pipeline.Packet{Data: synthUDP4}
	p.Reparse()
	// With a Runner, pipeline.Config{Tick: rl.Tick} sets the time once
	// per tick; here the time is set by hand.
	rl.SetNow(0)
	for range 3 {
		fmt.Println(rl.Handle(p))
	}
	rl.SetNow(int64(time.Millisecond)) // one more token
	fmt.Println(rl.Handle(p))
	fmt.Printf("%+v\n", rl.Stats())
	// Output:
	// continue
	// continue
	// drop
	// continue
	// {Passed:3 Dropped:1 NonIP:0 Evicted:0 Sources:1}
}
