//go:build linux

package examples_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket/pcapgo"

	"github.com/xdpkit/xdpkit/internal/testutils"
)

// failLine runs an example that must fail before it captures anything and
// returns its one line of error.
func failLine(t *testing.T, name string, args ...string) string {
	t.Helper()
	bin := binary(t, name) // builds the examples the first time: not part of the 30s
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %v: no exit within 30s\n%s", name, args, out)
	}
	if err == nil {
		t.Fatalf("%s %v succeeded:\n%s", name, args, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], name+": ") {
		t.Fatalf("%s %v: want one clear line, got:\n%s", name, args, out)
	}
	return lines[0]
}

func wantFile(t *testing.T, path, content string) {
	t.Helper()
	if b, err := os.ReadFile(path); err != nil || string(b) != content {
		t.Errorf("%s: %q, %v; want it untouched (%q)", path, b, err, content)
	}
}

// TestDumpFileSafety: xdp-dump does not overwrite a file without -force,
// never writes through a symbolic link or into a FIFO, checks -mode, and
// removes the file it created when it fails before capturing.
func TestDumpFileSafety(t *testing.T) {
	testutils.RequirePrivileged(t)
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing.pcap")
	if err := os.WriteFile(existing, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.pcap")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling.pcap")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), dangling); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.pcap")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}

	if l := failLine(t, "xdp-dump", "-i", "lo", "-w", existing); !strings.Contains(l, existing+" exists: use -force to overwrite it") {
		t.Errorf("existing file: %q", l)
	}
	wantFile(t, existing, "keep")
	for _, force := range []bool{false, true} {
		for _, path := range []string{link, dangling} {
			args := []string{"-i", "lo", "-w", path}
			if force {
				args = append(args, "-force")
			}
			if l := failLine(t, "xdp-dump", args...); !strings.Contains(l, path+" is a symbolic link: refusing to write through it") {
				t.Errorf("%v: %q", args, l)
			}
		}
	}
	wantFile(t, target, "secret")
	if _, err := os.Stat(filepath.Join(dir, "nowhere")); !os.IsNotExist(err) {
		t.Errorf("the dangling link's target was created: %v", err)
	}
	if l := failLine(t, "xdp-dump", "-i", "lo", "-w", fifo, "-force"); !strings.Contains(l, "is not a regular file") {
		t.Errorf("FIFO without a reader, with -force: %q", l)
	}
	reader, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if l := failLine(t, "xdp-dump", "-i", "lo", "-w", fifo, "-force"); !strings.Contains(l, "is not a regular file") {
		t.Errorf("FIFO with a reader, with -force: %q", l)
	}
	for _, mode := range []string{"999", "01777", "rw", "-1"} {
		if l := failLine(t, "xdp-dump", "-i", "lo", "-w", filepath.Join(dir, "m.pcap"), "-mode", mode); !strings.Contains(l, "-mode") {
			t.Errorf("-mode %s: %q", mode, l)
		}
	}
	fresh := filepath.Join(dir, "fresh.pcap")
	if l := failLine(t, "xdp-dump", "-i", "xknoexist0", "-w", fresh); !strings.Contains(l, "xknoexist0") {
		t.Errorf("unknown interface: %q", l)
	}
	if _, err := os.Lstat(fresh); !os.IsNotExist(err) {
		t.Errorf("a failed run left %s behind: %v", fresh, err)
	}
}

// TestDumpForce: -force overwrites an existing capture and gives it -mode.
func TestDumpForce(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	file := filepath.Join(t.TempDir(), "old.pcap")
	if err := os.WriteFile(file, []byte(strings.Repeat("old capture ", 1000)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, v, "xdp-dump", "-w", file, "-force", "-mode", "0640")
	peer := v.OpenPeerPacketSocket(t)
	var frames [][]byte
	for i := range 10 {
		frames = append(frames, udp(v, uint16(200+i), 9053, "forced"))
	}
	sendFrames(t, peer, frames)
	waitRedirected(t, v, 10)
	if out := p.stop(); num(out, "written") != 10 {
		t.Errorf("written %v, want 10", out["written"])
	}
	fh, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if fi, err := fh.Stat(); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v (%v), want 0640", fi.Mode(), err)
	}
	r, err := pcapgo.NewReader(fh)
	if err != nil {
		t.Fatalf("overwritten file is no pcap: %v", err)
	}
	n := 0
	for {
		if _, _, err := r.ReadPacketData(); err != nil {
			break
		}
		n++
	}
	if n != 10 {
		t.Errorf("%d records, want 10 (and none of the old content)", n)
	}
}
