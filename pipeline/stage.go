package pipeline

import (
	"fmt"

	"github.com/xdpkit/xdpkit/packet"
)

// Verdict is what a stage decides for a packet.
type Verdict uint8

const (
	// Continue passes the packet to the next stage. After the last stage
	// the Runner applies Config.Final.
	Continue Verdict = iota
	// Drop recycles the frame.
	Drop
	// Transmit sends the frame, as the stages left it, out of the socket
	// it came from.
	Transmit
	// Forward sends the frame out of Config.Targets[Packet.Out], a socket
	// sharing the UMEM.
	Forward
	// Malformed drops the frame and counts it as malformed: the stage
	// could not make sense of it.
	Malformed
)

func (v Verdict) String() string {
	switch v {
	case Continue:
		return "continue"
	case Drop:
		return "drop"
	case Transmit:
		return "transmit"
	case Forward:
		return "forward"
	case Malformed:
		return "malformed"
	}
	return fmt.Sprintf("Verdict(%d)", uint8(v))
}

// Packet is one received frame on its way through the stages. It is
// reused for every packet: stages must not keep it, or Data, after Handle
// returns.
type Packet struct {
	// Data is the frame, in the UMEM. Stages may change its bytes in
	// place and reslice it to another length within cap(Data), which
	// reaches to the end of the frame; the length it has after the last
	// stage is what is transmitted.
	Data []byte
	// Headers were parsed from Data before the first stage. A stage that
	// moves headers around calls Reparse.
	Headers packet.Headers
	// ParseErr is packet.ErrTruncated or packet.ErrMalformed if the frame
	// did not parse; Headers then holds what was parsed before.
	ParseErr error
	// Out selects the socket for Forward: an index into Config.Targets.
	Out int
	// Queue is the queue id of the socket the frame came from.
	Queue int
}

// Reparse parses Data again into Headers and ParseErr.
func (p *Packet) Reparse() error {
	p.ParseErr = packet.Parse(p.Data, &p.Headers)
	return p.ParseErr
}

// Stage handles one packet.
type Stage interface {
	Handle(p *Packet) Verdict
}

// Func adapts a function to a Stage.
type Func func(p *Packet) Verdict

// Handle calls f.
func (f Func) Handle(p *Packet) Verdict { return f(p) }

// Named is implemented by stages that want a name in the statistics.
type Named interface {
	Name() string
}

func stageName(s Stage, i int) string {
	if n, ok := s.(Named); ok {
		return n.Name()
	}
	return fmt.Sprintf("stage%d", i)
}
