package umem

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/xdpkit/xdpkit/internal/xsk"
	"github.com/xdpkit/xdpkit/ring"
)

// UMEM is a registered packet buffer area and the accounting of its
// frames. Create it with New; Close releases it. Its main pool's methods
// are promoted: u.Alloc() is u.Pool.Alloc().
type UMEM struct {
	x    *xsk.UMEM
	opts Options
	*Pool

	mu    sync.Mutex
	pools []*Pool // every pool, the main one first
}

// State is where a frame is; see the package doc.
type State = xsk.State

// Frame states.
const (
	StateFree = xsk.StateFree
	StateFill = xsk.StateFill
	StateApp  = xsk.StateApp
	StateTX   = xsk.StateTX
)

// Counts is how many frames are in each place. Free+Fill+App+TX == Total.
type Counts = xsk.Counts

func init() {
	xsk.UMEMOf = func(v any) *xsk.UMEM {
		if u, _ := v.(*UMEM); u != nil {
			return u.x
		}
		return nil
	}
	xsk.PoolOf = func(v any) *xsk.Pool {
		if p, _ := v.(*Pool); p != nil {
			return p.x
		}
		return nil
	}
}

// New maps a UMEM and registers it with the kernel. It needs CAP_NET_RAW
// (an AF_XDP socket) and locked memory for the area (CAP_IPC_LOCK or a
// large enough RLIMIT_MEMLOCK; ErrMemlock otherwise).
func New(opts *Options) (*UMEM, error) { return newUMEM(opts, xsk.New) }

// NewMemory maps a UMEM, on hugepages if the options ask, and registers
// it with no kernel, so it needs no privilege: the UMEM of memory sockets
// (afxdp.NewMemory), whose kernel side a test or a benchmark plays.
// Frames are accounted as in any UMEM. Close unmaps it once no socket
// uses it and no frame is held. It is Linux-only, like New.
func NewMemory(opts *Options) (*UMEM, error) { return newUMEM(opts, xsk.NewMemory) }

// newUMEM makes a UMEM of opts with create (xsk.New or xsk.NewMemory).
func newUMEM(opts *Options, create func(xsk.Config) (*xsk.UMEM, error)) (*UMEM, error) {
	o := opts.withDefaults()
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("umem: %w", err)
	}
	x, err := create(xsk.Config{
		FrameCount:         o.FrameCount,
		FrameSize:          o.FrameSize,
		Headroom:           o.Headroom,
		FillRingSize:       o.FillRingSize,
		CompletionRingSize: o.CompletionRingSize,
		HugePages:          o.HugePages,
		HugePageFallback:   o.HugePageFallback,
		Unaligned:          o.Unaligned,
		TXMetadata:         o.TXMetadata,
		TXSoftwareChecksum: o.TXSoftwareChecksum,
		SocketFD:           o.SocketFD,
	})
	if err != nil {
		return nil, fmt.Errorf("umem: %w", err)
	}
	u := &UMEM{x: x, opts: o}
	u.Pool = &Pool{x: x.Main(), u: u}
	u.pools = []*Pool{u.Pool}
	// A UMEM dropped without Close still goes, with its registration and
	// pinned memory, once nothing refers to it: sockets refer to it while
	// open, and the area stays mapped while frames are held.
	runtime.AddCleanup(u, func(x *xsk.UMEM) { _ = x.Close() }, x)
	return u, nil
}

// Memory reports whether the UMEM was made by NewMemory.
func (u *UMEM) Memory() bool { return u.x.Memory() }

// Options returns the options in effect, defaults applied.
func (u *UMEM) Options() Options { return u.opts }

// HugePages reports whether the area is on hugepages.
func (u *UMEM) HugePages() bool { return u.x.HugePages() }

// FrameSize returns the frame (chunk) size in bytes.
func (u *UMEM) FrameSize() uint32 { return u.opts.FrameSize }

// FrameCount returns the number of frames.
func (u *UMEM) FrameCount() uint32 { return u.opts.FrameCount }

// Headroom returns the configured headroom (not counting the kernel's 256).
func (u *UMEM) Headroom() uint32 { return u.opts.Headroom }

// Unaligned reports whether the UMEM is in unaligned chunk mode.
func (u *UMEM) Unaligned() bool { return u.opts.Unaligned }

// TXMetadataLen returns how many bytes are reserved for TX metadata in
// front of every transmitted packet: TXMetadataLen with
// Options.TXMetadata, else 0. A TX descriptor's data must start at least
// that far into its frame.
func (u *UMEM) TXMetadataLen() uint32 {
	if u.opts.TXMetadata {
		return TXMetadataLen
	}
	return 0
}

// FrameStart returns the start address of the frame a descriptor address
// points into.
func (u *UMEM) FrameStart(addr uint64) uint64 { return u.x.FrameStart(addr) }

// DataAddr returns the offset in the area that a descriptor address points
// to: addr itself in aligned mode; chunk address plus the offset in the
// top 16 bits in unaligned mode.
func (u *UMEM) DataAddr(addr uint64) uint64 { return u.x.DataAddr(addr) }

// Bytes returns n bytes of the area from descriptor address addr, without
// copying, or nil if they are not all inside the UMEM. See the package doc
// for how long they stay valid.
func (u *UMEM) Bytes(addr uint64, n uint32) []byte { return u.x.Bytes(addr, n) }

// Frame returns the bytes of the frame addr points into, from addr to the
// frame's end: the room to write a packet to send. It returns nil if addr
// is outside the UMEM.
func (u *UMEM) Frame(addr uint64) []byte { return u.x.Frame(addr) }

// Within returns the address of b's first byte when b is a non-empty
// slice of the frame that addr points into, not reaching past its end;
// ok is false otherwise (b is empty, another frame's, or not UMEM memory).
// A stage that moved a packet's start within its frame uses it to find
// the new descriptor address.
func (u *UMEM) Within(addr uint64, b []byte) (bAddr uint64, ok bool) { return u.x.Within(addr, b) }

// NewPool moves n free frames of the main pool into a new pool, for
// sockets that another goroutine drives (see the package doc). The free
// list is allocated here, so the per-packet path never allocates.
func (u *UMEM) NewPool(n int) (*Pool, error) {
	x, err := u.x.NewPool(n)
	if err != nil {
		return nil, fmt.Errorf("umem: %w", err)
	}
	p := &Pool{x: x, u: u}
	u.mu.Lock()
	u.pools = append(u.pools, p)
	u.mu.Unlock()
	return p, nil
}

// Pools returns every pool of the UMEM, the main one first.
func (u *UMEM) Pools() []*Pool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*Pool(nil), u.pools...)
}

// Counts returns how many frames are in each place, summed over all pools.
func (u *UMEM) Counts() Counts { return u.x.Counts() }

// Check verifies the accounting of all pools together: the counts add up
// to the frame count and agree with every frame's recorded state, no frame
// is on a free list twice, and no ownership error was seen. It locks every
// pool while it looks; call it when the pools are quiet to get a
// consistent picture.
func (u *UMEM) Check() error {
	if err := u.x.Check(); err != nil {
		return fmt.Errorf("umem: %w", err)
	}
	return nil
}

// Closed reports whether Close was called.
func (u *UMEM) Closed() bool { return u.x.Closed() }

// Close closes the UMEM: no socket may be opened on it and no frame be
// allocated from it any more. Its memory is unmapped once the sockets
// still using it are closed and the application has given back every
// frame it holds, so that nothing can touch freed memory; Close never
// waits for that. It is idempotent and nil-safe.
func (u *UMEM) Close() error {
	if u == nil {
		return nil
	}
	if err := u.x.Close(); err != nil {
		return fmt.Errorf("umem: %w", err)
	}
	return nil
}

// Pool is a set of a UMEM's frames with its own free list, counters and
// lock. Every UMEM has a main pool holding all frames at first; NewPool
// moves frames into further pools, so that sockets driven by different
// goroutines share one UMEM without contending for one lock. A frame
// belongs to one pool for its whole life; sockets on a pool receive into,
// transmit and free only that pool's frames. All methods are safe for
// concurrent use.
type Pool struct {
	x *xsk.Pool
	u *UMEM
}

// UMEM returns the UMEM the pool's frames belong to.
func (p *Pool) UMEM() *UMEM { return p.u }

// Counts returns how many of the pool's frames are in each place.
func (p *Pool) Counts() Counts { return p.x.Counts() }

// FreeFrames returns how many frames are on the free list.
func (p *Pool) FreeFrames() int { return p.x.FreeFrames() }

// Alloc takes a free frame for the application (Free → App) and returns
// its start address; ok is false when no frame is free or the UMEM is
// closed. It takes the pool's lock; AllocInto takes many frames under one.
func (p *Pool) Alloc() (addr uint64, ok bool) { return p.x.Alloc() }

// AllocInto takes up to len(addrs) free frames for the application and
// writes their start addresses into addrs; it returns how many, taking
// the lock once.
func (p *Pool) AllocInto(addrs []uint64) int { return p.x.AllocInto(addrs) }

// Free gives a frame the application holds back to the free list
// (App → Free). A frame the application does not hold in this pool (freed
// twice, still in the kernel, another pool's, outside the UMEM) is
// refused with an error wrapping ErrFrameState, and Check reports it.
func (p *Pool) Free(addr uint64) error { return p.x.Free(addr) }

// ReleaseDescs frees the frames of descs, which the application holds
// (App → Free), taking the lock once. Descriptors of frames it does not
// hold are skipped and the first such error is returned (wrapping
// ErrFrameState).
func (p *Pool) ReleaseDescs(descs []ring.Desc) error {
	p.x.Lock()
	bad := p.x.ReleaseLocked(descs)
	p.x.Unlock()
	if bad > 0 {
		return errReleased
	}
	return nil
}

var errReleased = fmt.Errorf("umem: release: frames not held by the application were skipped: %w", ErrFrameState)

// StateOf returns where the frame addr points into is; ok is false if
// addr is outside the UMEM or the frame belongs to another pool.
func (p *Pool) StateOf(addr uint64) (s State, ok bool) { return p.x.StateOf(addr) }

// Check verifies this pool's counts add up and that no ownership error was
// seen in it. UMEM.Check checks all pools together, more thoroughly.
func (p *Pool) Check() error {
	if err := p.x.Check(); err != nil {
		return fmt.Errorf("umem: %w", err)
	}
	return nil
}
