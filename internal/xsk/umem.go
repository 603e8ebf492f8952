//go:build linux

package xsk

import (
	"bufio"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/sys"
)

// Unaligned descriptors carry the packet's offset in their chunk in the
// top 16 bits (XSK_UNALIGNED_BUF_OFFSET_SHIFT) and the chunk address in
// the low 48 (XSK_UNALIGNED_BUF_ADDR_MASK).
const (
	unalignedOffsetShift = 48
	unalignedAddrMask    = 1<<unalignedOffsetShift - 1
)

// UMEM is a mapped packet area, its frame pools and its registrations
// with the kernel.
type UMEM struct {
	cfg       Config
	area      []byte
	huge      bool
	size      uint64      // bytes of frames: FrameCount * FrameSize
	frameSize uint64      // FrameSize
	shift     uint        // aligned mode: log2(FrameSize)
	unaligned bool        // unaligned chunk mode: addresses need not be frame starts
	start     uintptr     // address of area[0], for AddrOf
	borrowed  bool        // area is Go memory (a test's, or NewMemory's): release does not unmap it
	memory    bool        // made by NewMemory: no kernel, memory sockets only
	mapped    atomic.Bool // area is mapped: AlignedArea's users look before they slice it

	txmdLen    uint64 // TX metadata reserved in front of every TX descriptor's data: 0 or TXMetadataLen
	txmdFlags  uint64 // the XDP_TXMD_FLAGS_* this kernel takes
	txmdNoFlag bool   // registered without XDP_UMEM_TX_METADATA_LEN (Linux 6.8 to 6.10; under mu)

	meta []frameMeta // per frame; an entry changes only under its pool's mutex
	// txTS is, per frame, whether it was sent asking for a TX timestamp
	// (TX metadata UMEMs only): set when it is staged, read when it
	// completes, under its pool's mutex like meta.
	txTS []bool

	mu       sync.Mutex // guards the fields below and the pools' ring pair tables
	pools    []*Pool    // the main pool first
	members  int        // sockets that joined and have not left
	spareFD  int        // registered with the kernel, not used by a socket yet; -1 if none
	spareNS  [2]uint64  // the network namespace spareFD lives in
	closed   bool
	unmapped bool
}

// frameMeta is one frame's bookkeeping: 4 bytes, so a batch's entries
// share few cache lines.
type frameMeta struct {
	state State
	pool  uint8  // index of the frame's pool in UMEM.pools, for life
	pair  uint16 // while Fill or TX: the ring pair, an index into its pool's table
}

// head is m's state and pool as one word, so that the per-frame checks
// compare both at once (the compiler merges the two loads into one).
func (m frameMeta) head() uint16 { return uint16(m.state) | uint16(m.pool)<<8 }

// word is all of m as one word, for the same reason.
func (m frameMeta) word() uint32 { return uint32(m.head()) | uint32(m.pair)<<16 }

// native is m as it lies in memory, for setNative.
func (m frameMeta) native() uint32 { return *(*uint32)(unsafe.Pointer(&m)) } // frameMeta is 4 bytes, no padding

// setNative sets all of m from w, a frameMeta's native: one store where
// assigning the struct takes one per field.
func (m *frameMeta) setNative(w uint32) { *(*uint32)(unsafe.Pointer(m)) = w } // frameMeta is 4 bytes, no padding

// CheckKernel fails, wrapping ErrNotSupported, on a kernel older than
// MinKernel. It reads the version once per process.
var CheckKernel = sync.OnceValue(func() error {
	if rel, old := sys.KernelReleaseBefore(minMajor, minMinor); old {
		return fmt.Errorf("xdpkit needs Linux %s or later; this kernel is %s: %w", MinKernel, rel, ErrNotSupported)
	}
	return nil
})

// New maps the area and registers it with the kernel on a socket that the
// first socket to join will use, so that a missing privilege or a low
// locked-memory limit shows at once.
func New(c Config) (_ *UMEM, err error) {
	if err := CheckKernel(); err != nil {
		return nil, err
	}
	u := newUMEM(c)
	defer func() {
		if err != nil {
			u.release()
		}
	}()

	if err := u.mapArea(); err != nil {
		return nil, err
	}
	if c.TXMetadata && sys.KernelBefore(6, 15) {
		u.txmdFlags &^= TXMDLaunchTime // XDP_TXMD_FLAGS_LAUNCH_TIME is Linux 6.15's
	}
	if c.SocketFD > 0 {
		// A socket handed over: register on it, so that no socket(2),
		// and no CAP_NET_RAW, is needed here.
		if err := sys.AdoptSocket(c.SocketFD); err != nil {
			_ = sys.Close(c.SocketFD)
			return nil, fmt.Errorf("the socket handed over: %w: %w", ErrInvalidConfig, err)
		}
		if err := u.registerOn(c.SocketFD); err != nil {
			_ = sys.Close(c.SocketFD)
			return nil, fmt.Errorf("register %d x %d bytes on the socket handed over: %w", c.FrameCount, c.FrameSize, err)
		}
		u.spareFD = c.SocketFD
	} else if u.spareFD, err = u.register(); err != nil {
		return nil, err
	}
	u.spareNS[0], u.spareNS[1], _ = sys.NetNS()

	u.initFrames()
	return u, nil
}

// mapArea maps the frames, on hugepages if the Config asks.
func (u *UMEM) mapArea() (err error) {
	c := u.cfg
	size := int(u.size)
	if c.HugePages {
		hp := hugePageSize()
		length := (size + hp - 1) / hp * hp
		u.area, err = sys.MmapArea(length, true)
		if err != nil && !c.HugePageFallback {
			return fmt.Errorf("map %d bytes on %d KiB hugepages (%d free): %w: %w; reserve them with "+
				"'echo %d > /proc/sys/vm/nr_hugepages' or set HugePageFallback", length, hp>>10, hugePagesFree(), ErrNoHugePages, err, length/hp)
		}
		u.huge = err == nil
	}
	if u.area == nil {
		if u.area, err = sys.MmapArea(size, false); err != nil {
			return fmt.Errorf("map %d bytes: %w", size, err)
		}
	}
	u.start = uintptr(unsafe.Pointer(&u.area[0])) // only compared with slice addresses in AddrOf
	u.mapped.Store(true)
	return nil
}

// AlignedArea returns, in aligned mode with a power-of-two frame size,
// the whole area, log2 of the frame size, and the flag that stays true
// while the area is mapped: for a frame lookup without calls. In any
// other mode it returns nil, 0, nil.
func (u *UMEM) AlignedArea() (area []byte, shift uint, mapped *atomic.Bool) {
	if !u.fastIndex() || u.area == nil {
		return nil, 0, nil
	}
	return u.area[:u.size:u.size], u.shift, &u.mapped
}

// newUMEM returns a UMEM with c's geometry, without memory or frames.
func newUMEM(c Config) *UMEM {
	u := &UMEM{
		cfg:       c,
		size:      uint64(c.FrameCount) * uint64(c.FrameSize),
		frameSize: uint64(c.FrameSize),
		unaligned: c.Unaligned,
		spareFD:   -1,
	}
	if c.FrameSize&(c.FrameSize-1) == 0 {
		u.shift = uint(bits.TrailingZeros32(c.FrameSize))
	}
	if c.TXMetadata {
		u.txmdLen = TXMetadataLen
		u.txmdFlags = TXMDTimestamp | TXMDChecksum | TXMDLaunchTime
	}
	return u
}

// initFrames makes every frame free in the main pool.
func (u *UMEM) initFrames() {
	c := u.cfg
	u.meta = make([]frameMeta, c.FrameCount)
	if u.txmdLen != 0 {
		u.txTS = make([]bool, c.FrameCount)
	}
	main := &Pool{u: u, total: int(c.FrameCount), free: make([]uint64, c.FrameCount)}
	for i := range main.free {
		// Pop order is ascending addresses, which keeps early traffic in few pages.
		main.free[i] = u.frameAddr(uint64(int(c.FrameCount) - 1 - i))
	}
	u.pools = []*Pool{main}
}

// register opens an AF_XDP socket and registers the area on it.
func (u *UMEM) register() (int, error) {
	fd, err := sys.Socket()
	if err != nil {
		return -1, fmt.Errorf("open AF_XDP socket: %w", SocketError(err))
	}
	if err := u.registerOn(fd); err != nil {
		_ = sys.Close(fd)
		return -1, fmt.Errorf("register %d x %d bytes: %w", u.cfg.FrameCount, u.cfg.FrameSize, err)
	}
	return fd, nil
}

// registerOn is XDP_UMEM_REG of the area on fd. Its caller is New, or
// holds u.mu (Join registering in another network namespace).
//
// With TX metadata it asks as Documentation/networking/xsk-tx-metadata.rst
// says: with XDP_UMEM_TX_METADATA_LEN, which Linux 6.11 requires for
// tx_metadata_len to count, and, when the kernel refuses that flag as
// unknown (EINVAL from Linux 6.8 to 6.10, which honour tx_metadata_len
// without it), again without it; the answer is kept for the next
// registrations. A kernel before 6.8 refuses the flag too, but would
// ignore tx_metadata_len without it: that is ErrNotSupported.
func (u *UMEM) registerOn(fd int) error {
	var flags uint32
	if u.unaligned {
		flags |= unix.XDP_UMEM_UNALIGNED_CHUNK_FLAG
	}
	c := u.cfg
	if u.txmdLen == 0 {
		return RegisterError(sys.RegisterUMEM(fd, u.area, u.size, c.FrameSize, c.Headroom, flags))
	}
	if c.TXSoftwareChecksum {
		flags |= unix.XDP_UMEM_TX_SW_CSUM
	}
	md := uint32(u.txmdLen)
	if !u.txmdNoFlag {
		err := sys.RegisterUMEMTXMetadata(fd, u.area, u.size, c.FrameSize, c.Headroom, flags|unix.XDP_UMEM_TX_METADATA_LEN, md)
		if err == nil || !errors.Is(err, unix.EINVAL) {
			return RegisterError(err)
		}
		if rel, old := sys.KernelReleaseBefore(6, 8); old {
			what := "TX metadata (umem.Options.TXMetadata, tx_metadata_len)"
			if c.TXSoftwareChecksum {
				what = "TX metadata and software TX checksums (XDP_UMEM_TX_SW_CSUM)"
			}
			return fmt.Errorf("%s need Linux 6.8+; this kernel is %s: %w: %w", what, rel, ErrNotSupported, err)
		}
	}
	// A failed XDP_UMEM_REG leaves the socket without a UMEM: fd can
	// take another.
	if err := sys.RegisterUMEMTXMetadata(fd, u.area, u.size, c.FrameSize, c.Headroom, flags, md); err != nil {
		return RegisterError(err)
	}
	u.txmdNoFlag = true
	return nil
}

// Config returns the configuration the UMEM was made with.
func (u *UMEM) Config() Config { return u.cfg }

// HugePages reports whether the area is on hugepages.
func (u *UMEM) HugePages() bool { return u.huge }

// Main returns the main pool.
func (u *UMEM) Main() *Pool { return u.pools[0] }

// frameAddr returns the address of frame i.
func (u *UMEM) frameAddr(i uint64) uint64 {
	if u.shift != 0 {
		return i << u.shift
	}
	return i * u.frameSize
}

// fastIndex reports whether a descriptor's frame is its address shifted
// right: aligned mode (frame sizes are powers of two there).
func (u *UMEM) fastIndex() bool { return !u.unaligned && u.shift != 0 }

// DataAddr returns the area offset a descriptor address points to: the
// address itself in aligned mode; chunk plus offset in unaligned mode.
func (u *UMEM) DataAddr(addr uint64) uint64 {
	if u.unaligned {
		return addr&unalignedAddrMask + addr>>unalignedOffsetShift
	}
	return addr
}

// Unaligned reports whether the UMEM is in unaligned chunk mode.
func (u *UMEM) Unaligned() bool { return u.unaligned }

// TXAddr returns the address to put in a TX descriptor for addr. In
// unaligned mode an odd data address is written as the even one below it
// plus an offset of 1 (same bytes): Linux 6.18 tags the address it keeps
// for the completion with bit 0 and clears that bit when it completes a
// single-descriptor packet in copy mode, so an odd address would come
// back one byte lower, in the previous chunk when it starts one.
func (u *UMEM) TXAddr(addr uint64) uint64 {
	if !u.unaligned {
		return addr
	}
	if a := u.DataAddr(addr); a&1 != 0 {
		return a - 1 | 1<<unalignedOffsetShift
	}
	return addr
}

// index returns the index of the frame a descriptor address points into;
// ok is false if it is outside the UMEM.
func (u *UMEM) index(addr uint64) (i uint64, ok bool) {
	a := u.DataAddr(addr)
	if a >= u.size {
		return 0, false
	}
	if u.shift != 0 {
		return a >> u.shift, true
	}
	return a / u.frameSize, true
}

// FrameStart returns the start address of the frame addr points into.
func (u *UMEM) FrameStart(addr uint64) uint64 {
	a := u.DataAddr(addr)
	if u.shift != 0 {
		return a &^ (u.frameSize - 1)
	}
	return a - a%u.frameSize
}

// Bytes returns n bytes of the area from descriptor address addr, without
// copying, or nil if they are not all inside the UMEM.
func (u *UMEM) Bytes(addr uint64, n uint32) []byte {
	a := u.DataAddr(addr)
	end := a + uint64(n)
	if end > u.size || end < a {
		return nil
	}
	return u.area[a:end:end]
}

// Frame returns the bytes of the frame addr points into, from addr to the
// frame's end, or nil if addr is outside the UMEM.
func (u *UMEM) Frame(addr uint64) []byte {
	a := u.DataAddr(addr)
	if a >= u.size {
		return nil
	}
	end := u.FrameStart(a) + u.frameSize
	return u.area[a:end:end]
}

// FrameHead returns the whole frame addr points into and the offset of
// addr's data in it, or nil if addr is outside the area.
func (u *UMEM) FrameHead(addr uint64) ([]byte, int) {
	a := u.DataAddr(addr)
	if a >= u.size {
		return nil, 0
	}
	start := u.FrameStart(a)
	end := start + u.frameSize
	return u.area[start:end:end], int(a - start)
}

// Within returns the area address of b when b lies inside the frame that
// addr points into and is not empty; ok is false otherwise (b moved out of
// its frame, or is not UMEM memory at all).
func (u *UMEM) Within(addr uint64, b []byte) (bAddr uint64, ok bool) {
	if len(b) == 0 {
		return 0, false
	}
	// Comparing addresses only, never dereferencing: b may be any slice.
	off := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))) - u.start)
	start := u.FrameStart(addr)
	if off < start || off-start >= u.frameSize || off-start+uint64(len(b)) > u.frameSize {
		return 0, false
	}
	return off, true
}

// NewPool moves n free frames of the main pool into a new pool. The free
// list is allocated here, so the per-packet path never allocates.
func (u *UMEM) NewPool(n int) (*Pool, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil, fmt.Errorf("new pool: %w", ErrClosed)
	}
	if len(u.pools) > 255 {
		return nil, fmt.Errorf("new pool: a UMEM has at most 256 pools: %w", ErrTooSmall)
	}
	main := u.pools[0]
	main.mu.Lock()
	defer main.mu.Unlock()
	if n <= 0 || n > len(main.free) {
		return nil, fmt.Errorf("new pool of %d frames: the main pool has %d free: %w", n, len(main.free), ErrTooSmall)
	}
	p := &Pool{u: u, id: uint8(len(u.pools)), total: n, free: make([]uint64, n)}
	top := len(main.free)
	copy(p.free, main.free[top-n:])
	main.free = main.free[:top-n]
	main.total -= n
	for _, a := range p.free {
		i, _ := u.index(a)
		u.meta[i].pool = p.id // free frames: nobody else looks at them
	}
	u.pools = append(u.pools, p)
	return p, nil
}

// Pools returns every pool, the main one first.
func (u *UMEM) Pools() []*Pool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*Pool(nil), u.pools...)
}

// Counts sums the counts of all pools.
func (u *UMEM) Counts() Counts {
	var c Counts
	for _, p := range u.Pools() {
		pc := p.Counts()
		c.Total += pc.Total
		c.Free += pc.Free
		c.Fill += pc.Fill
		c.App += pc.App
		c.TX += pc.TX
	}
	return c
}

// Check verifies the accounting of all pools together: the counts add up
// to the frame count, agree with every frame's recorded state, no frame
// is on a free list twice or on the wrong one, and no ownership error was
// seen. It locks every pool while it looks.
func (u *UMEM) Check() error {
	pools := u.Pools()
	for _, p := range pools {
		p.mu.Lock()
	}
	defer func() {
		for _, p := range pools {
			p.mu.Unlock()
		}
	}()
	var sum Counts
	per := make([][4]int, len(pools))
	for i := range u.meta {
		m := u.meta[i]
		if int(m.pool) >= len(pools) || m.state > StateTX {
			return fmt.Errorf("frame %d has pool %d and state %s: %w", i, m.pool, m.state, ErrFrameState)
		}
		per[m.pool][m.state]++
	}
	for i, p := range pools {
		c := p.counts()
		if c.Free+c.Fill+c.App+c.TX != c.Total || min(c.Free, c.Fill, c.App, c.TX) < 0 {
			return fmt.Errorf("pool %d counts do not add up: %+v: %w", i, c, ErrFrameState)
		}
		if per[i] != [4]int{c.Free, c.Fill, c.App, c.TX} {
			return fmt.Errorf("pool %d counts %+v disagree with its frames' states free=%d fill=%d app=%d tx=%d: %w",
				i, c, per[i][0], per[i][1], per[i][2], per[i][3], ErrFrameState)
		}
		sum.Total += c.Total
	}
	if sum.Total != int(u.cfg.FrameCount) {
		return fmt.Errorf("pools hold %d frames of %d: %w", sum.Total, u.cfg.FrameCount, ErrFrameState)
	}
	seen := make([]bool, len(u.meta))
	for _, p := range pools {
		for _, a := range p.free {
			i, ok := u.index(a)
			if !ok || seen[i] || u.meta[i].state != StateFree || u.meta[i].pool != p.id || a != u.frameAddr(i) {
				return fmt.Errorf("frame %#x on a free list twice, not free, or on another pool's list: %w", a, ErrFrameState)
			}
			seen[i] = true
		}
	}
	for _, p := range pools {
		if p.violation != nil {
			return fmt.Errorf("%w (%d violations in all)", p.violation, p.nViol)
		}
	}
	return nil
}

// Close marks the UMEM closed: no socket may join it and no frame can be
// allocated any more. Its memory is unmapped, and its registration
// released, once the sockets using it are closed and the application
// holds none of its frames (see tryUnmap). Idempotent.
func (u *UMEM) Close() error {
	if u == nil {
		return nil
	}
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return nil
	}
	u.closed = true
	for _, p := range u.pools {
		p.mu.Lock()
		p.umemClosed = true
		p.mu.Unlock()
	}
	u.mu.Unlock()
	return u.tryUnmap()
}

// Closed reports whether Close was called.
func (u *UMEM) Closed() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.closed
}

// tryUnmap releases the area if the UMEM is closed, no socket uses it and
// no frame is held by the application: only then can nothing touch it.
func (u *UMEM) tryUnmap() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.closed || u.unmapped || u.members > 0 {
		return nil
	}
	for _, p := range u.pools {
		p.mu.Lock()
		app := p.app
		p.mu.Unlock()
		if app > 0 {
			return nil
		}
	}
	u.unmapped = true
	if err := u.release(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// release closes the spare registration and unmaps the area.
func (u *UMEM) release() error {
	var errs []error
	if u.spareFD >= 0 {
		errs = append(errs, sys.Close(u.spareFD))
		u.spareFD = -1
	}
	u.mapped.Store(false)
	if u.area != nil && !u.borrowed {
		// The kernel keeps its own pin on the pages while a registration
		// lives, so unmapping our view is safe.
		errs = append(errs, sys.Munmap(u.area))
	}
	u.area = nil
	return errors.Join(errs...)
}

// SocketError wraps an error from socket(AF_XDP) with the sentinel and
// the hint that fit it.
func SocketError(err error) error {
	switch {
	case errors.Is(err, unix.EAFNOSUPPORT):
		return fmt.Errorf("the kernel has no AF_XDP (CONFIG_XDP_SOCKETS; xdpkit needs Linux %s+): %w: %w", MinKernel, ErrNotSupported, err)
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("%w: making an AF_XDP socket needs CAP_NET_RAW (or use one a process that has it hands over: afxdp.Config.SocketFD): %w", ErrPermission, err)
	}
	return err
}

// RegisterError wraps an error from XDP_UMEM_REG with its likely cause;
// nil stays nil.
func RegisterError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.ENOMEM) || errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%w: %w", ErrMemlock, err)
	}
	return err
}

// hugePageSize returns the default hugepage size from /proc/meminfo.
func hugePageSize() int {
	if kb := meminfo("Hugepagesize:"); kb > 0 {
		return kb << 10
	}
	return 2 << 20
}

func hugePagesFree() int { return meminfo("HugePages_Free:") }

func meminfo(key string) int {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), key); ok {
			fs := strings.Fields(rest)
			if len(fs) > 0 {
				n, _ := strconv.Atoi(fs[0])
				return n
			}
		}
	}
	return 0
}
