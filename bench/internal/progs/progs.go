// Package progs holds the harness's tiny XDP programs, assembled in Go
// (no clang): the generator's XDP_TX program for BPF_PROG_RUN live frames,
// its multi-flow variant, the sink that counts (drops) reflected frames but
// passes latency probes to the stack, and the kernel-only anchors (XDP_DROP,
// MAC swap + XDP_TX).
package progs

import (
	"math/bits"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// XDP actions.
const (
	XDPAborted = 0
	XDPDrop    = 1
	XDPPass    = 2
	XDPTX      = 3
)

// FlowBasePort is the first UDP source port of the multi-flow generator.
const FlowBasePort = 1024

func spec(name string, insns asm.Instructions) *ebpf.ProgramSpec {
	return &ebpf.ProgramSpec{Name: name, Type: ebpf.XDP, License: "GPL", Instructions: insns}
}

func ret(action int32) asm.Instructions {
	return asm.Instructions{asm.Mov.Imm(asm.R0, action), asm.Return()}
}

// GenTX returns XDP_TX: in BPF_PROG_RUN live-frames mode every run becomes
// an ndo_xdp_xmit out of the ingress ifindex (for a veth, into its peer).
func GenTX() (*ebpf.Program, error) { return ebpf.NewProgram(spec("xb_gen_tx", ret(XDPTX))) }

// Drop returns XDP_DROP for every frame (the kernel rx-drop ceiling).
func Drop() (*ebpf.Program, error) { return ebpf.NewProgram(spec("xb_drop", ret(XDPDrop))) }

// MACSwap swaps the Ethernet addresses and returns XDP_TX (the kernel
// reflect ceiling).
func MACSwap() (*ebpf.Program, error) {
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word), // data
		asm.LoadMem(asm.R3, asm.R1, 4, asm.Word), // data_end
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 14),
		asm.JGT.Reg(asm.R4, asm.R3, "drop"),
		asm.LoadMem(asm.R4, asm.R2, 0, asm.Word),
		asm.LoadMem(asm.R5, asm.R2, 4, asm.Half),
		asm.LoadMem(asm.R0, asm.R2, 6, asm.Word),
		asm.LoadMem(asm.R1, asm.R2, 10, asm.Half),
		asm.StoreMem(asm.R2, 0, asm.R0, asm.Word),
		asm.StoreMem(asm.R2, 4, asm.R1, asm.Half),
		asm.StoreMem(asm.R2, 6, asm.R4, asm.Word),
		asm.StoreMem(asm.R2, 10, asm.R5, asm.Half),
		asm.Mov.Imm(asm.R0, XDPTX),
		asm.Return(),
		asm.Mov.Imm(asm.R0, XDPDrop).WithSymbol("drop"),
		asm.Return(),
	}
	return ebpf.NewProgram(spec("xb_macswap", insns))
}

// le16 is how a big-endian 16-bit field reads on this (little-endian) host.
func le16(v uint16) int32 { return int32(bits.ReverseBytes16(v)) }

// Sink drops every frame (veth counts it in rx_queue_N_xdp_packets) except
// IPv4/UDP frames to probePort, which it passes to the stack for the
// latency probe's AF_PACKET socket.
func Sink(probePort uint16) (*ebpf.Program, error) {
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word),
		asm.LoadMem(asm.R3, asm.R1, 4, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 42),
		asm.JGT.Reg(asm.R4, asm.R3, "drop"),
		asm.LoadMem(asm.R4, asm.R2, 12, asm.Half),
		asm.JNE.Imm(asm.R4, le16(0x0800), "drop"),
		asm.LoadMem(asm.R4, asm.R2, 23, asm.Byte),
		asm.JNE.Imm(asm.R4, 17, "drop"),
		asm.LoadMem(asm.R4, asm.R2, 36, asm.Half),
		asm.JNE.Imm(asm.R4, le16(probePort), "drop"),
		asm.Mov.Imm(asm.R0, XDPPass),
		asm.Return(),
		asm.Mov.Imm(asm.R0, XDPDrop).WithSymbol("drop"),
		asm.Return(),
	}
	return ebpf.NewProgram(spec("xb_sink", insns))
}

// GenFlows is GenTX that first rewrites the UDP source port to
// FlowBasePort + (n mod flows), n a per-CPU frame counter, and updates the
// UDP checksum incrementally (RFC 1624), so the frames spread over flows
// 5-tuples. flows must be a power of two. The returned map is the counter.
func GenFlows(flows int) (*ebpf.Program, *ebpf.Map, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "xb_flowctr", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		return nil, nil, err
	}
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R7, asm.R6, 0, asm.Word), // data
		asm.LoadMem(asm.R8, asm.R6, 4, asm.Word), // data_end
		asm.Mov.Reg(asm.R9, asm.R7),
		asm.Add.Imm(asm.R9, 42),
		asm.JGT.Reg(asm.R9, asm.R8, "tx"),
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "tx"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.And.Imm(asm.R1, int32(flows-1)),
		asm.Add.Imm(asm.R1, FlowBasePort),
		asm.HostTo(asm.BE, asm.R1, asm.Half),       // new port, as stored
		asm.LoadMem(asm.R2, asm.R7, 34, asm.Half),  // old port
		asm.LoadMem(asm.R3, asm.R7, 40, asm.Half),  // UDP checksum
		asm.StoreMem(asm.R7, 34, asm.R1, asm.Half), // write new port
		asm.JEq.Imm(asm.R3, 0, "tx"),               // no checksum: nothing to update
		asm.Xor.Imm(asm.R3, 0xffff),
		asm.Xor.Imm(asm.R2, 0xffff),
		asm.Add.Reg(asm.R3, asm.R2),
		asm.Add.Reg(asm.R3, asm.R1),
		asm.Mov.Reg(asm.R4, asm.R3),
		asm.RSh.Imm(asm.R4, 16),
		asm.And.Imm(asm.R3, 0xffff),
		asm.Add.Reg(asm.R3, asm.R4),
		asm.Mov.Reg(asm.R4, asm.R3),
		asm.RSh.Imm(asm.R4, 16),
		asm.And.Imm(asm.R3, 0xffff),
		asm.Add.Reg(asm.R3, asm.R4),
		asm.Xor.Imm(asm.R3, 0xffff),
		asm.JNE.Imm(asm.R3, 0, "store"),
		asm.Mov.Imm(asm.R3, 0xffff),
		asm.StoreMem(asm.R7, 40, asm.R3, asm.Half).WithSymbol("store"),
		asm.Mov.Imm(asm.R0, XDPTX).WithSymbol("tx"),
		asm.Return(),
	}
	p, err := ebpf.NewProgram(spec("xb_gen_flows", insns))
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	return p, m, nil
}
