//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

type buildResult struct {
	bin, cBin string
	xdpGen    string // examples/xdp-gen, built in the main module; "" if it did not build
	notes     []string
	err       error
}

func run(ctx context.Context, dir string, argv ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// build compiles the Go DUTs of this module and, when the anchors' sources
// and a C toolchain with libxdp are there, the C libxdp anchor (from a copy:
// /work/shared is read-only).
func build(ctx context.Context, work, anchors string) buildResult {
	var b buildResult
	b.bin = filepath.Join(work, "bin")
	if err := os.MkdirAll(b.bin, 0o755); err != nil {
		b.err = err
		return b
	}
	logf("building DUTs")
	if err := run(ctx, ".", "go", "build", "-o", filepath.Join(b.bin, "asavie-dut"), "./cmd/asavie-dut"); err != nil {
		b.err = err
		return b
	}
	// Other people edit the library while this runs: a tree caught mid-edit
	// may not build for a moment, so retry for up to 90 s.
	var err error
	for deadline := time.Now().Add(90 * time.Second); ; {
		err = run(ctx, ".", "go", "build", "-o", filepath.Join(b.bin, "xdpkit-dut"), "./cmd/xdpkit-dut")
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil || !strings.Contains(err.Error(), "github.com/xdpkit/xdpkit/") {
			break
		}
		logf("xdpkit does not build right now (%s); retrying in 10 s", firstLine(err.Error()))
		time.Sleep(10 * time.Second)
	}
	if err != nil {
		// package stages is the one most likely to be mid-change in the tree
		if err2 := run(ctx, ".", "go", "build", "-tags", "xbnostages", "-o", filepath.Join(b.bin, "xdpkit-dut"), "./cmd/xdpkit-dut"); err2 != nil {
			b.err = err
			return b
		}
		b.notes = append(b.notes, "xdpkit-dut built with -tags xbnostages (fallback flow table): "+firstLine(err.Error()))
	}
	b.notes = append(b.notes, "xdpkit-dut, asavie-dut: go build (bench module, xdpkit from ../ via replace)")

	// The TX cells' headline DUT is the tool itself, built in the main
	// module as a user builds it (retried like xdpkit-dut while the tree
	// is mid-edit); without it those cells are skipped.
	xg := filepath.Join(b.bin, "xdp-gen")
	for deadline := time.Now().Add(90 * time.Second); ; {
		err = run(ctx, "..", "go", "build", "-o", xg, "./examples/xdp-gen")
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		logf("examples/xdp-gen does not build right now (%s); retrying in 10 s", firstLine(err.Error()))
		time.Sleep(10 * time.Second)
	}
	if err != nil {
		b.notes = append(b.notes, "examples/xdp-gen did not build, its TX cells skipped: "+firstLine(err.Error()))
	} else {
		b.xdpGen = xg
		b.notes = append(b.notes, "xdp-gen: go build ./examples/xdp-gen (main module)")
	}

	src := filepath.Join(anchors, "c", "xsk_rxdrop.c")
	bpf := filepath.Join(anchors, "bpf", "anc_xdp.bpf.c")
	if _, err := os.Stat(src); err != nil {
		b.notes = append(b.notes, "no anchors at "+anchors+": C libxdp cells skipped")
		return b
	}
	for _, t := range []string{"clang", "gcc"} {
		if _, err := exec.LookPath(t); err != nil {
			b.notes = append(b.notes, t+" missing: C libxdp cells skipped (apt-get install clang gcc libxdp-dev libbpf-dev)")
			return b
		}
	}
	cdir := filepath.Join(work, "anchors")
	if err := os.MkdirAll(cdir, 0o755); err != nil {
		b.err = err
		return b
	}
	for _, f := range []string{src, bpf} {
		data, err := os.ReadFile(f)
		if err != nil {
			b.err = err
			return b
		}
		if err := os.WriteFile(filepath.Join(cdir, filepath.Base(f)), data, 0o644); err != nil {
			b.err = err
			return b
		}
	}
	logf("building the C libxdp anchor from a copy of %s", anchors)
	if err := run(ctx, cdir, "clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-c", "anc_xdp.bpf.c", "-o", "anc_xdp.bpf.o"); err != nil {
		b.notes = append(b.notes, "C anchor BPF build failed, cells skipped: "+firstLine(err.Error()))
		return b
	}
	if err := run(ctx, cdir, "gcc", "-O2", "-Wall", "-o", "xsk_rxdrop", "xsk_rxdrop.c", "-lxdp", "-lbpf"); err != nil {
		b.notes = append(b.notes, "C anchor build failed, cells skipped: "+firstLine(err.Error()))
		return b
	}
	b.cBin = cdir
	b.notes = append(b.notes, "C libxdp anchor: "+src+" (gcc -O2, libxdp/libbpf from Debian)")
	return b
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// copyTree copies the regular files under src to dst, skipping top-level
// entries for which skip is true.
func copyTree(src, dst string, skip func(rel string) bool) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if rel != "." && !strings.Contains(rel, string(filepath.Separator)) && skip(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		t := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(t, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(t, b, 0o644)
	})
}
