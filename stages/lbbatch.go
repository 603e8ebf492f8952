package stages

import (
	"encoding/binary"

	"github.com/xdpkit/xdpkit/packet"
	"github.com/xdpkit/xdpkit/pipeline"
)

// LoadBalancer as a pipeline.FrameStage: in LBModeDSR and LBModeNAT
// without a FastPath it takes the Runner's batches whole, reading each
// frame's 5-tuple from its bytes (tuple.go) and hashing the whole batch
// into the connection table before it looks any flow up, so that the
// table's cache misses (a random slot of 4 MiB per frame, by default)
// overlap instead of coming one per frame; it counts the batch's frames
// per backend with one atomic add per backend, not per frame. It sends
// every frame where Handle would.

// Raw marks LoadBalancer as a stage that reads only Packet.Data when it
// takes batches (TakesFrames).
func (lb *LoadBalancer) Raw() {}

// InPlace marks the LoadBalancer as a FrameStage that rewrites its
// frames in place, never reslicing them (pipeline.InPlace), when it
// takes batches.
func (lb *LoadBalancer) InPlace() {}

// TakesFrames reports whether the LoadBalancer takes batches of frames
// (HandleFrames): in LBModeDSR and LBModeNAT without a FastPath. In
// LBModeIPIP, which grows the frame at the front (Packet.Prepend), and
// with a FastPath, which is handed each Packet (Packet.Offload), the
// Runner parses the frames and calls Handle.
func (lb *LoadBalancer) TakesFrames() bool { return lb.mode != LBModeIPIP && lb.fp == nil }

// HandleFrames does what Handle does, for each frame of b. The Runner
// calls it only when TakesFrames is true; called otherwise, it parses the
// frames and hands them to Handle one by one, without the frame's
// headroom (LBModeIPIP then drops what it cannot encapsulate, as Handle
// does for such a Packet) or the Runner's fast path.
func (lb *LoadBalancer) HandleFrames(b *pipeline.FrameBatch) {
	if !lb.TakesFrames() {
		var p pipeline.Packet
		for i, f := range b.Frames {
			p.Data, p.Out = f, b.Out[i]
			p.Reparse()
			b.Verdicts[i] = lb.Handle(&p)
			b.Frames[i], b.Out[i] = p.Data, p.Out
		}
		return
	}
	for start := 0; start < len(b.Frames); start += tupleBatch {
		end := min(start+tupleBatch, len(b.Frames))
		lb.handleChunk(b.Frames[start:end], b.Verdicts[start:end])
	}
}

// handleChunk is HandleFrames for at most tupleBatch frames. Its loops
// make no call per frame on the common path (a UDP or TCP frame of a
// flow in the slot its hash picks, DSR): each call would store and
// reload the loop's live values around it.
func (lb *LoadBalancer) handleChunk(frames [][]byte, verdicts []pipeline.Verdict) {
	readTuples(frames, lb.tuples[:], &lb.hdr, &lb.scratch)
	tuples := lb.tuples[:len(frames)]
	verdicts = verdicts[:len(frames)]
	conns, backends := lb.conns, lb.backends
	if !lb.classifyChunk(tuples, verdicts) {
		return
	}
	var now int64
	if conns != nil {
		now = lb.clock() // once a batch: the idle timeout is minutes
	}
	dsr := lb.mode == LBModeDSR && !lb.recompute
	for i := 0; i < len(frames); i++ {
		if conns != nil && dsr {
			// The common case in a loop of its own, without calls (each
			// would store and reload its values), up to the first frame
			// it leaves.
			if i += lb.dsrHits(frames[i:], tuples[i:], verdicts[i:], now); i == len(frames) {
				break
			}
		}
		t := &tuples[i]
		if t.chosen < 0 {
			continue
		}
		f, k := frames[i], &t.key
		idx := -1
		if conns != nil {
			var conn *connSlot
			if idx, conn = lb.conn(k, t.hash, now); idx < 0 {
				idx = lb.pick(k)
				lb.record(conn, k, idx, now)
			}
		} else {
			idx = lb.pick(k)
		}
		var h *packet.Headers
		if lb.mode == LBModeNAT || lb.recompute {
			h = &lb.hdr
			_ = packet.Parse(f, h) // it parsed when its tuple was read
		}
		lb.rewrite(f, h, &backends[idx])
		verdicts[i] = pipeline.Transmit
		t.chosen = int32(idx)
		lb.counts[idx]++
	}
	// One atomic add per backend the chunk used: over the backends when
	// there are fewer of them than frames, else over the frames' choices.
	if len(lb.counts) <= len(tuples) {
		for idx, n := range lb.counts {
			if n != 0 {
				lb.packets[idx].Add(n)
				lb.counts[idx] = 0
			}
		}
		return
	}
	for i := range tuples {
		idx := tuples[i].chosen
		if idx >= 0 && lb.counts[idx] != 0 {
			lb.packets[idx].Add(lb.counts[idx])
			lb.counts[idx] = 0
		}
	}
}

// classifyChunk is handleChunk's first passes: it sets the chosen of
// each tuple to 0 for a frame to be balanced and to -1 for the others,
// whose verdict it sets; with a connection table it hashes the flows to
// balance and then loads their slots, in a loop of its own, before any
// lookup: its few instructions per frame let many of the loads be in
// flight at once, so their cache misses overlap. It reports whether any
// frame is to be balanced.
//
//go:noinline because inlined into its caller, which calls, its values would be spilled on every iteration
func (lb *LoadBalancer) classifyChunk(tuples []frameTuple, verdicts []pipeline.Verdict) (balance bool) {
	verdicts = verdicts[:len(tuples)]
	conns, none := lb.conns, len(lb.backends) == 0
	for i := range tuples {
		t := &tuples[i]
		t.chosen = -1
		switch v, ok := lb.classify(t); {
		case !ok:
			verdicts[i] = v
			continue
		case none:
			verdicts[i] = pipeline.Drop
			continue
		}
		t.chosen, balance = 0, true
		if conns != nil {
			t.hash = t.key.srcHash(&lb.connSeed)
		}
	}
	if !balance || conns == nil {
		return balance
	}
	sink, mask := lb.sink, lb.connMask
	for i := range tuples {
		if t := &tuples[i]; t.chosen == 0 {
			sink += uint64(conns[t.hash&mask].backend)
		}
	}
	lb.sink = sink
	return true
}

// dsrHits is handleChunk's common case in DSR mode with a connection
// table: frames of live flows in the slot their hash picks (the checks
// conn makes first) get their backend's MAC (rewrite's LBModeDSR), the
// verdict Transmit and their count. Frames not to be balanced (chosen
// -1) are passed over. It stops at the first other frame (conn, pick
// and record sort it out) and returns its index, or len(frames).
//
//go:noinline because inlined into its caller, which calls, its values would be spilled on every iteration
func (lb *LoadBalancer) dsrHits(frames [][]byte, tuples []frameTuple, verdicts []pipeline.Verdict, now int64) int {
	tuples, verdicts = tuples[:len(frames)], verdicts[:len(frames)]
	conns, backends := lb.conns, lb.backends
	counts := lb.counts[:len(backends)] // so that si < len(backends) bounds counts[si] too
	for i, f := range frames {
		t := &tuples[i]
		if t.chosen < 0 {
			continue
		}
		// A free slot's backend, 0, is no backend's id.
		s := &conns[t.hash&lb.connMask]
		si := int(s.index)
		if si >= len(backends) || backends[si].id != s.backend || !s.key.equal(&t.key) || now-s.seen > lb.connIdle {
			return i
		}
		s.seen = now
		// The new source (the LB's MAC, or the frame's destination)
		// and the backend's MAC as the destination, in two words.
		f = f[:12] // one bounds check for the two stores (a UDP or TCP frame is longer)
		src := lb.srcMACLE
		if !lb.hasSrcMAC {
			src = binary.LittleEndian.Uint64(f) // its destination (and two bytes more)
		}
		binary.LittleEndian.PutUint64(f, backends[si].macW|src<<48)
		binary.LittleEndian.PutUint32(f[8:], uint32(src>>16))
		verdicts[i] = pipeline.Transmit
		t.chosen = int32(si)
		counts[si]++
	}
	return len(frames)
}

// pick returns the index of the backend the hash table gives flow k.
func (lb *LoadBalancer) pick(k *flowKey) int {
	srcHi, srcLo := k.srcHi, k.srcLo
	if k.family() == 4 {
		srcLo |= 0xffff << 32 // As16's IPv4-mapped form, as Handle hashes it
	}
	return int(lb.table[lb.slotWords(uint8(k.meta>>32), srcHi, srcLo, lb.vipHash, uint16(k.meta>>16), uint16(k.meta))])
}

// vipMetaMask is the part of a flowKey's meta that says whether its flow
// is balanced: family, protocol, destination port.
const vipMetaMask = 0xffff<<32 | 0xffff

// classify reports whether a frame is to be balanced (a UDP or TCP frame
// to the VIP's address and port), and if not its verdict: Malformed if
// it did not parse, else Other, as Handle decides.
func (lb *LoadBalancer) classify(t *frameTuple) (v pipeline.Verdict, balance bool) {
	if t.bad {
		return pipeline.Malformed, false
	}
	m := t.key.meta & vipMetaMask
	if t.l4Off == 0 || m != lb.vipMetas[0] && m != lb.vipMetas[1] || t.key.dstLo != lb.vipKey.dstLo || t.key.dstHi != lb.vipKey.dstHi {
		return lb.other, false
	}
	return 0, true
}
