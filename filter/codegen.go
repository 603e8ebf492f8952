package filter

import (
	"fmt"

	"github.com/cilium/ebpf/asm"
)

// Registers. R6 holds the context throughout; everything else is scratch
// and dead at every label, which keeps the verifier's work linear: a
// comparison reloads data and data_end from the context unless it follows
// another in straight-line code, so no packet pointer (with its proven
// range) is live where paths join, and the verifier prunes every join
// after its first visit. R1 and R7 to R9 are not used.
const (
	regCtx     = asm.R6
	regVal     = asm.R0 // the loaded field
	regData    = asm.R2 // ctx->data, plus the IPv4 header length if any
	regDataEnd = asm.R3 // ctx->data_end
	regEnd     = asm.R4 // end of the access, compared with data_end
	regIHL     = asm.R5 // 4 * IHL
)

const (
	xdpMDData    = 0 // offsetof(struct xdp_md, data)
	xdpMDDataEnd = 4 // offsetof(struct xdp_md, data_end)
)

// entry is one instruction with the labels placed on it and the label it
// jumps to, kept symbolic until the program is final.
type entry struct {
	ins    asm.Instruction
	labels []string
	target string // "" if the instruction does not jump
}

type builder struct {
	prefix  string
	nlabels int
	code    []entry
	pending []string
}

func (b *builder) newLabel() string {
	b.nlabels++
	return fmt.Sprintf("%s_%d", b.prefix, b.nlabels)
}

// place puts label l on the next instruction emitted.
func (b *builder) place(l string) { b.pending = append(b.pending, l) }

func (b *builder) emit(ins asm.Instruction) { b.emitJump(ins, "") }

func (b *builder) emitJump(ins asm.Instruction, target string) {
	b.code = append(b.code, entry{ins: ins, labels: b.pending, target: target})
	b.pending = nil
}

// generate compiles the tree into the filter's instructions.
func generate(root node, lo lowering, match, nomatch Action, keep bool, prefix string) (asm.Instructions, error) {
	b := &builder{prefix: prefix}
	if keep {
		kept, filter := b.newLabel(), b.newLabel()
		// A frame too short for a management test is simply not
		// management traffic: it goes on to the filter.
		b.cond(keepManagement(), kept, filter, filter)
		b.place(kept)
		b.action(Pass)
		b.place(filter)
	}
	matched, unmatched := b.newLabel(), b.newLabel()
	b.cond(lo.lower(root), matched, unmatched, unmatched)
	b.place(matched)
	b.action(match)
	b.place(unmatched)
	b.action(nomatch)

	code := reuseLoads(simplify(b.code))
	if len(code) > MaxInstructions {
		return nil, fmt.Errorf("expression too complex: %d instructions, at most %d", len(code), MaxInstructions)
	}
	return finish(code), nil
}

func (b *builder) action(a Action) {
	switch a {
	case Redirect:
		b.emitJump(asm.Ja.Label(RedirectSymbol), RedirectSymbol)
	default:
		b.emit(asm.Mov.Imm(asm.R0, int32(a)))
		b.emit(asm.Return())
	}
}

// cond emits jumping code for c: to t if it holds, to f if not, to oob
// if it reads beyond the end of the frame.
func (b *builder) cond(c cond, t, f, oob string) {
	switch c := c.(type) {
	case cTrue:
		b.emitJump(asm.Ja.Label(t), t)
	case *cNot:
		b.cond(c.x, f, t, oob)
	case *cAnd:
		mid := b.newLabel()
		b.cond(c.l, mid, f, oob)
		b.place(mid)
		b.cond(c.r, t, f, oob)
	case *cOr:
		mid := b.newLabel()
		b.cond(c.l, t, mid, oob)
		b.place(mid)
		b.cond(c.r, t, f, oob)
	case *cCmp:
		b.compare(c, t, f, oob)
	default:
		panic(fmt.Sprintf("filter: unknown cond %T", c))
	}
}

// boundsCheck jumps to oob unless regData+end <= data_end.
func (b *builder) boundsCheck(end int, oob string) {
	b.emit(asm.Mov.Reg(regEnd, regData))
	b.emit(asm.Add.Imm(regEnd, int32(end)))
	b.emitJump(asm.JGT.Reg(regEnd, regDataEnd, oob), oob)
}

func (b *builder) compare(c *cCmp, t, f, oob string) {
	b.emit(asm.LoadMem(regData, regCtx, xdpMDData, asm.Word))
	b.emit(asm.LoadMem(regDataEnd, regCtx, xdpMDDataEnd, asm.Word))
	if c.ihl >= 0 {
		b.boundsCheck(c.ihl+1, oob)
		b.emit(asm.LoadMem(regIHL, regData, int16(c.ihl), asm.Byte))
		b.emit(asm.And.Imm32(regIHL, 0x0f))
		b.emit(asm.LSh.Imm(regIHL, 2))
		b.emit(asm.Add.Reg(regData, regIHL))
	}
	b.boundsCheck(c.off+c.size.Sizeof(), oob)
	b.emit(asm.LoadMem(regVal, regData, int16(c.off), c.size))
	if c.size != asm.Byte {
		b.emit(asm.HostTo(asm.BE, regVal, c.size))
	}
	if c.mask != fullMask(c.size) {
		b.emit(asm.And.Imm32(regVal, int32(c.mask)))
	}
	b.emitJump(c.op.Imm32(regVal, int32(c.val), t), t)
	b.emitJump(asm.Ja.Label(f), f)
}

func isJa(e entry) bool {
	return e.ins.OpCode.Class() == asm.JumpClass && e.ins.OpCode.JumpOp() == asm.Ja
}

func isExit(e entry) bool {
	return e.ins.OpCode.Class().IsJump() && e.ins.OpCode.JumpOp() == asm.Exit
}

func isCondJump(e entry) bool {
	if !e.ins.OpCode.Class().IsJump() || e.target == "" {
		return false
	}
	switch e.ins.OpCode.JumpOp() {
	case asm.Ja, asm.Exit, asm.Call:
		return false
	}
	return true
}

var inverse = map[asm.JumpOp]asm.JumpOp{
	asm.JEq: asm.JNE, asm.JNE: asm.JEq,
	asm.JGT: asm.JLE, asm.JLE: asm.JGT,
	asm.JGE: asm.JLT, asm.JLT: asm.JGE,
}

// simplify removes the jumps the naive jumping code is full of: it
// threads jumps to jumps, drops jumps to the next instruction, turns
// "if c goto L1; goto L2; L1:" into "if !c goto L2; L1:", and removes
// unreachable instructions, which the verifier would refuse. All jumps go
// forward, so every rewrite makes the program shorter and the loop ends.
func simplify(code []entry) []entry {
	for changed := true; changed; {
		changed = false
		at := make(map[string]int, len(code))
		for i, e := range code {
			for _, l := range e.labels {
				at[l] = i
			}
		}
		// Jump threading: a jump to "goto X" goes to X directly.
		for i := range code {
			for hops := 0; code[i].target != "" && hops < len(code); hops++ {
				j, ok := at[code[i].target]
				if !ok || !isJa(code[j]) || j == i {
					break
				}
				code[i].target = code[j].target
				changed = true
			}
		}
		out := make([]entry, 0, len(code))
		for i := 0; i < len(code); i++ {
			e := code[i]
			if j, ok := at[e.target]; ok && isJa(e) && j == i+1 {
				code[i+1].labels = append(e.labels, code[i+1].labels...)
				changed = true
				continue
			}
			if j, ok := at[e.target]; ok && isCondJump(e) && j == i+2 && isJa(code[i+1]) && len(code[i+1].labels) == 0 {
				if inv, ok := inverse[e.ins.OpCode.JumpOp()]; ok {
					e.ins.OpCode = e.ins.OpCode.SetJumpOp(inv)
					e.target = code[i+1].target
					out = append(out, e)
					i++
					changed = true
					continue
				}
			}
			out = append(out, e)
		}
		code = removeUnreachable(out, &changed)
	}
	return code
}

func removeUnreachable(code []entry, changed *bool) []entry {
	at := make(map[string]int, len(code))
	for i, e := range code {
		for _, l := range e.labels {
			at[l] = i
		}
	}
	reached := make([]bool, len(code))
	work := []int{0}
	for len(work) > 0 {
		i := work[len(work)-1]
		work = work[:len(work)-1]
		if i >= len(code) || reached[i] {
			continue
		}
		reached[i] = true
		e := code[i]
		if j, ok := at[e.target]; ok {
			work = append(work, j)
		}
		if !isJa(e) && !isExit(e) {
			work = append(work, i+1)
		}
	}
	out := code[:0]
	for i, e := range code {
		if reached[i] {
			out = append(out, e)
		} else {
			*changed = true
		}
	}
	return out
}

// finish resolves the labels: the first label of an instruction becomes
// its symbol and jumps to any of its labels refer to that one.
func finish(code []entry) asm.Instructions {
	canonical := make(map[string]string)
	for _, e := range code {
		for _, l := range e.labels {
			canonical[l] = e.labels[0]
		}
	}
	insns := make(asm.Instructions, len(code))
	for i, e := range code {
		ins := e.ins
		if len(e.labels) > 0 {
			ins = ins.WithSymbol(e.labels[0])
		}
		if e.target != "" {
			t := e.target
			if c, ok := canonical[t]; ok {
				t = c
			}
			ins = ins.WithReference(t)
		}
		insns[i] = ins
	}
	return insns
}

// reuseLoads drops reloads of what registers still hold: data and
// data_end, and the field last loaded into R0 together with its bounds
// check. It only looks at straight-line code: an instruction without a
// (referenced) label is reached only from the one before it, so the
// registers hold what that path left in them; at a label everything is
// reloaded, and scratch registers stay dead where paths join.
func reuseLoads(code []entry) []entry {
	referenced := make(map[string]bool)
	for _, e := range code {
		if e.target != "" {
			referenced[e.target] = true
		}
	}
	for i := range code {
		var keep []string
		for _, l := range code[i].labels {
			if referenced[l] {
				keep = append(keep, l)
			}
		}
		code[i].labels = keep
	}

	type field struct {
		ok      bool
		off     int16
		size    asm.Size
		swapped bool
	}
	var (
		out    = make([]entry, 0, len(code))
		dataOK bool  // R2 = data, R3 = data_end
		val    field // what R0 holds, loaded from R2 while dataOK
	)
	unlabelled := func(es []entry) bool {
		for _, e := range es {
			if len(e.labels) > 0 {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(code); i++ {
		e := code[i]
		if len(e.labels) > 0 {
			dataOK, val = false, field{}
		}
		if i+1 < len(code) && isCtxLoad(e.ins, regData, xdpMDData) && isCtxLoad(code[i+1].ins, regDataEnd, xdpMDDataEnd) && unlabelled(code[i+1:i+2]) {
			if !dataOK {
				out = append(out, e, code[i+1])
				dataOK = true
			}
			i++
			continue
		}
		// The bounds check and load of the field R0 already holds.
		if n := 4 + boolInt(val.size != asm.Byte); dataOK && val.ok && i+n <= len(code) && unlabelled(code[i+1:i+n]) {
			chk, ld := code[i:i+n], code[i+3].ins
			if chk[0].ins.OpCode.ALUOp() == asm.Mov && chk[0].ins.Dst == regEnd && chk[0].ins.Src == regData &&
				ld.OpCode == asm.LoadMemOp(val.size) && ld.Dst == regVal && ld.Src == regData && ld.Offset == val.off &&
				(val.size == asm.Byte || val.swapped && chk[4].ins.OpCode.ALUOp() == asm.Swap && chk[4].ins.Dst == regVal) {
				i += n - 1
				continue
			}
		}
		out = append(out, e)
		ins := e.ins
		switch {
		case writes(ins, regData) || writes(ins, regDataEnd):
			dataOK, val = false, field{}
		case ins.OpCode.Class().IsLoad() && ins.Dst == regVal:
			val = field{ok: dataOK && ins.Src == regData && ins.OpCode.Mode() == asm.MemMode, off: ins.Offset, size: ins.OpCode.Size()}
		case ins.OpCode.Class().IsALU() && ins.OpCode.ALUOp() == asm.Swap && ins.Dst == regVal:
			val.swapped = true
		case writes(ins, regVal):
			val = field{}
		}
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func isCtxLoad(ins asm.Instruction, dst asm.Register, off int16) bool {
	return ins.OpCode == asm.LoadMemOp(asm.Word) && ins.Dst == dst && ins.Src == regCtx && ins.Offset == off
}

// writes reports whether ins changes reg.
func writes(ins asm.Instruction, reg asm.Register) bool {
	c := ins.OpCode.Class()
	return (c.IsALU() || c.IsLoad()) && ins.Dst == reg
}
