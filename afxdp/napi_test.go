//go:build linux

package afxdp_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/internal/napi"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/redirect"
)

func readSys(t *testing.T, ifname, file string) string {
	t.Helper()
	b, err := os.ReadFile("/sys/class/net/" + ifname + "/" + file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestNAPISettings: busy-poll NAPI settings are applied at Open, shared by
// the sockets of an interface, and restored when the last one closes.
func TestNAPISettings(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 2})
	before := [2]string{readSys(t, v.Host, "napi_defer_hard_irqs"), readSys(t, v.Host, "gro_flush_timeout")}
	prog, err := redirect.Attach(v.HostIndex, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	bp := afxdp.BusyPoll{Prefer: true, Budget: 64, DeferHardIRQs: 2, GROFlushTimeout: 200 * time.Microsecond}
	cfg := &afxdp.Config{BusyPoll: bp, Steering: afxdp.Steering{Program: prog}}
	s0, err := afxdp.OpenIndex(v.HostIndex, 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s0.Close()
	if got := [2]string{readSys(t, v.Host, "napi_defer_hard_irqs"), readSys(t, v.Host, "gro_flush_timeout")}; got != [2]string{"2", "200000"} {
		t.Fatalf("NAPI settings %v, want [2 200000]", got)
	}
	s1, err := afxdp.OpenIndex(v.HostIndex, 1, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Different values from another socket are refused, not silently mixed.
	bad := *cfg
	bad.BusyPoll.DeferHardIRQs = 5
	if s, err := afxdp.OpenIndex(v.HostIndex, 1, &bad); err == nil {
		s.Close()
		t.Error("conflicting NAPI settings accepted")
	} else if !errors.Is(err, napi.ErrConflict) {
		t.Errorf("conflicting NAPI settings: %v", err)
	}
	if !s0.BusyPolling() {
		t.Error("BusyPolling false with busy-poll options")
	}
	s0.BusyPollOnce()
	s0.Close()
	if got := readSys(t, v.Host, "napi_defer_hard_irqs"); got != "2" {
		t.Errorf("settings restored while a socket still uses them: %s", got)
	}
	s1.Close()
	if got := [2]string{readSys(t, v.Host, "napi_defer_hard_irqs"), readSys(t, v.Host, "gro_flush_timeout")}; got != before {
		t.Errorf("after the last Close: %v, want %v restored", got, before)
	}
}
