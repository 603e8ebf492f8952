// Package clock reads CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns, so
// that times the XDP programs store can be compared with and turned into
// wall-clock times.
package clock

import "time"

// FromMonotonic returns the wall-clock time of ns, a CLOCK_MONOTONIC
// reading (bpf_ktime_get_ns); the zero Time for 0 or if the clock cannot
// be read.
func FromMonotonic(ns uint64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	now, err := MonotonicNs()
	if err != nil {
		return time.Time{}
	}
	return time.Now().Add(-time.Duration(int64(now - ns)))
}
