//go:build !linux

package xsk

import (
	"fmt"
	"runtime"

	"github.com/xdpkit/xdpkit/ring"
)

// Only Linux has AF_XDP: New fails, so none of the methods below is ever
// reached through a value New made; they exist so that package umem
// compiles everywhere.

// UMEM is a mapped packet area; see the Linux implementation.
type UMEM struct{}

// Pool is a set of a UMEM's frames; see the Linux implementation.
type Pool struct{}

var errUnsupported = fmt.Errorf("AF_XDP on %s/%s: %w", runtime.GOOS, runtime.GOARCH, ErrNotSupported)

// New fails with ErrNotSupported.
func New(Config) (*UMEM, error) { return nil, errUnsupported }

// NewMemory fails with ErrNotSupported.
func NewMemory(Config) (*UMEM, error) { return nil, errUnsupported }

func (u *UMEM) Memory() bool { return false }

func (u *UMEM) Main() *Pool                          { return &Pool{} }
func (u *UMEM) HugePages() bool                      { return false }
func (u *UMEM) FrameStart(addr uint64) uint64        { return addr }
func (u *UMEM) DataAddr(addr uint64) uint64          { return addr }
func (u *UMEM) Bytes(uint64, uint32) []byte          { return nil }
func (u *UMEM) Frame(uint64) []byte                  { return nil }
func (u *UMEM) FrameHead(uint64) ([]byte, int)       { return nil, 0 }
func (u *UMEM) Within(uint64, []byte) (uint64, bool) { return 0, false }
func (u *UMEM) NewPool(int) (*Pool, error)           { return nil, errUnsupported }
func (u *UMEM) Pools() []*Pool                       { return nil }
func (u *UMEM) Counts() Counts                       { return Counts{} }
func (u *UMEM) Check() error                         { return errUnsupported }
func (u *UMEM) Closed() bool                         { return true }
func (u *UMEM) Close() error                         { return nil }
func (p *Pool) Counts() Counts                       { return Counts{} }
func (p *Pool) FreeFrames() int                      { return 0 }
func (p *Pool) Alloc() (uint64, bool)                { return 0, false }
func (p *Pool) AllocInto([]uint64) int               { return 0 }
func (p *Pool) Free(uint64) error                    { return errUnsupported }
func (p *Pool) Lock()                                {}
func (p *Pool) Unlock()                              {}
func (p *Pool) ReleaseLocked(descs []ring.Desc) int  { return len(descs) }
func (p *Pool) StateOf(uint64) (State, bool)         { return 0, false }
func (p *Pool) Check() error                         { return errUnsupported }

// Member is a socket's place in a UMEM; see the Linux implementation.
type Member struct {
	Pool     *Pool
	Pair     *Pair
	FD       int
	SharedFD int
}

// Pair is a queue's fill and completion ring pair; see the Linux
// implementation.
type Pair struct {
	Fill *ring.Fill
	Comp *ring.Completion
}
