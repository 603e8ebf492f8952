//go:build linux

package ring_test

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/ring"
)

// testOff is the layout the tests use: each index word on its own cache
// line, as the kernel lays them out, and the entries after them.
var testOff = ring.Offsets{Producer: 0, Consumer: 64, Flags: 128, Desc: 192}

const (
	addrEntry = 8  // bytes per fill/completion entry
	descEntry = 16 // bytes per RX/TX entry
)

// mmapMem maps n bytes (rounded up to pages) of anonymous memory, unmapped
// in tb.Cleanup. Ring memory must be 8-byte aligned; a mapping is.
func mmapMem(tb testing.TB, n int) []byte {
	tb.Helper()
	ps := unix.Getpagesize()
	n = max(ps, (n+ps-1)/ps*ps)
	mem, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		tb.Fatalf("mmap %d bytes: %v", n, err)
	}
	tb.Cleanup(func() {
		if err := unix.Munmap(mem); err != nil {
			tb.Errorf("munmap: %v", err)
		}
	})
	return mem
}

// ringBytes is how many bytes a ring of size entries needs at testOff.
func ringBytes(size uint32, entry uint64) int {
	return int(testOff.Desc + uint64(size)*entry)
}

// putWord writes a shared index or flags word the way the kernel sees it.
// Tests call it only while no ring is being driven concurrently.
func putWord(mem []byte, off uint64, v uint32) { binary.NativeEndian.PutUint32(mem[off:], v) }

// word reads a shared index or flags word.
func word(mem []byte, off uint64) uint32 { return binary.NativeEndian.Uint32(mem[off:]) }

// presetIndices sets both index words before the rings are built over mem,
// as if the kernel had already run start entries through the ring.
func presetIndices(mem []byte, off ring.Offsets, start uint32) {
	putWord(mem, off.Producer, start)
	putWord(mem, off.Consumer, start)
}

// pair is a producer ring and a consumer ring over the same memory and
// offsets (Fill+Completion or TX+RX), behind one interface so that a test
// body covers both. Entries are generated from a uint64 value by entry, so
// an RX/TX test checks all three descriptor fields, not just the address.
type pair struct {
	name string

	// producer side
	reserve    func(n uint32) (idx, got uint32)
	set        func(idx uint32, v uint64)
	submit     func(n uint32)
	cancel     func(n uint32)
	pending    func() uint32
	needWakeup func() bool
	prodSize   func() uint32
	closeProd  func() error

	// consumer side
	peek      func(n uint32) (idx, got uint32)
	get       func(idx uint32) unix.XDPDesc
	release   func(n uint32)
	unpeek    func(n uint32)
	available func() uint32
	consSize  func() uint32
	closeCons func() error

	// entry is what get returns for a slot the producer set to v.
	entry func(v uint64) unix.XDPDesc
}

// pairKind builds a pair over caller memory.
type pairKind struct {
	name  string
	entry uint64 // bytes per entry
	make  func(tb testing.TB, mem []byte, off ring.Offsets, size uint32) *pair
}

var pairKinds = []pairKind{
	{"FillCompletion", addrEntry, newFillCompletion},
	{"TXRX", descEntry, newTXRX},
}

func newFillCompletion(tb testing.TB, mem []byte, off ring.Offsets, size uint32) *pair {
	tb.Helper()
	f, err := ring.NewFill(mem, off, size)
	if err != nil {
		tb.Fatalf("NewFill(size %d): %v", size, err)
	}
	c, err := ring.NewCompletion(mem, off, size)
	if err != nil {
		tb.Fatalf("NewCompletion(size %d): %v", size, err)
	}
	return &pair{
		name:       "FillCompletion",
		reserve:    f.Reserve,
		set:        f.Set,
		submit:     f.Submit,
		cancel:     f.Cancel,
		pending:    f.Pending,
		needWakeup: f.NeedWakeup,
		prodSize:   f.Size,
		closeProd:  f.Close,
		peek:       c.Peek,
		get:        func(idx uint32) unix.XDPDesc { return unix.XDPDesc{Addr: c.Addr(idx)} },
		release:    c.Release,
		unpeek:     c.Unpeek,
		available:  c.Available,
		consSize:   c.Size,
		closeCons:  c.Close,
		entry:      func(v uint64) unix.XDPDesc { return unix.XDPDesc{Addr: v} },
	}
}

// descFor spreads v over all three descriptor fields.
func descFor(v uint64) unix.XDPDesc {
	return unix.XDPDesc{Addr: v, Len: uint32(v)*7 + 1, Options: uint32(v>>32) ^ 0xa5a5a5a5}
}

func newTXRX(tb testing.TB, mem []byte, off ring.Offsets, size uint32) *pair {
	tb.Helper()
	t, err := ring.NewTX(mem, off, size)
	if err != nil {
		tb.Fatalf("NewTX(size %d): %v", size, err)
	}
	r, err := ring.NewRX(mem, off, size)
	if err != nil {
		tb.Fatalf("NewRX(size %d): %v", size, err)
	}
	return &pair{
		name:       "TXRX",
		reserve:    t.Reserve,
		set:        func(idx uint32, v uint64) { t.Set(idx, descFor(v)) },
		submit:     t.Submit,
		cancel:     t.Cancel,
		pending:    t.Pending,
		needWakeup: t.NeedWakeup,
		prodSize:   t.Size,
		closeProd:  t.Close,
		peek:       r.Peek,
		get:        func(idx uint32) unix.XDPDesc { return *r.Desc(idx) },
		release:    r.Release,
		unpeek:     r.Unpeek,
		available:  r.Available,
		consSize:   r.Size,
		closeCons:  r.Close,
		entry:      descFor,
	}
}

// val is the value of the seq'th entry through a ring: distinct for every
// seq, with bits set in both halves, so a misplaced or torn entry shows.
func val(seq uint64) uint64 { return seq*0x9e3779b97f4a7c15 + 1 }

// produce reserves up to n slots, sets them to val(next), val(next+1), ...
// and submits them; it returns the first slot's index and how many it got.
func (p *pair) produce(tb testing.TB, n uint32, next uint64) (idx, got uint32) {
	tb.Helper()
	idx, got = p.reserve(n)
	if got > n {
		tb.Fatalf("%s: Reserve(%d) got %d", p.name, n, got)
	}
	for i := range got {
		p.set(idx+i, val(next+uint64(i)))
	}
	p.submit(got)
	return idx, got
}

// consume peeks up to n entries, checks they are val(next), val(next+1),
// ... and releases them; it returns the first entry's index and how many it
// got.
func (p *pair) consume(tb testing.TB, n uint32, next uint64) (idx, got uint32) {
	tb.Helper()
	idx, got = p.peek(n)
	if got > n {
		tb.Fatalf("%s: Peek(%d) got %d", p.name, n, got)
	}
	for i := range got {
		if d, want := p.get(idx+i), p.entry(val(next+uint64(i))); d != want {
			tb.Fatalf("%s: entry %d (index %#x) = %+v, want %+v", p.name, next+uint64(i), idx+i, d, want)
		}
	}
	p.release(got)
	return idx, got
}

// forEachPair runs f as a parallel subtest for each pair kind.
func forEachPair(t *testing.T, f func(t *testing.T, k pairKind)) {
	t.Helper()
	for _, k := range pairKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			f(t, k)
		})
	}
}
