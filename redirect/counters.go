//go:build linux

package redirect

import (
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

const (
	countersName   = "xdpkit_counts"
	bodySymbol     = "xdpkit_body"
	countOutSymbol = "xdpkit_count_out"
	// numActions covers XDP_ABORTED (0) to XDP_REDIRECT (4).
	numActions = 5
)

// newCounters creates the per-CPU array that counts verdicts.
func newCounters() (*ebpf.Map, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name:       countersName,
		Type:       ebpf.PerCPUArray,
		KeySize:    4,
		ValueSize:  8,
		MaxEntries: numActions,
	})
	if err != nil {
		return nil, loadError("create counters map", err, func() error { return nil })
	}
	return m, nil
}

// counted wraps body (a whole XDP program) as a subprogram and counts the
// verdict it returns: one per-CPU map lookup and add per frame.
func counted(body asm.Instructions) asm.Instructions {
	body[0] = body[0].WithSymbol(bodySymbol)
	main := asm.Instructions{
		asm.Call.Label(bodySymbol), // r0 = body(ctx); r1 still holds ctx
		asm.Mov.Reg(asm.R7, asm.R0),
		asm.StoreMem(asm.RFP, -4, asm.R7, asm.Word), // key = verdict
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, 0).WithReference(countersName),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, countOutSymbol), // verdict out of range
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Mov.Reg(asm.R0, asm.R7).WithSymbol(countOutSymbol),
		asm.Return(),
	}
	return append(main, body...)
}

// Counters returns the verdict counts so far.
func (p *Program) Counters() (Counters, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return Counters{}, fmt.Errorf("redirect: counters: %w", os.ErrClosed)
	}
	if p.counters == nil {
		return Counters{}, ErrNoCounters
	}
	var sums [numActions]uint64
	for k := range uint32(numActions) {
		var perCPU []uint64
		if err := p.counters.Lookup(k, &perCPU); err != nil {
			return Counters{}, fmt.Errorf("redirect: read counters: %w", err)
		}
		for _, v := range perCPU {
			sums[k] += v
		}
	}
	return Counters{Aborted: sums[0], Dropped: sums[1], Passed: sums[2], TX: sums[3], Redirected: sums[4]}, nil
}
