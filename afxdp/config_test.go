//go:build linux

package afxdp_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/xdpkit/xdpkit/afxdp"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  *afxdp.Config
		ok   bool
	}{
		{"nil", nil, true},
		{"zero", &afxdp.Config{}, true},
		{"rings", &afxdp.Config{RXRingSize: 64, TXRingSize: 1 << 20}, true},
		{"rx not power of two", &afxdp.Config{RXRingSize: 1000}, false},
		{"tx not power of two", &afxdp.Config{TXRingSize: 3}, false},
		{"rx too large", &afxdp.Config{RXRingSize: 1 << 21}, false},
		{"bind mode", &afxdp.Config{Bind: afxdp.BindMode(7)}, false},
		{"busy-poll negative", &afxdp.Config{BusyPoll: afxdp.BusyPoll{Budget: -1}}, false},
		{"negative timeout", &afxdp.Config{TXStallTimeout: -1}, false},
	} {
		err := tc.cfg.Validate()
		if tc.ok && err != nil {
			t.Errorf("%s: unexpected error %v", tc.name, err)
		}
		if !tc.ok && !errors.Is(err, afxdp.ErrInvalidConfig) {
			t.Errorf("%s: got %v, want an error wrapping ErrInvalidConfig", tc.name, err)
		}
	}
}

func TestBindModeString(t *testing.T) {
	t.Parallel()
	for m, want := range map[afxdp.BindMode]string{afxdp.BindAuto: "auto", afxdp.BindZeroCopy: "zerocopy", afxdp.BindCopy: "copy", 9: "BindMode(9)"} {
		if got := m.String(); got != want {
			t.Errorf("%d: got %q, want %q", int(m), got, want)
		}
	}
}

func ExampleConfig_Validate() {
	cfg := &afxdp.Config{RXRingSize: 1000}
	fmt.Println(cfg.Validate())
	// Output: invalid RX ring size 1000: must be a power of 2 up to 1048576: invalid configuration
}
