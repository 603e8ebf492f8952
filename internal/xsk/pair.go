//go:build linux

package xsk

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/sys"
	"github.com/xdpkit/xdpkit/ring"
)

// Pair is the fill and completion ring pair of one (interface, queue):
// the kernel keeps one buffer pool per queue, and every socket bound to
// that queue with this UMEM shares it. Its rings are used under its
// pool's mutex.
type Pair struct {
	Fill *ring.Fill
	Comp *ring.Completion

	ifindex, queue int
	pool           *Pool
	local          uint16 // index in pool.pairs, recorded in its frames' meta

	refs     int       // sockets using the pair (under UMEM.mu)
	bound    []*Member // of those, the ones bound, which later sockets may name in XDP_SHARED_UMEM
	txFrames int       // frames in transmission through this pair (under pool.mu)
	onFill   int       // frames put on the fill ring and not yet received (under pool.mu)

	// The TX timestamps of completed frames, oldest first, for a UMEM
	// with TX metadata (see recordTXTimestamps): a ring as long as the
	// completion ring, under pool.mu.
	tsLog         []txTimestamp
	tsHead, tsLen int
	tsLost        uint64
}

// TXFramesLocked returns how many frames sent through the pair have not
// completed yet. Sockets bound to the same queue share the pair.
func (pr *Pair) TXFramesLocked() int { return pr.txFrames }

// RefillDueLocked reports whether a receive should restock the fill ring
// from the free list: there are free frames, and by the pool's own count
// at least a quarter of the ring has been consumed since it was last
// full. Below that the ring still holds plenty for the kernel, and
// frames handed straight back (Recycle) keep it stocked; skipping the
// refill then saves a read of the kernel's consumer index, which another
// CPU keeps writing, and a pass through the free list on every receive.
func (pr *Pair) RefillDueLocked() bool {
	return len(pr.pool.free) > 0 && pr.onFill <= int(pr.Fill.Size()-pr.Fill.Size()/4)
}

// Member is one socket's place in a UMEM: its file descriptor and ring
// pair, and what its bind must say.
type Member struct {
	u    *UMEM
	Pool *Pool
	Pair *Pair
	// FD is the socket, owned by the Member and closed by Leave.
	FD int
	// SharedFD, when not -1, is a bound socket of the same UMEM the bind
	// must name with XDP_SHARED_UMEM; -1 means the UMEM is registered on
	// FD itself and the bind is a plain one. It is a dup owned by the
	// Member until Bound or Leave, so that the socket it names stays alive
	// (and its number unused by others) if that socket is closed first.
	SharedFD int

	bound, left bool
}

// Join makes a socket for (ifindex, queue) that uses pool p of u, with
// the fill and completion rings its bind needs: the queue's existing pair
// if another socket of u is bound there, else a new pair mapped on the new
// socket. The first socket of a UMEM (or the first after all others have
// closed) gets the UMEM registered on itself; later ones share it.
func (u *UMEM) Join(ifindex, queue int, p *Pool) (_ *Member, err error) {
	return u.JoinFD(ifindex, queue, p, -1)
}

// JoinFD is Join with fd, when it is not negative, as the socket: an
// AF_XDP socket made elsewhere (handed over, inherited), so that no
// socket(2) is needed. It binds sharing the UMEM when another socket of
// u is bound, or else gets u registered on itself. JoinFD owns fd from
// the call on: it closes it when it fails.
func (u *UMEM) JoinFD(ifindex, queue int, p *Pool, fd int) (*Member, error) {
	if fd < 0 {
		return u.join(ifindex, queue, p, -1)
	}
	if err := sys.AdoptSocket(fd); err != nil {
		_ = sys.Close(fd)
		return nil, fmt.Errorf("the socket handed over: %w: %w", ErrInvalidConfig, err)
	}
	m, err := u.join(ifindex, queue, p, fd)
	if err != nil {
		_ = sys.Close(fd) // join leaves a handed socket to us
	}
	return m, err
}

func (u *UMEM) join(ifindex, queue int, p *Pool, fd int) (_ *Member, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch {
	case u.closed:
		return nil, fmt.Errorf("UMEM: %w", ErrClosed)
	case p.u != u:
		return nil, fmt.Errorf("the pool belongs to another UMEM: %w", ErrInvalidConfig)
	}
	var pr *Pair
	var share *Member // a bound socket to name in XDP_SHARED_UMEM
	for _, q := range u.pools {
		for _, x := range q.pairs {
			if x == nil {
				continue
			}
			if x.ifindex == ifindex && x.queue == queue {
				pr = x
			}
			if share == nil && len(x.bound) > 0 {
				share = x.bound[0]
			}
		}
	}
	if pr != nil {
		if pr.pool != p {
			return nil, fmt.Errorf("queue %d already has a socket of this UMEM with another pool: sockets on one queue share its fill and completion rings, so they must share a pool: %w", queue, ErrInvalidConfig)
		}
		if len(pr.bound) == 0 {
			return nil, fmt.Errorf("another socket of this UMEM is being opened on queue %d: %w", queue, unix.EBUSY)
		}
		share = pr.bound[0] // same queue: the kernel shares the buffer pool only with a socket of that queue
	}

	if u.memory {
		return nil, fmt.Errorf("a memory UMEM has no kernel registration: only memory sockets use it: %w", ErrInvalidConfig)
	}
	m := &Member{u: u, Pool: p, FD: -1, SharedFD: -1}
	defer func() {
		if err != nil && m.FD >= 0 && m.FD != fd { // a handed socket is JoinFD's to close
			_ = sys.Close(m.FD)
		}
		if err != nil {
			m.closeShared()
		}
	}()
	switch {
	case share != nil && fd >= 0:
		m.FD = fd
		if m.SharedFD, err = sys.Dup(share.FD); err != nil {
			m.SharedFD = -1
			return nil, fmt.Errorf("dup the socket to share the UMEM with: %w", err)
		}
	case fd >= 0:
		m.FD = fd
		if err = u.registerOn(fd); err != nil {
			return nil, fmt.Errorf("register %d x %d bytes on the socket handed over: %w", u.cfg.FrameCount, u.cfg.FrameSize, err)
		}
	case share != nil:
		if m.FD, err = sys.Socket(); err != nil {
			return nil, fmt.Errorf("open AF_XDP socket: %w", SocketError(err))
		}
		// share may be closed before our bind names it: keep it alive.
		if m.SharedFD, err = sys.Dup(share.FD); err != nil {
			m.SharedFD = -1
			return nil, fmt.Errorf("dup the socket to share the UMEM with: %w", err)
		}
	case u.spareFD >= 0 && u.inSpareNS():
		m.FD, u.spareFD = u.spareFD, -1
	default:
		if m.FD, err = u.register(); err != nil {
			return nil, err
		}
	}
	if pr == nil {
		if pr, err = u.newPair(m.FD, ifindex, queue, p); err != nil {
			return nil, err
		}
	}
	pr.refs++
	u.members++
	m.Pair = pr
	return m, nil
}

// inSpareNS reports whether the calling thread is in the network
// namespace the spare registration was made in: a socket binds to
// interfaces of its own namespace, so a socket opened elsewhere (in a
// test's peer namespace, say) needs a registration of its own.
func (u *UMEM) inSpareNS() bool {
	dev, ino, err := sys.NetNS()
	return err == nil && [2]uint64{dev, ino} == u.spareNS
}

// newPair sizes and maps a fill and completion ring on fd and enters them
// in p's table. Caller holds u.mu.
func (u *UMEM) newPair(fd, ifindex, queue int, p *Pool) (*Pair, error) {
	if err := sys.SetRingSize(fd, unix.XDP_UMEM_FILL_RING, u.cfg.FillRingSize); err != nil {
		return nil, fmt.Errorf("set fill ring size %d: %w", u.cfg.FillRingSize, err)
	}
	if err := sys.SetRingSize(fd, unix.XDP_UMEM_COMPLETION_RING, u.cfg.CompletionRingSize); err != nil {
		return nil, fmt.Errorf("set completion ring size %d: %w", u.cfg.CompletionRingSize, err)
	}
	off, err := sys.MmapOffsets(fd)
	if err != nil {
		return nil, fmt.Errorf("get ring offsets: %w", err)
	}
	pr := &Pair{ifindex: ifindex, queue: queue, pool: p}
	if pr.Fill, err = ring.MapFill(fd, off.Fr, u.cfg.FillRingSize); err != nil {
		return nil, fmt.Errorf("fill ring: %w", err)
	}
	if pr.Comp, err = ring.MapCompletion(fd, off.Cr, u.cfg.CompletionRingSize); err != nil {
		_ = pr.Fill.Close()
		return nil, fmt.Errorf("completion ring: %w", err)
	}
	if err := p.addPair(pr); err != nil {
		_ = errors.Join(pr.Fill.Close(), pr.Comp.Close())
		return nil, err
	}
	return pr, nil
}

// addPair enters pr in p's table, at the lowest free index.
func (p *Pool) addPair(pr *Pair) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := len(p.pairs)
	for i, x := range p.pairs {
		if x == nil {
			l = i
			break
		}
	}
	if l > 0xffff {
		return errors.New("too many ring pairs on one pool")
	}
	pr.local = uint16(l)
	if p.u.txmdLen != 0 && pr.Comp != nil && len(pr.tsLog) == 0 {
		pr.tsLog = make([]txTimestamp, pr.Comp.Size()) // a power of two
	}
	if l == len(p.pairs) {
		p.pairs = append(p.pairs, pr)
	} else {
		p.pairs[l] = pr
	}
	return nil
}

// Bound records that m's socket is bound: later sockets may share the
// UMEM through it.
func (m *Member) Bound() {
	m.u.mu.Lock()
	defer m.u.mu.Unlock()
	m.bound = true
	m.Pair.bound = append(m.Pair.bound, m)
	m.closeShared()
}

// closeShared closes the dup of the socket the bind named. Caller holds
// u.mu (or owns m alone).
func (m *Member) closeShared() {
	if m.SharedFD >= 0 {
		_ = sys.Close(m.SharedFD)
		m.SharedFD = -1
	}
}

// Leave closes m's socket, which the caller has unbound from its rings
// (unmapped RX and TX, drained what it could). When m was the last socket
// of its ring pair, the pair's rings are unmapped too — the kernel then
// releases the queue — and the frames still on its fill ring or in
// transmission return to the pool. A closed UMEM whose last socket this
// was is unmapped if the application holds none of its frames.
// Idempotent.
func (m *Member) Leave() error {
	u := m.u
	u.mu.Lock()
	if m.left {
		u.mu.Unlock()
		return nil
	}
	m.left = true
	m.closeShared()
	pr := m.Pair
	var errs []error
	if i := indexOf(pr.bound, m); i >= 0 {
		pr.bound = append(pr.bound[:i], pr.bound[i+1:]...)
	}
	if m.FD >= 0 { // a memory socket has none
		errs = append(errs, sys.Close(m.FD))
	}
	m.FD = -1
	u.members--
	if pr.refs--; pr.refs == 0 {
		// Unmapping the last view of the rings drops the last reference to
		// the sockets they were mapped from: the kernel unbinds them now,
		// and the frames it had are nobody's.
		errs = append(errs, pr.Fill.Close(), pr.Comp.Close())
		p := pr.pool
		p.mu.Lock()
		p.reclaimPairLocked(pr.local)
		p.pairs[pr.local] = nil
		p.mu.Unlock()
	}
	u.mu.Unlock()
	errs = append(errs, u.tryUnmap())
	return errors.Join(errs...)
}

// SharesPair reports whether other sockets use m's ring pair (sockets of
// the same UMEM bound to the same queue).
func (m *Member) SharesPair() bool {
	m.u.mu.Lock()
	defer m.u.mu.Unlock()
	return m.Pair.refs > 1
}

func indexOf(ms []*Member, m *Member) int {
	for i, x := range ms {
		if x == m {
			return i
		}
	}
	return -1
}
