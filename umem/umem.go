//go:build linux

package umem

import (
	"bufio"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/sys"
	"github.com/xdpkit/xdpkit/ring"
)

// UMEM is a registered packet buffer area with its fill and completion
// rings and its frame accounting. Create it with New; Close releases it.
type UMEM struct {
	opts    Options
	area    []byte
	huge    bool
	shift   uint   // log2(FrameSize): frame index = addr >> shift
	base    uint64 // ^(FrameSize-1): frame start = addr & base
	fd      int    // AF_XDP socket the UMEM is registered on
	offsets unix.XDPMmapOffsets
	fill    *ring.Fill
	comp    *ring.Completion

	*Pool         // the main pool: all frames not given to NewPool
	pools []*Pool // every pool, the main one first

	owner []State // checked mode only: where each frame is; each pool touches only its own frames

	primaryBound   bool // the UMEM's own socket fd has been bound by a socket
	primaryIfindex int  // where it is bound
	primaryQueue   int

	closeOnce sync.Once
	closeErr  error
	closed    bool
}

// State is where a frame is; see the package doc.
type State uint8

// Frame states.
const (
	StateFree State = iota
	StateFill
	StateApp
	StateTX
)

func (s State) String() string {
	switch s {
	case StateFree:
		return "free"
	case StateFill:
		return "fill"
	case StateApp:
		return "app"
	case StateTX:
		return "tx"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Counts is how many frames are in each place. Free+Fill+App+TX == Total.
type Counts struct {
	Total, Free, Fill, App, TX int
}

// New maps and registers a UMEM. It needs CAP_NET_RAW (AF_XDP socket) and
// locked memory for the area (CAP_IPC_LOCK or a large enough
// RLIMIT_MEMLOCK).
func New(opts *Options) (_ *UMEM, err error) {
	o := opts.withDefaults()
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("umem: %w", err)
	}
	u := &UMEM{opts: o, fd: -1, shift: uint(bits.TrailingZeros32(o.FrameSize)), base: ^uint64(o.FrameSize - 1)}
	defer func() {
		if err != nil {
			u.release()
		}
	}()

	size := int(o.FrameCount) * int(o.FrameSize)
	if o.HugePages {
		hp := hugePageSize()
		length := (size + hp - 1) / hp * hp
		u.area, err = sys.MmapArea(length, true)
		if err != nil && !o.HugePageFallback {
			return nil, fmt.Errorf("umem: map %d bytes on %d KiB hugepages (%d free): %w: %w; reserve them with "+
				"'echo %d > /proc/sys/vm/nr_hugepages' or set HugePageFallback", length, hp>>10, hugePagesFree(), ErrNoHugePages, err, length/hp)
		}
		u.huge = err == nil
	}
	if u.area == nil {
		if u.area, err = sys.MmapArea(size, false); err != nil {
			return nil, fmt.Errorf("umem: map %d bytes: %w", size, err)
		}
	}

	if u.fd, err = sys.Socket(); err != nil {
		return nil, fmt.Errorf("umem: open AF_XDP socket: %w%s", err, socketHint(err))
	}
	reg := unix.XDPUmemReg{
		Addr:     uint64(uintptr(unsafe.Pointer(&u.area[0]))), // the kernel pins these pages; u.area keeps them mapped
		Len:      uint64(size),
		Size:     o.FrameSize,
		Headroom: o.Headroom,
	}
	if err = sys.RegisterUMEM(u.fd, &reg); err != nil {
		return nil, fmt.Errorf("umem: register %d x %d bytes: %w%s", o.FrameCount, o.FrameSize, err, memlockHint(err))
	}
	if u.fill, u.comp, err = u.mapRings(u.fd); err != nil {
		return nil, err
	}

	u.Pool = &Pool{u: u, total: int(o.FrameCount), free: make([]uint64, o.FrameCount)}
	u.pools = []*Pool{u.Pool}
	for i := range u.free {
		// Pop order is ascending addresses, which keeps early traffic in few pages.
		u.free[i] = uint64(int(o.FrameCount)-1-i) << u.shift
	}
	if o.Checked {
		u.owner = make([]State, o.FrameCount)
	}
	return u, nil
}

// mapRings sizes and maps a fill and completion ring on fd.
func (u *UMEM) mapRings(fd int) (f *ring.Fill, c *ring.Completion, err error) {
	if err = sys.SetRingSize(fd, unix.XDP_UMEM_FILL_RING, u.opts.FillRingSize); err != nil {
		return nil, nil, fmt.Errorf("umem: set fill ring size %d: %w", u.opts.FillRingSize, err)
	}
	if err = sys.SetRingSize(fd, unix.XDP_UMEM_COMPLETION_RING, u.opts.CompletionRingSize); err != nil {
		return nil, nil, fmt.Errorf("umem: set completion ring size %d: %w", u.opts.CompletionRingSize, err)
	}
	off, err := sys.MmapOffsets(fd)
	if err != nil {
		return nil, nil, fmt.Errorf("umem: get ring offsets: %w", err)
	}
	u.offsets = off
	if f, err = ring.MapFill(fd, off.Fr, u.opts.FillRingSize); err != nil {
		return nil, nil, fmt.Errorf("umem: fill ring: %w", err)
	}
	if c, err = ring.MapCompletion(fd, off.Cr, u.opts.CompletionRingSize); err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("umem: completion ring: %w", err)
	}
	return f, c, nil
}

// Rings is a fill and completion ring pair on one socket.
type Rings struct {
	Fill       *ring.Fill
	Completion *ring.Completion
	owned      bool // mapped for a shared socket, not the UMEM's own
}

// Close unmaps rings that were mapped by NewRings; the UMEM's own pair is
// left to UMEM.Close. Idempotent.
func (r *Rings) Close() error {
	if r == nil || !r.owned {
		return nil
	}
	return errors.Join(r.Fill.Close(), r.Completion.Close())
}

// PrimaryRings returns the fill and completion rings registered on the
// UMEM's own socket.
func (u *UMEM) PrimaryRings() *Rings { return &Rings{Fill: u.fill, Completion: u.comp} }

// NewRings creates a separate fill and completion ring pair on socket fd,
// which is about to bind with XDP_SHARED_UMEM to another (interface,
// queue) than the UMEM's own socket: the kernel wants one pair per queue.
func (u *UMEM) NewRings(fd int) (*Rings, error) {
	if u.closed {
		return nil, ErrClosed
	}
	f, c, err := u.mapRings(fd)
	if err != nil {
		return nil, err
	}
	return &Rings{Fill: f, Completion: c, owned: true}, nil
}

// FD returns the AF_XDP socket the UMEM is registered on. The first socket
// bound to the UMEM uses it; later ones name it in XDP_SHARED_UMEM.
func (u *UMEM) FD() int { return u.fd }

// ClaimPrimary reports whether the caller may bind the UMEM's own socket
// to (ifindex, queue); it is true once. Package afxdp calls it.
func (u *UMEM) ClaimPrimary(ifindex, queue int) bool {
	if u.primaryBound || u.closed {
		return false
	}
	u.primaryBound, u.primaryIfindex, u.primaryQueue = true, ifindex, queue
	return true
}

// Primary returns where the UMEM's own socket is bound; ok is false before
// a socket claimed it.
func (u *UMEM) Primary() (ifindex, queue int, ok bool) {
	return u.primaryIfindex, u.primaryQueue, u.primaryBound
}

// Closed reports whether Close was called.
func (u *UMEM) Closed() bool { return u.closed }

// Options returns the options in effect, defaults applied.
func (u *UMEM) Options() Options { return u.opts }

// HugePages reports whether the area is on hugepages.
func (u *UMEM) HugePages() bool { return u.huge }

// FrameSize returns the frame size in bytes.
func (u *UMEM) FrameSize() uint32 { return u.opts.FrameSize }

// FrameCount returns the number of frames.
func (u *UMEM) FrameCount() uint32 { return u.opts.FrameCount }

// Headroom returns the configured headroom (not counting the kernel's 256).
func (u *UMEM) Headroom() uint32 { return u.opts.Headroom }

// FrameStart returns the address of the frame addr points into.
func (u *UMEM) FrameStart(addr uint64) uint64 { return addr & u.base }

// Bytes returns n bytes of the area from addr, without copying. It panics,
// like any slice expression, if that range is outside the UMEM.
func (u *UMEM) Bytes(addr uint64, n uint32) []byte {
	end := addr + uint64(n)
	return u.area[addr:end:end]
}

// Frame returns the bytes of the frame addr points into, from addr to the
// frame's end: the room to write a packet to send.
func (u *UMEM) Frame(addr uint64) []byte {
	end := addr&u.base + uint64(u.opts.FrameSize)
	return u.area[addr:end:end]
}

// NewPool moves n free frames of the main pool into a new pool, for a
// socket that another goroutine drives. The free list is allocated here,
// so the per-packet path never allocates.
func (u *UMEM) NewPool(n int) (*Pool, error) {
	if u.closed {
		return nil, ErrClosed
	}
	if n <= 0 || n > len(u.free) {
		return nil, fmt.Errorf("umem: new pool of %d frames: the main pool has %d free: %w", n, len(u.free), ErrTooSmall)
	}
	p := &Pool{u: u, total: n, free: make([]uint64, n)}
	top := len(u.free)
	copy(p.free, u.free[top-n:])
	u.free = u.free[:top-n]
	u.Pool.total -= n
	u.pools = append(u.pools, p)
	return p, nil
}

// Pools returns every pool of the UMEM, the main one first.
func (u *UMEM) Pools() []*Pool { return append([]*Pool(nil), u.pools...) }

// Counts returns how many frames are in each place, summed over all pools.
// With pools driven by other goroutines, call it when they are stopped.
func (u *UMEM) Counts() Counts {
	var c Counts
	for _, p := range u.pools {
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
// and, in checked mode, agree with every frame's recorded place, no frame
// is on two free lists, and no ownership error was seen. Call it when the
// pools are not in use.
func (u *UMEM) Check() error {
	c := u.Counts()
	if c.Free+c.Fill+c.App+c.TX != c.Total || c.Total != int(u.opts.FrameCount) || c.Free < 0 || c.Fill < 0 || c.App < 0 || c.TX < 0 {
		return fmt.Errorf("umem: counts do not add up: %+v: %w", c, ErrFrameState)
	}
	if u.owner == nil {
		return nil
	}
	var n [4]int
	for _, s := range u.owner {
		n[s]++
	}
	if n != [4]int{c.Free, c.Fill, c.App, c.TX} {
		return fmt.Errorf("umem: counts %+v disagree with frame states free=%d fill=%d app=%d tx=%d: %w", c, n[0], n[1], n[2], n[3], ErrFrameState)
	}
	seen := make(map[uint64]bool, c.Free)
	for _, p := range u.pools {
		for _, a := range p.free {
			if seen[a] || u.owner[a>>u.shift] != StateFree {
				return fmt.Errorf("umem: frame %#x on a free list twice or not free: %w", a, ErrFrameState)
			}
			seen[a] = true
		}
	}
	for _, p := range u.pools {
		if p.violation != nil {
			return fmt.Errorf("%w (%d violations in all)", p.violation, p.nViol)
		}
	}
	return nil
}

// Close unregisters the UMEM (by closing its socket) and unmaps its rings
// and area. Close sockets using the UMEM first. It is idempotent and
// nil-safe.
func (u *UMEM) Close() error {
	if u == nil {
		return nil
	}
	u.closeOnce.Do(func() { u.closeErr = u.release() })
	return u.closeErr
}

func (u *UMEM) release() error {
	u.closed = true
	var errs []error
	if u.fill != nil {
		errs = append(errs, u.fill.Close())
	}
	if u.comp != nil {
		errs = append(errs, u.comp.Close())
	}
	if u.fd >= 0 {
		errs = append(errs, sys.Close(u.fd))
		u.fd = -1
	}
	if u.area != nil {
		// The kernel unpins the pages when the last socket using the UMEM
		// is gone; unmapping our view first is still safe, as the pin keeps
		// the pages alive for the kernel.
		errs = append(errs, sys.Munmap(u.area))
		u.area = nil
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("umem: close: %w", err)
	}
	return nil
}

func socketHint(err error) string {
	switch {
	case errors.Is(err, unix.EAFNOSUPPORT):
		return " (the kernel has no AF_XDP: it needs CONFIG_XDP_SOCKETS, Linux 4.18+)"
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return " (AF_XDP sockets need CAP_NET_RAW: run as root)"
	}
	return ""
}

func memlockHint(err error) string {
	if errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.ENOMEM) || errors.Is(err, unix.EPERM) {
		return " (the locked-memory limit is too low: raise RLIMIT_MEMLOCK with github.com/cilium/ebpf/rlimit.RemoveMemlock or 'ulimit -l unlimited', or run with CAP_IPC_LOCK)"
	}
	return ""
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
