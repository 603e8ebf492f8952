//go:build linux

package main

import (
	"net/netip"
	"testing"
)

func TestLBFlags(t *testing.T) {
	f := lbFlags{vip: "10.235.0.1:9", mac: "02:bb:00:00:00:01", firstIP: "10.235.0.10", backends: 4}
	vip, bs, err := f.parse()
	if err != nil {
		t.Fatal(err)
	}
	if vip != netip.MustParseAddrPort("10.235.0.1:9") || len(bs) != 4 {
		t.Fatalf("vip %v, %d backends", vip, len(bs))
	}
	for i, b := range bs {
		if want := netip.AddrFrom4([4]byte{10, 235, 0, byte(10 + i)}); b.IP != want || b.MAC.String() != "02:bb:00:00:00:01" {
			t.Errorf("backend %d: %v %v, want %v 02:bb:00:00:00:01", i, b.IP, b.MAC, want)
		}
	}
	for _, bad := range []lbFlags{
		{vip: "10.235.0.1", mac: f.mac, firstIP: f.firstIP, backends: 4},
		{vip: f.vip, mac: "02:bb:00:00:00:01:02:03", firstIP: f.firstIP, backends: 4},
		{vip: f.vip, mac: f.mac, firstIP: "x", backends: 4},
		{vip: f.vip, mac: f.mac, firstIP: f.firstIP, backends: 0},
		{vip: f.vip, mac: f.mac, firstIP: "255.255.255.254", backends: 4},
	} {
		if _, _, err := bad.parse(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}
