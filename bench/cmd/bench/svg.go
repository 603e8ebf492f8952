//go:build linux

package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

var implColor = map[string]string{
	"kernel-xdp": "#7f7f7f",
	"dpdk":       "#d62728",
	"c-libxdp":   "#1f77b4",
	"asavie":     "#ff7f0e",
	"xdpkit":     "#2ca02c",
}

// plotSVG draws one row per cell: Mpps (median bar, min-max whisker) on the
// left, DUT-CPU ns per frame on the right (pale when the DUT CPU was
// saturated, where the number is CPU time available per frame, not a cost).
func plotSVG(ss []*Summary, env Env) string {
	const (
		rowH   = 18
		labelW = 400
		panelW = 360
		gap    = 40
		top    = 64
	)
	var rows []*Summary
	for _, s := range ss {
		rows = append(rows, s)
	}
	maxM, maxNs := 0.0, 0.0
	for _, s := range rows {
		if s.Runs > 0 {
			maxM = math.Max(maxM, s.MppsMax)
			if !math.IsNaN(s.Ns) {
				maxNs = math.Max(maxNs, s.Ns)
			}
		}
	}
	maxM = niceCeil(maxM)
	maxNs = niceCeil(math.Min(maxNs, 2000))
	w := labelW + 2*panelW + gap + 20
	h := top + len(rows)*rowH + 40
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="8" y="18" font-size="14" font-weight="bold">xdpkit bench %s</text>`+"\n", html.EscapeString(env.Start))
	fmt.Fprintf(&b, `<text x="8" y="34">kernel %s, %s x%d, veth copy mode; median of rounds, whisker = min-max</text>`+"\n",
		html.EscapeString(env.Kernel), html.EscapeString(env.CPU), env.CPUs)
	x0, x1 := labelW, labelW+panelW+gap
	fmt.Fprintf(&b, `<text x="%d" y="54" font-weight="bold">Mpps (veth counters)</text>`+"\n", x0)
	fmt.Fprintf(&b, `<text x="%d" y="54" font-weight="bold">DUT CPU ns / frame (pale: CPU saturated)</text>`+"\n", x1)
	for i := 0; i <= 4; i++ {
		for _, p := range []struct {
			x   int
			max float64
		}{{x0, maxM}, {x1, maxNs}} {
			x := p.x + i*panelW/4
			fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#ddd"/>`+"\n", x, top-4, x, top+len(rows)*rowH)
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#555">%s</text>`+"\n", x, top+len(rows)*rowH+14, trimNum(p.max*float64(i)/4))
		}
	}
	prevGroup := ""
	for i, s := range rows {
		y := top + i*rowH
		c := s.Cell
		if c.Group != prevGroup && i > 0 {
			fmt.Fprintf(&b, `<line x1="4" y1="%d" x2="%d" y2="%d" stroke="#999"/>`+"\n", y, w-10, y)
		}
		prevGroup = c.Group
		col := implColor[c.Impl]
		if col == "" {
			col = "#333"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelW-8, y+13,
			html.EscapeString(fmt.Sprintf("%s · %s · %s", c.Label(), c.Mode, c.SizeLabel())))
		if s.Runs == 0 {
			fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#a00">failed / skipped</text>`+"\n", x0+4, y+13)
			continue
		}
		bw := func(v, max float64) float64 { return math.Max(0, math.Min(1, v/max)) * panelW }
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", x0, y+3, bw(s.Mpps, maxM), rowH-6, col)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black"/>`+"\n", float64(x0)+bw(s.MppsMin, maxM), y+rowH/2, float64(x0)+bw(s.MppsMax, maxM), y+rowH/2)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%.3f</text>`+"\n", float64(x0)+bw(s.MppsMax, maxM)+4, y+13, s.Mpps)
		if !math.IsNaN(s.Ns) && c.Impl != "kernel-xdp" && c.FastPath == "" { // XDP runs on the generator's CPU
			op := "1"
			if s.Saturated() {
				op = "0.3"
			}
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s" fill-opacity="%s"/>`+"\n", x1, y+3, bw(s.Ns, maxNs), rowH-6, col, op)
			fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s</text>`+"\n", float64(x1)+bw(s.Ns, maxNs)+4, y+13, nsStr(s))
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func trimNum(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}
