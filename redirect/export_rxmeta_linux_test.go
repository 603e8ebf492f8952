//go:build linux

package redirect

import (
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
)

// Internals for the RX metadata tests in package redirect_test.

// LoadForTest creates the program Attach would load for o on ifindex,
// with its XSKMAP and counters map, without attaching it.
func LoadForTest(ifindex, queues int, o *Options) (*ebpf.Program, *ebpf.Map, *ebpf.Map, error) {
	r, err := o.resolve()
	if err != nil {
		return nil, nil, nil, err
	}
	return loadFor(ifindex, queues, r)
}

// RXStubs are the results the stand-ins for the kfuncs give: each writes
// its values through the pointers it gets, whatever it returns, so that
// the tests see that the program zeroes the fields of a failed call.
type RXStubs struct {
	TimestampRet int32
	Timestamp    uint64
	HashRet      int32
	Hash         uint32
	HashType     uint32
	VLANRet      int32
	VLANProto    uint16 // stored as is: the two bytes of a __be16 read in host order
	VLANTCI      uint16
}

const (
	stubTimestamp = "xdpkit_stub_ts"
	stubHash      = "xdpkit_stub_hash"
	stubVLAN      = "xdpkit_stub_vlan"
)

// stubCalls are the metadata block's calls of the stand-ins.
func stubCalls() rxCalls {
	return rxCalls{asm.Call.Label(stubTimestamp), asm.Call.Label(stubHash), asm.Call.Label(stubVLAN)}
}

// stubFuncs are the stand-ins, BPF-to-BPF functions with the kfuncs'
// arguments.
func stubFuncs(st RXStubs) asm.Instructions {
	return asm.Instructions{
		asm.LoadImm(asm.R1, int64(st.Timestamp), asm.DWord).WithSymbol(stubTimestamp),
		asm.StoreMem(asm.R2, 0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, st.TimestampRet),
		asm.Return(),

		asm.Mov.Imm32(asm.R1, int32(st.Hash)).WithSymbol(stubHash),
		asm.StoreMem(asm.R2, 0, asm.R1, asm.Word),
		asm.Mov.Imm32(asm.R1, int32(st.HashType)),
		asm.StoreMem(asm.R3, 0, asm.R1, asm.Word),
		asm.Mov.Imm(asm.R0, st.HashRet),
		asm.Return(),

		asm.Mov.Imm(asm.R1, int32(st.VLANProto)).WithSymbol(stubVLAN),
		asm.StoreMem(asm.R2, 0, asm.R1, asm.Half),
		asm.Mov.Imm(asm.R1, int32(st.VLANTCI)),
		asm.StoreMem(asm.R3, 0, asm.R1, asm.Half),
		asm.Mov.Imm(asm.R0, st.VLANRet),
		asm.Return(),
	}
}

// LoadRXMetadataStubs loads the RX metadata program Attach builds, with
// the kfunc calls replaced by calls of stand-ins that return st, and
// without binding it to a device: the kernel does not test-run
// device-bound programs (bpf_prog_test_run_xdp refuses them with
// EINVAL), and calls the kfuncs only for those. Everything else, the
// metadata area, the ok bits, the fallbacks and the redirect, is the
// real program's. With counters the program counts its verdicts as with
// Options.Counters (the counters map is returned, else nil). filter, if
// not empty, runs first, as a compiled filter would (see LoadFiltered).
func LoadRXMetadataStubs(xsks *ebpf.Map, st RXStubs, counters bool, filter asm.Instructions) (*ebpf.Program, *ebpf.Map, error) {
	insns := withRXMetadata(instructions(filter, nil, true), false, stubCalls())
	if err := insns.AssociateMap(xsksMapSymbol, xsks); err != nil {
		return nil, nil, err
	}
	var cm *ebpf.Map
	if counters {
		var err error
		if cm, err = newCounters(); err != nil {
			return nil, nil, err
		}
		insns = counted(insns)
		if err := insns.AssociateMap(countersName, cm); err != nil {
			cm.Close()
			return nil, nil, err
		}
	}
	insns = append(insns, stubFuncs(st)...)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "xdpkit_rxstub", Type: ebpf.XDP, License: license, Instructions: insns})
	if err != nil {
		cm.Close()
		return nil, nil, err
	}
	return prog, cm, nil
}

// RXMetadataInstructions returns the real program's instructions for the
// kfunc IDs ids and the stubbed program's, without the stand-ins, for a
// test to compare them.
func RXMetadataInstructions(ids [3]uint32) (real, stubbed asm.Instructions) {
	k := &rxKfuncs{ids: [3]btf.TypeID{btf.TypeID(ids[0]), btf.TypeID(ids[1]), btf.TypeID(ids[2])}}
	return withRXMetadata(instructions(nil, nil, true), false, k.calls()),
		withRXMetadata(instructions(nil, nil, true), false, stubCalls())
}

// KfuncIDsForTest is kfuncIDs on the running kernel's BTF.
func KfuncIDsForTest() ([3]uint32, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return [3]uint32{}, err
	}
	ids, err := kfuncIDs(spec)
	return [3]uint32{uint32(ids[0]), uint32(ids[1]), uint32(ids[2])}, err
}

// KfuncIDsOf is kfuncIDs on spec.
func KfuncIDsOf(spec *btf.Spec) error { _, err := kfuncIDs(spec); return err }

// DeviceRXMetadataForTest is the netdev xdp-rx-metadata-features of
// ifindex, in the calling thread's namespace.
func DeviceRXMetadataForTest(ifindex int) (uint64, error) { return deviceRXMetadata(ifindex) }

// RXMetadataKfuncNames are the kfuncs the program calls, in order.
func RXMetadataKfuncNames() []string {
	var names []string
	for _, k := range rxKfuncList {
		names = append(names, k.name)
	}
	return names
}
