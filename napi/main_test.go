//go:build linux

package napi_test

import (
	"testing"

	"github.com/xdpkit/xdpkit/internal/testutils"
)

// TestMain fails the run if the tests leave file descriptors open.
func TestMain(m *testing.M) { testutils.LeakCheckMain(m) }
