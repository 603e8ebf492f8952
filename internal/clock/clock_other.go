//go:build !linux

package clock

import (
	"errors"
	"runtime"
)

// MonotonicNs is only implemented on Linux.
func MonotonicNs() (uint64, error) {
	return 0, errors.New("CLOCK_MONOTONIC is not read on " + runtime.GOOS)
}

// CoarseResolutionNs is only implemented on Linux.
func CoarseResolutionNs() (uint64, error) {
	return 0, errors.New("CLOCK_MONOTONIC_COARSE is not read on " + runtime.GOOS)
}
