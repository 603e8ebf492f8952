//go:build linux

package main

import (
	"strings"
	"testing"
)

func TestParseCeiling(t *testing.T) {
	goOut := `goos: linux
BenchmarkRunnerMemory/hand-drop         	 3956947	        46.67 Mpps	        21.43 ns/frame	       0 B/op	       0 allocs/op
BenchmarkRunnerMemory/drop-2            	 9000000	       120.1 Mpps	         8.33 ns/frame	       0 B/op	       0 allocs/op
PASS`
	cOut := "mode=reflect batch=64 frames=135659520 ns_per_frame=14.748 mpps=67.807\n"
	for _, tc := range []struct {
		out  string
		p    ceilingPath
		want float64
		err  bool
	}{
		{goOut, ceilingPath{Name: "drop"}, 8.33, false}, // not hand-drop's line, which comes first
		{goOut, ceilingPath{Name: "hand-drop"}, 21.43, false},
		{goOut, ceilingPath{Name: "lb"}, 0, true},
		{cOut, ceilingPath{Name: "c-reflect", C: true}, 14.748, false},
		{cOut, ceilingPath{Name: "c-drop", C: true}, 0, true},
		{goOut, ceilingPath{Name: "c-drop", C: true}, 0, true},
	} {
		got, err := parseCeiling(tc.out, tc.p)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseCeiling(%s) = %v, %v; want %v, error %v", tc.p.Name, got, err, tc.want, tc.err)
		}
	}
}

func TestCeilingTargets(t *testing.T) {
	cr := &ceilingResult{Paths: ceilingPaths, NsFrame: map[string][]float64{
		"drop":      {20, 25, 22}, // 45.5 Mpps: >= 40; no C peer (it reads no frame)
		"lb":        {60, 55, 70}, // 16.7 Mpps: < 20
		"hand-drop": {20},
		"c-drop":    {10, 11, 9},
	}}
	got := map[string]Target{}
	for _, tt := range ceilingTargets(cr) {
		got[tt.Name] = tt
	}
	if len(got) != 3 {
		t.Fatalf("rows %v, want hand-drop, drop and lb only (C paths and unmeasured ones left out)", got)
	}
	if h := got["ceiling hand-drop"]; h.Met != nil || h.Goal != infoGoal || h.Result != "50.0 Mpps/core, 20.0 ns/frame (20.0-20.0, 1 rounds); C libxdp's ring code drop 10.0 ns/frame: 2.00x" {
		t.Errorf("hand-drop row %+v", h)
	}
	if d := got["ceiling drop"]; d.Met == nil || !*d.Met || d.Result != "45.5 Mpps/core, 22.0 ns/frame (20.0-25.0, 3 rounds)" {
		t.Errorf("drop row %+v", d)
	}
	if l := got["ceiling lb"]; l.Met == nil || *l.Met {
		t.Errorf("lb row %+v, want missed", l)
	}
	if r := ceilingTargets(&ceilingResult{Err: "boom"}); len(r) != 1 || r[0].Result != "failed: boom" {
		t.Errorf("failed ceiling: %+v", r)
	}
}

func TestParseCollected(t *testing.T) {
	out := "==15598== Callgrind, a call-graph generating cache profiler\n==15598== \n==15598== Events    : Ir\n==15598== Collected : 4832159\n==15598== \n==15598== I   refs:      4,832,159\n"
	if n, err := parseCollected(out); err != nil || n != 4832159 {
		t.Errorf("parseCollected = %v, %v; want 4832159", n, err)
	}
	if _, err := parseCollected("valgrind: command not found"); err == nil {
		t.Error("parseCollected of output without a count: no error")
	}
}

func TestCeilingTargetsInstructions(t *testing.T) {
	cr := &ceilingResult{Paths: ceilingPaths,
		NsFrame: map[string][]float64{"hand-drop": {20}, "c-drop": {10}},
		Instr:   map[string]float64{"hand-drop": 141.2, "c-drop": 35.7}}
	r := ceilingTargets(cr)
	if len(r) != 1 || !strings.HasSuffix(r[0].Result, "; 141 instructions/frame against C's 36 (4.0x)") {
		t.Errorf("rows %+v", r)
	}
}

func TestCeilingCommand(t *testing.T) {
	g, c := ceilingPath{Name: "drop"}, ceilingPath{Name: "c-reflect", C: true}
	for _, tc := range []struct {
		got, want string
	}{
		{strings.Join(g.command("pt", "rc", 1.5, 0), " "), "pt -test.run ^$ -test.bench ^BenchmarkRunnerMemory$/^drop$ -test.benchtime 1.5s -test.cpu 1"},
		{strings.Join(g.command("pt", "rc", 0, 2000), " "), "pt -test.run ^$ -test.bench ^BenchmarkRunnerMemory$/^drop$ -test.benchtime 2000x -test.cpu 1"},
		{strings.Join(c.command("pt", "rc", 1, 0), " "), "rc -m reflect -b 64 -t 1"},
		{strings.Join(c.command("pt", "rc", 0, 6000), " "), "rc -m reflect -b 64 -i 6000"},
	} {
		if tc.got != tc.want {
			t.Errorf("command %q, want %q", tc.got, tc.want)
		}
	}
}
