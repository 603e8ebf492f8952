//go:build linux

package metrics_test

import (
	"testing"

	"github.com/xdpkit/xdpkit/internal/testutils"
)

func TestMain(m *testing.M) { testutils.LeakCheckMain(m) }
