package stages

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/xdpkit/xdpkit/pipeline"
)

// MaxSnaplen is the largest snapshot length NewPcapWriter takes, and the
// default: tcpdump's limit.
const MaxSnaplen = 262144

// DefaultPcapBufferSize is the output buffer of a PcapWriter whose
// PcapOptions.BufferSize is 0.
const DefaultPcapBufferSize = 1 << 20

// PcapOptions configure a PcapWriter. A nil *PcapOptions means the zero
// value.
type PcapOptions struct {
	// Nanoseconds writes nanosecond timestamps (pcap magic 0xa1b23c4d).
	// Zero value: microseconds (0xa1b2c3d4), which every tool reads.
	Nanoseconds bool
	// BufferSize is the output buffer's size in bytes; records go to the
	// io.Writer when it fills, and on Flush and Close. Zero means
	// DefaultPcapBufferSize.
	BufferSize int
	// Now returns a frame's capture time. Nil means time.Now, read per
	// frame (through the vDSO, 20-50 ns).
	Now func() time.Time
	// RXTimestamps writes a frame's RX timestamp from the XDP RX metadata
	// (redirect.Options.RXMetadata; pipeline.Packet.RXMetadata) when the
	// driver gave one, and Now's time otherwise. Drivers report the NIC's
	// clock, which is the system's real time only if it is kept in sync
	// (phc2sys). RXTimestamped counts the frames that had one.
	RXTimestamps bool
}

// PcapWriter is a stage that writes every frame to a pcap stream
// (libpcap format, link type Ethernet), cut to the snapshot length, and
// returns Continue. Put it first to capture what arrives, or after a
// filter to capture what it let through.
//
// The file header is written by gopacket's pcapgo.Writer. The 16-byte
// record headers are written here into a reused array, into a
// bufio.Writer: pcapgo.Writer.WritePacket does not allocate when it
// succeeds, but allocates six times per call when it fails and wraps the
// cause with %v, so errors.Is could not see it.
//
// A write error does not stop the pipeline: the first one is kept for
// Err, and every frame not written from then on is counted by Errors.
// The stream may end in a partial record then.
//
// Handle allocates nothing. A PcapWriter is not safe for concurrent use:
// call Flush and Close on the Runner's goroutine or after Run returned.
type PcapWriter struct {
	bw       *bufio.Writer
	snaplen  int
	divisor  int // nanoseconds per timestamp unit: 1 or 1000
	now      func() time.Time
	rxts     bool
	rxStamps uint64
	hdr      [16]byte // record header, reused
	packets  uint64
	bytes    uint64
	errors   uint64
	err      error // the first write error, wrapped
	closed   bool
	closeErr error
}

var _ interface {
	pipeline.Stage
	pipeline.Named
	pipeline.Raw
} = (*PcapWriter)(nil)

// Raw marks PcapWriter as reading only Packet.Data: a Runner that only
// captures does not parse frames.
func (w *PcapWriter) Raw() {}

// NewPcapWriter writes a pcap file header to w and returns a PcapWriter
// that writes frames after it. snaplen is the most bytes of a frame kept:
// 0 means MaxSnaplen. opts may be nil. The header goes out to w before
// NewPcapWriter returns, so an error from w shows here.
//
// The caller still owns w: Close flushes the PcapWriter but does not
// close w.
func NewPcapWriter(w io.Writer, snaplen int, opts *PcapOptions) (*PcapWriter, error) {
	if opts == nil {
		opts = &PcapOptions{}
	}
	switch {
	case w == nil:
		return nil, fmt.Errorf("stages: pcap: writer is nil")
	case snaplen == 0:
		snaplen = MaxSnaplen
	case snaplen < 0 || snaplen > MaxSnaplen:
		return nil, fmt.Errorf("stages: pcap: invalid snaplen %d: must be 0 (%d) to %d", snaplen, MaxSnaplen, MaxSnaplen)
	}
	size := opts.BufferSize
	switch {
	case size == 0:
		size = DefaultPcapBufferSize
	case size < 16:
		return nil, fmt.Errorf("stages: pcap: invalid buffer size %d: must be 0 (%d) or at least 16", size, DefaultPcapBufferSize)
	}
	pw := &PcapWriter{
		bw:      bufio.NewWriterSize(w, size),
		snaplen: snaplen,
		divisor: 1000,
		now:     opts.Now,
		rxts:    opts.RXTimestamps,
	}
	fw := pcapgo.NewWriter(pw.bw)
	if opts.Nanoseconds {
		fw = pcapgo.NewWriterNanos(pw.bw)
		pw.divisor = 1
	}
	if err := fw.WriteFileHeader(uint32(snaplen), layers.LinkTypeEthernet); err != nil {
		return nil, fmt.Errorf("stages: pcap: write file header: %w", err)
	}
	if err := pw.bw.Flush(); err != nil {
		return nil, fmt.Errorf("stages: pcap: write file header: %w", err)
	}
	return pw, nil
}

// Name returns "pcap".
func (w *PcapWriter) Name() string { return "pcap" }

// Handle writes p's frame and returns Continue.
func (w *PcapWriter) Handle(p *pipeline.Packet) pipeline.Verdict {
	if w.err != nil || w.closed {
		w.errors++
		return pipeline.Continue
	}
	var t time.Time
	if w.rxts {
		if m, ok := p.RXMetadata(); ok && m.TimestampOK {
			t = time.Unix(0, int64(m.Timestamp))
			w.rxStamps++
		}
	}
	switch {
	case !t.IsZero():
	case w.now != nil:
		t = w.now()
	default:
		t = time.Now()
	}
	data := p.Data[:min(len(p.Data), w.snaplen)]
	le := binary.LittleEndian
	le.PutUint32(w.hdr[0:], uint32(t.Unix()))
	le.PutUint32(w.hdr[4:], uint32(t.Nanosecond()/w.divisor))
	le.PutUint32(w.hdr[8:], uint32(len(data)))
	le.PutUint32(w.hdr[12:], uint32(len(p.Data)))
	if _, err := w.bw.Write(w.hdr[:]); err != nil {
		w.fail(err)
		return pipeline.Continue
	}
	if _, err := w.bw.Write(data); err != nil {
		w.fail(err)
		return pipeline.Continue
	}
	w.packets++
	w.bytes += uint64(len(data))
	return pipeline.Continue
}

// fail records a write error: the frame is not written, and neither is
// any after it (a bufio.Writer keeps failing once it failed).
func (w *PcapWriter) fail(err error) {
	w.errors++
	w.err = fmt.Errorf("stages: pcap: write: %w", err)
}

// Flush writes the buffered records to the io.Writer. It returns Err.
func (w *PcapWriter) Flush() error {
	if w.err == nil && !w.closed {
		if err := w.bw.Flush(); err != nil {
			w.err = fmt.Errorf("stages: pcap: write: %w", err)
		}
	}
	return w.err
}

// Close flushes and stops writing: frames handled after it are counted
// by Errors. It does not close the io.Writer. It returns Err as it was
// then, every time it is called.
func (w *PcapWriter) Close() error {
	if !w.closed {
		w.closeErr = w.Flush()
		w.closed = true
	}
	return w.closeErr
}

// Err returns the first write error, or nil. The cause is wrapped:
// errors.Is(err, os.ErrClosed) and the like see it.
func (w *PcapWriter) Err() error { return w.err }

// Packets returns how many frames were written to the buffer. Records
// still buffered when a later write to the io.Writer fails are counted
// here but lost.
func (w *PcapWriter) Packets() uint64 { return w.packets }

// Bytes returns how many frame bytes were written, after snaplen cut them.
func (w *PcapWriter) Bytes() uint64 { return w.bytes }

// RXTimestamped returns how many frames were written with the RX
// timestamp of their metadata (PcapOptions.RXTimestamps).
func (w *PcapWriter) RXTimestamped() uint64 { return w.rxStamps }

// Errors returns how many frames were not written, because of a write
// error or because the PcapWriter was closed.
func (w *PcapWriter) Errors() uint64 { return w.errors }
