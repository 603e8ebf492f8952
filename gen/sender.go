package gen

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/packet"
)

// epoch is the zero of Now: stamps carry nanoseconds since it, on the
// monotonic clock; wallEpoch is the same instant in Unix nanoseconds, to
// bring a NIC's RX timestamps (real time) onto that clock.
var (
	epoch     = time.Now()
	wallEpoch = epoch.UnixNano()
)

// Now is the clock of stamps and pacing: monotonic nanoseconds since the
// process started.
func Now() int64 { return int64(time.Since(epoch)) }

// SeqQueueShift is where a sender's queue goes in its sequence numbers
// (SenderConfig.SeqBase), so replies can be matched to the sender that
// stamped them whichever queue they arrive on.
const SeqQueueShift = 48

// SenderConfig configures a Sender. Exactly one of Builder and Capture
// is set.
type SenderConfig struct {
	// Socket is the socket to send on. The sender allocates its frames
	// from the socket's pool and receives on it when Replies is set.
	Socket *afxdp.Socket
	// Builder writes the frames; Stamp makes each carry a sequence
	// number and its send time (Builder.Stamp).
	Builder *Builder
	Stamp   bool
	// Capture is replayed byte for byte, in order, Loops times (0: once;
	// -1: until Count, Duration or the context ends), at its recorded
	// pace divided by Speed (0: as fast as it goes), or at Rate.
	Capture *Capture
	Loops   int
	Speed   float64
	// Rate is frames a second; 0: as fast as the socket takes them.
	Rate float64
	// Batch is the most frames put on the ring at once; 0 means 64.
	Batch int
	// Count ends the run after that many frames (0: no limit), Duration
	// after that long (0: none); the context ends it too.
	Count    uint64
	Duration time.Duration
	// Tracker, with Stamp, records every sequence number sent (latency
	// mode). SeqBase is added to the sequence numbers: a sender's queue
	// << SeqQueueShift.
	Tracker *Tracker
	SeqBase uint64
	// Replies, when set, makes the sender receive on its socket too and
	// match each stamped reply to Replies[seq >> SeqQueueShift]: the
	// trackers of every sender whose replies may arrive here.
	Replies []*Tracker
	// RXTimestamps times replies by the RX timestamp the driver reported
	// (the socket's program has redirect.Options.RXMetadata) instead of
	// when the sender read them, where a reply has one within a second of
	// the system's clock (a NIC clock not kept in sync is ignored).
	RXTimestamps bool
	// FlushTimeout bounds the wait for the last frames' completions; 0
	// means 1 s.
	FlushTimeout time.Duration
}

// SenderStats are a sender's counts.
type SenderStats struct {
	Sent, Bytes uint64 // frames (and their bytes) the TX ring took
	RingFull    uint64 // times the TX ring or the pool had no room for a batch
	Received    uint64 // frames received (with Replies)
	RXBytes     uint64 // their bytes
	Replies     uint64 // of those, stamped replies matched to a tracker
	RXTimed     uint64 // of those, timed by their RX timestamp (RXTimestamps)
	Elapsed     time.Duration
}

// Sender sends frames on one socket: built, or replayed from a capture,
// paced, counted. Run drives it from one goroutine; Snapshot may be
// called from any.
type Sender struct {
	cfg                                                SenderConfig
	sent, bytes, full, recv, rxBytes, replies, rxTimed atomic.Uint64
	started, ended                                     atomic.Int64
}

// NewSender checks cfg.
func NewSender(cfg SenderConfig) (*Sender, error) {
	switch {
	case cfg.Socket == nil:
		return nil, errors.New("gen: sender: no socket")
	case (cfg.Builder == nil) == (cfg.Capture == nil):
		return nil, errors.New("gen: sender: need a Builder or a Capture, and not both")
	case cfg.Rate < 0 || cfg.Speed < 0 || cfg.Batch < 0:
		return nil, errors.New("gen: sender: negative Rate, Speed or Batch")
	case cfg.Capture != nil && len(cfg.Capture.Frames) == 0:
		return nil, errors.New("gen: sender: empty capture")
	}
	if cfg.Batch == 0 {
		cfg.Batch = 64
	}
	if cfg.FlushTimeout == 0 {
		cfg.FlushTimeout = time.Second
	}
	if cfg.Builder != nil {
		u := cfg.Socket.UMEM()
		off := int(u.TXMetadataLen())
		if cfg.Builder.Template().ChecksumOffload && off == 0 {
			return nil, errors.New("gen: sender: checksum offload needs a UMEM with TX metadata (umem.Options.TXMetadata)")
		}
		room := len(u.Frame(0)) - off // an aligned frame's room after the TX metadata
		for _, n := range cfg.Builder.Template().Sizes {
			if n > room {
				return nil, fmt.Errorf("gen: sender: frames of %d bytes do not fit the UMEM's %d bytes of room a frame", n, room)
			}
		}
	}
	return &Sender{cfg: cfg}, nil
}

// Snapshot returns the counts so far.
func (s *Sender) Snapshot() SenderStats {
	st := SenderStats{Sent: s.sent.Load(), Bytes: s.bytes.Load(), RingFull: s.full.Load(), Received: s.recv.Load(), RXBytes: s.rxBytes.Load(), Replies: s.replies.Load(), RXTimed: s.rxTimed.Load()}
	if t0 := s.started.Load(); t0 != 0 {
		end := s.ended.Load()
		if end == 0 {
			end = Now()
		}
		st.Elapsed = time.Duration(end - t0)
	}
	return st
}

// Run sends until Count, Duration, the capture's loops or ctx end, then
// waits (FlushTimeout at most) for the kernel to complete what it took.
func (s *Sender) Run(ctx context.Context) (SenderStats, error) {
	c := &s.cfg
	sock := c.Socket
	pool := sock.Pool()
	u := sock.UMEM()
	frameSize := uint64(u.FrameSize())
	// tags[frame] is 1 + the pattern index a frame holds (0: not a frame
	// Build wrote, or one the kernel received into): resending a frame that
	// holds the right pattern needs only its stamp.
	var tags []uint64
	var period uint64
	var offload bool
	var csumStart, csumOffset uint16
	if c.Builder != nil {
		tags = make([]uint64, u.FrameCount())
		period = uint64(c.Builder.Period())
		offload = c.Builder.Template().ChecksumOffload
		csumStart, csumOffset = c.Builder.ChecksumFields()
	}
	// With TX metadata the kernel reads it in front of the data: frames
	// start that far into their frame.
	dataOff := uint64(u.TXMetadataLen())
	var sizes []int
	var nSizes, nFrames uint64
	if c.Builder != nil {
		sizes = c.Builder.Template().Sizes
		nSizes = uint64(len(sizes))
	} else {
		nFrames = uint64(len(c.Capture.Frames))
	}
	var frameShift uint // a frame's index is its address >> frameShift (aligned, power-of-two frames)
	if !u.Unaligned() && frameSize&(frameSize-1) == 0 {
		frameShift = uint(bits.TrailingZeros64(frameSize))
	}
	var offsets []int64 // capture: each frame's send time in one loop, ns
	var loopLen int64
	if c.Capture != nil {
		fr := c.Capture.Frames
		offsets = make([]int64, len(fr))
		for i := range fr {
			offsets[i] = int64(fr[i].Time.Sub(fr[0].Time))
		}
		if n := len(fr); n > 1 {
			loopLen = offsets[n-1] + offsets[n-1]/int64(n-1) // one mean gap after the last frame
		}
	}
	var pacer *Pacer
	minBatch := 1
	start := Now()
	s.started.Store(start)
	defer func() { s.ended.Store(Now()) }()
	if c.Rate > 0 {
		// Batches of about a millisecond's frames, in a bucket of 50 ms:
		// a wake-up the scheduler delays (a loaded machine) costs no
		// frames, the sender catches up, and the mean rate holds.
		minBatch = max(1, min(c.Batch, int(c.Rate/1000)))
		pacer = NewPacer(c.Rate, max(2*c.Batch, int(c.Rate/20)), start)
		pacer.tokens = float64(minBatch) // no burst at the start: -count N at -rate R takes N/R
	}
	addrs := make([]uint64, c.Batch)
	descs := make([]afxdp.Desc, c.Batch)
	var rx []afxdp.Desc
	var h packet.Headers
	if c.Replies != nil {
		rx = make([]afxdp.Desc, c.Batch)
	}
	var i uint64 // frames sent: the next pattern index or capture frame
	total := c.Count
	if c.Capture != nil && c.Loops >= 0 {
		n := uint64(len(c.Capture.Frames)) * uint64(max(c.Loops, 1))
		if total == 0 || n < total {
			total = n
		}
	}
	var err error
	for {
		if ctx.Err() != nil {
			break
		}
		now := Now()
		if c.Duration > 0 && now-start >= int64(c.Duration) {
			break
		}
		if total > 0 && i >= total {
			break
		}
		sock.Complete()
		if rx != nil {
			s.receive(rx, &h, tags, frameSize)
		}
		want := c.Batch
		if total > 0 {
			want = int(min(uint64(want), total-i))
		}
		var n int
		switch {
		case pacer != nil:
			if pacer.tokens < float64(min(minBatch, want)) {
				pacer.Take(now, 0) // bring the bucket up to now
			}
			if pacer.tokens < float64(min(minBatch, want)) {
				s.sleep(ctx, pacer.Wait()+time.Duration(float64(min(minBatch, want)-1)/c.Rate*1e9))
				continue
			}
			n = pacer.Take(now, want)
		case c.Capture != nil && c.Speed > 0:
			// Frames whose recorded time (over Speed) has come.
			elapsed := float64(now-start) * c.Speed
			nf := uint64(len(offsets))
			for n < want {
				k := i + uint64(n)
				due := float64(int64(k/nf)*loopLen + offsets[k%nf])
				if due > elapsed {
					if n == 0 {
						s.sleep(ctx, time.Duration((due-elapsed)/c.Speed))
					}
					break
				}
				n++
			}
			if n == 0 {
				continue
			}
		default:
			n = want
		}
		k := pool.AllocInto(addrs[:n])
		if k == 0 {
			if pacer != nil {
				pacer.Return(n)
			}
			s.full.Add(1)
			if werr := sock.WaitTX(10 * time.Millisecond); werr != nil && !errors.Is(werr, afxdp.ErrTimeout) {
				err = werr
				break
			}
			continue
		}
		ts := Now()
		var bytes uint64
		// The pattern index, the size and the capture frame of the batch's
		// first frame; the loop steps them without a division per frame.
		var p, sk, fk uint64
		if c.Builder != nil {
			p, sk = i%period, i%nSizes
		} else {
			fk = i % nFrames
		}
		for j, a := range addrs[:k] {
			buf := u.Frame(a + dataOff)
			var l int
			if c.Builder != nil {
				idx := a >> frameShift
				if frameShift == 0 {
					idx = a / frameSize
				}
				if tags[idx] != p+1 {
					l = c.Builder.Build(buf, i+uint64(j), tags[idx] != 0)
					tags[idx] = p + 1
				} else {
					l = sizes[sk]
				}
				if c.Stamp {
					c.Builder.Stamp(buf[:l], c.SeqBase+i+uint64(j), ts)
					if c.Tracker != nil {
						c.Tracker.Sending(i + uint64(j))
					}
				}
				if p++; p == period {
					p = 0
				}
				if sk++; sk == nSizes {
					sk = 0
				}
			} else {
				l = copy(buf, c.Capture.Frames[fk].Data)
				if fk++; fk == nFrames {
					fk = 0
				}
			}
			descs[j] = afxdp.Desc{Addr: a + dataOff, Len: uint32(l)}
			if offload {
				if err := sock.RequestTXChecksum(&descs[j], csumStart, csumOffset); err != nil {
					for x := j + 1; x < k; x++ {
						descs[x] = afxdp.Desc{Addr: addrs[x]}
					}
					_ = sock.Release(descs[:k]) // no frame is lost on the way out
					return s.Snapshot(), fmt.Errorf("gen: send on %s queue %d: %w", sock.Interface(), sock.Queue(), err)
				}
			}
			bytes += uint64(l)
		}
		t, terr := sock.Transmit(descs[:k])
		if t < k {
			// Not taken: back to the pool, and the pacer's tokens back.
			// Their tags stay true: the frames were written.
			_ = sock.Release(descs[t:k])
			if pacer != nil {
				pacer.Return(k - t)
			}
			for _, d := range descs[t:k] {
				bytes -= uint64(d.Len)
			}
			s.full.Add(1)
		}
		if pacer != nil && k < n {
			pacer.Return(n - k)
		}
		i += uint64(t)
		if c.Tracker != nil && c.Stamp {
			c.Tracker.SentUpTo(i)
		}
		s.sent.Add(uint64(t))
		s.bytes.Add(bytes)
		if terr != nil && !errors.Is(terr, afxdp.ErrTXStalled) {
			err = terr
			break
		}
		if t == 0 {
			if werr := sock.WaitTX(10 * time.Millisecond); werr != nil && !errors.Is(werr, afxdp.ErrTimeout) {
				err = werr
				break
			}
		}
	}
	if err == nil {
		if ferr := sock.Flush(c.FlushTimeout); ferr != nil && !errors.Is(ferr, afxdp.ErrTimeout) {
			err = ferr
		}
	}
	s.ended.Store(Now())
	if err != nil {
		return s.Snapshot(), fmt.Errorf("gen: send on %s queue %d: %w", sock.Interface(), sock.Queue(), err)
	}
	return s.Snapshot(), nil
}

// sleep waits d, or until ctx ends; short waits spin, since a sleep is
// not that precise. A sender that receives waits on its socket instead,
// so a reply is taken (and timed) when it arrives, not at the next batch.
func (s *Sender) sleep(ctx context.Context, d time.Duration) {
	if d < 50*time.Microsecond {
		return
	}
	if s.cfg.Replies != nil {
		_ = s.cfg.Socket.Wait(d - 20*time.Microsecond)
		return
	}
	t := time.NewTimer(d - 20*time.Microsecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// receive takes what arrived on the socket and matches stamped replies.
func (s *Sender) receive(rx []afxdp.Desc, h *packet.Headers, tags []uint64, frameSize uint64) {
	sock := s.cfg.Socket
	n, err := sock.Receive(rx)
	if err != nil || n == 0 {
		return
	}
	now := Now()
	var matched, bytes, timed uint64
	for _, d := range rx[:n] {
		bytes += uint64(d.Len)
		at := now
		if s.cfg.RXTimestamps {
			if m, ok := sock.RXMetadata(d); ok && m.TimestampOK {
				if t, ok := rxTime(m.Timestamp, now); ok {
					at = t
					timed++
				}
			}
		}
		if tags != nil {
			tags[sock.UMEM().FrameStart(d.Addr)/frameSize] = 0 // the kernel wrote into it
		}
		seq, ts, ok := ReadStamp(sock.Frame(d), h)
		if !ok {
			continue
		}
		q := seq >> SeqQueueShift
		if q < uint64(len(s.cfg.Replies)) && s.cfg.Replies[q] != nil {
			s.cfg.Replies[q].Reply(seq&(1<<SeqQueueShift-1), time.Duration(at-ts))
			matched++
		}
	}
	_ = sock.Recycle(rx[:n])
	s.recv.Add(uint64(n))
	s.rxBytes.Add(bytes)
	s.replies.Add(matched)
	s.rxTimed.Add(timed)
}

// Drain only receives, until ctx ends: the replies to the last frames
// after Run has returned. It does nothing without Replies.
func (s *Sender) Drain(ctx context.Context) {
	if s.cfg.Replies == nil {
		return
	}
	rx := make([]afxdp.Desc, s.cfg.Batch)
	var h packet.Headers
	for ctx.Err() == nil {
		s.receive(rx, &h, nil, 0)
		err := s.cfg.Socket.Wait(10 * time.Millisecond)
		if err != nil && !errors.Is(err, afxdp.ErrTimeout) {
			return
		}
	}
}

// rxTime brings an RX timestamp (Unix nanoseconds, the NIC's clock) onto
// Now's clock; ok is false when it is more than a second from now, i.e.
// the NIC's clock is not the system's.
func rxTime(ts uint64, now int64) (int64, bool) {
	t := int64(ts) - wallEpoch
	if d := now - t; d < -int64(time.Second) || d > int64(time.Second) {
		return 0, false
	}
	return t, true
}
