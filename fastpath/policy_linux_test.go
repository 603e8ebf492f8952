//go:build linux

package fastpath_test

import (
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/fastpath"
	"github.com/xdpkit/xdpkit/internal/testframes"
)

// udpFrom is a UDP frame from src to the server of its family.
func udpFrom(src netip.Addr) []byte {
	dst := server4
	if src.Is6() {
		dst = server6
	}
	return frame(testframes.Spec{Src: src, Dst: dst, Proto: fastpath.UDP, TTL: 64, SrcPort: 1234, DstPort: 53, Payload: []byte("q")})
}

func TestPolicer(t *testing.T) {
	for _, precise := range []bool{false, true} {
		t.Run(map[bool]string{false: "coarse clock", true: "precise clock"}[precise], func(t *testing.T) {
			testPolicer(t, precise)
		})
	}
}

func testPolicer(t *testing.T, precise bool) {
	fp, prog := newFastPath(t, &fastpath.Config{Default: fastpath.Pass, PreciseClock: precise, Rate: fastpath.Rate{PerSecond: 1, Burst: 5}})
	// tick is how far the policer's clock jumps at once.
	tick := time.Duration(0)
	if !precise {
		var ts unix.Timespec
		if err := unix.ClockGetres(unix.CLOCK_MONOTONIC_COARSE, &ts); err != nil {
			t.Fatal(err)
		}
		tick = time.Duration(ts.Nano())
		t.Logf("coarse clock: a tick is %s", tick)
	}
	a, b := udpFrom(mustAddr("203.0.113.1")), udpFrom(mustAddr("2001:db8:1::1"))
	count := func(frame []byte, n int) (passed, dropped int) {
		for range n {
			switch v, _ := run(t, prog, frame); v {
			case xdpPass:
				passed++
			case xdpDrop:
				dropped++
			default:
				t.Fatalf("verdict %d", v)
			}
		}
		return
	}
	// At one packet per second, ten frames in a few milliseconds: the
	// burst of five passes, the rest is dropped; each source has its own
	// bucket.
	for _, f := range [][]byte{a, b} {
		if p, d := count(f, 10); p != 5 || d != 5 {
			t.Fatalf("passed %d, dropped %d; want 5 and 5", p, d)
		}
	}
	cnt, _ := fp.Counters()
	if cnt.RatePassed != 10 || cnt.RateDropped != 10 || cnt.Default != 10 {
		t.Fatalf("counters %+v", cnt)
	}

	// A fast rate refills: 100/s with a burst of 1 passes one frame,
	// then another after 15 ms.
	if err := fp.SetRate(fastpath.Rate{PerSecond: 100, Burst: 1}); err != nil {
		t.Fatal(err)
	}
	c := udpFrom(mustAddr("203.0.113.2"))
	if p, d := count(c, 2); p != 1 || d != 1 {
		t.Fatalf("burst 1: passed %d, dropped %d; want 1 and 1", p, d)
	}
	time.Sleep(15 * time.Millisecond)
	if p, _ := count(c, 1); p != 1 {
		t.Fatal("no refill after 15ms at 100/s")
	}
	// A long pause fills the bucket to its burst, no more.
	if err := fp.SetRate(fastpath.Rate{PerSecond: 100, Burst: 3}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // 5 packets' worth
	if p, d := count(c, 6); p != 3 || d != 3 {
		t.Fatalf("after a pause: passed %d, dropped %d; want 3 (the burst) and 3", p, d)
	}

	// A rate that refills more than the burst in a tick: with the coarse
	// clock a bucket holds a tick's worth (5000/s × 4 ms = 20 packets at
	// HZ=250), with the precise one the burst.
	if err := fp.SetRate(fastpath.Rate{PerSecond: 5000, Burst: 2}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(max(10*time.Millisecond, 3*tick))
	want := max(2, int(5000*tick.Seconds()))
	d := udpFrom(mustAddr("203.0.113.3"))
	count(d, 1) // a new source: a full bucket, less this frame
	start := time.Now()
	p, _ := count(d, 200)
	// The frames are microseconds apart, not back to back: what the rate
	// refills meanwhile passes too.
	refill := int(5000*(time.Since(start)+tick).Seconds()) + 1
	if p < want-1 || p > want-1+refill {
		t.Fatalf("5000/s, burst 2: %d of 200 frames passed, want %d to %d", p, want-1, want-1+refill)
	}

	// A high rate with a small burst: frames a few microseconds apart
	// (one BPF_PROG_TEST_RUN each) find a token each time, with either
	// clock.
	if err := fp.SetRate(fastpath.Rate{PerSecond: 1e6, Burst: 1}); err != nil {
		t.Fatal(err)
	}
	if p, d := count(c, 200); p < 190 {
		t.Fatalf("1e6/s, burst 1: passed %d, dropped %d of 200 frames microseconds apart", p, d)
	}

	// Off: everything passes.
	if err := fp.SetRate(fastpath.Rate{}); err != nil {
		t.Fatal(err)
	}
	if p, _ := count(a, 20); p != 20 {
		t.Fatalf("policer off: %d of 20 passed", p)
	}
	if got := fp.Config().Rate; got != (fastpath.Rate{}) {
		t.Fatalf("Config().Rate = %+v after SetRate(Rate{})", got)
	}
}

// TestPolicerExtremes: the largest and smallest rates and bursts load and
// police as they should, without the bucket arithmetic overflowing.
func TestPolicerExtremes(t *testing.T) {
	for _, precise := range []bool{false, true} {
		fp, prog := newFastPath(t, &fastpath.Config{Default: fastpath.Pass, PreciseClock: precise, Rate: fastpath.Rate{PerSecond: 1e9, Burst: 1_000_000}})
		src := udpFrom(mustAddr("198.18.0.1"))
		for i := range 1000 {
			if v, _ := run(t, prog, src); v != xdpPass {
				t.Fatalf("1e9/s, burst 1e6, precise %v: frame %d dropped", precise, i)
			}
		}
		time.Sleep(20 * time.Millisecond) // a full refill, capped
		for i := range 1000 {
			if v, _ := run(t, prog, src); v != xdpPass {
				t.Fatalf("1e9/s after a pause, precise %v: frame %d dropped", precise, i)
			}
		}
		if err := fp.SetRate(fastpath.Rate{PerSecond: 0.001, Burst: 1}); err != nil {
			t.Fatal(err)
		}
		slow := udpFrom(mustAddr("198.18.0.2"))
		if v, _ := run(t, prog, slow); v != xdpPass {
			t.Fatal("0.001/s: the first frame dropped")
		}
		for range 10 {
			if v, _ := run(t, prog, slow); v != xdpDrop {
				t.Fatal("0.001/s: a second frame passed")
			}
		}
	}
}

// TestPolicerSourceTableBounded: a flood of distinct sources cannot grow
// the table past Config.Sources; evicted sources come back with a full
// bucket.
func TestPolicerSourceTableBounded(t *testing.T) {
	fp, prog := newFastPath(t, &fastpath.Config{Default: fastpath.Pass, Sources: 64, Rate: fastpath.Rate{PerSecond: 1, Burst: 1}})
	for i := range 1000 {
		src := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if v, _ := run(t, prog, udpFrom(src)); v != xdpPass {
			t.Fatalf("source %s, first frame: verdict %d, want pass", src, v)
		}
	}
	cnt, _ := fp.Counters()
	if cnt.RatePassed != 1000 {
		t.Fatalf("counters %+v", cnt)
	}
	// The first source was evicted long ago: it starts afresh and passes,
	// where a remembered one (the last) has spent its burst of 1.
	if v, _ := run(t, prog, udpFrom(netip.AddrFrom4([4]byte{10, 0, 0, 0}))); v != xdpPass {
		t.Fatalf("evicted source: verdict %d, want pass", v)
	}
	if v, _ := run(t, prog, udpFrom(netip.AddrFrom4([4]byte{10, 0, 3, 231}))); v != xdpDrop {
		t.Fatalf("remembered source: verdict %d, want drop", v)
	}
}

func TestPolicies(t *testing.T) {
	fp, prog := newFastPath(t, &fastpath.Config{Default: fastpath.Pass, Rate: fastpath.Rate{PerSecond: 1, Burst: 1}})
	mustSet := func(p string, pol fastpath.Policy) {
		t.Helper()
		if err := fp.SetPolicy(netip.MustParsePrefix(p), pol); err != nil {
			t.Fatal(err)
		}
	}
	mustSet("10.0.0.0/8", fastpath.Block)
	mustSet("10.1.0.0/16", fastpath.Allow)
	mustSet("2001:db8:bad::/48", fastpath.Block)
	mustSet("192.0.2.7/32", fastpath.Block)
	for _, c := range []struct {
		src  string
		want uint32
		n    int
	}{
		{"10.2.3.4", xdpDrop, 3},        // blocked
		{"10.1.3.4", xdpPass, 5},        // allowed inside the block: not policed either
		{"192.0.2.7", xdpDrop, 2},       // a single address
		{"192.0.2.8", xdpPass, 1},       // its neighbour: policed, first frame passes
		{"2001:db8:bad::1", xdpDrop, 2}, // IPv6
		{"2001:db8:bad:1::1", xdpDrop, 1},
		{"2001:db8:bae::1", xdpPass, 1},
		{"::ffff:10.2.3.4", xdpDrop, 1}, // IPv4-mapped source over IPv6: the IPv4 prefix
	} {
		for i := range c.n {
			if v, _ := run(t, prog, udpFrom(mustAddr(c.src))); v != c.want {
				t.Fatalf("%s, frame %d: verdict %d, want %d", c.src, i, v, c.want)
			}
		}
	}
	cnt, _ := fp.Counters()
	if cnt.Blocked != 9 || cnt.Allowed != 5 || cnt.RatePassed != 2 {
		t.Fatalf("counters %+v: want 9 blocked, 5 allowed, 2 within rate", cnt)
	}
	if got := len(fp.Policies()); got != 4 {
		t.Fatalf("Policies: %d, want 4", got)
	}
	// Deleting the policies lets the sources through again.
	for _, p := range []string{"10.0.0.0/8", "10.1.0.0/16", "2001:db8:bad::/48", "192.0.2.7/32", "192.0.2.7/32"} {
		if err := fp.DeletePolicy(netip.MustParsePrefix(p)); err != nil {
			t.Fatal(err)
		}
	}
	if v, _ := run(t, prog, udpFrom(mustAddr("10.3.3.3"))); v != xdpPass {
		t.Fatalf("after DeletePolicy: verdict %d", v)
	}
	// A full list says so.
	small, _ := newFastPath(t, &fastpath.Config{Prefixes: 2})
	for i := range 2 {
		if err := small.SetPolicy(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16), fastpath.Block); err != nil {
			t.Fatal(err)
		}
	}
	err := small.SetPolicy(netip.MustParsePrefix("10.99.0.0/16"), fastpath.Block)
	if err == nil {
		t.Fatal("a third prefix in a list of 2: no error")
	}
	t.Log(err)
}

func TestIdleTimeout(t *testing.T) {
	fp, prog := newFastPath(t, &fastpath.Config{IdleTimeout: 30 * time.Millisecond})
	c := flowCases()[0]
	install(t, fp, c.flow, fastpath.Entry{Action: fastpath.Drop})
	other := flowCases()[2]
	install(t, fp, other.flow, fastpath.Entry{Action: fastpath.Drop})
	in := frame(c.spec)
	for range 5 {
		if v, _ := run(t, prog, in); v != xdpDrop {
			t.Fatalf("fresh entry: verdict %d", v)
		}
		time.Sleep(10 * time.Millisecond) // each hit refreshes the entry
	}
	time.Sleep(60 * time.Millisecond)
	if v, _ := run(t, prog, in); v != xdpRedirect {
		t.Fatalf("idle entry: verdict %d, want redirect (a miss)", v)
	}
	cnt, _ := fp.Counters()
	if cnt.Expired != 1 || cnt.FlowDropped != 5 {
		t.Fatalf("counters %+v", cnt)
	}
	n, err := fp.Expire(0)
	if err != nil || n != 2 {
		t.Fatalf("Expire: %d, %v; want 2 removed", n, err)
	}
	if all, _ := fp.Entries(); len(all) != 0 {
		t.Fatalf("%d entries left", len(all))
	}
	noIdle, _ := newFastPath(t, nil)
	if _, err := noIdle.Expire(0); !errors.Is(err, fastpath.ErrInvalid) {
		t.Fatalf("Expire(0) without IdleTimeout: %v", err)
	}
	if n, err := noIdle.Expire(time.Hour); err != nil || n != 0 {
		t.Fatalf("Expire(1h) of an empty table: %d, %v", n, err)
	}
}

func TestClosed(t *testing.T) {
	fp, prog := newFastPath(t, nil)
	c := flowCases()[0]
	install(t, fp, c.flow, fastpath.Entry{Action: fastpath.Drop})
	if err := fp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fp.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// The loaded program holds the maps: it keeps working as configured.
	if v, _ := run(t, prog, frame(c.spec)); v != xdpDrop {
		t.Fatalf("after Close: verdict %d, want the entry's drop", v)
	}
	errs := map[string]error{
		"Install":      fp.Install(c.flow, fastpath.Entry{Action: fastpath.Pass}),
		"Remove":       fp.Remove(c.flow),
		"SetRate":      fp.SetRate(fastpath.Rate{PerSecond: 1}),
		"SetPolicy":    fp.SetPolicy(netip.MustParsePrefix("10.0.0.0/8"), fastpath.Block),
		"DeletePolicy": fp.DeletePolicy(netip.MustParsePrefix("10.0.0.0/8")),
	}
	_, _, errs["Lookup"] = fp.Lookup(c.flow)
	_, errs["Entries"] = fp.Entries()
	_, errs["Expire"] = fp.Expire(time.Second)
	_, errs["Counters"] = fp.Counters()
	_, errs["Instructions"] = fp.Instructions("x")
	for name, err := range errs {
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("%s after Close: %v, want os.ErrClosed", name, err)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	for _, c := range []fastpath.Config{
		{Default: fastpath.Transmit},
		{Default: fastpath.Encap},
		{Flows: -1},
		{Sources: 1 << 30},
		{Prefixes: -5},
		{IdleTimeout: time.Microsecond},
		{IdleTimeout: -time.Second},
		{Rate: fastpath.Rate{PerSecond: -3}},
	} {
		if err := c.Validate(); !errors.Is(err, fastpath.ErrInvalid) {
			t.Errorf("%+v: Validate: %v, want ErrInvalid", c, err)
		}
		if _, err := fastpath.New(&c); !errors.Is(err, fastpath.ErrInvalid) {
			t.Errorf("%+v: New: %v, want ErrInvalid", c, err)
		}
	}
	if err := (*fastpath.Config)(nil).Validate(); err != nil {
		t.Errorf("nil Config: %v", err)
	}
}
