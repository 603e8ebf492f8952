//go:build linux

package xsk

import (
	"fmt"

	"github.com/xdpkit/xdpkit/ring"
)

// Pool is a set of a UMEM's frames with its own free list, counters and
// lock. Methods named ...Locked need p's mutex held (Lock/Unlock); the
// others take it themselves.
type Pool struct {
	mu poolMutex
	u  *UMEM
	id uint8 // index in UMEM.pools

	free  []uint64 // frame start addresses, used as a stack; capacity = total
	total int
	fill,
	app,
	tx int

	pairs []*Pair // ring pairs refilled from this pool; a frame's meta.pair indexes it

	umemClosed bool // the UMEM was closed: nothing more is allocated
	unmapCheck bool // app reached 0 with the UMEM closed: Unlock tries to unmap it

	violation error // the first ownership error seen
	nViol     int
}

// Reason says why a descriptor was refused.
type Reason uint8

// Reasons a descriptor is refused; OK means it was not.
const (
	OK           Reason = iota
	ZeroLength          // Len is 0
	OutsideUMEM         // Addr is past the UMEM
	CrossesFrame        // Addr+Len runs past the end of its frame
	BadOptions          // Options bits the socket does not allow
	NotHeld             // the frame is not held by the application in this pool
	// NoMetadataRoom: the UMEM has TX metadata and the descriptor's data
	// starts less than TXMetadataLen bytes into its frame.
	NoMetadataRoom
	// BadMetadata: XDP_TX_METADATA with metadata the kernel refuses
	// (unknown flags, a checksum past the packet), or on a descriptor
	// that is not its packet's first.
	BadMetadata
)

// UMEM returns the UMEM the pool's frames belong to.
func (p *Pool) UMEM() *UMEM { return p.u }

// Lock takes the pool's mutex.
func (p *Pool) Lock() { p.mu.Lock() }

// Unlock releases the pool's mutex, and unmaps a closed UMEM whose last
// held frame just came back.
func (p *Pool) Unlock() {
	check := p.unmapCheck
	p.unmapCheck = false
	p.mu.Unlock()
	if check {
		_ = p.u.tryUnmap()
	}
}

// appDone records that n frames left the application.
func (p *Pool) appDone(n int) {
	p.app -= n
	if p.app == 0 && p.umemClosed {
		p.unmapCheck = true
	}
}

// Counts returns how many of the pool's frames are in each place.
func (p *Pool) Counts() Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts()
}

func (p *Pool) counts() Counts {
	return Counts{Total: p.total, Free: len(p.free), Fill: p.fill, App: p.app, TX: p.tx}
}

// FreeFrames returns how many frames are on the free list.
func (p *Pool) FreeFrames() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.free)
}

// FreeFramesLocked is FreeFrames with the mutex held.
func (p *Pool) FreeFramesLocked() int { return len(p.free) }

// Alloc takes a free frame for the application (Free → App).
func (p *Pool) Alloc() (addr uint64, ok bool) {
	p.mu.Lock()
	addr, ok = p.AllocLocked()
	p.mu.Unlock()
	return addr, ok
}

// AllocLocked is Alloc with the mutex held.
func (p *Pool) AllocLocked() (addr uint64, ok bool) {
	n := len(p.free)
	if n == 0 || p.umemClosed {
		return 0, false
	}
	addr = p.free[n-1]
	p.free = p.free[:n-1]
	i, _ := p.u.index(addr)
	p.u.meta[i].state = StateApp
	p.app++
	return addr, true
}

// AllocInto takes up to len(addrs) free frames (Free → App) and returns
// how many.
func (p *Pool) AllocInto(addrs []uint64) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := min(len(addrs), len(p.free))
	if p.umemClosed {
		n = 0
	}
	top := len(p.free)
	taken := p.free[top-n : top]
	if u := p.u; u.fastIndex() {
		meta, shift := u.meta, u.shift
		for k := range taken {
			a := taken[len(taken)-1-k] // the top of the stack first, as Alloc takes them
			meta[a>>shift].state = StateApp
			addrs[k] = a
		}
	} else {
		for k := range taken {
			a := taken[len(taken)-1-k]
			i, _ := u.index(a)
			u.meta[i].state = StateApp
			addrs[k] = a
		}
	}
	p.free = p.free[:top-n]
	p.app += n
	return n
}

// TakeFrame takes the free frame that addr points into for the
// application (Free → App), wherever it is on the free list; ok is false
// if it is not free in this pool. It is for callers that place packets in
// chosen frames, such as tests reproducing the kernel selftests' layouts;
// it costs a scan of the free list.
func (p *Pool) TakeFrame(addr uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	i, ok := p.u.index(addr)
	if !ok || p.u.meta[i].pool != p.id || p.u.meta[i].state != StateFree || p.umemClosed {
		return false
	}
	start := p.u.frameAddr(i)
	for k, a := range p.free {
		if a == start {
			p.free[k] = p.free[len(p.free)-1]
			p.free = p.free[:len(p.free)-1]
			p.u.meta[i].state = StateApp
			p.app++
			return true
		}
	}
	return false
}

// Free gives a frame the application holds back to the free list
// (App → Free). A frame not held by the application in this pool is
// refused with an error wrapping ErrFrameState.
func (p *Pool) Free(addr uint64) error {
	p.mu.Lock()
	defer p.Unlock()
	if r := p.freeLocked(addr); r != OK {
		return p.refused(addr, StateApp, r)
	}
	p.appDone(1)
	return nil
}

// freeLocked moves one App frame to the free list, without counting it.
func (p *Pool) freeLocked(addr uint64) Reason {
	i, ok := p.u.index(addr)
	if !ok {
		return OutsideUMEM
	}
	m := &p.u.meta[i]
	if m.pool != p.id || m.state != StateApp {
		return NotHeld
	}
	m.state = StateFree
	p.free = append(p.free, p.u.frameAddr(i)) // never grows: capacity is total
	return OK
}

// ReleaseLocked frees the frames of descs (App → Free). It skips, and
// records as ownership errors, descriptors of frames the application does
// not hold in this pool, and returns how many of those there were.
func (p *Pool) ReleaseLocked(descs []ring.Desc) (bad int) {
	u := p.u
	if !u.fastIndex() {
		for i := range descs {
			if r := p.freeLocked(descs[i].Addr); r != OK {
				_ = p.refused(descs[i].Addr, StateApp, r)
				bad++
			}
		}
		p.appDone(len(descs) - bad)
		return bad
	}
	return p.releaseAligned(nil, descs)
}

// RecycleLocked is ReleaseLocked for a socket that receives on pr: the
// frames go straight back onto pr's fill ring (App → Fill), as many as it
// has room for, the rest to the free list (App → Free), with the same
// checks. It saves the free list's push and pop and a second pass over
// the frames' bookkeeping: what C programs do when they hand received
// frames back to the fill ring. Descriptors of frames the application
// does not hold are skipped and recorded; it returns how many.
func (p *Pool) RecycleLocked(pr *Pair, descs []ring.Desc) (bad int) {
	u := p.u
	if !u.fastIndex() || p.umemClosed || pr == nil {
		return p.ReleaseLocked(descs)
	}
	return p.releaseAligned(pr, descs)
}

// releaseAligned is ReleaseLocked's and RecycleLocked's work for aligned
// frames: onto pr's fill ring while it has room (none without pr), the
// rest onto the free list. Each runs in a tight pass (releaseRun, then
// markFreed), up to the first descriptor it must refuse; from there on,
// releaseChecked takes the rest one at a time.
func (p *Pool) releaseAligned(pr *Pair, descs []ring.Desc) (bad int) {
	var idx, room uint32
	var l uint16
	if pr != nil {
		idx, room = pr.Fill.Reserve(uint32(len(descs)))
		l = pr.local
	}
	u := p.u
	mask := ^(u.frameSize - 1)
	n := 0 // descriptors taken
	if room > 0 {
		want := frameMeta{state: StateApp, pool: p.id}.head()
		onFill := frameMeta{state: StateFill, pool: p.id, pair: l}.native()
		a, b := pr.Fill.Slots(idx, room)
		n = releaseRun(u.meta, descs, a, u.shift, mask, want, onFill)
		if n == len(a) && len(b) > 0 {
			n += releaseRun(u.meta, descs[n:], b, u.shift, mask, want, onFill)
		}
	}
	k := uint32(n) // on the ring
	if n == int(room) && n < len(descs) {
		m := p.markFreed(descs[n:])
		free := p.free
		for _, d := range descs[n : n+m] {
			free = append(free, d.Addr&mask) // never grows: capacity is total
		}
		p.free = free
		n += m
	}
	if n < len(descs) {
		var more uint32
		more, bad = p.releaseChecked(pr, descs[n:], idx+k, room-k, l)
		k += more
	}
	if pr != nil {
		pr.Fill.Cancel(room - k)
		if k > 0 {
			pr.Fill.Submit(k)
			p.fill += int(k)
			pr.onFill += int(k)
		}
	}
	p.appDone(len(descs) - bad)
	return bad
}

// releaseRun is releaseAligned's common case, on aligned frames of
// 1<<shift bytes: it puts the frames of descs whose head is want (the
// application's) into slots, fill ring entries (their addresses and
// mask), and makes their meta onFill, up to the first frame that is not
// or the end of slots. It returns how many it put.
//
//go:noinline because inlined into its caller, which calls, its values would be spilled on every iteration
func releaseRun(meta []frameMeta, descs []ring.Desc, slots []uint64, shift uint, mask uint64, want uint16, onFill uint32) int {
	shift &= 63
	descs = descs[:min(len(descs), len(slots))]
	for k, d := range descs {
		a := d.Addr
		j := a >> shift
		if j >= uint64(len(meta)) || meta[j].head() != want {
			return k
		}
		meta[j].setNative(onFill)
		slots[k] = a & mask
	}
	return len(descs)
}

// markFreed moves the frames of descs from App to Free until the first
// one the application does not hold; it returns how many it took.
func (p *Pool) markFreed(descs []ring.Desc) int {
	meta, shift := p.u.meta, p.u.shift&63
	want := frameMeta{state: StateApp, pool: p.id}.head()
	for i := range descs {
		j := descs[i].Addr >> shift
		if j >= uint64(len(meta)) || meta[j].head() != want {
			return i
		}
		meta[j].state = StateFree
	}
	return len(descs)
}

// releaseChecked is releaseAligned's slow path, from the first descriptor
// it refuses: one at a time, onto the fill ring's room reserved from idx
// and then the free list, refusing (and recording) what the application
// does not hold. It returns how many went onto the ring and how many it
// refused.
func (p *Pool) releaseChecked(pr *Pair, descs []ring.Desc, idx, room uint32, l uint16) (k uint32, bad int) {
	u := p.u
	for _, d := range descs {
		i, ok := u.index(d.Addr)
		if !ok {
			_ = p.refused(d.Addr, StateApp, OutsideUMEM)
			bad++
			continue
		}
		m := &u.meta[i]
		if m.state != StateApp || m.pool != p.id {
			_ = p.refused(d.Addr, StateApp, NotHeld)
			bad++
			continue
		}
		if k < room {
			m.state, m.pair = StateFill, l
			pr.Fill.Set(idx+k, u.frameAddr(i))
			k++
			continue
		}
		m.state = StateFree
		p.free = append(p.free, u.frameAddr(i))
	}
	return k, bad
}

// RefillLocked moves up to max free frames onto pr's fill ring
// (Free → Fill) and returns how many.
func (p *Pool) RefillLocked(pr *Pair, max uint32) uint32 {
	n := min(max, uint32(len(p.free)))
	if n == 0 {
		return 0
	}
	idx, got := pr.Fill.Reserve(n)
	if got == 0 {
		return 0
	}
	u, top, l := p.u, len(p.free), pr.local
	taken := p.free[top-int(got) : top]
	if u.fastIndex() {
		meta, shift := u.meta, u.shift
		for k := range taken {
			a := taken[len(taken)-1-k] // from the top of the stack, as Alloc takes them
			m := &meta[a>>shift]
			m.state, m.pair = StateFill, l
			pr.Fill.Set(idx+uint32(k), a)
		}
	} else {
		for k := range taken {
			a := taken[len(taken)-1-k]
			i, _ := u.index(a)
			m := &u.meta[i]
			m.state, m.pair = StateFill, l
			pr.Fill.Set(idx+uint32(k), a)
		}
	}
	p.free = p.free[:top-int(got)]
	p.fill += int(got)
	pr.onFill += int(got)
	pr.Fill.Submit(got)
	return got
}

// ReceiveLocked copies the descriptors peeked off an RX ring of a socket
// on pr, as the ring's two runs a and b (ring.RX.Descs), into dst and
// records that their frames are the application's (Fill → App): the
// copy and the bookkeeping in one pass over the descriptors. It
// returns how many it kept (in order, at the front of dst, which must
// hold len(a)+len(b)) and their bytes. dst may be a itself (b empty): the
// descriptors kept move only towards the front.
func (p *Pool) ReceiveLocked(pr *Pair, a, b, dst []ring.Desc) (k int, bytes uint64) {
	if !p.u.fastIndex() {
		n := copy(dst, a) // a may be dst itself (ReceivedLocked)
		n += copy(dst[n:], b)
		k = p.receivedChecked(dst[:n])
		for i := range dst[:k] {
			bytes += uint64(dst[i].Len)
		}
	} else {
		var bad int
		var badAddr uint64
		dst = dst[:len(a)+len(b)]
		k, bytes, bad, badAddr = p.receiveRun(a, dst, 0)
		if len(b) > 0 {
			k2, bytes2, bad2, badAddr2 := p.receiveRun(b, dst, k)
			if bad == 0 {
				badAddr = badAddr2
			}
			k, bytes, bad = k2, bytes+bytes2, bad+bad2
		}
		if bad > 0 {
			p.refusedN(badAddr, StateFill, NotHeld, bad)
		}
	}
	p.fill -= k
	p.app += k
	if pr != nil { // the kernel takes a socket's frames from its own pair's fill ring
		pr.onFill = max(pr.onFill-k, 0)
	}
	return k, bytes
}

// receiveRun is ReceiveLocked's work on one run of aligned frames, to
// dst[k:]: a tight loop marks the frames the application's up to the
// first one it must refuse, the good prefix is copied at once, and the
// rest (never, unless the ring was written by something other than the
// kernel) goes one at a time.
func (p *Pool) receiveRun(run, dst []ring.Desc, k int) (int, uint64, int, uint64) {
	good, bytes := p.markReceived(run)
	k += copy(dst[k:], run[:good])
	meta, shift := p.u.meta, p.u.shift&63
	want := frameMeta{state: StateFill, pool: p.id}.head()
	var badAddr uint64
	bad := 0
	for _, d := range run[good:] {
		j := d.Addr >> shift
		if j < uint64(len(meta)) && meta[j].head() == want {
			meta[j].state = StateApp
			dst[k] = d
			bytes += uint64(d.Len)
			k++
			continue
		}
		if bad == 0 {
			badAddr = d.Addr
		}
		bad++
	}
	return k, bytes, bad, badAddr
}

// DiscardLocked puts the frames of a and b, descriptors read off the RX
// ring of a socket on pr (a then b, the ring's two runs), straight back
// on pr's fill ring without handing them to the application: a
// ReceiveLocked and a RecycleLocked in one pass, for a consumer that drops
// what it receives unread. The checks are ReceiveLocked's (a frame that
// was not on a fill ring of this pool is refused and recorded, and so is
// the second descriptor of one frame) and the ring is RecycleLocked's
// (frames it has no room for go to the free list). It returns how many
// frames it took and their bytes. scratch must hold len(a)+len(b)
// descriptors; only a ring written by something other than the kernel,
// unaligned frames or a closed UMEM use it.
func (p *Pool) DiscardLocked(pr *Pair, a, b, scratch []ring.Desc) (k int, bytes uint64) {
	if p.u.fastIndex() && !p.umemClosed && pr != nil {
		// The kernel's case: every frame was on a fill ring of this pool.
		// The frames are marked the application's, as a receive does (so
		// that a descriptor repeated in the batch is refused), and
		// released from the ring's own descriptors: no copy.
		ga, ba := p.markReceived(a)
		gb, bb := 0, uint64(0)
		if ga == len(a) {
			gb, bb = p.markReceived(b)
		}
		if ga == len(a) && gb == len(b) {
			k, bytes = len(a)+len(b), ba+bb
			p.fill -= k
			p.app += k
			pr.onFill = max(pr.onFill-k, 0)
			_ = p.releaseAligned(pr, a) // all held: none is refused
			_ = p.releaseAligned(pr, b)
			return k, bytes
		}
		// Something else wrote the ring: the marks undone, the general path.
		p.unmarkReceived(a[:ga])
		p.unmarkReceived(b[:gb])
	}
	k, bytes = p.ReceiveLocked(pr, a, b, scratch)
	_ = p.RecycleLocked(pr, scratch[:k]) // the application's since the line before: none is refused
	return k, bytes
}

// unmarkReceived undoes markReceived on the frames it marked (App →
// Fill: they were on a fill ring of this pool, and their pair is as it was).
func (p *Pool) unmarkReceived(run []ring.Desc) {
	meta, shift := p.u.meta, p.u.shift&63
	for _, d := range run {
		meta[d.Addr>>shift].state = StateFill
	}
}

// markReceived is receiveRun's tight loop without the copy: it marks the
// frames of run the application's (Fill → App) up to the first one it
// must refuse, and returns how many it marked and their bytes.
func (p *Pool) markReceived(run []ring.Desc) (int, uint64) {
	meta, shift := p.u.meta, p.u.shift&63
	want := frameMeta{state: StateFill, pool: p.id}.head()
	var bytes uint64
	for i, d := range run {
		j := d.Addr >> shift
		if j >= uint64(len(meta)) || meta[j].head() != want {
			return i, bytes
		}
		meta[j].state = StateApp
		bytes += uint64(d.Len)
	}
	return len(run), bytes
}

// ReceivedLocked records that the frames of descs, read off the RX ring
// of a socket on pr, are the application's (Fill → App). Descriptors of
// frames that were not on a fill ring of this pool (which the kernel never
// produces) are removed from descs and recorded; it returns how many
// remain, in order. It is ReceiveLocked in place.
func (p *Pool) ReceivedLocked(pr *Pair, descs []ring.Desc) int {
	k, _ := p.ReceiveLocked(pr, descs, nil, descs)
	return k
}

// receivedChecked is ReceiveLocked's work for unaligned frames, on descs
// in place: it keeps, in order, the descriptors of frames on a fill ring
// of this pool, marks those the application's and records the others.
func (p *Pool) receivedChecked(descs []ring.Desc) int {
	u := p.u
	k := 0
	for _, d := range descs {
		i, ok := u.index(d.Addr)
		if !ok || u.meta[i].pool != p.id || u.meta[i].state != StateFill {
			_ = p.refused(d.Addr, StateFill, NotHeld)
			continue
		}
		u.meta[i].state = StateApp
		descs[k] = d
		k++
	}
	return k
}

// ReclaimLocked returns frames that a ring pair will never give back
// (descriptors drained from the RX ring of a socket being closed) to the
// free list (Fill → Free).
func (p *Pool) ReclaimLocked(descs []ring.Desc) {
	for _, d := range descs {
		i, ok := p.u.index(d.Addr)
		if !ok || p.u.meta[i].pool != p.id || p.u.meta[i].state != StateFill {
			_ = p.refused(d.Addr, StateFill, NotHeld)
			continue
		}
		p.u.meta[i].state = StateFree
		p.free = append(p.free, p.u.frameAddr(i))
		p.fill--
	}
}

// ValidTX checks one descriptor to transmit against the UMEM's geometry:
// not empty, inside the UMEM, not past its frame's end. (Options are the
// socket's business.)
func (u *UMEM) ValidTX(d *ring.Desc) Reason {
	if d.Len == 0 {
		return ZeroLength
	}
	a := u.DataAddr(d.Addr)
	if a >= u.size {
		return OutsideUMEM
	}
	if a-u.FrameStart(a)+uint64(d.Len) > u.frameSize {
		return CrossesFrame
	}
	return OK
}

// StageTXLocked checks the descriptors to be put on pr's TX ring, in
// order, and marks the frames of the valid ones TX. It stops at the first
// invalid one and returns how many it marked, their bytes (the sum of
// their Len) and, if it stopped early, why. allowed are the Options bits
// the socket accepts. The caller then commits the ones it puts on the
// ring (CommitTXLocked) and unstages the rest (UnstageTXLocked).
//
// On a UMEM with TX metadata every descriptor must leave room for it in
// front of its data, and one with XDP_TX_METADATA must carry metadata the
// kernel takes (see stageTXMetadata).
func (p *Pool) StageTXLocked(pr *Pair, descs []ring.Desc, allowed uint32) (k int, bytes uint64, why Reason) {
	u := p.u
	if u.txmdLen != 0 || !u.fastIndex() {
		k, why = p.stageTXChecked(pr, descs, allowed)
		for i := range descs[:k] {
			bytes += uint64(descs[i].Len)
		}
		return k, bytes, why
	}
	// Aligned frames: the loop in a function of its own without calls,
	// where the compiler keeps its values in registers; stageRefused
	// sorts out the first descriptor it stopped at.
	k, bytes = stageAligned(u.meta, descs, u.shift&63, u.frameSize-1, ^allowed,
		frameMeta{state: StateApp, pool: p.id}.head(), frameMeta{state: StateTX, pool: p.id, pair: pr.local})
	if k < len(descs) {
		return k, bytes, p.stageRefused(&descs[k], allowed)
	}
	return k, bytes, OK
}

// stageAligned is StageTXLocked's loop over descriptors of aligned frames
// (of mask+1 bytes, shift its log2): ValidTX, the Options check (refuse,
// the bits not allowed) and the state check (want, the frame's head when
// the application holds it) as one condition, so that a valid descriptor
// (the usual one) costs one branch; it stops at the first that fails. The
// frames of the valid ones become staged. It returns how many it staged
// and their bytes (summed here, where each Len is read anyway).
//
//go:noinline because inlined into its caller, which calls, its values would be spilled on every iteration
func stageAligned(meta []frameMeta, descs []ring.Desc, shift uint, mask uint64, refuse uint32, want uint16, staged frameMeta) (int, uint64) {
	shift &= 63
	w := staged.native()
	var bytes uint64
	for k, d := range descs {
		a, n := d.Addr, d.Len
		j := a >> shift // < len(meta) exactly when a is inside the UMEM
		// Len-1 wraps for a zero Len, so one comparison refuses that too.
		if j >= uint64(len(meta)) || a&mask+uint64(n-1) > mask || d.Options&refuse != 0 || meta[j].head() != want {
			return k, bytes
		}
		meta[j].setNative(w)
		bytes += uint64(n)
	}
	return len(descs), bytes
}

// stageTXChecked is StageTXLocked for a UMEM with TX metadata or
// unaligned frames, without the bytes.
func (p *Pool) stageTXChecked(pr *Pair, descs []ring.Desc, allowed uint32) (int, Reason) {
	u := p.u
	if u.txmdLen != 0 {
		return p.stageTXMetadata(pr, descs, allowed)
	}
	for k := range descs {
		d := &descs[k]
		if r := u.ValidTX(d); r != OK {
			return k, r
		}
		if d.Options&^allowed != 0 {
			return k, BadOptions
		}
		i, _ := u.index(d.Addr)
		m := &u.meta[i]
		if m.pool != p.id || m.state != StateApp {
			_ = p.refused(d.Addr, StateApp, NotHeld)
			return k, NotHeld
		}
		m.state, m.pair = StateTX, pr.local
	}
	return len(descs), OK
}

// stageRefused is why StageTXLocked refuses d, a descriptor of an
// aligned UMEM, recording a frame the application does not hold (also a
// frame twice in one batch: the first made it TX).
func (p *Pool) stageRefused(d *ring.Desc, allowed uint32) Reason {
	u := p.u
	if r := alignedTXCheck(d, u.size, u.frameSize, allowed); r != OK {
		return r
	}
	_ = p.refused(d.Addr, StateApp, NotHeld)
	return NotHeld
}

// alignedTXCheck is ValidTX and the Options check for a descriptor of an
// aligned UMEM of size bytes in frames of fs bytes: small enough to be
// inlined into the staging loops.
func alignedTXCheck(d *ring.Desc, size, fs uint64, allowed uint32) Reason {
	a := d.Addr
	switch {
	case d.Len == 0:
		return ZeroLength
	case a >= size:
		return OutsideUMEM
	case a&(fs-1)+uint64(d.Len) > fs:
		return CrossesFrame
	case d.Options&^allowed != 0:
		return BadOptions
	}
	return OK
}

// StageUncheckedLocked marks the frame addr points into TX for pr if the
// application holds it, and reports whether it did, without checking the
// descriptor: for tests that hand the kernel invalid descriptors on
// purpose (commit only the frames it marked).
func (p *Pool) StageUncheckedLocked(pr *Pair, addr uint64) bool {
	i, ok := p.u.index(addr)
	if !ok || p.u.meta[i].pool != p.id || p.u.meta[i].state != StateApp {
		return false
	}
	p.u.meta[i].state, p.u.meta[i].pair = StateTX, pr.local
	return true
}

// CommitTXLocked counts n staged frames as put on pr's TX ring.
func (p *Pool) CommitTXLocked(pr *Pair, n int) {
	p.appDone(n)
	p.tx += n
	pr.txFrames += n
}

// UnstageTXLocked gives staged frames that did not go on the ring back to
// the application (TX → App).
func (p *Pool) UnstageTXLocked(descs []ring.Desc) {
	for i := range descs {
		j, _ := p.u.index(descs[i].Addr)
		p.u.meta[j].state = StateApp
	}
}

// ReapLocked moves up to max completed frames from pr's completion ring
// to the free list (TX → Free), or, for aligned frames sent through pr
// while its fill ring is due a refill, onto that ring (TX → Fill), and
// returns how many entries it consumed. An address of a frame that was
// not in transmission is recorded and skipped, never freed twice.
func (p *Pool) ReapLocked(pr *Pair, max uint32) uint32 {
	idx, got := pr.Comp.Peek(max)
	if got == 0 {
		return 0
	}
	a, b := pr.Comp.Addrs(idx, got)
	if p.u.txmdLen != 0 {
		p.recordTXTimestamps(pr, a)
		p.recordTXTimestamps(pr, b)
	}
	if p.u.fastIndex() {
		// When pr's fill ring is due a refill (RefillDueLocked), the
		// frames pr sent go straight onto it (TX → Fill), as many as it
		// lacks, instead of through the free list, where the next
		// receive would take them for the same ring: that saves the
		// list's push and pop and a second pass over the frames'
		// bookkeeping. The rest go to the free list.
		var rf reapFill
		if size := int(pr.Fill.Size()); pr.onFill <= size-size/4 && !p.umemClosed {
			rf.idx, rf.room = pr.Fill.Reserve(min(got, uint32(size-pr.onFill)))
		}
		p.reapAligned(pr, a, &rf)
		p.reapAligned(pr, b, &rf)
		pr.Fill.Cancel(rf.room - rf.filled)
		if rf.filled > 0 {
			pr.Fill.Submit(rf.filled)
			p.fill += int(rf.filled)
			pr.onFill += int(rf.filled)
		}
	} else {
		p.reapChecked(pr, a)
		p.reapChecked(pr, b)
	}
	pr.Comp.Release(got)
	return got
}

// reapFill is the room ReapLocked reserved on the fill ring for the
// frames it reaps: from idx, room slots, filled of them used.
type reapFill struct{ idx, room, filled uint32 }

// reapAligned is ReapLocked's work on a run of completed addresses of
// aligned frames, in a loop without calls: a refused address is recorded
// after it. The frames pr sent go onto the fill ring while rf has room,
// the rest to the free list.
func (p *Pool) reapAligned(pr *Pair, addrs []uint64, rf *reapFill) {
	if n := min(len(addrs), int(rf.room-rf.filled)); n > 0 {
		// The common case first, in a loop of its own: frames pr sent,
		// straight onto its fill ring, up to the first that is not.
		sent := frameMeta{state: StateTX, pool: p.id, pair: pr.local}.native()
		onFill := frameMeta{state: StateFill, pool: p.id, pair: pr.local}.native()
		first, second := pr.Fill.Slots(rf.idx+rf.filled, uint32(n))
		k := refillRun(p.u.meta, addrs, first, p.u.shift, sent, onFill)
		if k == len(first) && len(second) > 0 {
			k += refillRun(p.u.meta, addrs[k:], second, p.u.shift, sent, onFill)
		}
		rf.filled += uint32(k)
		p.tx -= k
		pr.txFrames -= k
		addrs = addrs[k:]
	}
	meta, free, id, shift, l := p.u.meta, p.free, p.id, p.u.shift&63, pr.local
	idx, room, filled := rf.idx, rf.room, rf.filled
	freed, mine, bad := 0, 0, 0
	var badAddr uint64
	for _, addr := range addrs {
		j := addr >> shift
		if j >= uint64(len(meta)) || meta[j].state != StateTX || meta[j].pool != id {
			if bad == 0 {
				badAddr = addr
			}
			bad++
			continue
		}
		freed++
		if owner := meta[j].pair; owner == l {
			mine++
			if filled < room {
				meta[j].state = StateFill // on pair l, as its meta says already
				pr.Fill.Set(idx+filled, j<<shift)
				filled++
				continue
			}
		} else if int(owner) < len(p.pairs) && p.pairs[owner] != nil {
			p.pairs[owner].txFrames-- // sent through another queue of the pool: not expected
		}
		meta[j].state = StateFree
		free = append(free, j<<shift) // never grows: capacity is total
	}
	rf.filled = filled
	p.free = free
	p.tx -= freed
	pr.txFrames -= mine
	if bad > 0 {
		p.refusedN(badAddr, StateTX, NotHeld, bad)
	}
}

// refillRun is reapAligned's common case, on aligned frames of 1<<shift
// bytes: it puts the frames of addrs whose meta is sent (TX through the
// pair reaping them) into slots, fill ring entries, and makes their meta
// onFill (Fill on that pair), up to the first frame that is not or the
// end of slots. It returns how many it put.
//
//go:noinline because inlined into its caller, which calls, its values would be spilled on every iteration
func refillRun(meta []frameMeta, addrs, slots []uint64, shift uint, sent, onFill uint32) int {
	shift &= 63
	addrs = addrs[:min(len(addrs), len(slots))]
	for k, a := range addrs {
		j := a >> shift
		if j >= uint64(len(meta)) || meta[j].native() != sent {
			return k
		}
		meta[j].setNative(onFill)
		slots[k] = j << shift
	}
	return len(addrs)
}

// reapChecked is ReapLocked's work for unaligned frames.
func (p *Pool) reapChecked(pr *Pair, addrs []uint64) {
	u := p.u
	for _, addr := range addrs {
		i, ok := u.index(addr)
		if !ok {
			_ = p.refused(addr, StateTX, NotHeld)
			continue
		}
		m := &u.meta[i]
		if m.state != StateTX || m.pool != p.id {
			_ = p.refused(addr, StateTX, NotHeld)
			continue
		}
		m.state = StateFree
		p.free = append(p.free, u.frameAddr(i))
		p.tx--
		if m.pair == pr.local {
			pr.txFrames--
		} else if int(m.pair) < len(p.pairs) && p.pairs[m.pair] != nil {
			p.pairs[m.pair].txFrames--
		}
	}
}

// reclaimPairLocked returns every frame the ring pair at local index l
// still had (on its fill ring or in transmission) to the free list: the
// pair is gone, so the kernel will never hand them back.
func (p *Pool) reclaimPairLocked(l uint16) {
	if int(l) < len(p.pairs) && p.pairs[l] != nil {
		p.pairs[l].onFill = 0
	}
	for i := range p.u.meta {
		m := &p.u.meta[i]
		if m.pool != p.id || m.pair != l || m.state != StateFill && m.state != StateTX {
			continue
		}
		if m.state == StateFill {
			p.fill--
		} else {
			p.tx--
		}
		m.state = StateFree
		p.free = append(p.free, p.u.frameAddr(uint64(i)))
	}
}

// StateOf returns the state of the frame addr points into; ok is false if
// addr is outside the UMEM or the frame belongs to another pool.
func (p *Pool) StateOf(addr uint64) (s State, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i, ok := p.u.index(addr)
	if !ok || p.u.meta[i].pool != p.id {
		return 0, false
	}
	return p.u.meta[i].state, true
}

// Check verifies the pool's counts add up and no ownership error was seen
// in it.
func (p *Pool) Check() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.counts()
	if c.Free+c.Fill+c.App+c.TX != c.Total || min(c.Free, c.Fill, c.App, c.TX) < 0 {
		return fmt.Errorf("pool counts do not add up: %+v: %w", c, ErrFrameState)
	}
	if p.violation != nil {
		return fmt.Errorf("%w (%d violations in all)", p.violation, p.nViol)
	}
	return nil
}

// Violations returns how many ownership errors the pool has seen.
func (p *Pool) Violations() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nViol
}

// refused records an ownership error for the frame at addr, expected in
// state want, and returns it. Only the first one is formatted, so a flood
// of bad descriptors does not allocate.
func (p *Pool) refused(addr uint64, want State, r Reason) error {
	p.nViol++
	if p.violation == nil {
		i, ok := p.u.index(addr)
		switch {
		case !ok:
			p.violation = fmt.Errorf("frame address %#x is outside the UMEM: %w", addr, ErrFrameState)
		case p.u.meta[i].pool != p.id:
			p.violation = fmt.Errorf("frame %d (%#x) belongs to pool %d, not %d: %w", i, addr, p.u.meta[i].pool, p.id, ErrFrameState)
		default:
			p.violation = fmt.Errorf("frame %d (%#x) should be %s but is %s: %w", i, addr, want, p.u.meta[i].state, ErrFrameState)
		}
	}
	if r == OutsideUMEM {
		return errOutside
	}
	return errNotHeld
}

// refusedN records n refused descriptors of which addr was the first.
func (p *Pool) refusedN(addr uint64, want State, r Reason, n int) {
	_ = p.refused(addr, want, r)
	p.nViol += n - 1
}

// Preallocated, so a refused frame on the per-packet path does not allocate.
var (
	errOutside = fmt.Errorf("frame address outside the UMEM: %w", ErrFrameState)
	errNotHeld = fmt.Errorf("frame not held where the caller says (freed twice, another pool's, or still in the kernel): %w", ErrFrameState)
)
