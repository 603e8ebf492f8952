//go:build linux && xbnostages

package main

// The fallback flow counter, for a tree where package stages does not
// build: the pipeline's parsed headers (packet.Parse) and a small fixed
// open-addressing table of 5-tuples. The harness builds with
// -tags xbnostages only when the default build fails, and says so.

import (
	"errors"
	"net/netip"

	"github.com/xdpkit/xdpkit/pipeline"
)

const flowStageImpl = "fallback (packet.Parse + fixed table)"

type flowKey struct {
	src, dst     netip.Addr
	sport, dport uint16
	proto        uint8
}

type flowEntry struct {
	key     flowKey
	used    bool
	packets uint64
	bytes   uint64
}

type flowTable struct {
	slots     []flowEntry
	mask      uint64
	malformed uint64
	overflow  uint64
}

func newFlowStage(capacity int) (pipeline.Stage, error) {
	if capacity <= 0 || capacity > 1<<24 {
		return nil, errors.New("flow capacity must be 1..2^24")
	}
	n := 1
	for n < capacity {
		n <<= 1
	}
	return &flowTable{slots: make([]flowEntry, n), mask: uint64(n - 1)}, nil
}

func (t *flowTable) Name() string { return "flows" }

func (t *flowTable) Handle(p *pipeline.Packet) pipeline.Verdict {
	if p.ParseErr != nil {
		t.malformed++
		return pipeline.Continue
	}
	h := &p.Headers
	k := flowKey{src: h.SrcIP, dst: h.DstIP, sport: h.SrcPort, dport: h.DstPort, proto: h.IPProto}
	s4, d4 := k.src.As16(), k.dst.As16()
	x := uint64(k.sport)<<24 ^ uint64(k.dport)<<8 ^ uint64(k.proto)
	for i := 0; i < 16; i++ {
		x = x*0x100000001b3 ^ uint64(s4[i]) ^ uint64(d4[i])<<8
	}
	x ^= x >> 29
	for i := uint64(0); i < 8; i++ {
		e := &t.slots[(x+i)&t.mask]
		if !e.used {
			e.used, e.key = true, k
		}
		if e.key == k {
			e.packets++
			e.bytes += uint64(len(p.Data))
			return pipeline.Continue
		}
	}
	t.overflow++
	e := &t.slots[x&t.mask]
	*e = flowEntry{key: k, used: true, packets: 1, bytes: uint64(len(p.Data))}
	return pipeline.Continue
}
