//go:build linux

package afxdp_test

// The selftest cases that run their own XDP program in front of the
// sockets: XDP_PROG_CLEANUP, XDP_DROP_HALF, XDP_SHARED_UMEM,
// XDP_METADATA_COPY(_MULTI_BUFF) and XDP_ADJUST_TAIL_SHRINK.

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/internal/netlink"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/redirect"
	"github.com/xdpkit/xdpkit/umem"
)

// xdp_md field offsets and verdicts.
const (
	mdData         = 0
	mdDataEnd      = 4
	mdDataMeta     = 8
	mdRXQueueIndex = 16
	xdpDrop        = 1
	xdpPassVerdict = 2
)

// xskMap is an XSKMAP of n entries, closed at cleanup.
func xskMap(t *testing.T, n uint32) *ebpf.Map {
	t.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: n})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// attachXDP loads insns as an XDP program (frags-aware if frags) and
// attaches it to the host side of v in mode, through a BPF link closed at
// cleanup.
func attachXDP(t *testing.T, v *testutils.Veth, mode redirect.Mode, frags bool, insns asm.Instructions) {
	t.Helper()
	spec := &ebpf.ProgramSpec{Type: ebpf.XDP, License: "MIT", Instructions: insns}
	if frags {
		spec.Flags = unix.BPF_F_XDP_HAS_FRAGS
	}
	prog, err := ebpf.NewProgram(spec)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	t.Cleanup(func() { _ = prog.Close() })
	flags := link.XDPDriverMode
	if mode == redirect.ModeGeneric {
		flags = link.XDPGenericMode
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: v.HostIndex, Flags: flags})
	if err != nil {
		t.Fatalf("attach in %v mode: %v", mode, err)
	}
	t.Cleanup(func() { _ = l.Close() })
}

// redirectTail ends a program: redirect to xsks[R2], XDP_PASS if empty.
func redirectTail(xsks *ebpf.Map) asm.Instructions {
	return asm.Instructions{
		asm.LoadMapPtr(asm.R1, xsks.FD()),
		asm.Mov.Imm(asm.R3, xdpPassVerdict),
		asm.FnRedirectMap.Call(),
		asm.Return(),
	}
}

// newCustomRun is a selftest run with sockets host sockets on queue 0,
// registered at keys 0, 1, ... of an XSKMAP for the test's own program.
func newCustomRun(t *testing.T, o xskOpts, sockets int) (*xskRun, []*afxdp.Socket, *ebpf.Map) {
	t.Helper()
	x := newXSKRun(t, o)
	// Replace the host side: sockets with no steering, on one pool (they
	// share queue 0, so they share its fill and completion rings).
	if err := x.rx.Close(); err != nil {
		t.Fatal(err)
	}
	if err := x.prog.Close(); err != nil {
		t.Fatal(err)
	}
	var socks []*afxdp.Socket
	for range sockets {
		socks = append(socks, openHost(t, x.v, 0, &afxdp.Config{UMEM: x.rxU, Pool: x.rxU.Pool, RXRingSize: o.rxRing,
			Bind: afxdp.BindCopy, MultiBuffer: o.multiBuffer, Steering: afxdp.NoSteering}))
	}
	x.rx = socks[0]
	xsks := xskMap(t, uint32(sockets))
	for i, s := range socks {
		register(t, xsks, uint32(i), s)
	}
	return x, socks, xsks
}

func register(t *testing.T, m *ebpf.Map, key uint32, s *afxdp.Socket) {
	t.Helper()
	if err := m.Update(key, uint32(s.FD()), ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
}

// XDP_PROG_CLEANUP: two sockets of one UMEM on one queue; the stream goes
// to the first, then, with the XSKMAP entry switched, to the second while
// the first still exists; when the sockets and the program's owner close,
// no program is left on the interface.
func TestXSKProgCleanup(t *testing.T) {
	xskModes(t, func(t *testing.T, mode redirect.Mode) {
		x := newXSKRun(t, xskOpts{mode: mode})
		second := openHost(t, x.v, 0, &afxdp.Config{UMEM: x.rxU, Pool: x.rxU.Pool, Bind: afxdp.BindCopy, Steering: afxdp.NoSteering})
		x.run(stream(xskPktCount, xskMinPkt), nil, false, recvOpts{})
		if err := x.prog.Register(0, second.FD()); err != nil {
			t.Fatal(err)
		}
		first := x.rx
		x.rx = second
		x.received.Store(0)
		x.run(stream(xskPktCount, xskMinPkt), nil, false, recvOpts{})
		x.rx = first
		if err := second.Close(); err != nil {
			t.Fatal(err)
		}
		x.finish()
		if err := x.prog.Close(); err != nil {
			t.Fatal(err)
		}
		if l, err := netlink.LinkByIndex(x.v.HostIndex); err != nil || l.XDP.IsAttached() {
			t.Errorf("after the owner closed: XDP %+v, %v; want no program", l.XDP, err)
		}
	})
}

// XDP_DROP_HALF: the program drops the packets with an odd pkt_nb and
// redirects the others; exactly the even ones arrive, in order.
func TestXSKDropHalf(t *testing.T) {
	xskModes(t, func(t *testing.T, mode redirect.Mode) {
		x, _, xsks := newCustomRun(t, xskOpts{mode: mode}, 1)
		insns := asm.Instructions{
			asm.Mov.Reg(asm.R6, asm.R1),
			asm.LoadMem(asm.R2, asm.R6, mdData, asm.Word),
			asm.LoadMem(asm.R3, asm.R6, mdDataEnd, asm.Word),
			asm.Mov.Reg(asm.R4, asm.R2),
			asm.Add.Imm(asm.R4, xskHdrSize+2),
			asm.JGT.Reg(asm.R4, asm.R3, "redirect"),
			// Byte 17 is the low byte of pkt_nb (big-endian, after the header).
			asm.LoadMem(asm.R5, asm.R2, xskHdrSize+1, asm.Byte),
			asm.And.Imm(asm.R5, 1),
			asm.JEq.Imm(asm.R5, 0, "redirect"),
			asm.Mov.Imm(asm.R0, xdpDrop),
			asm.Return(),
			asm.LoadMem(asm.R2, asm.R6, mdRXQueueIndex, asm.Word).WithSymbol("redirect"),
		}
		attachXDP(t, x.v, mode, false, append(insns, redirectTail(xsks)...))
		var even []xpkt
		for i := 0; i < xskPktCount; i += 2 {
			even = append(even, xpkt{nb: uint32(i), len: xskMinPkt})
		}
		x.run(stream(xskPktCount, xskMinPkt), even, false, recvOpts{})
		x.finish()
	})
}

// XDP_SHARED_UMEM: two sockets on the same queue share a UMEM (and its
// fill and completion rings); the program sends each packet to the socket
// its destination MAC names (last byte / 2), and each socket gets exactly
// its own sequence, in order.
func TestXSKSharedUMEMSameQueue(t *testing.T) {
	xskModes(t, func(t *testing.T, mode redirect.Mode) {
		x, socks, xsks := newCustomRun(t, xskOpts{mode: mode, rxFrames: 2048}, 2)
		insns := asm.Instructions{
			asm.LoadMem(asm.R2, asm.R1, mdData, asm.Word),
			asm.LoadMem(asm.R3, asm.R1, mdDataEnd, asm.Word),
			asm.Mov.Reg(asm.R4, asm.R2),
			asm.Add.Imm(asm.R4, 6),
			asm.JLE.Reg(asm.R4, asm.R3, "mac"),
			asm.Mov.Imm(asm.R0, xdpPassVerdict),
			asm.Return(),
			asm.LoadMem(asm.R2, asm.R2, 5, asm.Byte).WithSymbol("mac"),
			asm.RSh.Imm(asm.R2, 1),
		}
		attachXDP(t, x.v, mode, false, append(insns, redirectTail(xsks)...))
		// Socket i gets pkt_nb i, i+2, ...: destination MAC byte 5 is
		// 2i+1, as the selftest's MACs are.
		dsts := make([][]byte, 2)
		for i := range dsts {
			dsts[i] = append([]byte(nil), x.v.HostMAC...)
			dsts[i][5] = byte(2*i + 1)
		}
		want := make([][]xpkt, 2)
		for nb := range xskPktCount {
			want[nb%2] = append(want[nb%2], xpkt{nb: uint32(nb), len: xskMinPkt})
		}
		x.dst = func(nb uint32) []byte { return dsts[nb%2] }
		errc := x.sendStream(stream(xskPktCount, xskMinPkt), false, nil)
		x.receiveAll(socks, want)
		if err := <-errc; err != nil {
			t.Fatalf("sender: %v", err)
		}
		for _, s := range socks[1:] {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
		x.finish()
	})
}

// receiveGaps receives n packets of want, in order but possibly with some
// left out (the program dropped them), each checked as receive checks it.
func (x *xskRun) receiveGaps(want []xpkt, n int) {
	x.t.Helper()
	descs := make([]unix.XDPDesc, xskDefaultBatch+afxdp.MaxPacketFrames)
	next, got := 0, 0
	deadline := time.Now().Add(xskThreadTmout)
	for got < n {
		if time.Now().After(deadline) {
			x.t.Fatalf("received %d of %d packets in %v", got, n, xskThreadTmout)
		}
		k, err := x.rx.ReceivePackets(descs)
		if err != nil {
			x.t.Fatal(err)
		}
		for pkt := range afxdp.Packets(descs[:k]) {
			nb := binary.BigEndian.Uint32(x.rxU.Bytes(pkt[0].Addr, pkt[0].Len)[xskHdrSize:]) >> 16
			for next < len(want) && want[next].nb < nb {
				next++
			}
			if next == len(want) {
				x.x().Fatalf("packet %d out of order or unexpected", nb)
			}
			x.checkPacket(pkt, want[next])
			next++
			got++
		}
		if err := x.rx.Release(descs[:k]); err != nil {
			x.t.Fatal(err)
		}
		if k == 0 {
			time.Sleep(100 * time.Microsecond)
		}
		if x.t.Failed() {
			x.t.FailNow()
		}
	}
}

func (x *xskRun) x() *testing.T { return x.t }

// receiveAll receives on several sockets at once, socks[i] expecting
// want[i], as receive does for one.
func (x *xskRun) receiveAll(socks []*afxdp.Socket, want [][]xpkt) {
	x.t.Helper()
	descs := make([]unix.XDPDesc, xskDefaultBatch)
	next := make([]int, len(socks))
	deadline := time.Now().Add(xskThreadTmout)
	for done := false; !done; {
		if time.Now().After(deadline) {
			x.t.Fatalf("received %v of %d packets per socket in %v", next, len(want[0]), xskThreadTmout)
		}
		done = true
		for i, s := range socks {
			n, err := s.Receive(descs)
			if err != nil {
				x.t.Fatal(err)
			}
			for _, d := range descs[:n] {
				if next[i] == len(want[i]) {
					x.t.Fatalf("socket %d received more than its %d packets", i, len(want[i]))
				}
				x.checkPacket([]unix.XDPDesc{d}, want[i][next[i]])
				x.received.Store(max(x.received.Load(), int64(want[i][next[i]].nb)+1))
				next[i]++
			}
			if err := s.Release(descs[:n]); err != nil {
				x.t.Fatal(err)
			}
			done = done && next[i] == len(want[i])
		}
		if x.t.Failed() {
			x.t.FailNow()
		}
	}
}

// XDP_METADATA_COPY, XDP_METADATA_COPY_MULTI_BUFF: the program reserves 32
// bytes of metadata in front of the packet (bpf_xdp_adjust_meta) and
// writes a number there — here the packet's pkt_nb, where the selftest
// writes its own count of packets, the same in an in-order stream; the
// socket gets it in front of the data in the UMEM.
func TestXSKMetadataCopy(t *testing.T) {
	xskModes(t, func(t *testing.T, mode redirect.Mode) {
		for _, mb := range []bool{false, true} {
			name := map[bool]string{false: "XDP_METADATA_COPY", true: "XDP_METADATA_COPY_MULTI_BUFF"}[mb]
			t.Run(name, func(t *testing.T) {
				o := xskOpts{mode: mode, multiBuffer: mb}
				if mb {
					o.mtu = xskJumboMTU
				}
				x, _, xsks := newCustomRun(t, o, 1)
				insns := asm.Instructions{
					asm.Mov.Reg(asm.R6, asm.R1),
					asm.Mov.Imm(asm.R2, -32),
					asm.FnXdpAdjustMeta.Call(),
					asm.JNE.Imm(asm.R0, 0, "drop"),
					asm.LoadMem(asm.R2, asm.R6, mdDataMeta, asm.Word),
					asm.LoadMem(asm.R3, asm.R6, mdData, asm.Word),
					asm.LoadMem(asm.R4, asm.R6, mdDataEnd, asm.Word),
					asm.Mov.Reg(asm.R5, asm.R2),
					asm.Add.Imm(asm.R5, 32),
					asm.JGT.Reg(asm.R5, asm.R3, "drop"),
					asm.Mov.Reg(asm.R5, asm.R3),
					asm.Add.Imm(asm.R5, xskHdrSize+2),
					asm.JGT.Reg(asm.R5, asm.R4, "drop"),
					asm.LoadMem(asm.R7, asm.R3, xskHdrSize, asm.Half),
					asm.HostTo(asm.BE, asm.R7, asm.Half),
					asm.StoreMem(asm.R2, 0, asm.R7, asm.DWord),
					asm.LoadMem(asm.R2, asm.R6, mdRXQueueIndex, asm.Word),
				}
				insns = append(insns, redirectTail(xsks)...)
				insns = append(insns, asm.Mov.Imm(asm.R0, xdpDrop).WithSymbol("drop"), asm.Return())
				attachXDP(t, x.v, mode, mb, insns)
				x.checkMeta = true
				x.run(stream(xskPktCount, xskMinPkt), nil, false, recvOpts{})
				x.finish()
			})
		}
	})
}

// adjustTailProgram changes every packet's length by delta
// (bpf_xdp_adjust_tail) and redirects it. Growing, it writes the new last
// word as the stream has it, (pkt_nb << 16) | word index, with
// bpf_xdp_store_bytes, which works on multi-buffer packets too.
func adjustTailProgram(xsks, res *ebpf.Map, delta int32) asm.Instructions {
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		// pkt_nb, from the first fragment's bytes 16-17, before the
		// helper invalidates the packet pointers.
		asm.LoadMem(asm.R2, asm.R6, mdData, asm.Word),
		asm.LoadMem(asm.R3, asm.R6, mdDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, xskHdrSize+2),
		asm.JGT.Reg(asm.R4, asm.R3, "drop"),
		asm.LoadMem(asm.R7, asm.R2, xskHdrSize, asm.Half),
		asm.HostTo(asm.BE, asm.R7, asm.Half),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.FnXdpGetBuffLen.Call(), // the whole packet, all fragments
		asm.Mov.Reg(asm.R8, asm.R0),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Imm(asm.R2, delta),
		asm.FnXdpAdjustTail.Call(),
		asm.JNE.Imm(asm.R0, 0, "fail"),
	}
	if delta > 0 {
		insns = append(insns,
			// word = (pkt_nb << 16) | ((newlen - 16) / 4 - 1), big-endian,
			// at newlen - 4.
			asm.Add.Imm(asm.R8, delta),
			asm.Mov.Reg(asm.R9, asm.R8),
			asm.Sub.Imm(asm.R9, xskHdrSize),
			asm.RSh.Imm(asm.R9, 2),
			asm.Sub.Imm(asm.R9, 1),
			asm.And.Imm(asm.R9, 0xffff),
			asm.LSh.Imm(asm.R7, 16),
			asm.Or.Reg(asm.R7, asm.R9),
			asm.HostTo(asm.BE, asm.R7, asm.Word),
			asm.StoreMem(asm.RFP, -8, asm.R7, asm.Word),
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.Mov.Reg(asm.R2, asm.R8),
			asm.Sub.Imm(asm.R2, 4),
			asm.Mov.Reg(asm.R3, asm.RFP),
			asm.Add.Imm(asm.R3, -8),
			asm.Mov.Imm(asm.R4, 4),
			asm.FnXdpStoreBytes.Call(),
			asm.JNE.Imm(asm.R0, 0, "fail"),
		)
	}
	insns = append(insns, asm.LoadMem(asm.R2, asm.R6, mdRXQueueIndex, asm.Word))
	insns = append(insns, redirectTail(xsks)...)
	// A helper failed (R0 holds its error): count it in res[0], keep the
	// error in res[1], as the selftest's program keeps it for
	// is_adjust_tail_supported; then drop.
	insns = append(insns,
		asm.Mov.Reg(asm.R9, asm.R0).WithSymbol("fail"),
		asm.StoreMem(asm.RFP, -16, asm.R9, asm.DWord),
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, res.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "drop"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.LoadMem(asm.R9, asm.RFP, -16, asm.DWord),
		asm.StoreMem(asm.R0, 8, asm.R9, asm.DWord),
	)
	return append(insns, asm.Mov.Imm(asm.R0, xdpDrop).WithSymbol("drop"), asm.Return())
}

// XDP_ADJUST_TAIL_SHRINK, XDP_ADJUST_TAIL_SHRINK_MULTI_BUFF,
// XDP_ADJUST_TAIL_GROW, XDP_ADJUST_TAIL_GROW_MULTI_BUFF: the program cuts
// or grows the tail of every packet; the new length arrives, with the
// stream's words in it. (The multi-buffer growth is the newest selftest's
// 448 bytes, into the last fragment's tailroom.)
func TestXSKAdjustTail(t *testing.T) {
	xskModes(t, func(t *testing.T, mode redirect.Mode) {
		for _, tc := range []struct {
			name      string
			mb        bool
			sent, got int
		}{
			{"XDP_ADJUST_TAIL_SHRINK", false, 128, 124},
			{"XDP_ADJUST_TAIL_SHRINK_MULTI_BUFF", true, 6144, 2048},
			{"XDP_ADJUST_TAIL_GROW", false, 128, 132},
			{"XDP_ADJUST_TAIL_GROW_MULTI_BUFF", true, 6144, 6144 + 448},
		} {
			t.Run(tc.name, func(t *testing.T) {
				o := xskOpts{mode: mode, multiBuffer: tc.mb}
				if tc.mb {
					o.mtu = xskJumboMTU
				}
				x, _, xsks := newCustomRun(t, o, 1)
				res, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 16, MaxEntries: 1})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = res.Close() })
				attachXDP(t, x.v, mode, tc.mb, adjustTailProgram(xsks, res, int32(tc.got-tc.sent)))
				if err := x.sendStreamSync(stream(64, tc.sent), false, nil); err != nil {
					t.Fatal(err)
				}
				time.Sleep(50 * time.Millisecond)
				var r [2]int64 // failures, last error
				if err := res.Lookup(uint32(0), &r); err != nil {
					t.Fatal(err)
				}
				if r[0] == 64 {
					// As the selftest's is_adjust_tail_supported turns this into a skip.
					x.finish()
					t.Skipf("bpf_xdp_adjust_tail(%+d) failed on every packet on veth in %v mode (error %d: %v)",
						tc.got-tc.sent, mode, r[1], unix.Errno(-r[1]))
				}
				if r[0] > 0 {
					t.Logf("bpf_xdp_adjust_tail failed on %d of 64 packets (error %d); they were dropped", r[0], r[1])
				}
				x.receiveGaps(stream(64, tc.got), 64-int(r[0]))
				x.finish()
			})
		}
	})
}

var (
	_ = errors.New
	_ = umem.ErrClosed
)
