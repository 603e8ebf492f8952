//go:build linux

package afxdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/sys"
	"github.com/xdpkit/xdpkit/internal/xsk"
	"github.com/xdpkit/xdpkit/ring"
	"github.com/xdpkit/xdpkit/umem"
)

// xdpPacketHeadroom is XDP_PACKET_HEADROOM: where the kernel puts a
// received packet's data in its frame, before the UMEM's own headroom.
const xdpPacketHeadroom = 256

// memKernel is a MemoryKernel's state.
type memKernel struct {
	mu     sync.Mutex // one kernel call at a time, and none once closed
	closed bool

	x    *xsk.UMEM
	fill *ring.Completion // the kernel's end of the fill ring
	comp *ring.Fill       // of the completion ring
	rx   *ring.TX         // of the RX ring: it produces descriptors there
	tx   *ring.RX         // of the TX ring: it consumes them there

	dataOff   uint64 // a received packet's offset in its frame
	unaligned bool
	fd        int          // the eventfd the socket's waits sleep on
	waiting   atomic.Int32 // socket waits that may be asleep on fd
	stats     MemoryStats
}

// memBatch is how many TX descriptors Transmitted takes at a time.
const memBatch = 64

// newMemory implements NewMemory.
func newMemory(cfg *Config) (_ *Socket, _ *MemoryKernel, err error) {
	c := cfg.withDefaults()
	opErr := func(op string, err error) error { return &OpError{Op: op, Interface: "memory", Queue: 0, Err: err} }
	if err := c.validate(); err != nil {
		return nil, nil, opErr("open", err)
	}
	switch {
	case c.Steering != nil || c.Redirect != nil:
		err = errors.New("Steering and Redirect: a memory socket has no XDP program")
	case c.SocketFD > 0:
		err = errors.New("SocketFD: a memory socket has no kernel socket")
	case c.MultiBuffer:
		err = errors.New("MultiBuffer: a memory socket delivers single-frame packets")
	case c.BusyPoll != (BusyPoll{}):
		err = errors.New("BusyPoll: a memory socket has no device to poll")
	case c.TXBudget != 0:
		err = errors.New("TXBudget: a memory socket has no kernel TX path")
	case c.Bind == BindZeroCopy:
		err = errors.New("Bind zero-copy: a memory socket is in copy mode")
	}
	if err != nil {
		return nil, nil, opErr("open memory socket", fmt.Errorf("%w: %w", ErrInvalidConfig, err))
	}
	s := &sock{cfg: c, ifname: "memory", fd: -1, needWakeup: true}
	defer func() {
		if err != nil {
			_ = s.teardown()
		}
	}()
	s.umem = c.UMEM
	if s.umem == nil {
		if s.umem, err = umem.NewMemory(c.UMEMOptions); err != nil {
			return nil, nil, opErr("create UMEM", errors.Unwrap(err))
		}
		s.ownUMEM = true
	} else if !s.umem.Memory() {
		return nil, nil, opErr("open memory socket", fmt.Errorf("Config.UMEM is registered with the kernel: a memory socket needs one made by umem.NewMemory: %w", ErrInvalidConfig))
	}
	s.x = xsk.UMEMOf(s.umem)
	s.upool = s.umem.Pool
	if c.Pool != nil {
		if c.Pool.UMEM() != s.umem {
			return nil, nil, opErr("open memory socket", fmt.Errorf("Config.Pool belongs to another UMEM: %w", ErrInvalidConfig))
		}
		s.upool = c.Pool
	}
	s.pool = xsk.PoolOf(s.upool)
	s.area, s.areaShift, s.areaMapped = s.x.AlignedArea()
	k := &memKernel{x: s.x, unaligned: s.x.Config().Unaligned, fd: -1}
	k.dataOff = xdpPacketHeadroom + uint64(s.x.Config().Headroom)
	var kr xsk.KernelRings
	if s.m, kr, err = s.x.JoinMemory(s.pool); err != nil {
		return nil, nil, opErr("open memory socket", err)
	}
	s.pair, k.fill, k.comp = s.m.Pair, kr.Fill, kr.Comp
	s.fill, s.comp = s.pair.Fill, s.pair.Comp
	rxm := xsk.AlignedBytes(int(xsk.MemOffsets.Desc) + int(c.RXRingSize)*16)
	txm := xsk.AlignedBytes(int(xsk.MemOffsets.Desc) + int(c.TXRingSize)*16)
	var errs [4]error
	s.rx, errs[0] = ring.NewRX(rxm, xsk.MemOffsets, c.RXRingSize)
	k.rx, errs[1] = ring.NewTX(rxm, xsk.MemOffsets, c.RXRingSize)
	s.tx, errs[2] = ring.NewTX(txm, xsk.MemOffsets, c.TXRingSize)
	k.tx, errs[3] = ring.NewRX(txm, xsk.MemOffsets, c.TXRingSize)
	if err = errors.Join(errs[:]...); err != nil {
		return nil, nil, opErr("make rings", err)
	}
	if s.fd, err = sys.Eventfd(); err != nil {
		s.fd = -1
		return nil, nil, opErr("eventfd", err)
	}
	k.fd = s.fd
	s.mem = k
	s.pool.Lock()
	s.pool.RefillLocked(s.pair, s.fill.Size())
	s.pool.Unlock()
	s.readyFn, s.txRoomFn = s.memReady, s.txRoom
	s.maxFrags = min(MaxPacketFrames, int(c.TXRingSize))
	s.initTXMetadata()
	sk := &Socket{sock: s}
	runtime.AddCleanup(sk, func(s *sock) { _ = s.close() }, s)
	return sk, &MemoryKernel{k}, nil
}

// memReady is a memory socket's Wait callback: it empties the eventfd
// Deliver signals (fd is a dup of it) before it looks at the RX ring, so
// a delivery after the look signals anew.
func (s *sock) memReady(fd uintptr) bool {
	drainEventfd(int(fd))
	return s.rx.Ready()
}

func drainEventfd(fd int) {
	var b [8]byte
	_, _ = unix.Read(fd, b[:])
}

// memWaits adds d to the waits of a memory socket that may sleep.
func (s *sock) memWaits(d int32) {
	if s.mem != nil {
		s.mem.waiting.Add(d)
	}
}

// stop ends the kernel's work, before Close reclaims the frames.
func (k *memKernel) stop() {
	k.mu.Lock()
	k.closed = true
	k.mu.Unlock()
}

// wake makes the socket's waits look again, if one may be asleep: the
// socket counts itself waiting before it looks at the RX ring, the kernel
// produces before it looks at the count, so one of them sees the other.
func (k *memKernel) wake() {
	if k.waiting.Load() > 0 {
		_ = sys.EventfdSignal(k.fd)
	}
}

// Deliver copies each frame into a frame from the socket's fill ring and
// describes it on the RX ring, as the kernel does a received packet, and
// returns how many it delivered. Frames it could not deliver are counted
// in Stats (and the socket's Stats, as the kernel's counters): no frame
// on the fill ring, no room on the RX ring, empty or longer than a
// frame's room (the frame on the fill ring stays there, as in the
// kernel).
func (k *MemoryKernel) Deliver(frames ...[]byte) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return 0
	}
	done := 0
	for _, f := range frames {
		fi, got := k.fill.Peek(1)
		if got == 0 {
			k.stats.FillEmpty++
			continue
		}
		d := k.desc(k.fill.Addr(fi), len(f))
		room := k.x.Frame(d.Addr)
		if len(f) == 0 || len(f) > len(room) {
			k.fill.Unpeek(1)
			k.stats.TooLong++
			continue
		}
		ri, r := k.rx.Reserve(1)
		if r == 0 {
			k.fill.Unpeek(1)
			k.stats.RXRingFull++
			continue
		}
		copy(room, f)
		k.rx.Set(ri, d)
		k.rx.Submit(1)
		k.fill.Release(1)
		done++
	}
	k.stats.Delivered += uint64(done)
	if done > 0 {
		k.wake()
	}
	return done
}

// DeliverN describes up to n frames from the fill ring on the RX ring as
// received packets of length bytes, without writing them: their bytes are
// whatever the frames hold (Fill writes a packet into every frame). It
// returns how many it delivered. It is the cheapest kernel there is, for
// benchmarks of the socket's user: a batch costs two ring index updates.
func (k *MemoryKernel) DeliverN(n, length int) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed || n <= 0 {
		return 0
	}
	if length <= 0 || uint64(length) > uint64(k.x.Config().FrameSize)-k.dataOff {
		k.stats.TooLong += uint64(n)
		return 0
	}
	fi, got := k.fill.Peek(uint32(n))
	k.stats.FillEmpty += uint64(n) - uint64(got)
	ri, room := k.rx.Reserve(got)
	if room < got {
		k.fill.Unpeek(got - room)
		k.stats.RXRingFull += uint64(got - room)
		got = room
	}
	// Run by run (each ring's got slots are at most two), so that the
	// loop over frames is describe's: a loop over k's fields reloads
	// them for every frame (bench/ceiling counts this side's
	// instructions against C's).
	off := k.dataOff
	if k.unaligned {
		off <<= 48
	}
	fa, fb := k.fill.Addrs(fi, got)
	ra, rb := k.rx.Slots(ri, got)
	for _, dst := range [2][]Desc{ra, rb} {
		for len(dst) > 0 {
			if len(fa) == 0 {
				fa, fb = fb, nil
			}
			n := min(len(dst), len(fa))
			describe(dst[:n], fa[:n], off, uint32(length))
			dst, fa = dst[n:], fa[n:]
		}
	}
	k.fill.Release(got)
	k.rx.Submit(got)
	k.stats.Delivered += uint64(got)
	if got > 0 {
		k.wake()
	}
	return int(got)
}

// Fill writes frames at the data offset of the UMEM's frames, for
// DeliverN: frame i of the UMEM gets frames[i % len(frames)] (cut to the
// frame's room). Call it before the socket's user holds frames (right
// after NewMemory): it writes into every frame, whoever has it.
func (k *MemoryKernel) Fill(frames ...[]byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed || len(frames) == 0 { // once closed, the area may be unmapped
		return
	}
	c := k.x.Config()
	for i := range uint64(c.FrameCount) {
		copy(k.x.Frame(i*uint64(c.FrameSize)+k.dataOff), frames[i%uint64(len(frames))])
	}
}

// Transmitted takes the descriptors on the socket's TX ring, calls fn
// (if not nil) with each one's bytes in order, as the kernel sends them,
// and puts them on the completion ring; it returns how many. Descriptors
// for which the completion ring has no room stay on the TX ring. Like the
// kernel in copy mode it writes a software TX timestamp (CLOCK_TAI) into
// the TX metadata of a descriptor that asks for one; it computes no
// checksums and ignores launch times.
func (k *MemoryKernel) Transmitted(fn func(frame []byte)) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return 0
	}
	done := 0
	for {
		ti, got := k.tx.Peek(memBatch)
		if got == 0 {
			break
		}
		ci, room := k.comp.Reserve(got)
		if room < got {
			k.tx.Unpeek(got - room)
			got = room
		}
		ta, tb := k.tx.Descs(ti, got)
		ca, cb := k.comp.Slots(ci, got)
		for _, dst := range [2][]uint64{ca, cb} { // run by run, as in DeliverN
			for len(dst) > 0 {
				if len(ta) == 0 {
					ta, tb = tb, nil
				}
				n := min(len(dst), len(ta))
				k.complete(dst[:n], ta[:n], fn)
				dst, ta = dst[n:], ta[n:]
			}
		}
		k.tx.Release(got)
		k.comp.Submit(got)
		done += int(got)
		if got < memBatch {
			break
		}
	}
	k.stats.Transmitted += uint64(done)
	return done
}

// Stats returns what the kernel side did.
func (k *MemoryKernel) Stats() MemoryStats {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.stats
}

// timestamp writes the time into the TX metadata of the frame at addr if
// it asks for a TX timestamp, as xsk_destruct_skb does.
func (k *memKernel) timestamp(addr uint64) {
	b := k.x.TXMetadataBytes(addr)
	if b != nil && binary.NativeEndian.Uint64(b[xsk.TXMDFlagsOff:])&xsk.TXMDTimestamp != 0 {
		binary.NativeEndian.PutUint64(b[xsk.TXMDTimestampOff:], sys.ClockTAI())
	}
}

// complete sets dst[i], a completion ring slot, to the address of
// src[i], a descriptor sent, after timestamping it if it asked and
// handing its bytes to fn (if not nil). The addresses go first, in a loop
// of their own (nothing sees them before the caller submits them): in a
// benchmark nothing else is to be done.
func (k *memKernel) complete(dst []uint64, src []Desc, fn func(frame []byte)) {
	src = src[:len(dst)]
	var opts uint32
	for i := range dst {
		dst[i] = src[i].Addr
		opts |= src[i].Options
	}
	if fn == nil && opts&ring.TXMetadata == 0 {
		return
	}
	for i := range src {
		d := &src[i]
		if d.Options&ring.TXMetadata != 0 {
			k.timestamp(d.Addr)
		}
		if fn != nil {
			if f := k.x.Frame(d.Addr); uint32(len(f)) >= d.Len {
				fn(f[:d.Len])
			}
		}
	}
}

// describe sets dst[i] to the RX descriptor of a packet of l bytes in
// the frame taken at fill address src[i], off being the packet's offset
// as an address part (memKernel.desc).
//
//go:noinline because inlined into DeliverN, which calls, its loop counter would be spilled on every iteration
func describe(dst []Desc, src []uint64, off uint64, l uint32) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] = Desc{Addr: src[i] + off, Len: l}
	}
}

// desc is the RX descriptor of a packet of n bytes in the frame taken at
// fill address a.
func (k *memKernel) desc(a uint64, n int) Desc {
	if k.unaligned {
		return Desc{Addr: a + k.dataOff<<48, Len: uint32(n)}
	}
	return Desc{Addr: a + k.dataOff, Len: uint32(n)}
}
