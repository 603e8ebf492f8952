//go:build linux

package fastpath_test

import (
	"testing"

	"github.com/xdpkit/xdpkit/fastpath"
)

func TestLoads(t *testing.T) {
	for _, def := range []fastpath.Action{fastpath.Redirect, fastpath.Pass, fastpath.Drop} {
		newFastPath(t, &fastpath.Config{Default: def})
	}
}
