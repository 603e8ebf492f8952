//go:build !linux

package ring

import (
	"fmt"
	"runtime"

	"github.com/cilium/ebpf"
)

const (
	pgoffFill = iota
	pgoffCompletion
	pgoffRX
	pgoffTX
)

// mapRing fails: only Linux has AF_XDP rings to map. (Rings over memory
// of your own, NewFill and the others, work everywhere.)
func mapRing(int, int64, Offsets, uint32, uint64) ([]byte, error) {
	return nil, fmt.Errorf("ring: mapping a socket's ring on %s/%s: %w", runtime.GOOS, runtime.GOARCH, ebpf.ErrNotSupported)
}

func unmap([]byte) error { return nil }
