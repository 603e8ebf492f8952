package stages

import (
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

// handleChunk is HandleFrames for at most tupleBatch frames.
func (lb *LoadBalancer) handleChunk(frames [][]byte, verdicts []pipeline.Verdict) {
	sink := lb.sink
	balance := false
	for i, f := range frames {
		t := &lb.tuples[i]
		readTuple(f, t, &lb.hdr, &lb.scratch)
		lb.chosen[i] = -1
		switch v, ok := lb.classify(t); {
		case !ok:
			verdicts[i] = v
			continue
		case len(lb.backends) == 0:
			verdicts[i] = pipeline.Drop
			continue
		}
		lb.chosen[i], balance = 0, true
		if lb.conns != nil {
			lb.hashes[i] = t.key.hash(&lb.connSeed)
		}
	}
	if !balance {
		return
	}
	if lb.conns != nil {
		// Load the batch's slots in a loop of their own, before any
		// lookup: its few instructions per frame let many of the loads
		// be in flight at once, so their cache misses overlap (issued
		// from the loop above, between tuples, only two or three did).
		for i, c := range lb.chosen[:len(frames)] {
			if c == 0 {
				sink += uint64(lb.conns[lb.hashes[i]&lb.connMask].backend)
			}
		}
		lb.sink = sink
	}
	var now int64
	if lb.conns != nil {
		now = lb.clock() // once a batch: the idle timeout is minutes
	}
	for i, f := range frames {
		if lb.chosen[i] < 0 {
			continue
		}
		k := &lb.tuples[i].key
		idx := -1
		var conn *connSlot
		if lb.conns != nil {
			idx, conn = lb.conn(k, lb.hashes[i], now)
		}
		if idx < 0 {
			srcHi, srcLo := k.srcHi, k.srcLo
			if k.family() == 4 {
				srcLo |= 0xffff << 32 // As16's IPv4-mapped form, as Handle hashes it
			}
			idx = int(lb.table[lb.slotWords(uint8(k.meta>>32), srcHi, srcLo, lb.vipHash, uint16(k.meta>>16), uint16(k.meta))])
			if conn != nil {
				lb.record(conn, k, idx, now)
			}
		}
		var h *packet.Headers
		if lb.mode == LBModeNAT || lb.recompute {
			h = &lb.hdr
			_ = packet.Parse(f, h) // it parsed when its tuple was read
		}
		lb.rewrite(f, h, &lb.backends[idx])
		verdicts[i] = pipeline.Transmit
		lb.chosen[i] = int32(idx)
		lb.counts[idx]++
	}
	for _, idx := range lb.chosen[:len(frames)] {
		if idx >= 0 && lb.counts[idx] != 0 {
			lb.packets[idx].Add(lb.counts[idx])
			lb.counts[idx] = 0
		}
	}
}

// classify reports whether a frame is to be balanced (a UDP or TCP frame
// to the VIP's address and port), and if not its verdict: Malformed if
// it did not parse, else Other, as Handle decides.
func (lb *LoadBalancer) classify(t *frameTuple) (v pipeline.Verdict, balance bool) {
	if t.bad {
		return pipeline.Malformed, false
	}
	k := &t.key
	proto := uint8(k.meta >> 32)
	if t.l4Off == 0 || uint16(k.meta) != lb.vipPort || k.dstLo != lb.vipKey.dstLo || k.dstHi != lb.vipKey.dstHi ||
		k.meta>>40 != lb.vipKey.meta>>40 || proto != packet.ProtoUDP && proto != packet.ProtoTCP ||
		lb.proto != 0 && proto != lb.proto {
		return lb.other, false
	}
	return 0, true
}
