package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	"github.com/xdpkit/xdpkit/filter"
	"github.com/xdpkit/xdpkit/redirect"
)

// runAttach is the privileged step of split privileges: attach the
// redirect program to an interface and pin it, with its XSKMAP, for
// workers that only open sockets and register them (-xskmap PATH).
func runAttach(args []string, stdout, stderr io.Writer) int {
	f := flag.NewFlagSet("xdpkit attach", flag.ContinueOnError)
	f.SetOutput(stderr)
	iface := f.String("i", "", "interface to attach to (required)")
	pin := f.String("pin", "", "pin `NAME`: the program, its link and its XSKMAP go under -pin-dir/NAME (required)")
	pinDir := f.String("pin-dir", redirect.DefaultPinDir, "bpffs `DIR` to pin under")
	expr := f.String("filter", "", "tcpdump-style filter: only matching frames go to the sockets")
	keepMgmt := f.Bool("keep-mgmt", true, "always leave ARP, IPv6 ND, SSH and DNS to the kernel")
	var mode redirect.Mode
	f.TextVar(&mode, "xdp-mode", redirect.ModeAuto, "XDP attach `mode`: auto, driver or generic")
	queues := f.Int("queues", 0, "XSKMAP entries (0: the interface's RX queue count)")
	counters := f.Bool("counters", false, "count the program's verdicts (xdpkit status, metrics)")
	group := f.Int("gid", -1, "let this group's processes open the XSKMAP: pin it once more under -shared-dir/NAME, readable and writable by the group (-1: root only)")
	sharedDir := f.String("shared-dir", defaultSharedDir, "bpffs `DIR` for the group's copy of the XSKMAP pin (with -gid)")
	if err := f.Parse(args); err != nil {
		return 2
	}
	if *iface == "" || *pin == "" {
		fmt.Fprintln(stderr, "xdpkit attach: -i IFACE and -pin NAME are required")
		return 2
	}
	ifc, err := net.InterfaceByName(*iface)
	if err != nil {
		fmt.Fprintf(stderr, "xdpkit attach: interface %q: %v\n", *iface, err)
		return 1
	}
	opts := &redirect.Options{Mode: mode, PinDir: *pinDir, Queues: *queues, Counters: *counters}
	if *expr != "" || *keepMgmt {
		if opts.Filter, err = filter.CompileWithOptions(*expr, filter.Redirect, filter.Pass, &filter.CompileOptions{KeepManagement: *keepMgmt}); err != nil {
			fmt.Fprintf(stderr, "xdpkit attach: %v\n", err)
			return 2
		}
	}
	prog, err := redirect.AttachPinned(ifc.Index, *pin, opts)
	if err != nil {
		fmt.Fprintf(stderr, "xdpkit attach: %v\n", err)
		return 1
	}
	queuesN, modeNow := prog.Queues(), prog.Mode()
	xsks := filepath.Join(*pinDir, *pin, "xsks")
	if *group >= 0 {
		// The pin directory stays root's, mode 0700, as AttachPinned
		// wants it; the group gets a pin of the map of its own, elsewhere.
		if xsks, err = sharePin(prog, *sharedDir, *pin, *group); err != nil {
			prog.Close()
			fmt.Fprintf(stderr, "xdpkit attach: %v\n", err)
			return 1
		}
	}
	// The pinned link keeps the program attached after this process
	// exits; only its own handles close here.
	if err := prog.Close(); err != nil {
		fmt.Fprintf(stderr, "xdpkit attach: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "attached to %s in %s mode, %d queues; workers: -xskmap %s\n", *iface, modeNow, queuesN, xsks)
	return 0
}

// defaultSharedDir is where -gid pins the group's copy of an XSKMAP.
const defaultSharedDir = "/sys/fs/bpf/xdpkit-shared"

// sharePin pins prog's XSKMAP at dir/name/xsks for group gid: the
// directories root's and traversable (dir 0711, dir/name 0750 with group
// gid), the pin 0660 with group gid.
func sharePin(prog *redirect.Program, dir, name string, gid int) (string, error) {
	// The group must be able to walk down to it.
	if fi, err := os.Stat(filepath.Dir(dir)); err == nil && fi.Mode().Perm()&0o011 == 0 {
		return "", fmt.Errorf("%s has mode %#o: group %d cannot reach %s; chmod o+x %s (or mount bpffs with mode 0711)", filepath.Dir(dir), fi.Mode().Perm(), gid, dir, filepath.Dir(dir))
	}
	sub := filepath.Join(dir, name)
	if err := os.MkdirAll(sub, 0o750); err != nil {
		return "", err
	}
	path := filepath.Join(sub, "xsks")
	_ = os.Remove(path) // a pin of an earlier attach
	if err := prog.Map().Pin(path); err != nil {
		return "", fmt.Errorf("pin the XSKMAP for group %d at %s: %w", gid, path, err)
	}
	for _, p := range []struct {
		path string
		mode os.FileMode
		gid  int
	}{{dir, 0o711, -1}, {sub, 0o750, gid}, {path, 0o660, gid}} {
		if err := os.Chown(p.path, 0, p.gid); err != nil {
			return "", err
		}
		if err := os.Chmod(p.path, p.mode); err != nil {
			return "", err
		}
	}
	return path, nil
}

// runDetach removes what attach pinned: the program is detached once no
// worker holds it any more.
func runDetach(args []string, stdout, stderr io.Writer) int {
	f := flag.NewFlagSet("xdpkit detach", flag.ContinueOnError)
	f.SetOutput(stderr)
	pin := f.String("pin", "", "the `NAME` given to attach (required)")
	pinDir := f.String("pin-dir", redirect.DefaultPinDir, "bpffs `DIR` the pins are under")
	sharedDir := f.String("shared-dir", defaultSharedDir, "bpffs `DIR` of the group's copies of the XSKMAP pins (attach -gid)")
	if err := f.Parse(args); err != nil {
		return 2
	}
	if *pin == "" {
		fmt.Fprintln(stderr, "xdpkit detach: -pin NAME is required")
		return 2
	}
	if err := os.RemoveAll(filepath.Join(*sharedDir, *pin)); err != nil {
		fmt.Fprintf(stderr, "xdpkit detach: %v\n", err)
		return 1
	}
	_ = os.Remove(*sharedDir) // once it holds no other group's pins
	if _, err := os.Stat(filepath.Join(*pinDir, *pin)); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(stderr, "xdpkit detach: nothing pinned as %s under %s\n", *pin, *pinDir)
		return 1
	}
	if err := redirect.Unpin(*pin, &redirect.Options{PinDir: *pinDir}); err != nil {
		fmt.Fprintf(stderr, "xdpkit detach: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "removed %s: the program is detached when the last worker has closed its socket\n", filepath.Join(*pinDir, *pin))
	return 0
}
