// Package gen generates traffic on AF_XDP sockets: the frames (UDP, TCP
// SYN, ICMP echo over IPv4 or IPv6, fixed sizes or IMIX, N flows, a VLAN
// tag, valid checksums), the pacing (a token bucket), pcap and pcapng
// replay, and the matching of replies for round-trip times, loss,
// reordering and duplicates. examples/xdp-gen is a tool built on it.
//
//	b, err := gen.NewBuilder(gen.Template{SrcMAC: src, DstMAC: dst,
//		Src: srcIP, Dst: dstIP, SrcPort: 40000, DstPort: 9, Sizes: gen.IMIX, Flows: 16})
//	s, err := gen.NewSender(gen.SenderConfig{Socket: sock, Builder: b, Stamp: true, Rate: 100e3, Count: 1e6})
//	st, err := s.Run(ctx)
//
// # Frames
//
// A [Builder] writes frame i of its pattern: flow i mod Flows, size
// Sizes[i mod len(Sizes)]. Sizes are Ethernet frame lengths without the
// FCS, what descriptors and interface byte counters count. UDP and ICMP
// frames with room for it carry a 20-byte stamp at the start of their
// payload (a magic word, a sequence number, the send time on [Now]'s
// clock), which [Builder.Stamp] writes and [ReadStamp] reads back from a
// reply; TCP SYN frames carry the sequence number in the TCP sequence
// field. Checksums are computed when a frame is built and updated
// incrementally when it is stamped, so a frame costs a header's worth of
// writes whatever its size.
//
// # Sending
//
// A [Sender] drives one socket from one goroutine: it allocates frames
// from the socket's pool, builds (or, for a [Capture], copies) and stamps
// them, paces them with a [Pacer], transmits them in batches and reaps
// their completions. A frame coming back from the kernel still holds what
// it was built with: when it is sent again as the same pattern index (the
// pattern's period divides the number of frames in flight), only its
// stamp is rewritten. With Replies set, it also receives on its socket
// and gives each stamped reply to the [Tracker] of the sender that
// stamped it (sequence numbers carry the sender's queue in their top
// bits, [SeqQueueShift]), so replies may arrive on any queue.
//
// # Rates
//
// [ParseRate] reads frames a second or bits a second; a bit rate becomes
// a frame rate through the mean frame size ([Builder.MeanSize],
// [Capture.MeanSize]). The pacer grants about a millisecond's frames at a
// time, from a bucket 50 ms deep: after a stall (the scheduler, a full
// ring) of up to 50 ms the sender catches up, so the mean rate holds to
// within 1 % from 1 kframes/s up to what the socket takes, at the price of
// a burst of up to 50 ms of frames after such a stall.
//
// # Concurrency
//
// A Builder is safe for concurrent use. A Sender's Run and Drain belong
// to one goroutine; Snapshot, a Tracker's and a Histogram's methods are
// safe from any. Nothing on the per-frame path allocates.
package gen
