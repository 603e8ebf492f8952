//go:build linux

package afxdp

import (
	"time"

	"github.com/xdpkit/xdpkit/internal/napi"
)

// applyNAPI sets napi_defer_hard_irqs and gro_flush_timeout of ifname, as
// busy polling on a real NIC wants (see BusyPoll), and returns the function
// that restores the previous values once the last user of them, in any
// process, is gone. The originals are kept under /run, so the next xdpkit
// process on the interface restores them after a crash or SIGKILL.
// Another user asking for different values gets an error.
func applyNAPI(ifname string, deferIRQs int, flush time.Duration) (restore func() error, err error) {
	return napi.Apply(ifname, napi.Settings{DeferHardIRQs: deferIRQs, GROFlushTimeout: flush})
}
