package cli

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/stages"
	"github.com/xdpkit/xdpkit/workers"
)

// LiveRate prints one line a second on stderr — packets/s, bits/s, drops,
// from snapshot (Runner.Snapshot, or a Set's total), plus extra() if not
// nil — until stop is called.
func (t *Tool) LiveRate(snapshot func() pipeline.Stats, extra func() string) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		prev, prevAt := snapshot(), time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				cur := snapshot()
				dt := now.Sub(prevAt).Seconds()
				line := fmt.Sprintf("rx %s pps %s  tx %s pps %s  drops %d",
					SI(float64(cur.RXPackets-prev.RXPackets)/dt), BitRate(float64(cur.RXBytes-prev.RXBytes)*8/dt),
					SI(float64(cur.TXPackets-prev.TXPackets)/dt), BitRate(float64(cur.TXBytes-prev.TXBytes)*8/dt), cur.Dropped)
				if extra != nil {
					line += "  " + extra()
				}
				t.Logf("%s", line)
				prev, prevAt = cur, now
			}
		}
	}()
	return func() { close(done); <-finished }
}

// Summary prints a Runner's final counters: with -json a JSON object on
// stdout (the common fields, the kernel's drop counters of sock if not
// nil, and the fields of extra() if not nil), otherwise a line on stderr.
func (t *Tool) Summary(st pipeline.Stats, sock *afxdp.Socket, extra func() map[string]any) error {
	if !t.JSON {
		t.Logf("%d packets (%d bytes) received, %d transmitted, %d dropped in %.1fs",
			st.RXPackets, st.RXBytes, st.TXPackets+st.Forwarded, st.Dropped, st.Duration.Seconds())
		return nil
	}
	out := map[string]any{
		"rx_packets": st.RXPackets,
		"rx_bytes":   st.RXBytes,
		"tx_packets": st.TXPackets + st.Forwarded,
		"tx_bytes":   st.TXBytes,
		"dropped":    st.Dropped,
		"malformed":  st.Malformed,
		"duration_s": st.Duration.Seconds(),
		"stages":     st.Stages,
	}
	if st.Offloaded != 0 || st.OffloadErrors != 0 {
		out["offloaded"], out["offload_errors"] = st.Offloaded, st.OffloadErrors
	}
	if sock != nil {
		if ks, err := sock.Stats(); err == nil {
			out["kernel"], out["waits"] = kernelDrops(ks), waits(ks)
		}
	}
	if extra != nil {
		for k, v := range extra() {
			out[k] = v
		}
	}
	return t.PrintJSON(out)
}

// SetWide is the key of WorkersSummary's extras whose fields are the
// set's as a whole (limits, counters of the XDP program): printed once at
// the top level, not per queue, and not summed.
const SetWide = -1

// WorkersSummary is Summary for a workers.Set: the totals, the kernel's
// drop counters summed over the set's sockets, per_queue with each queue's
// counters and the fields of its extras[queue](), those fields merged over
// the queues (numbers summed, flow lists joined), the fields of
// extras[SetWide]() as they are, and the CPU of each worker (-1: not
// pinned).
func (t *Tool) WorkersSummary(st workers.Stats, set *workers.Set, extras map[int]func() map[string]any) error {
	return t.Summary(st.Total, nil, func() map[string]any {
		out := map[string]any{}
		perQueue := map[string]any{}
		for q, qs := range st.PerQueue {
			fields := map[string]any{"rx_packets": qs.RXPackets, "tx_packets": qs.TXPackets + qs.Forwarded, "dropped": qs.Dropped}
			if e := extras[q]; e != nil {
				m := e()
				for k, v := range m {
					fields[k] = v
				}
				merge(out, m)
			}
			perQueue[fmt.Sprint(q)] = fields
		}
		if flows, ok := out["top_flows"].([]stages.Flow); ok {
			sort.Slice(flows, func(i, j int) bool { return flows[i].Packets > flows[j].Packets })
		}
		for _, sock := range set.Sockets() {
			if ks, err := sock.Stats(); err == nil {
				merge(out, map[string]any{"kernel": kernelDrops(ks), "waits": waits(ks)}) // summed
			}
		}
		if e := extras[SetWide]; e != nil {
			for k, v := range e() {
				out[k] = v
			}
		}
		out["per_queue"] = perQueue
		out["cpus"] = set.CPUs()
		return out
	})
}

// kernelDrops are the socket's kernel counters of lost frames.
func kernelDrops(ks afxdp.Stats) map[string]uint64 {
	return map[string]uint64{
		"rx_dropped": ks.RXDropped, "rx_ring_full": ks.RXRingFull,
		"rx_fill_ring_empty": ks.RXFillRingEmptyDescs, "tx_invalid_descs": ks.TXInvalidDescs,
	}
}

// waits are how the socket's loop slept: in poll(2) or the poller
// (slept), and after a burst first for -coalesce (coalesced).
func waits(ks afxdp.Stats) map[string]uint64 {
	return map[string]uint64{"slept": ks.Waits, "coalesced": ks.Coalesced}
}

// PrintJSON writes v on stdout, indented.
func (t *Tool) PrintJSON(v any) error {
	enc := json.NewEncoder(t.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// merge adds the fields of m into out: numbers and maps of numbers are
// summed, slices of flows appended, anything else kept from the first.
func merge(out, m map[string]any) {
	for k, v := range m {
		switch v := v.(type) {
		case uint64:
			o, _ := out[k].(uint64)
			out[k] = o + v
		case int:
			o, _ := out[k].(int)
			out[k] = o + v
		case map[string]uint64:
			o, _ := out[k].(map[string]uint64)
			if o == nil {
				o = map[string]uint64{}
			}
			for name, n := range v {
				o[name] += n
			}
			out[k] = o
		case []stages.Flow:
			o, _ := out[k].([]stages.Flow)
			out[k] = append(o, v...)
		default:
			if _, ok := out[k]; !ok {
				out[k] = v
			}
		}
	}
}

// SI formats v with a k, M or G suffix and two decimals, as the live
// line shows rates: 1.50M, 980.00k, 12.
func SI(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.2fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.2fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// BitRate is SI(v) + "bit/s".
func BitRate(v float64) string { return SI(v) + "bit/s" }
