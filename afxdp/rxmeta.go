package afxdp

import "github.com/xdpkit/xdpkit/redirect"

// RXMetadata is what the driver reported about a received frame through
// the XDP RX metadata kfuncs: its RX timestamp, RSS hash and stripped
// VLAN tag, each with an ok field. The redirect program stores it in front
// of the frame when attached with redirect.Options.RXMetadata (for a
// private program: Config.Redirect = &redirect.Options{RXMetadata: true}).
// See [redirect.RXMetadata] for the fields and what veth reports.
type RXMetadata = redirect.RXMetadata

// RXMetadata returns the RX metadata in front of the data of d, a
// received descriptor, and true; or false when there is none: the frame
// came through a program that stores none, or that could not store it for
// this frame (too little headroom), or the system is not Linux. Each field
// still has its own ok bit: on veth, for example, TimestampOK is always
// false and HashOK is false for frames that arrived as XDP frames (sent
// with XDP_TX or redirected by another XDP program) rather than as skbs.
//
// The metadata is read in the UMEM, in the [redirect.RXMetadataSize]
// bytes before the data, in aligned and unaligned mode alike, without copying the
// frame and without allocating. It is valid while the application holds
// the frame, as the frame's bytes are. For a packet of several
// descriptors (Config.MultiBuffer) pass the first one: the kernel writes
// the metadata in front of the first buffer only, and the headroom of the
// others may hold anything, stale metadata included.
//
// When the socket's redirect program is known (a private program, or a
// *redirect.Program as Config.Steering) and does not store metadata
// ([redirect.Program.RXMetadata] is false: attached without
// Options.RXMetadata, or from redirect.Use or AttachProgram), the result
// is false without looking at the frame: the headroom may still hold the
// metadata of a frame received in the same buffer earlier, through
// another program. With another Steering
// (NoSteering, an XSKMAP of your own) the magic word is all there is to go
// by, so only use RXMetadata if that program is an RXMetadata program
// (redirect.ParseRXMetadata describes the layout).
func (s *Socket) RXMetadata(d Desc) (RXMetadata, bool) { return s.rxMetadata(d) }
