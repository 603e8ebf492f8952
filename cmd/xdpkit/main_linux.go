// Command xdpkit answers the questions of a silent AF_XDP socket.
//
//	xdpkit doctor [-i IFACE] [-q QUEUE] [-json]
//
// doctor checks the host (kernel features, BPF JIT, BTF, bpffs,
// capabilities, locked memory, hugepages, CPUs) and, with -i, the
// interface (link, driver, MTU, native XDP and zero-copy from the netdev
// netlink family, RX/TX metadata, the attached XDP program and whose it
// is, which queues have sockets, a veth's peer, NAPI settings) and, with
// -q, who holds that queue: one line per check with its verdict (ok,
// info, warn, fail), what it saw and, when known, the fix. It exits 1
// when a check fails.
//
//	xdpkit status [-json] [-watch D]
//
// status lists the AF_XDP sockets on the host: those of xdpkit processes
// (each announces itself in /run/xdpkit: see metrics.Announce; entries of
// processes that died are removed) with their rings, UMEM, counters and,
// with -watch, rates; every socket of any process through the kernel's
// xsk_diag (what ss --xdp reads) where the kernel has it; and, where it
// does not, the queues the kernel marks as bound that no announced process
// accounts for. Then the XDP programs attached per interface, and
// xdpkit's pins in bpffs.
//
//	xdpkit attach -i IFACE -pin NAME [-filter EXPR] [-xdp-mode M] [-gid GID]
//	xdpkit detach -pin NAME
//
// attach is the privileged half of split privileges: it attaches the
// redirect program (with its filter) to IFACE and pins it, its link and
// its XSKMAP under /sys/fs/bpf/xdpkit/NAME, so that workers started
// without CAP_BPF or CAP_NET_ADMIN — with CAP_NET_RAW and locked memory
// only — open their sockets and register them in the map (-xskmap
// /sys/fs/bpf/xdpkit/NAME/xsks on the example tools). -gid lets a group's
// processes open the map. detach removes the pins; the program goes when
// the last worker has closed.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/xdpkit/xdpkit/internal/doctor"
	"github.com/xdpkit/xdpkit/metrics"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: xdpkit doctor [-i IFACE] [-q QUEUE] [-json]")
	fmt.Fprintln(w, "       xdpkit status [-json] [-watch D]")
	fmt.Fprintln(w, "       xdpkit attach -i IFACE -pin NAME [-filter EXPR] [-xdp-mode M] [-gid GID]")
	fmt.Fprintln(w, "       xdpkit detach -pin NAME")
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "doctor":
		return runDoctor(args[1:], stdout, stderr)
	case "status":
		return runStatus(args[1:], stdout, stderr)
	case "attach":
		return runAttach(args[1:], stdout, stderr)
	case "detach":
		return runDetach(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "xdpkit: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func runDoctor(args []string, stdout, stderr io.Writer) int {
	f := flag.NewFlagSet("xdpkit doctor", flag.ContinueOnError)
	f.SetOutput(stderr)
	iface := f.String("i", "", "interface to check")
	queue := f.Int("q", -1, "queue a socket is to bind (with -i)")
	asJSON := f.Bool("json", false, "print the results as JSON")
	dir := f.String("run-dir", metrics.RunDir, "where xdpkit processes announce themselves (to name a queue's holder)")
	if err := f.Parse(args); err != nil {
		return 2
	}
	if *queue >= 0 && *iface == "" {
		fmt.Fprintln(stderr, "xdpkit doctor: -q needs -i")
		return 2
	}
	h, err := doctor.ThisHost()
	if err != nil {
		fmt.Fprintf(stderr, "xdpkit doctor: %v\n", err)
		return 1
	}
	results := h.Checks()
	if *iface != "" {
		i, err := doctor.ReadIface(*iface, *dir)
		if err != nil {
			results = append(results, doctor.Result{Check: "link", Verdict: doctor.Fail, Evidence: err.Error(), Fix: "ip link show lists the interfaces (in this network namespace)"})
		} else {
			results = append(results, i.Checks(*queue)...)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(results)
	} else {
		for _, r := range results {
			fmt.Fprintln(stdout, r)
		}
	}
	if doctor.Failed(results) {
		return 1
	}
	return 0
}
