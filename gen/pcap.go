package gen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// Frame is one frame to replay and when it was captured.
type Frame struct {
	Data []byte
	Time time.Time
}

// Capture is a capture file's frames, in file order.
type Capture struct {
	Frames []Frame
	Bytes  int // their total length
}

// Duration is the time from the first frame to the last.
func (c *Capture) Duration() time.Duration {
	if len(c.Frames) < 2 {
		return 0
	}
	return c.Frames[len(c.Frames)-1].Time.Sub(c.Frames[0].Time)
}

// MeanSize is the mean frame length.
func (c *Capture) MeanSize() float64 {
	if len(c.Frames) == 0 {
		return 0
	}
	return float64(c.Bytes) / float64(len(c.Frames))
}

// ErrCapture is wrapped by every error of ReadCapture about the file's
// contents.
var ErrCapture = errors.New("gen: unusable capture")

// ReadCapture reads a pcap or pcapng file of Ethernet frames (it tells
// them apart by their first bytes) into memory. Frames captured truncated
// (shorter than on the wire) are refused: replaying them would send other
// frames than were captured. maxFrame is the largest frame the caller can
// send (a UMEM frame's room); longer ones are refused too, naming the
// frame.
func ReadCapture(path string, maxFrame int) (*Capture, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gen: %w", err)
	}
	defer f.Close()
	c, err := readCapture(bufio.NewReader(f), maxFrame)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

type packetReader interface {
	ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	LinkType() layers.LinkType
}

func readCapture(r *bufio.Reader, maxFrame int) (*Capture, error) {
	magic, err := r.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCapture, err)
	}
	var pr packetReader
	if bytes.Equal(magic, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		pr, err = pcapgo.NewNgReader(r, pcapgo.DefaultNgReaderOptions)
	} else {
		pr, err = pcapgo.NewReader(r)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: not a pcap or pcapng file: %v", ErrCapture, err)
	}
	if lt := pr.LinkType(); lt != layers.LinkTypeEthernet {
		return nil, fmt.Errorf("%w: link type %v, want Ethernet", ErrCapture, lt)
	}
	c := &Capture{}
	for i := 1; ; i++ {
		data, ci, err := pr.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: frame %d: %v", ErrCapture, i, err)
		}
		switch {
		case ci.CaptureLength < ci.Length:
			return nil, fmt.Errorf("%w: frame %d was captured truncated (%d of %d bytes; capture with a larger snaplen)", ErrCapture, i, ci.CaptureLength, ci.Length)
		case len(data) < 14:
			return nil, fmt.Errorf("%w: frame %d has %d bytes, less than an Ethernet header", ErrCapture, i, len(data))
		case len(data) > maxFrame:
			return nil, fmt.Errorf("%w: frame %d has %d bytes, more than the %d a frame holds", ErrCapture, i, len(data), maxFrame)
		}
		c.Frames = append(c.Frames, Frame{Data: append([]byte(nil), data...), Time: ci.Timestamp})
		c.Bytes += len(data)
	}
	if len(c.Frames) == 0 {
		return nil, fmt.Errorf("%w: no frames", ErrCapture)
	}
	return c, nil
}
