//go:build !linux

package afxdp

import (
	"fmt"
	"runtime"
)

// Open is not supported outside Linux.
func Open(ifname string, queue int, _ any) (any, error) {
	return nil, fmt.Errorf("afxdp: not supported on %s/%s: %w", runtime.GOOS, runtime.GOARCH, ErrNotSupported)
}
