//go:build linux

package xsk

import (
	"encoding/binary"

	"github.com/xdpkit/xdpkit/ring"
)

// TX metadata (Documentation/networking/xsk-tx-metadata.rst): a UMEM
// registered with tx_metadata_len has the kernel validate every TX
// descriptor as if it began that many bytes earlier (net/xdp/xsk_queue.h,
// xp_aligned_validate_desc), so each one must start at least that far
// into its frame; one with XDP_TX_METADATA has its struct xsk_tx_metadata
// there. In copy mode (net/xdp/xsk.c, xsk_skb_metadata) metadata with
// flags the kernel does not know, or a checksum request past the packet,
// fails the sendto with EINVAL and leaves the descriptor at the head of
// the TX ring, where every later sendto fails on it again: so the pool
// refuses such descriptors before they reach the ring.

// TXMetadataLen returns the bytes reserved for TX metadata in front of
// every TX descriptor's data: TXMetadataLen, or 0 for a UMEM without.
func (u *UMEM) TXMetadataLen() uint32 { return uint32(u.txmdLen) }

// TXMetadataFlags returns the XDP_TXMD_FLAGS_* bits the kernel takes in
// this UMEM's TX metadata (launch time from Linux 6.15); 0 without TX
// metadata.
func (u *UMEM) TXMetadataFlags() uint64 { return u.txmdFlags }

// TXMetadataBytes returns the TXMetadataLen bytes in front of the data
// addr points to, where the kernel reads the descriptor's struct
// xsk_tx_metadata, or nil if the UMEM has no TX metadata, addr is outside
// the UMEM, or its data starts less than TXMetadataLen bytes into its
// frame.
func (u *UMEM) TXMetadataBytes(addr uint64) []byte {
	md := u.txmdLen
	a := u.DataAddr(addr)
	if md == 0 || a >= u.size || a-u.FrameStart(a) < md {
		return nil
	}
	return u.area[a-md : a : a]
}

// stageTXMetadata is StageTXLocked for a UMEM with TX metadata: the same
// checks, in the same order, plus room for the metadata in front of every
// descriptor's data (NoMetadataRoom) and, for a descriptor with
// XDP_TX_METADATA, metadata the kernel takes (BadMetadata). It records,
// per frame, whether the kernel will write a TX timestamp into it.
func (p *Pool) stageTXMetadata(pr *Pair, descs []ring.Desc, allowed uint32) (int, Reason) {
	u := p.u
	contd := false // the previous descriptor's packet goes on in this one
	if u.fastIndex() {
		// Aligned frames: the checks inline, as in StageTXLocked.
		meta, txTS, id, size, shift, fs, md, l := u.meta, u.txTS, p.id, u.size, u.shift&63, u.frameSize, u.txmdLen, pr.local
		for k := range descs {
			d := &descs[k]
			a := d.Addr
			if r := alignedTXCheck(d, size, fs, allowed); r != OK {
				return k, r
			}
			if a&(fs-1) < md {
				return k, NoMetadataRoom
			}
			j := a >> shift
			m := &meta[j]
			if m.state != StateApp || m.pool != id {
				_ = p.refused(a, StateApp, NotHeld)
				return k, NotHeld
			}
			ts := false
			if d.Options&ring.TXMetadata != 0 {
				var ok bool
				if ts, ok = u.checkTXMetadata(a, d.Len, contd); !ok {
					return k, BadMetadata
				}
			}
			m.state, m.pair = StateTX, l
			txTS[j] = ts
			contd = d.Options&ring.PktContd != 0
		}
		return len(descs), OK
	}
	for k := range descs {
		d := &descs[k]
		if r := u.ValidTX(d); r != OK {
			return k, r
		}
		if d.Options&^allowed != 0 {
			return k, BadOptions
		}
		a := u.DataAddr(d.Addr)
		if a-u.FrameStart(a) < u.txmdLen {
			return k, NoMetadataRoom
		}
		i, _ := u.index(a)
		m := &u.meta[i]
		if m.pool != p.id || m.state != StateApp {
			_ = p.refused(d.Addr, StateApp, NotHeld)
			return k, NotHeld
		}
		ts := false
		if d.Options&ring.TXMetadata != 0 {
			var ok bool
			if ts, ok = u.checkTXMetadata(a, d.Len, contd); !ok {
				return k, BadMetadata
			}
		}
		m.state, m.pair = StateTX, pr.local
		u.txTS[i] = ts
		contd = d.Options&ring.PktContd != 0
	}
	return len(descs), OK
}

// checkTXMetadata checks the metadata in front of data address a of a
// descriptor of n bytes with XDP_TX_METADATA, as the kernel will: known
// flags only, a requested checksum field inside the packet. Only a
// packet's first descriptor may carry metadata (the kernel ignores it on
// the others, so a timestamp asked for there would never come); contd
// says a is not one. ts reports a TX timestamp request.
func (u *UMEM) checkTXMetadata(a uint64, n uint32, contd bool) (ts, ok bool) {
	if contd {
		return false, false
	}
	b := u.area[a-u.txmdLen : a]
	flags := binary.NativeEndian.Uint64(b[TXMDFlagsOff:])
	if flags&^u.txmdFlags != 0 {
		return false, false
	}
	if flags&TXMDChecksum != 0 {
		start := uint32(binary.NativeEndian.Uint16(b[TXMDCsumStartOff:]))
		off := uint32(binary.NativeEndian.Uint16(b[TXMDCsumOffsetOff:]))
		if start+off+2 > n {
			return false, false
		}
	}
	return flags&TXMDTimestamp != 0, true
}

// recordTXTimestamps copies the TX timestamps of the completed frames in
// addrs that were sent asking for one into pr's log, before ReapLocked
// gives the frames back to the free list, where they may be reused at
// once. The kernel writes a timestamp before it puts the frame's address
// on the completion ring (xsk_destruct_skb in copy mode, the driver's
// xsk_tx_metadata_complete in zero-copy mode), and ReapLocked has read
// the ring's producer index with acquire semantics since.
func (p *Pool) recordTXTimestamps(pr *Pair, addrs []uint64) {
	u := p.u
	if u.fastIndex() {
		meta, txTS, id, shift, fs, md := u.meta, u.txTS, p.id, u.shift&63, u.frameSize, u.txmdLen
		for _, a := range addrs {
			j := a >> shift
			if j >= uint64(len(txTS)) || !txTS[j] || meta[j].state != StateTX || meta[j].pool != id || a&(fs-1) < md {
				continue // not asked for, or an address ReapLocked refuses
			}
			txTS[j] = false
			pr.logTXTimestamp(a, binary.NativeEndian.Uint64(u.area[a-md+TXMDTimestampOff:]))
		}
		return
	}
	for _, addr := range addrs {
		a := u.DataAddr(addr)
		i, ok := u.index(a)
		if !ok || !u.txTS[i] || u.meta[i].pool != p.id || u.meta[i].state != StateTX || a-u.FrameStart(a) < u.txmdLen {
			continue // not asked for, or an address ReapLocked refuses
		}
		u.txTS[i] = false
		pr.logTXTimestamp(a, binary.NativeEndian.Uint64(u.area[a-u.txmdLen+TXMDTimestampOff:]))
	}
}

// txTimestamp is one entry of a ring pair's TX timestamp log.
type txTimestamp struct{ addr, ts uint64 }

// logTXTimestamp appends one completed frame's timestamp to the log,
// dropping the oldest entry when it is full. Caller holds the pool's
// mutex.
func (pr *Pair) logTXTimestamp(addr, ts uint64) {
	n := len(pr.tsLog)
	if n == 0 {
		return
	}
	if pr.tsLen == n {
		pr.tsHead = (pr.tsHead + 1) & (n - 1)
		pr.tsLen--
		pr.tsLost++
	}
	pr.tsLog[(pr.tsHead+pr.tsLen)&(n-1)] = txTimestamp{addr, ts}
	pr.tsLen++
}

// PopTXTimestampLocked takes the oldest entry off the pair's TX timestamp
// log: the data address (area offset) of a frame that completed after
// being sent with a TX timestamp request, and the timestamp the kernel or
// driver wrote into its metadata. ok is false when the log is empty.
func (pr *Pair) PopTXTimestampLocked() (addr, ts uint64, ok bool) {
	if pr.tsLen == 0 {
		return 0, 0, false
	}
	e := pr.tsLog[pr.tsHead]
	pr.tsHead = (pr.tsHead + 1) & (len(pr.tsLog) - 1)
	pr.tsLen--
	return e.addr, e.ts, true
}

// TXTimestampsLostLocked returns how many log entries were dropped
// because the log was full: it holds as many as the completion ring.
func (pr *Pair) TXTimestampsLostLocked() uint64 { return pr.tsLost }
