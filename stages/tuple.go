package stages

import (
	"encoding/binary"
	"math/bits"

	"github.com/xdpkit/xdpkit/packet"
)

// The stages that key tables by 5-tuple (FlowCounter; LoadBalancer when
// it takes batches) read the tuple from the frame's bytes themselves
// instead of from packet.Parse's Headers: for the frames most traffic is
// made of, reading the five fields where they are costs a few ns, where
// Parse (which fills every field of Headers, addresses as netip.Addr) and
// converting its addresses back to words cost 20-25. Anything else goes
// through packet.Parse, so the keys and verdicts are the same either way
// (FuzzFrameTuple checks that).

// frameTuple is a frame's flow key and what a stage needs besides.
type frameTuple struct {
	key   flowKey
	class ProtoClass
	l3Off int  // start of the IP header; 0 if not IP
	l4Off int  // start of the UDP or TCP header; 0 if none
	bad   bool // the frame did not parse: key and class are unset

	// Set by the stage that reads the tuples, here so that its loops
	// over the batch index one array instead of three.
	hash   uint64 // key's hash in the stage's table
	chosen int32  // LoadBalancer: the frame's backend index, or -1
}

// fastTuples reads the tuples of UDP and TCP frames over IPv4 without
// options or fragmentation, or IPv6 without extension headers, under at
// most one VLAN tag, checking the lengths just as packet.Parse does: the
// tuple of frames[i] into ts[i], for the frames in todo (bit i for
// frames[i]; readTuples gives it those fastTuples4 did not read). slow
// has bit i set for every other frame of todo,
// which the caller parses with packet.Parse (readTuples); such frames are
// not rare enough to be wrong, only to be slower. frames has at most 64
// frames (tupleBatch), ts at least as many. One loop for the batch, with
// no call in it, so that the frame's fields stay in registers instead of
// being stored and reloaded around a call per frame.
func fastTuples(frames [][]byte, ts []frameTuple, todo uint64) (slow uint64) {
	ts = ts[:len(frames)]
	for ; todo != 0; todo &= todo - 1 {
		i := bits.TrailingZeros64(todo)
		f, t := frames[i], &ts[i]
		if len(f) < 14+20 {
			slow |= 1 << i
			continue
		}
		off := 14
		et := binary.BigEndian.Uint16(f[12:])
		if et == packet.EtherTypeVLAN {
			et = binary.BigEndian.Uint16(f[16:])
			off = 18
		}
		var proto uint8
		switch et {
		case packet.EtherTypeIPv4:
			if len(f) < off+20 {
				slow |= 1 << i
				continue
			}
			ip := f[off:]
			total := int(binary.BigEndian.Uint16(ip[2:]))
			// 0x45: version 4, a 20-byte header. Fragment offset and MF 0.
			if ip[0] != 0x45 || total < 20 || len(ip) < total || binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
				slow |= 1 << i
				continue
			}
			proto = ip[9]
			if !l4OK(ip[20:total], proto) {
				slow |= 1 << i
				continue
			}
			l4 := ip[20:]
			t.key = flowKey{
				srcLo: uint64(binary.BigEndian.Uint32(ip[12:])),
				dstLo: uint64(binary.BigEndian.Uint32(ip[16:])),
				meta:  4<<40 | uint64(proto)<<32 | uint64(binary.BigEndian.Uint32(l4)),
			}
			t.l3Off, t.l4Off = off, off+20
		case packet.EtherTypeIPv6:
			if len(f) < off+40 {
				slow |= 1 << i
				continue
			}
			ip := f[off:]
			total := 40 + int(binary.BigEndian.Uint16(ip[4:]))
			if ip[0]>>4 != 6 || len(ip) < total {
				slow |= 1 << i
				continue
			}
			proto = ip[6]
			if !l4OK(ip[40:total], proto) {
				slow |= 1 << i
				continue
			}
			l4 := ip[40:]
			t.key = flowKey{
				srcHi: binary.BigEndian.Uint64(ip[8:]),
				srcLo: binary.BigEndian.Uint64(ip[16:]),
				dstHi: binary.BigEndian.Uint64(ip[24:]),
				dstLo: binary.BigEndian.Uint64(ip[32:]),
				meta:  6<<40 | uint64(proto)<<32 | uint64(binary.BigEndian.Uint32(l4)),
			}
			t.l3Off, t.l4Off = off, off+40
		default:
			slow |= 1 << i
			continue
		}
		class := ClassTCP // l4OK passed: UDP or TCP
		if proto == packet.ProtoUDP {
			class = ClassUDP
		}
		t.class, t.bad = class, false
	}
	return slow
}

// l4OK reports whether l4, the rest of an unfragmented IP packet, is a
// UDP or TCP header (proto) that packet.Parse accepts.
func l4OK(l4 []byte, proto uint8) bool {
	switch proto {
	case packet.ProtoUDP:
		if len(l4) < 8 {
			return false
		}
		l := int(binary.BigEndian.Uint16(l4[4:]))
		return l >= 8 && l <= len(l4)
	case packet.ProtoTCP:
		if len(l4) < 20 {
			return false
		}
		doff := int(l4[12]>>4) * 4
		return doff >= 20 && doff <= len(l4)
	}
	return false
}

// fastTuples4 is fastTuples for the frames most traffic is made of, UDP
// and TCP over untagged IPv4 without options: a loop with fewer cases,
// and so fewer live values, than fastTuples'. It returns the frames it
// did not read (bit i for frames[i]) for fastTuples. frames has at most 64
// frames, ts at least as many.
func fastTuples4(frames [][]byte, ts []frameTuple) (rest uint64) {
	ts = ts[:len(frames)]
	for i, f := range frames {
		if len(f) < 14+28 || binary.BigEndian.Uint16(f[12:]) != packet.EtherTypeIPv4 {
			rest |= 1 << i
			continue
		}
		ip := f[14:]
		total := int(binary.BigEndian.Uint16(ip[2:]))
		// 0x45: version 4, a 20-byte header. Fragment offset and MF 0.
		if ip[0] != 0x45 || total < 28 || total > len(ip) || binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
			rest |= 1 << i
			continue
		}
		proto := ip[9]
		l4 := ip[20:total]
		class := ClassUDP
		switch proto {
		case packet.ProtoUDP:
			if l := int(binary.BigEndian.Uint16(l4[4:])); l < 8 || l > len(l4) {
				rest |= 1 << i
				continue
			}
		case packet.ProtoTCP:
			if len(l4) < 20 {
				rest |= 1 << i
				continue
			}
			if doff := int(l4[12]>>4) * 4; doff < 20 || doff > len(l4) {
				rest |= 1 << i
				continue
			}
			class = ClassTCP
		default:
			rest |= 1 << i
			continue
		}
		t := &ts[i]
		t.key = flowKey{
			srcLo: uint64(binary.BigEndian.Uint32(ip[12:])),
			dstLo: uint64(binary.BigEndian.Uint32(ip[16:])),
			meta:  4<<40 | uint64(proto)<<32 | uint64(binary.BigEndian.Uint32(l4)),
		}
		t.class, t.l3Off, t.l4Off, t.bad = class, 14, 34, false
	}
	return rest
}

// slowTuple is the tuple of any frame, through packet.Parse into h.
func slowTuple(f []byte, t *frameTuple, h *packet.Headers, s *addrScratch) {
	*t = frameTuple{}
	if packet.Parse(f, h) != nil {
		t.bad = true
		return
	}
	t.class, t.l3Off, t.l4Off = classify(h), h.L3Off, h.L4Off
	if t.class < ClassARP {
		s.flowKey(&t.key, h)
	}
}

// readTuples sets ts[i] to the tuple of frames[i], fast if it can be.
// frames has at most 64 frames (tupleBatch).
func readTuples(frames [][]byte, ts []frameTuple, h *packet.Headers, s *addrScratch) {
	slow := fastTuples4(frames, ts)
	if slow != 0 {
		slow = fastTuples(frames, ts, slow)
	}
	for ; slow != 0; slow &= slow - 1 {
		i := bits.TrailingZeros64(slow)
		slowTuple(frames[i], &ts[i], h, s)
	}
}
