//go:build linux

package ring_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// model is the obvious queue a ring pair must behave like.
type model struct {
	size     uint32
	start    uint32   // preset index
	queue    []uint64 // submitted, unreleased entries, oldest first
	peeked   uint32   // how many of queue the consumer holds
	reserved []uint64 // reserved, unsubmitted entries, in slot order
	released uint64   // entries released so far
	next     uint64   // sequence number of the next entry reserved
}

func (m *model) free() uint32 { return m.size - uint32(len(m.queue)) - uint32(len(m.reserved)) }

// TestModel drives both pair kinds with random operations and compares
// every result with the model: indices, counts, entries, Pending and
// Available, and the shared index words.
func TestModel(t *testing.T) {
	steps := 20000
	if testing.Short() {
		steps = 2000
	}
	forEachPair(t, func(t *testing.T, k pairKind) {
		for seed := range uint64(8) {
			rng := rand.New(rand.NewPCG(seed, 0x5eed))
			size := uint32(1) << rng.IntN(9)
			start := -uint32(rng.IntN(4 * int(size)))
			t.Run(fmt.Sprintf("seed=%d/size=%d", seed, size), func(t *testing.T) {
				p, mem := newPair(t, k, size, start)
				m := &model{size: size, start: start}
				for step := range steps {
					// Request sizes go past the ring size now and then.
					n := uint32(rng.IntN(int(size) + 2))
					switch op := rng.IntN(8); op {
					case 0, 1: // Reserve
						idx, got := p.reserve(n)
						want := min(n, m.free())
						wantIdx := m.start + uint32(m.released) + uint32(len(m.queue)) + uint32(len(m.reserved))
						if got != want || (got > 0 && idx != wantIdx) {
							t.Fatalf("step %d: Reserve(%d) = %#x, %d; want %#x, %d", step, n, idx, got, wantIdx, want)
						}
						for i := range got {
							p.set(idx+i, val(m.next))
							m.reserved = append(m.reserved, val(m.next))
							m.next++
						}
					case 2: // Submit some of what is reserved
						s := uint32(rng.IntN(len(m.reserved) + 1))
						p.submit(s)
						m.queue = append(m.queue, m.reserved[:s]...)
						m.reserved = append(m.reserved[:0], m.reserved[s:]...)
					case 3: // Cancel some of what is reserved
						c := uint32(rng.IntN(len(m.reserved) + 1))
						p.cancel(c)
						m.reserved = m.reserved[:uint32(len(m.reserved))-c]
					case 4, 5: // Peek
						idx, got := p.peek(n)
						want := min(n, uint32(len(m.queue))-m.peeked)
						wantIdx := m.start + uint32(m.released) + m.peeked
						if got != want || (got > 0 && idx != wantIdx) {
							t.Fatalf("step %d: Peek(%d) = %#x, %d; want %#x, %d", step, n, idx, got, wantIdx, want)
						}
						for i := range got {
							if d, w := p.get(idx+i), p.entry(m.queue[m.peeked+i]); d != w {
								t.Fatalf("step %d: entry at %#x = %+v, want %+v", step, idx+i, d, w)
							}
						}
						m.peeked += got
					case 6: // Release some of what is peeked
						r := uint32(rng.IntN(int(m.peeked) + 1))
						p.release(r)
						m.queue = append(m.queue[:0], m.queue[r:]...)
						m.peeked -= r
						m.released += uint64(r)
					case 7: // Unpeek some of what is peeked
						u := uint32(rng.IntN(int(m.peeked) + 1))
						p.unpeek(u)
						m.peeked -= u
					}
					if got, want := p.pending(), uint32(len(m.queue)); got != want {
						t.Fatalf("step %d: Pending() = %d, want %d", step, got, want)
					}
					if got, want := p.available(), uint32(len(m.queue))-m.peeked; got != want {
						t.Fatalf("step %d: Available() = %d, want %d", step, got, want)
					}
					if got, want := word(mem, testOff.Producer), m.start+uint32(m.released)+uint32(len(m.queue)); got != want {
						t.Fatalf("step %d: producer index %#x, want %#x", step, got, want)
					}
					if got, want := word(mem, testOff.Consumer), m.start+uint32(m.released); got != want {
						t.Fatalf("step %d: consumer index %#x, want %#x", step, got, want)
					}
				}
				if m.released == 0 {
					t.Errorf("no entry went through the ring in %d steps", steps)
				}
			})
		}
	})
}
