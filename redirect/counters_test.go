//go:build linux

package redirect_test

import (
	"errors"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/xdpkit/xdpkit/filter"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/redirect"
)

func TestCounters(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	f, err := filter.Compile("udp port 9", filter.Drop, filter.Pass)
	if err != nil {
		t.Fatal(err)
	}
	p, err := redirect.Attach(v.HostIndex, &redirect.Options{Filter: f, Counters: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	drop := testutils.UDPFrame(v.HostMAC, v.PeerMAC, v.PeerIP.As4(), v.HostIP.As4(), 1, 9, []byte("x"))
	pass := testutils.UDPFrame(v.HostMAC, v.PeerMAC, v.PeerIP.As4(), v.HostIP.As4(), 1, 10, []byte("x"))
	for i, tc := range []struct {
		frame []byte
		want  uint32
		times int
	}{{drop, 1, 7}, {pass, 2, 5}} {
		for range tc.times {
			ret, err := p.XDPProgram().Run(&ebpf.RunOptions{Data: tc.frame})
			if err != nil {
				t.Fatal(err)
			}
			if ret != tc.want {
				t.Fatalf("case %d: verdict %d, want %d", i, ret, tc.want)
			}
		}
	}
	c, err := p.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c.Dropped != 7 || c.Passed != 5 || c.Redirected != 0 {
		t.Errorf("counters %+v, want 7 dropped and 5 passed", c)
	}

	// Without the option there are none; after Close, an error.
	if _, err := (&redirect.Program{}).Counters(); !errors.Is(err, redirect.ErrNoCounters) {
		t.Errorf("zero Program counters: %v", err)
	}
	p.Close()
	if _, err := p.Counters(); err == nil {
		t.Error("counters after Close did not fail")
	}
}
