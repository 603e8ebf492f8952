//go:build linux

package pipeline_test

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/internal/testframes"
	"github.com/xdpkit/xdpkit/pipeline"
)

// The frame-stage tests decide a frame by its last byte (its kind); its
// sequence number is the first two bytes of its UDP payload.
func kindOf(f []byte) byte { return f[len(f)-1] }

func kindFrame(seq uint16, kind byte) []byte {
	f := slices.Clone(testframes.UDP4) // 47 bytes: 42 of headers, 5 of payload
	binary.BigEndian.PutUint16(f[42:], seq)
	f[len(f)-1] = kind
	return f
}

// The kinds: what stage a (which decides first) and stage b do.
const (
	kindPass      = iota // neither decides: Final (Transmit)
	kindDrop             // a: Drop
	kindMalformed        // a: Malformed
	kindShorten          // b: cuts the frame to 45 bytes (the sequence number stays) and transmits
	kindBadOut           // b: Forward to a target that does not exist: dropped
	kindBogus            // a: a verdict that is not one: dropped
	kindOutside          // b: points the frame at bytes outside its UMEM frame and transmits: dropped (BadData)
	numKinds
)

var outside = make([]byte, 64)

func decideA(f []byte) pipeline.Verdict {
	switch kindOf(f) {
	case kindDrop:
		return pipeline.Drop
	case kindMalformed:
		return pipeline.Malformed
	case kindBogus:
		return pipeline.Verdict(42)
	}
	return pipeline.Continue
}

func decideB(f []byte) ([]byte, int, pipeline.Verdict) {
	switch kindOf(f) {
	case kindShorten:
		return f[:45], 0, pipeline.Transmit
	case kindBadOut:
		return f, 7, pipeline.Forward
	case kindOutside:
		return outside, 0, pipeline.Transmit
	}
	return f, 0, pipeline.Continue
}

// framesOf makes a FrameStage of a per-frame decision, counting its calls
// and the largest batch it got.
func framesOf(decide func([]byte) ([]byte, int, pipeline.Verdict), calls, largest *int) pipeline.FramesFunc {
	return func(b *pipeline.FrameBatch) {
		*calls++
		*largest = max(*largest, len(b.Frames))
		for i, f := range b.Frames {
			if b.Verdicts[i] != pipeline.Continue || b.Out[i] != 0 {
				panic("a verdict or target was set on entry")
			}
			b.Frames[i], b.Out[i], b.Verdicts[i] = decide(f)
		}
	}
}

// packetOf makes a per-packet stage of the same decision.
func packetOf(decide func([]byte) ([]byte, int, pipeline.Verdict)) pipeline.Func {
	return func(p *pipeline.Packet) pipeline.Verdict {
		var v pipeline.Verdict
		p.Data, p.Out, v = decide(p.Data)
		return v
	}
}

func onlyA(f []byte) ([]byte, int, pipeline.Verdict) { return f, 0, decideA(f) }

// TestFrameStages runs the same frames through the same two stages as
// FrameStages, as per-packet stages, and mixed: every frame must get the
// same verdict, the counters must agree, frames must go out in order, and
// a Runner of FrameStages must call each stage once per batch with the
// frames the stages before it left.
func TestFrameStages(t *testing.T) {
	t.Parallel()
	const n = 63
	var frames [][]byte
	want := map[byte]int{}
	for i := range n {
		k := byte(i*5) % numKinds
		frames = append(frames, kindFrame(uint16(i), k))
		want[k]++
	}
	type outcome struct {
		st   pipeline.Stats
		sent []uint16 // sequence numbers transmitted, in order
		lens []int
	}
	run := func(t *testing.T, a, b pipeline.Stage) outcome {
		sock, kernel, err := afxdp.NewMemory(nil)
		if err != nil {
			t.Fatal(err)
		}
		defer sock.Close()
		r, err := pipeline.New(pipeline.Config{Socket: sock, Stages: []pipeline.Stage{a, b}, Final: pipeline.Transmit, BatchSize: 64})
		if err != nil {
			t.Fatal(err)
		}
		kernel.Deliver(frames...)
		if got, err := r.Poll(); got != n || err != nil {
			t.Fatalf("Poll = %d, %v; want %d", got, err, n)
		}
		var o outcome
		kernel.Transmitted(func(f []byte) {
			o.sent = append(o.sent, binary.BigEndian.Uint16(f[42:]))
			o.lens = append(o.lens, len(f))
		})
		o.st = r.Stats()
		o.st.Duration = 0
		if err := sock.Pool().Check(); err != nil {
			t.Errorf("frame accounting: %v", err)
		}
		return o
	}

	var aCalls, aMax, bCalls, bMax int
	batched := run(t, framesOf(onlyA, &aCalls, &aMax), framesOf(decideB, &bCalls, &bMax))
	passedA := n - want[kindDrop] - want[kindMalformed] - want[kindBogus]
	if aCalls != 1 || aMax != n {
		t.Errorf("stage a called %d times, largest batch %d; want once with %d", aCalls, aMax, n)
	}
	if bCalls != 1 || bMax != passedA {
		t.Errorf("stage b called %d times, largest batch %d; want once with the %d that a passed", bCalls, bMax, passedA)
	}
	st := batched.st
	a, b := st.Stages[0], st.Stages[1]
	if a.Seen != n || a.Dropped != uint64(want[kindDrop]) || a.Malformed != uint64(want[kindMalformed]) || a.Transmitted != 0 {
		t.Errorf("stage a counters %+v", a)
	}
	if b.Seen != uint64(passedA) || b.Transmitted != uint64(want[kindShorten]+want[kindOutside]) || b.Forwarded != uint64(want[kindBadOut]) {
		t.Errorf("stage b counters %+v", b)
	}
	tx := want[kindPass] + want[kindShorten]
	if st.RXPackets != n || st.TXPackets != uint64(tx) || st.Dropped != uint64(n-tx) || st.Malformed != uint64(want[kindMalformed]) || st.BadData != uint64(want[kindOutside]) {
		t.Errorf("counters %+v, want %d received, %d sent, %d dropped", st, n, tx, n-tx)
	}
	var wantSent []uint16
	var wantLens []int
	for i, f := range frames {
		switch kindOf(f) {
		case kindPass:
			wantSent, wantLens = append(wantSent, uint16(i)), append(wantLens, len(f))
		case kindShorten:
			wantSent, wantLens = append(wantSent, uint16(i)), append(wantLens, 45)
		}
	}
	if !slices.Equal(batched.sent, wantSent) || !slices.Equal(batched.lens, wantLens) {
		t.Errorf("sent %v (lengths %v), want %v (%v)", batched.sent, batched.lens, wantSent, wantLens)
	}

	perPacket := run(t, packetOf(onlyA), packetOf(decideB))
	aCalls, aMax = 0, 0
	mixed := run(t, framesOf(onlyA, &aCalls, &aMax), packetOf(decideB))
	if aCalls != n || aMax != 1 {
		t.Errorf("mixed: the frame stage was called %d times, largest batch %d; want %d batches of one", aCalls, aMax, n)
	}
	for name, o := range map[string]outcome{"per-packet": perPacket, "mixed": mixed} {
		if !slices.Equal(o.sent, batched.sent) || !slices.Equal(o.lens, batched.lens) {
			t.Errorf("%s: sent %v (%v), frame stages sent %v (%v)", name, o.sent, o.lens, batched.sent, batched.lens)
		}
		if !slices.Equal(o.st.Stages, st.Stages) || o.st.TXPackets != st.TXPackets || o.st.Dropped != st.Dropped || o.st.Malformed != st.Malformed || o.st.BadData != st.BadData {
			t.Errorf("%s: counters %+v, frame stages %+v", name, o.st, st)
		}
	}
}

// TestFrameStageAlone runs a batch through a single FrameStage that
// transmits every frame, moving some within their frames and one outside
// it: the batch is not sent as one any more, the moved frames go out as
// they are now, the one outside is dropped (BadData), and the stage's
// counters are its verdicts.
func TestFrameStageAlone(t *testing.T) {
	t.Parallel()
	const n = 20
	var frames [][]byte
	for i := range n {
		k := byte(kindPass)
		switch i {
		case 3, 11:
			k = kindShorten
		case 7:
			k = kindOutside
		}
		frames = append(frames, kindFrame(uint16(i), k))
	}
	decide := func(f []byte) []byte {
		switch kindOf(f) {
		case kindShorten:
			return f[:45]
		case kindOutside:
			return outside
		}
		return f
	}
	// The same decision as a lone Func and RawFunc: the Runner's loop for
	// a single per-packet stage (handleOneFn) must do what it does for the
	// FrameStage.
	for name, stage := range map[string]pipeline.Stage{
		"FrameStage": pipeline.FramesFunc(func(b *pipeline.FrameBatch) {
			for i, f := range b.Frames {
				b.Frames[i], b.Verdicts[i] = decide(f), pipeline.Transmit
			}
		}),
		"Func": pipeline.Func(func(p *pipeline.Packet) pipeline.Verdict {
			p.Data = decide(p.Data)
			return pipeline.Transmit
		}),
		"RawFunc": pipeline.RawFunc(func(p *pipeline.Packet) pipeline.Verdict {
			p.Data = decide(p.Data)
			return pipeline.Transmit
		}),
	} {
		t.Run(name, func(t *testing.T) { testStageAlone(t, stage, frames) })
	}
}

// pollOnce delivers frames to a memory socket and runs one Poll of a
// Runner over it with stage (Final Drop), which must take them all. The
// socket is closed when the test ends.
func pollOnce(t *testing.T, stage pipeline.Stage, frames [][]byte) (*afxdp.Socket, *afxdp.MemoryKernel, *pipeline.Runner) {
	t.Helper()
	return pollStages(t, []pipeline.Stage{stage}, frames)
}

// pollStages is pollOnce with stages.
func pollStages(t *testing.T, stages []pipeline.Stage, frames [][]byte) (*afxdp.Socket, *afxdp.MemoryKernel, *pipeline.Runner) {
	t.Helper()
	sock, kernel, err := afxdp.NewMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	r, err := pipeline.New(pipeline.Config{Socket: sock, Stages: stages, BatchSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	kernel.Deliver(frames...)
	if got, err := r.Poll(); got != len(frames) || err != nil {
		t.Fatalf("Poll = %d, %v; want %d", got, err, len(frames))
	}
	return sock, kernel, r
}

// testStageAlone is TestFrameStageAlone for one stage.
func testStageAlone(t *testing.T, stage pipeline.Stage, frames [][]byte) {
	n := uint64(len(frames))
	sock, kernel, r := pollOnce(t, stage, frames)
	var sent []uint16
	var lens []int
	kernel.Transmitted(func(f []byte) {
		sent = append(sent, binary.BigEndian.Uint16(f[42:]))
		lens = append(lens, len(f))
	})
	var wantSent []uint16
	var wantLens []int
	for i, f := range frames {
		switch i {
		case 7:
		case 3, 11:
			wantSent, wantLens = append(wantSent, uint16(i)), append(wantLens, 45)
		default:
			wantSent, wantLens = append(wantSent, uint16(i)), append(wantLens, len(f))
		}
	}
	if !slices.Equal(sent, wantSent) || !slices.Equal(lens, wantLens) {
		t.Errorf("sent %v (lengths %v), want %v (%v)", sent, lens, wantSent, wantLens)
	}
	st := r.Stats()
	if st.RXPackets != n || st.TXPackets != n-1 || st.Dropped != 1 || st.BadData != 1 {
		t.Errorf("counters %+v, want %d received, %d sent, 1 dropped for bad data", st, n, n-1)
	}
	wantBytes := 0
	for _, l := range wantLens {
		wantBytes += l
	}
	if st.TXBytes != uint64(wantBytes) {
		t.Errorf("TXBytes %d, want %d (the lengths sent)", st.TXBytes, wantBytes)
	}
	if s := st.Stages[0]; s.Seen != n || s.Transmitted != n || s.Dropped != 0 {
		t.Errorf("stage counters %+v, want %d seen and transmitted", s, n)
	}
	if err := sock.Pool().Check(); err != nil {
		t.Errorf("frame accounting: %v", err)
	}
}

// TestFrameStagePassesToFinal: a single FrameStage that decides nothing
// leaves the whole batch to Final, here Transmit.
func TestFrameStagePassesToFinal(t *testing.T) {
	t.Parallel()
	const n = 10
	var frames [][]byte
	for i := range n {
		frames = append(frames, kindFrame(uint16(i), kindPass))
	}
	sock, kernel, err := afxdp.NewMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	pass := pipeline.FramesFunc(func(*pipeline.FrameBatch) {})
	r, err := pipeline.New(pipeline.Config{Socket: sock, Stages: []pipeline.Stage{pass}, Final: pipeline.Transmit, BatchSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	kernel.Deliver(frames...)
	if got, err := r.Poll(); got != n || err != nil {
		t.Fatalf("Poll = %d, %v; want %d", got, err, n)
	}
	sent := 0
	kernel.Transmitted(func([]byte) { sent++ })
	st := r.Stats()
	if sent != n || st.TXPackets != n || st.Dropped != 0 || st.TXBytes != st.RXBytes {
		t.Errorf("%d frames sent, counters %+v; want all %d sent, as many bytes as received", sent, st, n)
	}
	if s := st.Stages[0]; s.Seen != n || s.Transmitted != 0 || s.Dropped != 0 {
		t.Errorf("stage counters %+v, want %d seen and no verdict", s, n)
	}
}

// TestTXBytesOfMovedFrames: when a stage cuts every frame of a batch it
// sends, TXBytes counts the bytes sent, not those received, whether the
// stage is a FrameStage or a per-packet Func (each takes its own path to
// the socket).
func TestTXBytesOfMovedFrames(t *testing.T) {
	t.Parallel()
	const n, cut = 12, 4
	trimmed := pipeline.FramesFunc(func(b *pipeline.FrameBatch) {
		for i, f := range b.Frames {
			b.Frames[i], b.Verdicts[i] = f[:len(f)-cut], pipeline.Transmit
		}
	})
	perPacket := pipeline.Func(func(p *pipeline.Packet) pipeline.Verdict {
		p.Data = p.Data[:len(p.Data)-cut]
		return pipeline.Transmit
	})
	for name, st := range map[string]pipeline.Stage{"frames": trimmed, "packet": perPacket} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var frames [][]byte
			for i := range n {
				frames = append(frames, kindFrame(uint16(i), kindPass))
			}
			_, kernel, r := pollOnce(t, st, frames)
			var sentBytes uint64
			kernel.Transmitted(func(f []byte) { sentBytes += uint64(len(f)) })
			s := r.Stats()
			if s.TXPackets != n || s.TXBytes != s.RXBytes-n*cut || s.TXBytes != sentBytes {
				t.Errorf("counters %+v, %d bytes sent; want %d frames and %d bytes sent", s, sentBytes, n, s.RXBytes-n*cut)
			}
		})
	}
}

// A FramesFunc is a Stage too: Handle decides one packet.
func TestFramesFuncHandle(t *testing.T) {
	t.Parallel()
	var calls, largest int
	f := framesOf(decideB, &calls, &largest)
	p := &pipeline.Packet{Data: kindFrame(1, kindShorten)}
	if v := f.Handle(p); v != pipeline.Transmit || len(p.Data) != 45 {
		t.Errorf("Handle = %v with %d bytes, want transmit with 45", v, len(p.Data))
	}
	p = &pipeline.Packet{Data: kindFrame(2, kindBadOut)}
	if v := f.Handle(p); v != pipeline.Forward || p.Out != 7 {
		t.Errorf("Handle = %v to %d, want forward to 7", v, p.Out)
	}
	var s pipeline.Stage = f
	if _, ok := s.(pipeline.Raw); !ok {
		t.Error("FramesFunc is not Raw")
	}
}

// A Runner of FrameStages allocates nothing per batch, and sends whole
// batches of one verdict as they are.
func TestFrameStagesAllocs(t *testing.T) {
	for _, v := range []pipeline.Verdict{pipeline.Transmit, pipeline.Drop} {
		sock, kernel, err := afxdp.NewMemory(nil)
		if err != nil {
			t.Fatal(err)
		}
		stage := pipeline.FramesFunc(func(b *pipeline.FrameBatch) {
			for i, f := range b.Frames {
				f[0], f[6] = f[6], f[0]
				b.Verdicts[i] = v
			}
		})
		r, err := pipeline.New(pipeline.Config{Socket: sock, Stages: []pipeline.Stage{stage}, BatchSize: 64})
		if err != nil {
			t.Fatal(err)
		}
		kernel.Fill(testframes.UDP4)
		allocs := testing.AllocsPerRun(100, func() {
			kernel.DeliverN(64, len(testframes.UDP4))
			if n, err := r.Poll(); n != 64 || err != nil {
				t.Fatalf("Poll = %d, %v", n, err)
			}
			kernel.Transmitted(nil)
		})
		if allocs != 0 {
			t.Errorf("%v: Poll allocates %.1f times per batch, want 0", v, allocs)
		}
		st := r.Stats()
		if got := st.TXPackets + st.Dropped; got != st.RXPackets || st.Stages[0].Seen != st.RXPackets {
			t.Errorf("%v: counters %+v", v, st)
		}
		sock.Close()
	}
}

// switchable is a FrameStage that takes batches only when on says so.
type switchable struct {
	on               bool
	batches, packets int
	parsedInHandle   bool // the headers were parsed when Handle ran
}

func (s *switchable) Raw()              {}
func (s *switchable) TakesFrames() bool { return s.on }
func (s *switchable) HandleFrames(b *pipeline.FrameBatch) {
	s.batches++
	for i := range b.Verdicts {
		b.Verdicts[i] = pipeline.Transmit
	}
}
func (s *switchable) Handle(p *pipeline.Packet) pipeline.Verdict {
	s.packets++
	s.parsedInHandle = p.Headers.IPv4 && p.Headers.DstPort != 0
	return pipeline.Transmit
}

// A ConditionalFrameStage whose TakesFrames is false is run per packet,
// with the headers parsed for it; one whose TakesFrames is true gets the
// batch.
func TestConditionalFrameStage(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{false, true} {
		sock, kernel, err := afxdp.NewMemory(nil)
		if err != nil {
			t.Fatal(err)
		}
		defer sock.Close()
		s := &switchable{on: on}
		r, err := pipeline.New(pipeline.Config{Socket: sock, Stages: []pipeline.Stage{s}, Final: pipeline.Drop, BatchSize: 64})
		if err != nil {
			t.Fatal(err)
		}
		kernel.Deliver(testframes.UDP4, testframes.UDP4, testframes.UDP4)
		if n, err := r.Poll(); n != 3 || err != nil {
			t.Fatalf("Poll = %d, %v", n, err)
		}
		if st := r.Stats(); st.TXPackets != 3 {
			t.Errorf("TakesFrames %v: %d sent, want 3", on, st.TXPackets)
		}
		switch {
		case on && (s.batches != 1 || s.packets != 0):
			t.Errorf("TakesFrames true: %d batches, %d packets; want the one batch", s.batches, s.packets)
		case !on && (s.batches != 0 || s.packets != 3 || !s.parsedInHandle):
			t.Errorf("TakesFrames false: %d batches, %d packets, headers parsed %v; want 3 parsed packets", s.batches, s.packets, s.parsedInHandle)
		}
	}
}

// inPlaceFunc is a FramesFunc that says it is InPlace.
type inPlaceFunc func(b *pipeline.FrameBatch)

func (f inPlaceFunc) Handle(p *pipeline.Packet) pipeline.Verdict {
	return pipeline.FramesFunc(f).Handle(p)
}
func (f inPlaceFunc) HandleFrames(b *pipeline.FrameBatch) { f(b) }
func (inPlaceFunc) Raw()                                  {}
func (inPlaceFunc) InPlace()                              {}

// TestInPlaceStages: a Runner of InPlace stages sends its frames with the
// bytes the stages wrote, in whole batches and mixed ones; a move an
// InPlace stage makes anyway is ignored (the frame goes out as received,
// nothing is lost or miscounted); and one stage that is not InPlace makes
// the Runner honour moves again.
func TestInPlaceStages(t *testing.T) {
	t.Parallel()
	const n = 16
	mark := func(f []byte) { f[0] = 0xee } // the first byte of the destination MAC
	moveSome := func(b *pipeline.FrameBatch) {
		for i, f := range b.Frames {
			switch i {
			case 3:
				b.Frames[i] = f[:45]
			case 7:
				b.Frames[i] = outside
			}
		}
	}
	type want struct {
		sent []int // the frames' sequence numbers...
		lens []int // ...and lengths, as sent
	}
	all := func(skip func(i int) bool, lenOf func(i int) int) want {
		var w want
		for i := range n {
			if !skip(i) {
				w.sent, w.lens = append(w.sent, i), append(w.lens, lenOf(i))
			}
		}
		return w
	}
	full := len(kindFrame(0, kindPass))
	none := func(int) bool { return false }
	fullLen := func(int) int { return full }
	for _, tc := range []struct {
		name   string
		stages []pipeline.Stage
		want   want
	}{
		{"uniform", []pipeline.Stage{inPlaceFunc(func(b *pipeline.FrameBatch) {
			for i, f := range b.Frames {
				mark(f)
				b.Verdicts[i] = pipeline.Transmit
			}
		})}, all(none, fullLen)},
		{"mixed", []pipeline.Stage{inPlaceFunc(func(b *pipeline.FrameBatch) {
			for i, f := range b.Frames {
				mark(f)
				b.Verdicts[i] = pipeline.Transmit
				if i%2 == 1 {
					b.Verdicts[i] = pipeline.Drop
				}
			}
		})}, all(func(i int) bool { return i%2 == 1 }, fullLen)},
		{"moves ignored", []pipeline.Stage{inPlaceFunc(func(b *pipeline.FrameBatch) {
			for i, f := range b.Frames {
				mark(f)
				b.Verdicts[i] = pipeline.Transmit
			}
			moveSome(b)
		})}, all(none, fullLen)},
		{"one stage not InPlace", []pipeline.Stage{
			inPlaceFunc(func(b *pipeline.FrameBatch) {
				for _, f := range b.Frames {
					mark(f)
				}
			}),
			pipeline.FramesFunc(func(b *pipeline.FrameBatch) {
				for i := range b.Frames {
					b.Verdicts[i] = pipeline.Transmit
				}
				moveSome(b)
			}),
		}, all(func(i int) bool { return i == 7 }, func(i int) int {
			if i == 3 {
				return 45
			}
			return full
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var frames [][]byte
			for i := range n {
				frames = append(frames, kindFrame(uint16(i), kindPass))
			}
			sock, kernel, r := pollStages(t, tc.stages, frames)
			var got want
			var sentBytes uint64
			kernel.Transmitted(func(f []byte) {
				if f[0] != 0xee {
					t.Errorf("frame %d sent without the stage's write", binary.BigEndian.Uint16(f[42:]))
				}
				got.sent, got.lens = append(got.sent, int(binary.BigEndian.Uint16(f[42:]))), append(got.lens, len(f))
				sentBytes += uint64(len(f))
			})
			if !slices.Equal(got.sent, tc.want.sent) || !slices.Equal(got.lens, tc.want.lens) {
				t.Errorf("sent %v (lengths %v), want %v (%v)", got.sent, got.lens, tc.want.sent, tc.want.lens)
			}
			st := r.Stats()
			if st.RXPackets != n || st.TXPackets != uint64(len(tc.want.sent)) || st.TXPackets+st.Dropped != n || st.TXBytes != sentBytes {
				t.Errorf("counters %+v; want %d received, %d sent, %d bytes sent", st, n, len(tc.want.sent), sentBytes)
			}
			if err := sock.Pool().Check(); err != nil {
				t.Errorf("frame accounting: %v", err)
			}
		})
	}
}
