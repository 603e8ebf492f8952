// Package stages holds ready-made [pipeline.Stage]s for the common jobs
// of an AF_XDP program:
//
//   - [MACSwap] and [AddrSwap] send frames back to their sender, at the
//     Ethernet level or as UDP, TCP and ping replies: reflectors for load
//     generators and latency tests.
//   - [LoadBalancer] spreads the UDP and TCP flows to a virtual address
//     over backends, with a rendezvous-hashed table that moves few flows
//     when backends come and go.
//   - [RateLimiter] limits each source address to a rate and a burst.
//   - [FlowCounter] counts packets and bytes per 5-tuple and per protocol.
//   - [PcapWriter] writes the frames it sees to a pcap stream.
//
// Most stages read the headers the Runner parsed into [pipeline.Packet]
// and edit the frame in place; FlowCounter and MACSwap are
// [pipeline.FrameStage]s, which take a batch of frames in one call and
// read what they need from the bytes (FlowCounter the 5-tuple of common
// UDP and TCP frames directly, packet.Parse for the rest), so a Runner of
// only such stages parses nothing. Handle allocates nothing, and is safe on
// arbitrary bytes: a frame a stage cannot handle gets Malformed or is
// passed on (see each stage), never a panic. The tables of FlowCounter,
// RateLimiter and LoadBalancer are allocated by their constructors and
// never grow, so a flood of new flows or spoofed sources costs no memory.
//
//	lb, err := stages.NewLoadBalancer(netip.MustParseAddrPort("198.51.100.2:53"), backends, nil)
//	if err != nil {
//		return err
//	}
//	r, err := pipeline.New(pipeline.Config{
//		Socket: sock,
//		Stages: []pipeline.Stage{lb},
//	})
//
// # Concurrency
//
// Stages are not safe for concurrent use. A stage instance belongs to one
// Runner: call its methods on the Runner's goroutine (from a
// pipeline.Config.Tick, say) or after Run returned, and give each worker
// of a workers.Set its own instances. The one exception is
// [LoadBalancer.Stats], which may be called from any goroutine (but not
// during AddBackend or RemoveBackend).
package stages
