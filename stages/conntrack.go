package stages

import "time"

// The LoadBalancer's connection table: which backend each flow it has
// seen went to, so that adding or removing backends moves no established
// flow (except those whose backend went away). Fixed size, allocated up
// front, probed over a bounded window like FlowCounter's table; entries
// not seen for ConnIdle are free for new flows.

// DefaultLBConnections is the connection table's size when
// LoadBalancerOptions.Connections is 0.
const DefaultLBConnections = 1 << 16

// DefaultLBConnIdle is how long a flow keeps its backend without a packet
// when LoadBalancerOptions.ConnIdle is 0.
const DefaultLBConnIdle = 5 * time.Minute

// connSlot is one entry: a flow and its backend.
type connSlot struct {
	key     flowKey
	backend uint32 // lbBackend.id; 0: the slot is free
	index   uint32 // where the backend was in lb.backends: checked against id
	seen    int64  // LoadBalancer clock, ns
	offered int64  // when the flow was last offloaded to the fast path; 0: never
}

// ConnStats are a LoadBalancer's connection table counters.
type ConnStats struct {
	Connections int    `json:"connections"` // flows in the table, idle ones included until reused
	Capacity    int    `json:"capacity"`
	New         uint64 `json:"new"`     // flows given a backend by the hash and recorded
	Moved       uint64 `json:"moved"`   // recorded flows whose backend went away, given another
	Expired     uint64 `json:"expired"` // recorded flows idle for longer than ConnIdle, given a backend anew
	Evicted     uint64 `json:"evicted"` // live flows overwritten because their window of slots was full
}

// conn returns the index of the recorded backend of the flow k, whose
// srcHash under connSeed is i, and its
// slot, or -1 and the slot to record it in (record) for a flow the table
// does not hold, or holds with a backend that is gone or after too long
// idle. Handle computes the hash's choice only then.
func (lb *LoadBalancer) conn(k *flowKey, i uint64, now int64) (int, *connSlot) {
	var victim *connSlot // a free or idle slot, else the least recently seen
	for range probeWindow {
		s := &lb.conns[i&lb.connMask]
		i++
		if s.backend == 0 {
			// Slots are never emptied (new flows overwrite), so a flow
			// is never behind a free slot: k is new.
			if victim == nil || now-victim.seen <= lb.connIdle {
				victim = s
			}
			break
		}
		if s.key.equal(k) {
			// The index recorded is right unless backends changed since;
			// then the map says where the backend went, if anywhere.
			idx, live := int(s.index), int(s.index) < len(lb.backends) && lb.backends[s.index].id == s.backend
			if !live {
				if idx, live = lb.byID[s.backend]; live {
					s.index = uint32(idx)
				}
			}
			switch {
			case now-s.seen > lb.connIdle:
				lb.connStats.Expired++
			case !live:
				lb.connStats.Moved++
			default:
				s.seen = now
				return idx, s
			}
			s.backend = 0 // record fills it again; the slot stays counted
			lb.connUsed--
			return -1, s
		}
		if victim == nil || (now-victim.seen <= lb.connIdle && s.seen < victim.seen) {
			victim = s
		}
	}
	return -1, victim
}

// record puts flow k, sent to backend index i, in slot s (from conn).
func (lb *LoadBalancer) record(s *connSlot, k *flowKey, i int, now int64) {
	switch {
	case s.backend == 0:
		lb.connUsed++
		if s.key.meta == 0 || !s.key.equal(k) {
			lb.connStats.New++
		}
	case now-s.seen <= lb.connIdle:
		lb.connStats.Evicted++
		lb.connStats.New++
	default:
		lb.connStats.New++
	}
	*s = connSlot{key: *k, backend: lb.backends[i].id, index: uint32(i), seen: now}
}

// clock is the LoadBalancer's time in ns: the last SetNow, or Go's
// monotonic clock.
func (lb *LoadBalancer) clock() int64 {
	if lb.nowSet {
		return lb.now
	}
	return int64(time.Since(lb.base))
}

// SetNow sets the time Handle uses for the connection table's idle
// timeout, so that it need not read the clock per packet: call it on the
// Runner's goroutine, say from pipeline.Config.Tick. From the first call
// on Handle no longer reads a clock.
func (lb *LoadBalancer) SetNow(now time.Time) {
	lb.now, lb.nowSet = int64(now.Sub(lb.base)), true
}

// ConnStats returns the connection table's counters. Call it from the
// Runner's goroutine (or with the pipeline stopped).
func (lb *LoadBalancer) ConnStats() ConnStats {
	st := lb.connStats
	st.Connections, st.Capacity = lb.connUsed, len(lb.conns)
	return st
}
