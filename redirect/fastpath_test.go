//go:build linux

package redirect_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/xdpkit/xdpkit/fastpath"
	"github.com/xdpkit/xdpkit/filter"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/redirect"
)

func newFastPath(tb testing.TB, cfg *fastpath.Config) *fastpath.FastPath {
	tb.Helper()
	fp, err := fastpath.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { fp.Close() })
	return fp
}

// TestFastPathVerifierCombinations loads the redirect program with a fast
// path under every combination of the options that change its code: the
// verifier accepts each, and the default reaches the socket or not.
func TestFastPathVerifierCombinations(t *testing.T) {
	testutils.RequirePrivileged(t)
	v := testutils.NewVeth(t, testutils.VethOptions{})
	udp := testutils.UDPFrame(v.HostMAC, v.PeerMAC, v.PeerIP.As4(), v.HostIP.As4(), 1000, 9999, []byte("hello"))
	filters := map[string]*filter.Program{
		"none":             nil,
		"udp redirected":   mustCompile(t, "udp", filter.Redirect, filter.Pass, false),
		"tcp redirected":   mustCompile(t, "tcp", filter.Redirect, filter.Pass, false),
		"keep management":  mustCompile(t, "", filter.Redirect, filter.Redirect, true),
		"drop else direct": mustCompile(t, "udp port 9999", filter.Redirect, filter.Drop, false),
	}
	n := 0
	for _, def := range []fastpath.Action{fastpath.Redirect, fastpath.Pass, fastpath.Drop} {
		for fname, f := range filters {
			for i, counters := range []bool{false, true} {
				for j, frags := range []bool{false, true} {
					precise := (i+j)%2 == 1 // the clock changes one instruction: half of the programs each
					name := fmt.Sprintf("default=%s/filter=%s/counters=%v/frags=%v/precise=%v", def, fname, counters, frags, precise)
					fp := newFastPath(t, &fastpath.Config{Default: def, PreciseClock: precise, Rate: fastpath.Rate{PerSecond: 1000}})
					prog, xsks, cmap, err := redirect.LoadWithOptions(1, &redirect.Options{FastPath: fp, Filter: f, Counters: counters, MultiBuffer: frags})
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					// A UDP frame the filter sends on: the fast path's
					// default decides (the queue has no socket: a redirect
					// passes).
					want := map[fastpath.Action]uint32{fastpath.Redirect: xdpPass, fastpath.Pass: xdpPass, fastpath.Drop: xdpDrop}[def]
					if fname == "tcp redirected" {
						want = xdpPass // the filter passes UDP itself
					}
					if got := run(t, prog, udp, v.HostIndex, 0); got != want {
						t.Errorf("%s: UDP frame: action %d, want %d", name, got, want)
					}
					prog.Close()
					xsks.Close()
					if cmap != nil {
						cmap.Close()
					}
					n++
				}
			}
		}
	}
	t.Logf("%d programs verified", n)
}

// TestFastPathOptions: the fast path is only for Attach, and only behind a
// filter that redirects.
func TestFastPathOptions(t *testing.T) {
	testutils.RequirePrivileged(t)
	fp := newFastPath(t, nil)
	never := mustCompile(t, "udp", filter.Drop, filter.Pass, false)
	if err := (&redirect.Options{FastPath: fp, Filter: never}).Validate(); !errors.Is(err, redirect.ErrInvalidOptions) {
		t.Errorf("a filter that never redirects: %v, want ErrInvalidOptions", err)
	}
	v := testutils.NewVeth(t, testutils.VethOptions{})
	if _, err := redirect.AttachPinned(v.HostIndex, "fptest", &redirect.Options{FastPath: fp, PinDir: t.TempDir()}); !errors.Is(err, redirect.ErrInvalidOptions) {
		t.Errorf("AttachPinned with a FastPath: %v, want ErrInvalidOptions", err)
	}
	prog, xsks := userProgram(t, 1)
	if _, err := redirect.AttachProgram(v.HostIndex, prog, xsks, &redirect.Options{FastPath: fp}); !errors.Is(err, redirect.ErrInvalidOptions) {
		t.Errorf("AttachProgram with a FastPath: %v, want ErrInvalidOptions", err)
	}
	closed := newFastPath(t, nil)
	closed.Close()
	if _, err := redirect.Attach(v.HostIndex, &redirect.Options{FastPath: closed}); err == nil {
		t.Error("Attach with a closed FastPath: no error")
	}
	// Attached, the fast path's verdicts count in the program's counters.
	p, err := redirect.Attach(v.HostIndex, &redirect.Options{FastPath: fp, Counters: true, Mode: redirect.ModeDriver})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	udp := testutils.UDPFrame(v.HostMAC, v.PeerMAC, v.PeerIP.As4(), v.HostIP.As4(), 1000, 53, []byte("hello"))
	if err := fp.SetPolicy(mustPrefix(v.PeerIP.String()+"/32"), fastpath.Block); err != nil {
		t.Fatal(err)
	}
	if got := run(t, p.XDPProgram(), udp, v.HostIndex, 0); got != xdpDrop {
		t.Fatalf("blocked source: action %d, want drop", got)
	}
	c, err := p.Counters()
	if err != nil || c.Dropped != 1 {
		t.Fatalf("program counters %+v, %v: want 1 dropped", c, err)
	}
}
