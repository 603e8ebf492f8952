// Package doctor runs the checks of `xdpkit doctor`: what a host and an
// interface need for AF_XDP, each check a small function that returns a
// verdict, the evidence it read and, when it knows one, the fix.
package doctor

import (
	"fmt"
	"strconv"
	"strings"
)

// Verdict is a check's outcome.
type Verdict string

// The verdicts, from good to bad.
const (
	OK   Verdict = "ok"
	Info Verdict = "info" // nothing wrong, something to know
	Warn Verdict = "warn" // works, but not as well as it could, or not for everything
	Fail Verdict = "fail" // xdpkit cannot work like this
)

// Result is one check's line.
type Result struct {
	Check    string  `json:"check"`
	Verdict  Verdict `json:"verdict"`
	Evidence string  `json:"evidence"`
	Fix      string  `json:"fix,omitempty"`
}

func (r Result) String() string {
	s := fmt.Sprintf("%-4s %-12s %s", r.Verdict, r.Check, r.Evidence)
	if r.Fix != "" {
		s += "\n     " + strings.Repeat(" ", 12) + " fix: " + r.Fix
	}
	return s
}

// Failed reports whether a result failed.
func Failed(rs []Result) bool {
	for _, r := range rs {
		if r.Verdict == Fail {
			return true
		}
	}
	return false
}

// kernelFeatures is the README's feature table: what each kernel release
// adds that xdpkit uses.
var kernelFeatures = []struct {
	version string
	feature string
}{
	{"5.10", "AF_XDP with need_wakeup and shared UMEM (xdpkit's minimum)"},
	{"5.11", "busy-poll socket options (SO_PREFER_BUSY_POLL, SO_BUSY_POLL_BUDGET)"},
	{"6.6", "multi-buffer AF_XDP (afxdp.Config.MultiBuffer, jumbo frames)"},
	{"6.8", "TX metadata (checksum offload, timestamps)"},
	{"6.15", "TX launch time"},
	{"6.16", "XDP_MAX_TX_SKB_BUDGET (afxdp.Config.TXBudget)"},
}

// parseVersion reads "6.18.44-fc" as 6, 18.
func parseVersion(s string) (major, minor int, ok bool) {
	a, b, found := strings.Cut(s, ".")
	if !found {
		return 0, 0, false
	}
	if i := strings.IndexFunc(b, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		b = b[:i]
	}
	x, err1 := strconv.Atoi(a)
	y, err2 := strconv.Atoi(b)
	return x, y, err1 == nil && err2 == nil
}

func atLeast(release, version string) bool {
	a, b, ok1 := parseVersion(release)
	c, d, ok2 := parseVersion(version)
	return ok1 && ok2 && (a > c || a == c && b >= d)
}

// Kernel checks the release against the feature table.
func Kernel(release string) Result {
	r := Result{Check: "kernel"}
	if _, _, ok := parseVersion(release); !ok {
		r.Verdict, r.Evidence = Warn, fmt.Sprintf("cannot read the release %q", release)
		return r
	}
	var have, lack []string
	for _, f := range kernelFeatures {
		if atLeast(release, f.version) {
			have = append(have, f.feature)
		} else {
			lack = append(lack, f.feature+" ("+f.version+")")
		}
	}
	if !atLeast(release, kernelFeatures[0].version) {
		r.Verdict, r.Evidence = Fail, fmt.Sprintf("Linux %s: xdpkit needs %s or later", release, kernelFeatures[0].version)
		r.Fix = "upgrade the kernel"
		return r
	}
	r.Verdict, r.Evidence = OK, fmt.Sprintf("Linux %s has: %s", release, strings.Join(have, "; "))
	if len(lack) > 0 {
		r.Evidence += "; lacks: " + strings.Join(lack, "; ")
	}
	return r
}
