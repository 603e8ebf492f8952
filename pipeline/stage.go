package pipeline

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/fastpath"
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
	// Headers were parsed from Data before the first stage, unless every
	// stage of the Runner is Raw (then they are zero: a Raw stage that
	// wants them after all calls Reparse). A stage that moves headers
	// around calls Reparse.
	Headers packet.Headers
	// ParseErr is packet.ErrTruncated or packet.ErrMalformed if the frame
	// did not parse; Headers then holds what was parsed before.
	ParseErr error
	// Out selects the socket for Forward: an index into Config.Targets.
	Out int
	// Queue is the queue id of the socket the frame came from.
	Queue int

	// The Runner's, for Offload: the fast path and the stage running.
	runner *Runner
	stage  int
	// For Prepend: the frame's descriptor (in a Runner) or the frame
	// SetFrame gave, and how far Data has grown at the front.
	desc      afxdp.Desc
	frame     []byte
	frameOff  int
	prepended int
	reparsed  bool // Reparse ran on a Runner that does not parse: clear Headers for the next frame
	l4csum    bool // LeaveL4Checksum: request the checksum at transmit
}

// LeaveL4Checksum asks that the frame's UDP or TCP checksum be finished
// when it is sent: by the NIC, or in copy mode by the kernel (afxdp's TX
// metadata checksum request; umem.Options.TXSoftwareChecksum makes the
// kernel compute it at send). A stage that rewrote addresses or ports
// calls it instead of updating the checksum; the Runner then writes the
// pseudo-header's sum into the checksum field and requests the rest
// (afxdp.Socket.RequestL4Checksum) for a frame that ends in Transmit or
// Forward. A frame it cannot request it for (not UDP or TCP, a fragment)
// is dropped and counted in Stats.BadData. It needs TX metadata in the
// socket's UMEM (ErrNoTXMetadata).
func (p *Packet) LeaveL4Checksum() error {
	if p.runner == nil || p.runner.cfg.Socket.UMEM().TXMetadataLen() == 0 {
		return ErrNoTXMetadata
	}
	p.l4csum = true
	return nil
}

// RXMetadata returns what the redirect program stored in front of the
// frame when it was received (redirect.Options.RXMetadata: the RX
// timestamp, RSS hash and VLAN tag the driver reported). ok is false
// outside a Runner, for a program without RXMetadata, and once Prepend
// has written over it; each field has its own ok bit for what the driver
// did not report.
func (p *Packet) RXMetadata() (m afxdp.RXMetadata, ok bool) {
	if p.runner == nil || p.prepended != 0 {
		return m, false
	}
	return p.runner.cfg.Socket.RXMetadata(p.desc)
}

// SetFrame makes frame, with the packet's bytes from offset off on, what
// Prepend grows Data into, for stages run outside a Runner (tests, say):
// Data becomes frame[off:off+n] for its current length n. In a Runner
// each packet's frame is its UMEM frame.
func (p *Packet) SetFrame(frame []byte, off int) {
	n := len(p.Data)
	p.frame, p.frameOff, p.prepended = frame, off, 0
	p.Data = frame[off : off+n : len(frame)]
}

// Prepend grows Data by n bytes at the front, into the frame's headroom,
// and reports whether it could: the headroom is too small, or Data no
// longer starts where the Runner (or SetFrame, or the last Prepend) left
// it, if not. The new bytes are not cleared. A received frame has at
// least 256 bytes of headroom (XDP_PACKET_HEADROOM), enough for a tunnel
// header or two. Headers still describe the packet as it was: call
// Reparse.
func (p *Packet) Prepend(n int) bool {
	frame, off := p.frame, p.frameOff
	if frame == nil && p.runner != nil {
		frame, off = p.runner.cfg.Socket.FrameHeadroom(p.desc)
	}
	off -= p.prepended
	if n < 0 || frame == nil || len(p.Data) == 0 || off < n || off+len(p.Data) > len(frame) || &frame[off] != &p.Data[0] {
		return false
	}
	p.Data = frame[off-n : off+len(p.Data) : len(frame)]
	p.prepended += n
	return true
}

// ErrNoFastPath is matched by the error of Packet.Offload when the
// Runner has no Config.FastPath.
var ErrNoFastPath = errors.New("pipeline: no fast path to offload to (set Config.FastPath)")

// ErrNoTXMetadata is LeaveL4Checksum's error on a socket whose UMEM has
// no TX metadata (umem.Options.TXMetadata), or outside a Runner.
var ErrNoTXMetadata = errors.New("pipeline: no TX metadata to request a checksum in (open the socket with umem.Options{TXMetadata: true})")

// ErrNoFlow is matched by the error of Packet.Offload for a packet
// without a TCP or UDP 5-tuple the fast path can match.
var ErrNoFlow = errors.New("pipeline: the packet has no TCP or UDP 5-tuple to offload")

// Flow returns the packet's 5-tuple as the fast path's flow table keys
// it, from Headers; ok is false for a packet that is not an unfragmented
// TCP or UDP packet over IPv4 or IPv6, or did not parse.
func (p *Packet) Flow() (f fastpath.Flow, ok bool) {
	h := &p.Headers
	if p.ParseErr != nil || (!h.IPv4 && !h.IPv6) || h.Fragment || h.L4Off == 0 ||
		(h.IPProto != packet.ProtoTCP && h.IPProto != packet.ProtoUDP) {
		return fastpath.Flow{}, false
	}
	return fastpath.Flow{Src: h.SrcIP, Dst: h.DstIP, SrcPort: h.SrcPort, DstPort: h.DstPort, Proto: h.IPProto}, true
}

// Offload hands the decision for the rest of the packet's flow to the
// XDP program: it installs e in Config.FastPath for the packet's 5-tuple
// (see Flow), so the flow's next frames are dropped, passed, rewritten
// and transmitted or encapsulated in the kernel and no longer reach the
// socket. The packet itself still gets the verdict the stage returns;
// a stage that rewrites it should apply to it what e applies to the
// others. Call it with the headers as the packet arrived (before a
// rewrite changes Headers), once per flow: frames already on their way
// to the socket may still arrive, and installing again replaces the
// entry and resets its counters.
//
// It costs a map update syscall: offload flows that will carry many
// packets. The kernel matches only frames with the plain headers it
// parses (no IPv4 options, IPv6 extension headers or VLAN tags); frames
// of the flow it cannot match keep coming to the socket. Successful
// offloads are counted in Stats.Offloaded and the stage's
// StageStats.Offloaded, failures in Stats.OffloadErrors.
func (p *Packet) Offload(e fastpath.Entry) error {
	f, ok := p.Flow()
	return p.OffloadFlow(f, ok, e)
}

// BlockSource has the XDP program drop every frame from the packet's
// source address from now on (fastpath.FastPath.SetPolicy with a /32 or
// /128 Block prefix): what a detector does with an abusive source. The
// block stays until the FastPath's DeletePolicy removes it. It counts in
// Stats.Offloaded like Offload, failures in Stats.OffloadErrors; a
// packet without an IP source fails with ErrNoFlow.
func (p *Packet) BlockSource() error {
	r := p.runner
	if r == nil || r.cfg.FastPath == nil {
		return ErrNoFastPath
	}
	src := p.Headers.SrcIP
	if p.ParseErr != nil || !src.IsValid() {
		r.stats.OffloadErrors++
		return ErrNoFlow
	}
	src = src.Unmap()
	if err := r.cfg.FastPath.SetPolicy(netip.PrefixFrom(src, src.BitLen()), fastpath.Block); err != nil {
		r.stats.OffloadErrors++
		return err
	}
	r.offloaded(p.stage)
	return nil
}

// OffloadFlow is Offload for a flow of the stage's choosing, for example
// the reverse direction of the packet's (ok false fails with ErrNoFlow,
// so the result of Flow can be passed on directly).
func (p *Packet) OffloadFlow(f fastpath.Flow, ok bool, e fastpath.Entry) error {
	r := p.runner
	if r == nil || r.cfg.FastPath == nil {
		return ErrNoFastPath
	}
	if !ok {
		r.stats.OffloadErrors++
		return ErrNoFlow
	}
	if err := r.cfg.FastPath.Install(f, e); err != nil {
		r.stats.OffloadErrors++
		return err
	}
	r.offloaded(p.stage)
	return nil
}

// Reparse parses Data again into Headers and ParseErr.
func (p *Packet) Reparse() error {
	p.ParseErr = packet.Parse(p.Data, &p.Headers)
	p.reparsed = true
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

// Raw is implemented by stages that read only Packet.Data, never
// Packet.Headers or ParseErr. A Runner whose stages are all Raw (or that
// has none, Final deciding every frame) does not parse frames at all,
// which is most of its per-frame cost for a stage that only drops,
// reflects or copies frames; Stats.ParseErrors then stays 0. A Raw stage
// that needs the headers of some frames calls Packet.Reparse for them.
type Raw interface {
	Raw()
}

// RawFunc adapts a function that reads only Packet.Data to a Raw Stage.
type RawFunc func(p *Packet) Verdict

// Handle calls f.
func (f RawFunc) Handle(p *Packet) Verdict { return f(p) }

// Raw marks f as a Raw stage.
func (f RawFunc) Raw() {}

// FrameBatch is a batch of received frames for a [FrameStage]: the
// frames, and a verdict and a Forward target for each.
type FrameBatch struct {
	// Frames are the frames' bytes in the UMEM, each as Packet.Data: a
	// stage may change them in place and, unless it is InPlace, reslice
	// them within their capacity; the length a frame has after the last
	// stage is what is transmitted.
	Frames [][]byte
	// Verdicts[i] is the verdict for Frames[i]: Continue on entry.
	Verdicts []Verdict
	// Out[i] is Packet.Out for Frames[i]: with Forward, an index into
	// Config.Targets. 0 on entry.
	Out []int
}

// FrameStage is implemented by Raw stages that take a whole batch of
// frames in one call. When every stage of a Runner is a FrameStage, the
// Runner calls HandleFrames once per stage and batch, with the frames no
// stage before decided, instead of Handle once per packet and stage: the
// call per packet, and the Packet it fills, are then gone, and the
// stage's loop over the batch keeps its state in registers: in the
// bench, a RawFunc that drops every frame costs 66 more instructions per
// frame than the same FrameStage, most of them to store and reload what
// the loop holds around each call, which Go's calling convention does
// not keep in registers. Among other stages it gets batches of one. A
// FrameStage sees no Packet, so it has no headers, Prepend or Offload;
// it must not keep the batch or its frames after HandleFrames returns.
type FrameStage interface {
	Stage
	Raw
	HandleFrames(b *FrameBatch)
}

// InPlace is implemented by FrameStages that may change their frames'
// bytes but never the frames themselves: every b.Frames[i] they leave is
// the slice they were given, neither resliced nor replaced
// (stages.MACSwap, FlowCounter, and LoadBalancer when it takes batches).
// A Runner whose stages all are InPlace sends each frame at the address
// and length it was received with, its bytes as the stages left them, and
// skips the check for moved frames (a copy of the batch's slices, and two
// compares per frame sent: 19 of MACSwap reflect's 218 instructions per
// frame in the bench's user-space ceiling). A stage that says it and
// moves a frame anyway has the move ignored, not the frame lost: it goes
// out as received, so the frame accounting holds either way.
type InPlace interface {
	FrameStage
	InPlace()
}

// ConditionalFrameStage is implemented by FrameStages that take batches
// only in some of their configurations (stages.LoadBalancer: not when it
// encapsulates, which needs Packet.Prepend). New asks TakesFrames once:
// when it is false, the Runner runs the stage as a Stage that is not
// Raw, parsing the headers for it and calling Handle per packet.
type ConditionalFrameStage interface {
	FrameStage
	TakesFrames() bool
}

// FramesFunc adapts a function to a FrameStage.
type FramesFunc func(b *FrameBatch)

// HandleFrames calls f.
func (f FramesFunc) HandleFrames(b *FrameBatch) { f(b) }

// Raw marks f as a Raw stage.
func (f FramesFunc) Raw() {}

// Handle calls f with a batch of p alone, for callers other than a
// Runner (which calls HandleFrames); it allocates the batch.
func (f FramesFunc) Handle(p *Packet) Verdict {
	b := FrameBatch{Frames: [][]byte{p.Data}, Verdicts: []Verdict{Continue}, Out: []int{p.Out}}
	f(&b)
	p.Data, p.Out = b.Frames[0], b.Out[0]
	return b.Verdicts[0]
}

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
