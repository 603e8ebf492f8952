package fastpath

import (
	"fmt"
	"sync/atomic"

	"github.com/cilium/ebpf/asm"
)

// Symbols of the maps the instructions reference (cilium/ebpf resolves
// them through AssociateMap).
const (
	flows4MapName   = "xdpkit_flows4"
	flows6MapName   = "xdpkit_flows6"
	sources4MapName = "xdpkit_sources4"
	sources6MapName = "xdpkit_sources6"
	prefixesMapName = "xdpkit_prefixes"
	configMapName   = "xdpkit_fpconf"
	countersMapName = "xdpkit_fpcount"
)

// XDP actions and struct xdp_md offsets.
const (
	xdpDrop = 1
	xdpPass = 2
	xdpTX   = 3

	mdData    = 0
	mdDataEnd = 4
)

// Stack layout (offsets from R10). The flow key is at fpKey: 16 bytes
// for IPv4, 40 for IPv6 (see types.go); its first 4 or 16 bytes, the
// source address, are also the policer's key.
const (
	fpKey    = -40
	fpLPM    = -64 // the prefix lists' key: prefix length, IPv4-mapped address
	fpIndex  = -68 // u32 key for the config and counters maps
	fpProto  = -72 // u8: the 5-tuple's protocol
	fpBucket = -88 // policer value for a new source: tokens, last
)

// Registers kept across helper calls: R6 the context (the caller's
// convention), R7 the config map value, R8 the flow entry or the time,
// R9 the family of a frame whose 5-tuple is in the key (4 or 6), 0 when
// it has none.
const (
	rCtx    = asm.R6
	rConf   = asm.R7
	rEntry  = asm.R8
	rFamily = asm.R9
)

// programs numbers the instruction sets so that their labels are unique
// even when two end up in one program.
var programs atomic.Uint64

// asmb collects instructions with symbolic labels; several labels may
// land on one instruction.
type asmb struct {
	prefix  string
	insns   asm.Instructions
	labels  [][]string // per instruction
	pending []string
}

func (b *asmb) l(name string) string { return b.prefix + name }

// mark puts label name on the next instruction.
func (b *asmb) mark(name string) { b.pending = append(b.pending, b.l(name)) }

func (b *asmb) emit(ins ...asm.Instruction) {
	for _, in := range ins {
		b.insns = append(b.insns, in)
		b.labels = append(b.labels, b.pending)
		b.pending = nil
	}
}

// jmp emits a jump whose target is the local label name.
func (b *asmb) jmp(ins asm.Instruction, name string) { b.emit(ins.WithReference(b.l(name))) }

// count adds one to the per-CPU counter idx. Clobbers R0-R5.
func (b *asmb) count(idx int) {
	skip := fmt.Sprintf("counted%d_%d", idx, len(b.insns))
	b.emit(
		asm.StoreImm(asm.RFP, fpIndex, int64(idx), asm.Word),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpIndex),
		asm.LoadMapPtr(asm.R1, 0).WithReference(countersMapName),
		asm.FnMapLookupElem.Call(),
	)
	b.jmp(asm.JEq.Imm(asm.R0, 0, ""), skip)
	// A plain increment: the slot is this CPU's, and XDP does not nest.
	b.emit(
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
	)
	b.mark(skip)
}

// ret returns the XDP action a.
func (b *asmb) ret(a int32) { b.emit(asm.Mov.Imm(asm.R0, a), asm.Return()) }

// loadPacket loads ctx->data into R2 and ctx->data_end into R3 and jumps
// to oob unless the frame has at least n bytes.
func (b *asmb) loadPacket(n int32, oob string) {
	b.emit(
		asm.LoadMem(asm.R2, rCtx, mdData, asm.Word),
		asm.LoadMem(asm.R3, rCtx, mdDataEnd, asm.Word),
		asm.Mov.Reg(asm.R1, asm.R2),
		asm.Add.Imm(asm.R1, n),
	)
	b.jmp(asm.JGT.Reg(asm.R1, asm.R3, ""), oob)
}

// finish resolves several labels on one instruction to its first.
func (b *asmb) finish() asm.Instructions {
	canonical := map[string]string{}
	for _, ls := range b.labels {
		for _, l := range ls {
			canonical[l] = ls[0]
		}
	}
	out := make(asm.Instructions, len(b.insns))
	for i, ins := range b.insns {
		if len(b.labels[i]) > 0 {
			ins = ins.WithSymbol(b.labels[i][0])
		}
		if r := ins.Reference(); r != "" {
			if c, ok := canonical[r]; ok {
				ins = ins.WithReference(c)
			}
		}
		out[i] = ins
	}
	return out
}

// storeXAddAt is an atomic *(u64 *)(dst+off) += src.
func storeXAddAt(dst asm.Register, off int16, src asm.Register) asm.Instruction {
	ins := asm.StoreXAdd(dst, src, asm.DWord)
	ins.Offset = off
	return ins
}

// le16 is the value a little-endian 16-bit load gives for the
// network-order (big-endian) value v.
func le16(v uint16) int32 { return int32(v>>8 | v<<8&0xff00) }

// instructions builds the fast path. On entry R6 holds the context; a
// frame that goes to the socket (Redirect, a miss with Default Redirect)
// jumps to xsk with R6 unchanged, every other one returns.
func instructions(def Action, precise, atomic bool, xsk string) asm.Instructions {
	b := &asmb{prefix: fmt.Sprintf("xdpkit_fp%d_", programs.Add(1))}

	// The config: which of the policies and the table are in use.
	b.emit(
		asm.StoreImm(asm.RFP, fpIndex, 0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpIndex),
		asm.LoadMapPtr(asm.R1, 0).WithReference(configMapName),
		asm.FnMapLookupElem.Call(),
	)
	b.jmp(asm.JEq.Imm(asm.R0, 0, ""), "default")
	b.emit(asm.Mov.Reg(rConf, asm.R0))

	// Parse: the Ethernet header, then IPv4 or IPv6 into the key.
	b.loadPacket(14, "unparsed")
	b.emit(asm.LoadMem(asm.R1, asm.R2, 12, asm.Half))
	b.jmp(asm.JEq.Imm(asm.R1, le16(0x0800), ""), "v4")
	b.jmp(asm.JEq.Imm(asm.R1, le16(0x86dd), ""), "v6")
	b.jmp(asm.Ja.Label(""), "unparsed")

	// IPv4: the addresses at fixed offsets (options or not); the ports
	// only for an unfragmented TCP or UDP packet without options.
	b.mark("v4")
	b.emit(asm.Mov.Reg(asm.R1, asm.R2), asm.Add.Imm(asm.R1, 34))
	b.jmp(asm.JGT.Reg(asm.R1, asm.R3, ""), "unparsed")
	b.emit(
		asm.LoadMem(asm.R1, asm.R2, 14, asm.Byte),
		asm.RSh.Imm(asm.R1, 4),
	)
	b.jmp(asm.JNE.Imm(asm.R1, 4, ""), "unparsed")
	b.emit(
		asm.LoadMem(asm.R1, asm.R2, 26, asm.Word),
		asm.StoreMem(asm.RFP, fpKey+key4Src, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R2, 30, asm.Word),
		asm.StoreMem(asm.RFP, fpKey+key4Dst, asm.R1, asm.Word),
		asm.Mov.Imm(asm.R5, 0), // BPF_ST of a 64-bit immediate is not an instruction
		asm.StoreMem(asm.RFP, fpKey+key4Sport, asm.R5, asm.DWord),
		asm.Mov.Imm(rFamily, 0),
		asm.LoadMem(asm.R1, asm.R2, 14, asm.Byte),
	)
	b.jmp(asm.JNE.Imm(asm.R1, 0x45, ""), "policies4") // options
	b.emit(
		asm.LoadMem(asm.R1, asm.R2, 20, asm.Half),
		asm.And.Imm(asm.R1, le16(0x3fff)), // more fragments, fragment offset
	)
	b.jmp(asm.JNE.Imm(asm.R1, 0, ""), "policies4")
	b.ports(familyIPv4, 23, 34)

	// IPv6: the ports only when TCP or UDP directly follows the header.
	b.mark("v6")
	b.emit(asm.Mov.Reg(asm.R1, asm.R2), asm.Add.Imm(asm.R1, 54))
	b.jmp(asm.JGT.Reg(asm.R1, asm.R3, ""), "unparsed")
	for i := int16(0); i < 32; i += 8 {
		b.emit(
			asm.LoadMem(asm.R1, asm.R2, 22+i, asm.DWord),
			asm.StoreMem(asm.RFP, fpKey+i, asm.R1, asm.DWord),
		)
	}
	b.emit(
		asm.Mov.Imm(asm.R5, 0),
		asm.StoreMem(asm.RFP, fpKey+key6Sport, asm.R5, asm.DWord),
		asm.Mov.Imm(rFamily, 0),
	)
	b.ports(familyIPv6, 20, 54)

	// The policies and the table, once per family: each has its maps.
	for _, fam := range []int{familyIPv4, familyIPv6} {
		b.family(fam, precise)
	}

	// A flow entry, in rEntry: count, then act.
	b.mark("hit")
	b.emit(
		asm.Mov.Reg(rEntry, asm.R0),
		// Last-seen times need only the coarse clock (a tick, 1-10 ms),
		// a few ns cheaper than reading the clock source.
		asm.FnKtimeGetCoarseNs.Call(),
		asm.LoadMem(asm.R1, rConf, cfgIdle, asm.DWord),
	)
	b.jmp(asm.JEq.Imm(asm.R1, 0, ""), "fresh")
	b.emit(
		asm.LoadMem(asm.R2, rEntry, valLast, asm.DWord),
		asm.Mov.Reg(asm.R3, asm.R0),
		asm.Sub.Reg(asm.R3, asm.R2),
	)
	b.jmp(asm.JSLT.Imm(asm.R3, 0, ""), "fresh")
	b.jmp(asm.JLE.Reg(asm.R3, asm.R1, ""), "fresh")
	b.count(cntExpired)
	b.jmp(asm.Ja.Label(""), "default")
	b.mark("fresh")
	b.emit(
		asm.StoreMem(rEntry, valLast, asm.R0, asm.DWord),
		// The length from the helper: subtracting data from data_end
		// needs CAP_PERFMON (pointer arithmetic).
		asm.Mov.Reg(asm.R1, rCtx),
		asm.FnXdpGetBuffLen.Call(),
	)
	if atomic {
		b.emit(
			asm.Mov.Imm(asm.R1, 1),
			storeXAddAt(rEntry, valPackets, asm.R1),
			storeXAddAt(rEntry, valBytes, asm.R0),
		)
	} else {
		// Plain adds, a lock prefix cheaper each (see Config.AtomicCounters).
		b.emit(
			asm.LoadMem(asm.R1, rEntry, valPackets, asm.DWord),
			asm.Add.Imm(asm.R1, 1),
			asm.StoreMem(rEntry, valPackets, asm.R1, asm.DWord),
			asm.LoadMem(asm.R1, rEntry, valBytes, asm.DWord),
			asm.Add.Reg(asm.R1, asm.R0),
			asm.StoreMem(rEntry, valBytes, asm.R1, asm.DWord),
		)
	}
	b.emit(asm.LoadMem(asm.R1, rEntry, valAction, asm.Word))
	b.jmp(asm.JEq.Imm(asm.R1, int32(Drop), ""), "flowdrop")
	b.jmp(asm.JEq.Imm(asm.R1, int32(Pass), ""), "flowpass")
	b.jmp(asm.JEq.Imm(asm.R1, int32(Redirect), ""), "flowredirect")
	b.jmp(asm.JEq.Imm(asm.R1, int32(Transmit), ""), "flowtx")
	b.jmp(asm.JEq.Imm(asm.R1, int32(Encap), ""), "flowencap")
	b.jmp(asm.Ja.Label(""), "flowerror")

	b.mark("flowdrop")
	b.count(cntFlowDrop)
	b.ret(xdpDrop)
	b.mark("flowpass")
	b.count(cntFlowPass)
	b.ret(xdpPass)
	b.mark("flowredirect")
	b.count(cntFlowRedirect)
	b.emit(asm.Ja.Label(xsk))

	b.mark("flowtx")
	b.transmit()
	b.mark("flowencap")
	b.encap()

	// A hit whose frame cannot be rewritten goes on as a miss would.
	b.mark("flowerror")
	b.count(cntFlowError)
	b.jmp(asm.Ja.Label(""), "default")

	b.mark("unparsed")
	b.count(cntUnparsed)
	b.mark("default")
	b.count(cntDefault)
	switch def {
	case Pass:
		b.ret(xdpPass)
	case Drop:
		b.ret(xdpDrop)
	default:
		b.emit(asm.Ja.Label(xsk))
	}
	return b.finish()
}

// ports completes the key of an IPv4 or IPv6 frame (data in R2, data_end
// in R3) with its protocol, at offset proto, and its ports, at offset l4,
// if it is TCP or UDP and long enough, setting rFamily; then it goes on to
// the family's policies.
func (b *asmb) ports(fam int, proto, l4 int16) {
	f := fmt.Sprint(fam)
	keyProto, keySport := int16(key4Proto), int16(key4Sport)
	if fam == familyIPv6 {
		keyProto, keySport = key6Proto, key6Sport
	}
	b.emit(asm.LoadMem(asm.R4, asm.R2, proto, asm.Byte))
	b.jmp(asm.JEq.Imm(asm.R4, TCP, ""), "ports"+f)
	b.jmp(asm.JNE.Imm(asm.R4, UDP, ""), "policies"+f)
	b.mark("ports" + f)
	b.emit(asm.Mov.Reg(asm.R1, asm.R2), asm.Add.Imm(asm.R1, int32(l4)+4))
	b.jmp(asm.JGT.Reg(asm.R1, asm.R3, ""), "policies"+f)
	b.emit(
		asm.StoreMem(asm.RFP, fpKey+keyProto, asm.R4, asm.Byte),
		asm.StoreMem(asm.RFP, fpProto, asm.R4, asm.Byte),
		asm.LoadMem(asm.R1, asm.R2, l4, asm.Word), // source and destination ports
		asm.StoreMem(asm.RFP, fpKey+keySport, asm.R1, asm.Word),
		asm.Mov.Imm(rFamily, int32(fam)),
	)
	b.jmp(asm.Ja.Label(""), "policies"+f)
}

// family emits the policies, the policer and the flow lookup for IPv4
// (fam 4) or IPv6 frames, whose key is on the stack: their maps differ.
// A frame the policies let through and that has a 5-tuple goes to "hit"
// with its entry in R0, or to "default".
func (b *asmb) family(fam int, precise bool) {
	f := fmt.Sprint(fam)
	sources, flows := sources4MapName, flows4MapName
	if fam == familyIPv6 {
		sources, flows = sources6MapName, flows6MapName
	}

	// Block and allow lists: the longest prefix of the source decides.
	b.mark("policies" + f)
	b.emit(
		asm.LoadMem(asm.R1, rConf, cfgFlags, asm.DWord),
		asm.And.Imm(asm.R1, cfgHasPrefix),
	)
	b.jmp(asm.JEq.Imm(asm.R1, 0, ""), "policer"+f)
	b.emit(asm.StoreImm(asm.RFP, fpLPM, 128, asm.Word))
	if fam == familyIPv4 {
		b.emit(
			asm.StoreImm(asm.RFP, fpLPM+4, 0, asm.Word),
			asm.StoreImm(asm.RFP, fpLPM+8, 0, asm.Word),
			asm.StoreImm(asm.RFP, fpLPM+12, -65536, asm.Word), // 00 00 ff ff: IPv4-mapped
			asm.LoadMem(asm.R1, asm.RFP, fpKey+key4Src, asm.Word),
			asm.StoreMem(asm.RFP, fpLPM+16, asm.R1, asm.Word),
		)
	} else {
		for i := int16(0); i < 16; i += 4 {
			b.emit(
				asm.LoadMem(asm.R1, asm.RFP, fpKey+key6Src+i, asm.Word),
				asm.StoreMem(asm.RFP, fpLPM+4+i, asm.R1, asm.Word),
			)
		}
	}
	b.emit(
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpLPM),
		asm.LoadMapPtr(asm.R1, 0).WithReference(prefixesMapName),
		asm.FnMapLookupElem.Call(),
	)
	b.jmp(asm.JEq.Imm(asm.R0, 0, ""), "policer"+f)
	b.emit(asm.LoadMem(asm.R1, asm.R0, 0, asm.Word))
	b.jmp(asm.JNE.Imm(asm.R1, int32(Block), ""), "allowed"+f)
	b.count(cntBlocked)
	b.ret(xdpDrop)
	b.mark("allowed" + f)
	b.count(cntAllowed)
	b.jmp(asm.Ja.Label(""), "flows"+f)

	// The policer: a token bucket per source, in units of 1e-12 packet.
	b.mark("policer" + f)
	b.emit(
		asm.LoadMem(asm.R1, rConf, cfgFlags, asm.DWord),
		asm.And.Imm(asm.R1, cfgHasPolicer),
	)
	b.jmp(asm.JEq.Imm(asm.R1, 0, ""), "flows"+f)
	b.emit(
		policerClock(precise).Call(),
		asm.Mov.Reg(rEntry, asm.R0), // now
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpKey), // the source address
		asm.LoadMapPtr(asm.R1, 0).WithReference(sources),
		asm.FnMapLookupElem.Call(),
	)
	b.jmp(asm.JNE.Imm(asm.R0, 0, ""), "bucket"+f)
	// A new source starts with a full bucket, less this packet.
	b.emit(
		asm.LoadMem(asm.R1, rConf, cfgBurst, asm.DWord),
		asm.LoadImm(asm.R2, unitsPerPacket, asm.DWord),
		asm.Sub.Reg(asm.R1, asm.R2),
		asm.StoreMem(asm.RFP, fpBucket, asm.R1, asm.DWord),
		asm.StoreMem(asm.RFP, fpBucket+8, rEntry, asm.DWord),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpKey),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, fpBucket),
		asm.Mov.Imm(asm.R4, 0), // BPF_ANY
		asm.LoadMapPtr(asm.R1, 0).WithReference(sources),
		asm.FnMapUpdateElem.Call(),
	)
	b.jmp(asm.Ja.Label(""), "within"+f)
	b.mark("bucket" + f)
	b.emit(
		asm.LoadMem(asm.R1, asm.R0, 8, asm.DWord), // last
		asm.StoreMem(asm.R0, 8, rEntry, asm.DWord),
		asm.Mov.Reg(asm.R2, rEntry),
		asm.Sub.Reg(asm.R2, asm.R1), // elapsed
		asm.LoadMem(asm.R3, rConf, cfgBurst, asm.DWord),
		asm.LoadMem(asm.R4, rConf, cfgFill, asm.DWord),
		asm.Mov.Reg(asm.R1, asm.R3), // tokens = burst when full
	)
	// Another CPU may have stored a later time: elapsed is then "negative".
	b.jmp(asm.JSLT.Imm(asm.R2, 0, ""), "nofill"+f)
	b.jmp(asm.JGE.Reg(asm.R2, asm.R4, ""), "take"+f)
	b.emit(
		asm.LoadMem(asm.R4, rConf, cfgRate, asm.DWord),
		asm.Mul.Reg(asm.R2, asm.R4),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Reg(asm.R1, asm.R2),
	)
	b.jmp(asm.JLE.Reg(asm.R1, asm.R3, ""), "take"+f)
	b.emit(asm.Mov.Reg(asm.R1, asm.R3))
	b.jmp(asm.Ja.Label(""), "take"+f)
	b.mark("nofill" + f)
	b.emit(asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord))
	b.mark("take" + f)
	b.emit(asm.LoadImm(asm.R2, unitsPerPacket, asm.DWord))
	b.jmp(asm.JGE.Reg(asm.R1, asm.R2, ""), "spend"+f)
	b.emit(asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord))
	b.count(cntRateDropped)
	b.ret(xdpDrop)
	b.mark("spend" + f)
	b.emit(
		asm.Sub.Reg(asm.R1, asm.R2),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
	)
	b.mark("within" + f)
	b.count(cntRatePassed)

	// The flow table, for frames with a 5-tuple.
	b.mark("flows" + f)
	b.jmp(asm.JEq.Imm(rFamily, 0, ""), "default")
	b.emit(
		asm.LoadMem(asm.R1, rConf, cfgFlags, asm.DWord),
		asm.And.Imm(asm.R1, cfgHasFlows),
	)
	b.jmp(asm.JEq.Imm(asm.R1, 0, ""), "default")
	b.emit(
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpKey),
		asm.LoadMapPtr(asm.R1, 0).WithReference(flows),
		asm.FnMapLookupElem.Call(),
	)
	b.jmp(asm.JEq.Imm(asm.R0, 0, ""), "default")
	b.jmp(asm.Ja.Label(""), "hit")
}

// policerClock is the clock of the buckets (see Config.PreciseClock).
func policerClock(precise bool) asm.BuiltinFunc {
	if precise {
		return asm.FnKtimeGetNs
	}
	return asm.FnKtimeGetCoarseNs
}

// transmit rewrites the frame for a Transmit entry (rEntry) and returns
// XDP_TX. Every bound is checked before the first byte changes, so a
// frame too short for the rewrite is left as it was (flowerror).
func (b *asmb) transmit() {
	// R2 data, R3 data_end, R4 flags. The 5-tuple proved 38 (IPv4) or 58
	// (IPv6) bytes; the checksum of the rewrite may need more.
	b.emit(asm.LoadMem(asm.R4, rEntry, valFlags, asm.Word))
	b.emit(asm.Mov.Reg(asm.R5, asm.R4), asm.And.Imm(asm.R5, flagNewDst|flagNewPort))
	b.jmp(asm.JEq.Imm(asm.R5, 0, ""), "txmac")
	b.emit(asm.LoadMem(asm.R5, asm.RFP, fpProto, asm.Byte))
	b.jmp(asm.JEq.Imm(rFamily, familyIPv6, ""), "tx6")

	// IPv4: UDP checksum at 40, TCP at 50.
	b.l4Checksum("tx4sum", 40, 50)
	// R5 points at the L4 checksum, R4 holds the flags.
	b.unlessFlag(flagNewDst, "tx4port")
	b.emit(
		asm.LoadMem(asm.R1, rEntry, valNewDst, asm.Word),
		asm.StoreMem(asm.R2, 30, asm.R1, asm.Word),
		asm.Mov.Reg(asm.R0, asm.R2),
		asm.Add.Imm(asm.R0, 24),
		asm.LoadMem(asm.R1, rEntry, valIPDelta, asm.Word),
	)
	b.csumUpdate(asm.R0, csumPlain)
	b.mark("tx4port")
	b.unlessFlag(flagNewPort, "tx4l4")
	b.emit(
		asm.LoadMem(asm.R1, rEntry, valNewPort, asm.Half),
		asm.StoreMem(asm.R2, 36, asm.R1, asm.Half),
	)
	b.mark("tx4l4")
	b.l4CsumUpdate(csumUDP4, "tx4l4tcp")

	// IPv6: no header checksum; UDP checksum at 60, TCP at 70.
	b.mark("tx6")
	b.l4Checksum("tx6sum", 60, 70)
	b.unlessFlag(flagNewDst, "tx6port")
	for i := int16(0); i < 16; i += 8 {
		b.emit(
			asm.LoadMem(asm.R1, rEntry, valNewDst+i, asm.DWord),
			asm.StoreMem(asm.R2, 38+i, asm.R1, asm.DWord),
		)
	}
	b.mark("tx6port")
	b.unlessFlag(flagNewPort, "tx6l4")
	b.emit(
		asm.LoadMem(asm.R1, rEntry, valNewPort, asm.Half),
		asm.StoreMem(asm.R2, 56, asm.R1, asm.Half),
	)
	b.mark("tx6l4")
	b.l4CsumUpdate(csumUDP6, "tx6l4tcp")

	// The MAC addresses: swapped, then overwritten where set.
	b.mark("txmac")
	b.loadPacket(14, "flowerror")
	b.unlessFlag(flagSwapMAC, "txdmac")
	b.emit(
		asm.LoadMem(asm.R0, asm.R2, 0, asm.Word),
		asm.LoadMem(asm.R1, asm.R2, 6, asm.Word),
		asm.StoreMem(asm.R2, 0, asm.R1, asm.Word),
		asm.StoreMem(asm.R2, 6, asm.R0, asm.Word),
		asm.LoadMem(asm.R0, asm.R2, 4, asm.Half),
		asm.LoadMem(asm.R1, asm.R2, 10, asm.Half),
		asm.StoreMem(asm.R2, 4, asm.R1, asm.Half),
		asm.StoreMem(asm.R2, 10, asm.R0, asm.Half),
	)
	b.mark("txdmac")
	b.writeMACs()
	b.count(cntFlowTX)
	b.ret(xdpTX)
}

// l4Checksum points R5 at the UDP or TCP checksum, at offset udp or tcp
// by the protocol in R5, after checking the frame holds it (flowerror if
// not); R2 is then the frame's start. The label tag marks what follows.
func (b *asmb) l4Checksum(tag string, udp, tcp int32) {
	b.jmp(asm.JEq.Imm(asm.R5, TCP, ""), tag+"tcp")
	b.loadPacket(udp+2, "flowerror")
	b.emit(asm.Mov.Reg(asm.R5, asm.R2), asm.Add.Imm(asm.R5, udp))
	b.jmp(asm.Ja.Label(""), tag)
	b.mark(tag + "tcp")
	b.loadPacket(tcp+2, "flowerror")
	b.emit(asm.Mov.Reg(asm.R5, asm.R2), asm.Add.Imm(asm.R5, tcp))
	b.mark(tag)
}

// unlessFlag jumps to label unless the entry's flags (R4) have flag.
// Clobbers R1.
func (b *asmb) unlessFlag(flag int32, label string) {
	b.emit(asm.Mov.Reg(asm.R1, asm.R4), asm.And.Imm(asm.R1, flag))
	b.jmp(asm.JEq.Imm(asm.R1, 0, ""), label)
}

// writeMACs writes the entry's MAC addresses that its flags (R4) set over
// the Ethernet header at R2 (whose 14 bytes are checked).
func (b *asmb) writeMACs() {
	for _, m := range []struct {
		flag     int32
		val, pkt int16
		skip     string
	}{{flagDstMAC, valDstMAC, 0, "nodmac"}, {flagSrcMAC, valSrcMAC, 6, "nosmac"}} {
		skip := fmt.Sprintf("%s%d", m.skip, len(b.insns))
		b.unlessFlag(m.flag, skip)
		b.emit(
			asm.LoadMem(asm.R1, rEntry, m.val, asm.Word),
			asm.StoreMem(asm.R2, m.pkt, asm.R1, asm.Word),
			asm.LoadMem(asm.R1, rEntry, m.val+4, asm.Half),
			asm.StoreMem(asm.R2, m.pkt+4, asm.R1, asm.Half),
		)
		b.mark(skip)
	}
}

// l4CsumUpdate adds the rewrite's L4 delta to the UDP or TCP checksum R5
// points at, udp saying how for UDP, and jumps to txmac; tcp names the
// label of its TCP branch.
func (b *asmb) l4CsumUpdate(udp csumMode, tcp string) {
	b.emit(
		asm.LoadMem(asm.R1, rEntry, valL4Delta, asm.Word),
		asm.LoadMem(asm.R0, asm.RFP, fpProto, asm.Byte),
	)
	b.jmp(asm.JEq.Imm(asm.R0, TCP, ""), tcp)
	b.csumUpdate(asm.R5, udp)
	b.jmp(asm.Ja.Label(""), "txmac")
	b.mark(tcp)
	b.csumUpdate(asm.R5, csumPlain)
	b.jmp(asm.Ja.Label(""), "txmac")
}

// csumMode is how csumUpdate treats UDP's checksum values.
type csumMode int

const (
	csumPlain csumMode = iota // the IPv4 header and TCP: any value, written as computed
	csumUDP4                  // UDP over IPv4: 0 is "none" and stays; a result of 0 is written 0xffff
	csumUDP6                  // UDP over IPv6: always present (0 is 0xffff's other form); a result of 0 is written 0xffff
)

// csumUpdate adds the ones' complement delta in R1 to the checksum at
// [ptr] (RFC 1624: HC' = ~(~HC + delta)), as mode says. Clobbers R0, R1,
// R3 (ptr is R0 or R5).
func (b *asmb) csumUpdate(ptr asm.Register, mode csumMode) {
	done := fmt.Sprintf("csumdone%d", len(b.insns))
	b.emit(asm.LoadMem(asm.R3, ptr, 0, asm.Half))
	if mode == csumUDP4 {
		b.jmp(asm.JEq.Imm(asm.R3, 0, ""), done)
	}
	b.emit(
		asm.Xor.Imm(asm.R3, 0xffff),
		asm.Add.Reg(asm.R3, asm.R1),
	)
	b.fold(asm.R3, asm.R1)
	b.emit(asm.Xor.Imm(asm.R3, 0xffff))
	if mode != csumPlain {
		b.jmp(asm.JNE.Imm(asm.R3, 0, ""), done+"w")
		b.emit(asm.Mov.Imm(asm.R3, 0xffff))
		b.mark(done + "w")
	}
	b.emit(asm.StoreMem(ptr, 0, asm.R3, asm.Half))
	b.mark(done)
}

// fold folds the 64-bit sum in r to 16 bits (r < 2^33 here: two rounds
// suffice), using tmp.
func (b *asmb) fold(r, tmp asm.Register) {
	for range 2 {
		b.emit(
			asm.Mov.Reg(tmp, r),
			asm.RSh.Imm(tmp, 16),
			asm.And.Imm(r, 0xffff),
			asm.Add.Reg(r, tmp),
		)
	}
}

// encap prepends the Ethernet and outer IPv4 headers of an Encap entry
// (rEntry) and returns XDP_TX.
func (b *asmb) encap() {
	b.emit(
		asm.Mov.Reg(asm.R1, rCtx),
		asm.Mov.Imm(asm.R2, -20),
		asm.FnXdpAdjustHead.Call(),
	)
	b.jmp(asm.JNE.Imm(asm.R0, 0, ""), "flowerror") // no headroom: the frame is unchanged
	// R0 = total length of the outer packet, as a little-endian load of
	// it in network order would give it.
	b.emit(
		asm.Mov.Reg(asm.R1, rCtx),
		asm.FnXdpGetBuffLen.Call(),
		asm.Sub.Imm(asm.R0, 14),
		asm.HostTo(asm.BE, asm.R0, asm.Half),
	)
	b.loadPacket(34, "encapshort")
	b.emit(asm.LoadMem(asm.R4, rEntry, valFlags, asm.Word))
	b.writeMACs()
	b.emit(
		asm.StoreImm(asm.R2, 12, int64(le16(0x0800)), asm.Half),
		asm.StoreImm(asm.R2, 14, int64(le16(0x4500)), asm.Half),
		asm.StoreMem(asm.R2, 16, asm.R0, asm.Half),
		asm.StoreImm(asm.R2, 18, 0, asm.Half),
		asm.StoreImm(asm.R2, 20, int64(le16(0x4000)), asm.Half),
		asm.StoreImm(asm.R2, 22, int64(outerTTL), asm.Byte),
		asm.Mov.Imm(asm.R1, 4),
	)
	b.jmp(asm.JEq.Imm(rFamily, familyIPv4, ""), "encapproto")
	b.emit(asm.Mov.Imm(asm.R1, 41))
	b.mark("encapproto")
	b.emit(
		asm.StoreMem(asm.R2, 23, asm.R1, asm.Byte),
		asm.LoadMem(asm.R1, rEntry, valTunSrc, asm.Word),
		asm.StoreMem(asm.R2, 26, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, rEntry, valTunDst, asm.Word),
		asm.StoreMem(asm.R2, 30, asm.R1, asm.Word),
		// checksum = ~fold(fixed sum + total length)
		asm.LoadMem(asm.R3, rEntry, valIPDelta, asm.Word),
		asm.Add.Reg(asm.R3, asm.R0),
	)
	b.fold(asm.R3, asm.R1)
	b.emit(
		asm.Xor.Imm(asm.R3, 0xffff),
		asm.StoreMem(asm.R2, 24, asm.R3, asm.Half),
	)
	b.count(cntFlowEncap)
	b.ret(xdpTX)
	// After a successful bpf_xdp_adjust_head the frame has at least the
	// 20 bytes it gained; shorter than 34 it cannot be sent.
	b.mark("encapshort")
	b.count(cntFlowError)
	b.ret(xdpDrop)
}
