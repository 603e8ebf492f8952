//go:build linux

package clock

import "golang.org/x/sys/unix"

// MonotonicNs returns CLOCK_MONOTONIC in nanoseconds.
func MonotonicNs() (uint64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, err
	}
	return uint64(ts.Nano()), nil
}

// CoarseResolutionNs returns the resolution of CLOCK_MONOTONIC_COARSE
// (bpf_ktime_get_coarse_ns): the kernel tick, 1 to 10 ms.
func CoarseResolutionNs() (uint64, error) {
	var ts unix.Timespec
	if err := unix.ClockGetres(unix.CLOCK_MONOTONIC_COARSE, &ts); err != nil {
		return 0, err
	}
	return uint64(ts.Nano()), nil
}
