//go:build linux

package afxdp_test

import (
	"context"
	"time"
)

var errCanceled = context.Canceled

func contextWithCancelAfter(d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(d, cancel)
	return ctx, cancel
}
