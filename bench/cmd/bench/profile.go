//go:build linux

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// profilePass runs a few cells again with profilers on; these runs are not
// part of the results.
func (o *options) profilePass(ctx context.Context, cells []Cell) map[string]string {
	dir := filepath.Join(o.res, "profiles")
	_ = os.MkdirAll(dir, 0o755)
	out := map[string]string{}
	want := []string{"xdpkit/reflect/60", "c-libxdp/reflect/60", "xdpkit.poll/drop/60", "c-libxdp.poll/drop/60"}
	if o.profileCells != "" {
		want = nil
		if re, err := regexp.Compile(o.profileCells); err == nil {
			for _, c := range cells {
				if re.MatchString(c.Key) {
					want = append(want, c.Key)
				}
			}
		}
	}
	for _, k := range want {
		var c *Cell
		for i := range cells {
			if cells[i].Key == k {
				c = &cells[i]
			}
		}
		if c == nil || o.unavailable(*c) != "" || ctx.Err() != nil {
			continue
		}
		name := strings.NewReplacer("/", "_", ".", "-").Replace(k)
		prof := ""
		if c.Impl == "xdpkit" && c.Bin == "" { // xdpkit-dut's -cpuprofile
			prof = filepath.Join(dir, name+".pprof")
		}
		perfData := ""
		if o.perf != "" {
			perfData = filepath.Join(dir, name+".perf.data")
		}
		logf("profiling %s", k)
		r := o.runOne(ctx, *c, 0, prof, perfData)
		if !r.OK {
			logf("profile run %s failed: %s", k, r.Err)
			continue
		}
		if prof != "" {
			if txt, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=35", filepath.Join(o.bin, "xdpkit-dut"), prof).CombinedOutput(); err == nil {
				f := filepath.Join(dir, name+".pprof.txt")
				_ = os.WriteFile(f, txt, 0o644)
				out[k+" pprof"] = "profiles/" + filepath.Base(f)
			}
		}
		if perfData != "" {
			txt, err := exec.Command(o.perf, "report", "-i", perfData, "--stdio", "--no-children", "-g", "none", "--sort", "comm,dso,sym", "--percent-limit", "0.7").CombinedOutput()
			if err == nil {
				f := filepath.Join(dir, name+".perf.txt")
				_ = os.WriteFile(f, txt, 0o644)
				out[k+" perf (DUT CPU)"] = "profiles/" + filepath.Base(f)
			}
			txt, err = exec.Command(o.perf, "report", "-i", perfData, "--stdio", "--no-children", "-G", "--sort", "sym", "--percent-limit", "3").CombinedOutput()
			if err == nil {
				f := filepath.Join(dir, name+".perf-callers.txt")
				_ = os.WriteFile(f, txt, 0o644)
				out[k+" perf callers (DUT CPU)"] = "profiles/" + filepath.Base(f)
			}
			_ = os.Remove(perfData)
			_ = os.Remove(perfData + ".old")
		}
	}
	return out
}
