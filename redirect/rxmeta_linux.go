//go:build linux

package redirect

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/mdlayher/genetlink"
	mdnetlink "github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/netlink"
	"github.com/xdpkit/xdpkit/internal/sys"
)

// RX metadata (Options.RXMetadata): the program calls the XDP RX metadata
// kfuncs and stores their results in front of the frame's data, in the
// layout rxmeta.go describes, just before the XSKMAP redirect.
//
// cilium/ebpf resolves kfunc calls only for programs read from an ELF
// file (the kfunc metadata its linker looks for is unexported), so the
// calls are assembled here: BPF_CALL with src_reg BPF_PSEUDO_KFUNC_CALL,
// imm the kfunc's BTF type ID in vmlinux and off 0 (vmlinux, not a
// module's BTF, so no fd_array).

const (
	// Labels inside the metadata block.
	rxMetaDoneSymbol     = "xdpkit_rxmeta_done" // the redirect after the block
	rxMetaShortSymbol    = "xdpkit_rxmeta_short"
	rxMetaDropSymbol     = "xdpkit_rxmeta_drop"
	rxMetaReserveSymbol  = "xdpkit_rxmeta_reserve"
	rxMetaTSFailSymbol   = "xdpkit_rxmeta_ts_fail"
	rxMetaTSDoneSymbol   = "xdpkit_rxmeta_ts_done"
	rxMetaHashFailSymbol = "xdpkit_rxmeta_hash_fail"
	rxMetaHashDoneSymbol = "xdpkit_rxmeta_hash_done"
	rxMetaVLANFailSymbol = "xdpkit_rxmeta_vlan_fail"
	rxMetaVLANDoneSymbol = "xdpkit_rxmeta_vlan_done"

	// offsetof(struct xdp_md, data) and (..., data_meta).
	xdpMDData     = 0
	xdpMDDataMeta = 8

	// The netdev generic netlink family (Documentation/netlink/specs/
	// netdev.yaml): dev-get, its ifindex and xdp-rx-metadata-features
	// attributes, and the feature bits (enum netdev_xdp_rx_metadata).
	netdevCmdDevGet       = 1
	netdevADevIfindex     = 1
	netdevADevRXMetadata  = 5
	netdevRXMetaTimestamp = 1 << 0
	netdevRXMetaHash      = 1 << 1
	netdevRXMetaVLANTag   = 1 << 2
)

// rxKfunc is one of the kfuncs the program calls.
type rxKfunc struct {
	name   string
	params int    // arguments, ctx included
	since  string // first Linux release with this signature
}

// rxKfuncList is in the order the program calls them.
var rxKfuncList = [3]rxKfunc{
	{"bpf_xdp_metadata_rx_timestamp", 2, "6.3"},
	{"bpf_xdp_metadata_rx_hash", 3, "6.3"},
	{"bpf_xdp_metadata_rx_vlan_tag", 3, "6.8"},
}

// rxKfuncs is what loadFor needs to build a program with RX metadata.
type rxKfuncs struct {
	ids    [3]btf.TypeID // BTF type IDs in vmlinux, in rxKfuncList order
	ifname string
}

// rxCalls are the three call instructions of the metadata block: the
// kfunc calls, or calls of local stand-ins in tests. Each is called with
// the context in R1 and the destination pointers in R2 (and R3), and
// returns 0 or a negative errno in R0.
type rxCalls struct {
	timestamp, hash, vlanTag asm.Instruction
}

// kfuncCall is the call instruction of the vmlinux kfunc with BTF type ID
// id.
func kfuncCall(id btf.TypeID) asm.Instruction {
	return asm.Instruction{
		OpCode:   asm.OpCode(asm.JumpClass).SetJumpOp(asm.Call),
		Src:      asm.PseudoKfuncCall,
		Constant: int64(id),
	}
}

func (k *rxKfuncs) calls() rxCalls {
	return rxCalls{kfuncCall(k.ids[0]), kfuncCall(k.ids[1]), kfuncCall(k.ids[2])}
}

// rxMetadataKfuncs finds the kfuncs in the kernel's BTF and checks that
// the device with ifindex implements at least one of them. Its errors say
// whether the kernel or the device lacks them, and match ErrNotSupported.
func rxMetadataKfuncs(ifindex int) (*rxKfuncs, error) {
	if ifindex == 0 {
		return nil, fmt.Errorf("Options.RXMetadata needs a program bound to its interface, which only Attach loads "+
			"(AttachPinned and AttachProgram do not): %w", ErrInvalidOptions)
	}
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("RX metadata: the kfuncs are found through the kernel's BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF), "+
			"which cannot be read: %w", notSupported(err))
	}
	ids, err := kfuncIDs(spec)
	if err != nil {
		return nil, err
	}
	k := &rxKfuncs{ids: ids}
	iface, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return nil, fmt.Errorf("RX metadata: %w", err)
	}
	k.ifname = iface.Name
	features, err := deviceRXMetadata(ifindex)
	if err != nil {
		return nil, fmt.Errorf("RX metadata: which kfuncs %s implements: %w", k.ifname, err)
	}
	// One is enough: the others return EOPNOTSUPP and leave their ok
	// bits clear.
	if features&(netdevRXMetaTimestamp|netdevRXMetaHash|netdevRXMetaVLANTag) == 0 {
		driver := "unknown driver"
		if info, err := sys.EthtoolDrvinfo(k.ifname); err == nil && info.Driver != "" {
			driver = "driver " + info.Driver
		}
		return nil, fmt.Errorf("RX metadata: %s (%s) implements none of the XDP RX metadata kfuncs "+
			"(netdev xdp-rx-metadata-features is 0: no timestamp, hash or VLAN tag), so every call would return EOPNOTSUPP: %w",
			k.ifname, driver, ErrNotSupported)
	}
	return k, nil
}

// kfuncIDs returns the BTF type IDs of the kfuncs in the kernel's spec,
// checking that each has the arguments the program passes.
func kfuncIDs(spec *btf.Spec) ([3]btf.TypeID, error) {
	var ids [3]btf.TypeID
	for i, kf := range rxKfuncList {
		var fn *btf.Func
		err := spec.TypeByName(kf.name, &fn)
		if errors.Is(err, btf.ErrNotFound) {
			return ids, fmt.Errorf("RX metadata: the kernel has no kfunc %s (Linux %s or later): %w", kf.name, kf.since, ErrNotSupported)
		}
		if err != nil {
			return ids, fmt.Errorf("RX metadata: look up kfunc %s in the kernel's BTF: %w", kf.name, err)
		}
		if proto, ok := fn.Type.(*btf.FuncProto); !ok || len(proto.Params) != kf.params {
			return ids, fmt.Errorf("RX metadata: the kernel's kfunc %s has the type %v, not the %d arguments of Linux %s: %w",
				kf.name, fn.Type, kf.params, kf.since, ErrNotSupported)
		}
		if ids[i], err = spec.TypeID(fn); err != nil {
			return ids, fmt.Errorf("RX metadata: BTF ID of kfunc %s: %w", kf.name, err)
		}
	}
	return ids, nil
}

// notSupported wraps err with ErrNotSupported unless it already matches.
func notSupported(err error) error {
	if errors.Is(err, ErrNotSupported) {
		return err
	}
	return fmt.Errorf("%w (%w)", ErrNotSupported, err)
}

// deviceRXMetadata asks the netdev generic netlink family which RX
// metadata kfuncs the device with ifindex implements (the kernel sets a
// bit for each xdp_metadata_ops callback of the driver).
func deviceRXMetadata(ifindex int) (uint64, error) {
	c, err := genetlink.Dial(nil)
	if err != nil {
		return 0, fmt.Errorf("generic netlink: %w", err)
	}
	defer c.Close()
	fam, err := c.GetFamily("netdev")
	if errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("the kernel has no netdev netlink family (Linux 6.3+): %w", ErrNotSupported)
	}
	if err != nil {
		return 0, fmt.Errorf("netdev netlink family: %w", err)
	}
	ae := mdnetlink.NewAttributeEncoder()
	ae.Uint32(netdevADevIfindex, uint32(ifindex))
	data, err := ae.Encode()
	if err != nil {
		return 0, err
	}
	msgs, err := c.Execute(genetlink.Message{Header: genetlink.Header{Command: netdevCmdDevGet, Version: fam.Version}, Data: data},
		fam.ID, mdnetlink.Request)
	if err != nil {
		return 0, fmt.Errorf("netdev dev-get: %w", err)
	}
	for _, m := range msgs {
		ad, err := mdnetlink.NewAttributeDecoder(m.Data)
		if err != nil {
			return 0, fmt.Errorf("netdev dev-get: %w", err)
		}
		for ad.Next() {
			if ad.Type() == netdevADevRXMetadata {
				if len(ad.Bytes()) == 4 {
					return uint64(ad.Uint32()), nil
				}
				return ad.Uint64(), nil
			}
		}
		if err := ad.Err(); err != nil {
			return 0, fmt.Errorf("netdev dev-get: %w", err)
		}
	}
	return 0, fmt.Errorf("netdev dev-get reports no xdp-rx-metadata-features (the kernel predates the RX metadata kfuncs): %w", ErrNotSupported)
}

// loadError explains why the kernel refused the device-bound program.
func (k *rxKfuncs) loadError(err error) error {
	what := fmt.Sprintf("load XDP program with RX metadata bound to %s", k.ifname)
	var ve *ebpf.VerifierError
	log := ""
	if errors.As(err, &ve) {
		log = strings.Join(ve.Log, "\n")
	}
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return loadError(what, err, func() error { return nil })
	case strings.Contains(log, "JIT is required") || strings.Contains(log, "JIT does not support calling kernel function"):
		return fmt.Errorf("%s: kfunc calls need the BPF JIT (sysctl net.core.bpf_jit_enable=1): %w (%w)", what, ErrNotSupported, err)
	case strings.Contains(log, "metadata kfuncs"):
		return fmt.Errorf("%s: the verifier refuses the RX metadata kfuncs: %w (%w)", what, ErrNotSupported, err)
	case errors.Is(err, unix.EOPNOTSUPP):
		// bpf_prog_dev_bound_init: the device has no ndo_bpf.
		return fmt.Errorf("%s: the kernel cannot bind a program to %s (no native XDP): %w (%w)", what, k.ifname, ErrNotSupported, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// withRXMetadata inserts the metadata block in front of the XSKMAP
// redirect of insns (the instruction labeled xskSymbol with a fast path,
// redirectSymbol otherwise): the label moves to the block's first
// instruction, so every path to the socket stores the metadata first.
func withRXMetadata(insns asm.Instructions, fast bool, c rxCalls) asm.Instructions {
	sym := redirectSymbol
	if fast {
		sym = xskSymbol
	}
	i := slices.IndexFunc(insns, func(ins asm.Instruction) bool { return ins.Symbol() == sym })
	if i < 0 {
		return insns // no redirect (options.resolve refuses this with a filter that never redirects)
	}
	block := rxMetadataInsns(c)
	block[0] = block[0].WithSymbol(sym)
	out := make(asm.Instructions, 0, len(insns)+len(block))
	out = append(out, insns[:i]...)
	out = append(out, block...)
	out = append(out, insns[i].WithSymbol(rxMetaDoneSymbol))
	return append(out, insns[i+1:]...)
}

// rxMetadataInsns is the metadata block. It runs with the context in R6
// (kept, as the redirect after it needs it), uses R0-R5, R7 (the metadata
// pointer) and R8 (the last word: magic and ok bits), and ends at
// rxMetaDoneSymbol.
//
// bpf_xdp_adjust_meta grows the metadata area at its front, so the block
// first drops metadata already in front of the data (a frame redirected
// into a veth with metadata of another program's, say): the area it
// reserves then ends where the data begins, where ParseRXMetadata looks.
// It reserves RXMetadataSize bytes, zeroes them, calls each kfunc with
// pointers into the area (a kfunc that fails gets its fields zeroed
// again and no ok bit; a zero timestamp counts as none) and writes the
// last word. If the area cannot be reserved (too little headroom) it
// reserves 4 bytes and zeroes them, where the last word would be, so that
// no earlier frame's metadata left in the buffer passes for this frame's.
// If even that fails (a driver without metadata support) the frame goes
// on without.
func rxMetadataInsns(c rxCalls) asm.Instructions {
	zero := func(off int16, size asm.Size, sym string) asm.Instructions {
		return asm.Instructions{
			asm.Mov.Imm(asm.R1, 0).WithSymbol(sym),
			asm.StoreMem(asm.R7, off, asm.R1, size),
		}
	}
	insns := asm.Instructions{
		// if ctx->data_meta < ctx->data: drop that metadata first
		asm.LoadMem(asm.R2, asm.R6, xdpMDDataMeta, asm.Word),
		asm.LoadMem(asm.R3, asm.R6, xdpMDData, asm.Word),
		asm.JLT.Reg(asm.R2, asm.R3, rxMetaDropSymbol),

		// if bpf_xdp_adjust_meta(ctx, -RXMetadataSize) != 0: short
		asm.Mov.Reg(asm.R1, asm.R6).WithSymbol(rxMetaReserveSymbol),
		asm.Mov.Imm(asm.R2, -RXMetadataSize),
		asm.FnXdpAdjustMeta.Call(),
		asm.JNE.Imm32(asm.R0, 0, rxMetaShortSymbol),
		// r7 = ctx->data_meta; if r7 + RXMetadataSize > ctx->data: done
		// (never taken after a successful adjust; the verifier needs it)
		asm.LoadMem(asm.R7, asm.R6, xdpMDDataMeta, asm.Word),
		asm.LoadMem(asm.R2, asm.R6, xdpMDData, asm.Word),
		asm.Mov.Reg(asm.R1, asm.R7),
		asm.Add.Imm(asm.R1, RXMetadataSize),
		asm.JGT.Reg(asm.R1, asm.R2, rxMetaDoneSymbol),
		// The area is zero, the last word too, until the end.
		asm.Mov.Imm(asm.R1, 0),
		asm.StoreMem(asm.R7, 0, asm.R1, asm.DWord),
		asm.StoreMem(asm.R7, 8, asm.R1, asm.DWord),
		asm.StoreMem(asm.R7, 16, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R8, RXMetadataMagic),

		// bpf_xdp_metadata_rx_timestamp(ctx, &meta->timestamp)
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Reg(asm.R2, asm.R7),
		c.timestamp,
		asm.JNE.Imm32(asm.R0, 0, rxMetaTSFailSymbol),
		asm.LoadMem(asm.R1, asm.R7, 0, asm.DWord),
		asm.JEq.Imm(asm.R1, 0, rxMetaTSDoneSymbol), // success with 0: no timestamp (veth)
		asm.Or.Imm(asm.R8, RXMetadataTimestampOK),
		asm.Ja.Label(rxMetaTSDoneSymbol),
	}
	insns = append(insns, zero(0, asm.DWord, rxMetaTSFailSymbol)...)
	insns = append(insns,
		// bpf_xdp_metadata_rx_hash(ctx, &meta->hash, &meta->hash_type)
		asm.Mov.Reg(asm.R1, asm.R6).WithSymbol(rxMetaTSDoneSymbol),
		asm.Mov.Reg(asm.R2, asm.R7),
		asm.Add.Imm(asm.R2, 8),
		asm.Mov.Reg(asm.R3, asm.R7),
		asm.Add.Imm(asm.R3, 12),
		c.hash,
		asm.JNE.Imm32(asm.R0, 0, rxMetaHashFailSymbol),
		asm.Or.Imm(asm.R8, RXMetadataHashOK),
		asm.Ja.Label(rxMetaHashDoneSymbol),
	)
	insns = append(insns, zero(8, asm.DWord, rxMetaHashFailSymbol)...)
	insns = append(insns,
		// bpf_xdp_metadata_rx_vlan_tag(ctx, &meta->vlan_proto, &meta->vlan_tci)
		asm.Mov.Reg(asm.R1, asm.R6).WithSymbol(rxMetaHashDoneSymbol),
		asm.Mov.Reg(asm.R2, asm.R7),
		asm.Add.Imm(asm.R2, 16),
		asm.Mov.Reg(asm.R3, asm.R7),
		asm.Add.Imm(asm.R3, 18),
		c.vlanTag,
		asm.JNE.Imm32(asm.R0, 0, rxMetaVLANFailSymbol),
		asm.Or.Imm(asm.R8, RXMetadataVLANOK),
		asm.Ja.Label(rxMetaVLANDoneSymbol),
	)
	insns = append(insns, zero(16, asm.Word, rxMetaVLANFailSymbol)...)
	insns = append(insns,
		// The last word: magic, version and ok bits.
		asm.StoreMem(asm.R7, 20, asm.R8, asm.Word).WithSymbol(rxMetaVLANDoneSymbol),
		asm.Ja.Label(rxMetaDoneSymbol),

		// short: no room for the area. Try 4 bytes and zero them: the
		// position of the last word, so stale metadata there is erased.
		asm.Mov.Reg(asm.R1, asm.R6).WithSymbol(rxMetaShortSymbol),
		asm.Mov.Imm(asm.R2, -4),
		asm.FnXdpAdjustMeta.Call(),
		asm.JNE.Imm32(asm.R0, 0, rxMetaDoneSymbol),
		asm.LoadMem(asm.R2, asm.R6, xdpMDDataMeta, asm.Word),
		asm.LoadMem(asm.R3, asm.R6, xdpMDData, asm.Word),
		asm.Mov.Reg(asm.R1, asm.R2),
		asm.Add.Imm(asm.R1, 4),
		asm.JGT.Reg(asm.R1, asm.R3, rxMetaDoneSymbol),
		asm.Mov.Imm(asm.R1, 0),
		asm.StoreMem(asm.R2, 0, asm.R1, asm.Word),
		asm.Ja.Label(rxMetaDoneSymbol),
	)

	// drop: shrink the metadata already there to nothing, in steps of
	// 128, 64, ... 4 bytes (its length is a multiple of 4 below 256; a
	// BPF program cannot subtract data_meta from data without
	// CAP_PERFMON), then reserve.
	label := func(step int32) string {
		if step == 128 {
			return rxMetaDropSymbol
		}
		if step < 4 {
			return rxMetaReserveSymbol
		}
		return fmt.Sprintf("%s_%d", rxMetaDropSymbol, step)
	}
	for _, step := range []int32{128, 64, 32, 16, 8, 4} {
		insns = append(insns,
			// if ctx->data_meta + step <= ctx->data: bpf_xdp_adjust_meta(ctx, step)
			asm.LoadMem(asm.R2, asm.R6, xdpMDDataMeta, asm.Word).WithSymbol(label(step)),
			asm.LoadMem(asm.R3, asm.R6, xdpMDData, asm.Word),
			asm.Mov.Reg(asm.R1, asm.R2),
			asm.Add.Imm(asm.R1, step),
			asm.JGT.Reg(asm.R1, asm.R3, label(step/2)),
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.Mov.Imm(asm.R2, step),
			asm.FnXdpAdjustMeta.Call(),
		)
	}
	return append(insns, asm.Ja.Label(rxMetaReserveSymbol))
}

// RXMetadata reports whether the program stores RX metadata in front of
// each frame it redirects: it was attached by [Attach] with
// Options.RXMetadata. It is false for programs from [AttachProgram],
// [AttachPinned] and [Use], and for a nil Program.
func (p *Program) RXMetadata() bool { return p != nil && p.rxMeta }
