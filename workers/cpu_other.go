//go:build !linux

package workers

import (
	"fmt"
	"runtime"

	"github.com/xdpkit/xdpkit/afxdp"
)

func allowedCPUs() ([]int, error) {
	return nil, fmt.Errorf("CPU affinity on %s/%s: %w", runtime.GOOS, runtime.GOARCH, afxdp.ErrNotSupported)
}

func pinThread(int) error {
	return fmt.Errorf("CPU affinity on %s/%s: %w", runtime.GOOS, runtime.GOARCH, afxdp.ErrNotSupported)
}
