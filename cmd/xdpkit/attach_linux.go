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
	group := f.Int("gid", -1, "let this group's processes open the XSKMAP: chgrp the pins and make the map and its directory group-accessible (-1: root only)")
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
	// The pinned link keeps the program attached after this process
	// exits; only its own handles close here.
	if err := prog.Close(); err != nil {
		fmt.Fprintf(stderr, "xdpkit attach: %v\n", err)
		return 1
	}
	dir := filepath.Join(*pinDir, *pin)
	xsks := filepath.Join(dir, "xsks")
	if *group >= 0 {
		// Workers of the group need to traverse to the map and open it
		// read-write; the program and link stay root's.
		for _, p := range []struct {
			path string
			mode os.FileMode
		}{{*pinDir, 0o711}, {dir, 0o750}, {xsks, 0o660}} {
			if err := os.Chown(p.path, -1, *group); err != nil {
				fmt.Fprintf(stderr, "xdpkit attach: %v\n", err)
				return 1
			}
			if err := os.Chmod(p.path, p.mode); err != nil {
				fmt.Fprintf(stderr, "xdpkit attach: %v\n", err)
				return 1
			}
		}
	}
	fmt.Fprintf(stdout, "attached to %s in %s mode, %d queues; workers: -xskmap %s\n", *iface, modeNow, queuesN, xsks)
	return 0
}

// runDetach removes what attach pinned: the program is detached once no
// worker holds it any more.
func runDetach(args []string, stdout, stderr io.Writer) int {
	f := flag.NewFlagSet("xdpkit detach", flag.ContinueOnError)
	f.SetOutput(stderr)
	pin := f.String("pin", "", "the `NAME` given to attach (required)")
	pinDir := f.String("pin-dir", redirect.DefaultPinDir, "bpffs `DIR` the pins are under")
	if err := f.Parse(args); err != nil {
		return 2
	}
	if *pin == "" {
		fmt.Fprintln(stderr, "xdpkit detach: -pin NAME is required")
		return 2
	}
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
