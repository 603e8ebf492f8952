// Package cli is the command-line frame of an xdpkit tool: the flags every
// AF_XDP tool needs (interface, queue or queues, CPUs, XDP and bind modes,
// a tcpdump filter, a pinned program, a duration, a metrics address), a
// context cancelled by SIGINT, SIGTERM or the end of -duration, one-line
// errors with exit codes, a live rate line on stderr, a JSON summary on
// stdout and Prometheus metrics over HTTP (ServeMetrics). The examples in
// examples/ are built on it.
//
// It opens no socket and attaches no program: a tool's main does that with
// afxdp, redirect, pipeline and workers, and uses cli to read flags and to
// report. RedirectOptions and WorkerQueues turn the shared flags into the
// values those packages take.
//
//	tool := cli.New("xdp-drop", "drop every redirected frame", "")
//	tool.Main(func(ctx context.Context) error {
//		opts, err := tool.RedirectOptions()
//		// redirect.Attach, afxdp.Open, pipeline.New, Run(ctx) ...
//		return tool.Summary(st, sock, nil)
//	})
//
// A Tool belongs to the goroutine that runs main. The one exception is
// LiveRate: it calls its snapshot and extra functions from a goroutine of
// its own, so they must be safe for that (Runner.Snapshot and
// workers.Set.Snapshot are).
//
// The package builds on every GOOS; what fails outside Linux is the
// afxdp and redirect calls a tool makes, with their ErrNotSupported.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/deviceplugin"
	"github.com/xdpkit/xdpkit/redirect"
)

// Tool is one program's command line: the flags every tool shares, the
// tool's own (added to Flags before Main), and where it reports.
type Tool struct {
	Name  string
	Flags *flag.FlagSet

	Iface      string         // -i: interface name
	Queue      int            // -q: queue id (without -queues)
	XDPMode    redirect.Mode  // -xdp-mode: where the redirect program attaches
	Bind       afxdp.BindMode // -bind: zero-copy or copy
	Coalesce   time.Duration  // -coalesce: afxdp.Config.Coalesce
	Filter     string         // -filter: tcpdump expression of the frames to redirect
	KeepMgmt   bool           // -keep-mgmt: ARP, ND, SSH and DNS always go to the kernel
	Duration   time.Duration  // -duration: how long to run, 0 until a signal
	JSON       bool           // -json: summary on stdout
	Queues     string         // -queues: one worker per queue instead of -q
	CPUs       string         // -cpus: the CPU of each worker
	SharedUMEM bool           // -shared-umem: one UMEM for all workers
	Pin        string         // -pin: the bpffs name of a redirect program shared with other processes
	Metrics    string         // -metrics: the address to serve Prometheus metrics on
	XSKMap     string         // -xskmap: the pin of an XSKMAP another process attached (xdpkit attach)
	DP         string         // -dp: get the XSKMAP from the AF_XDP device plugin: uds or pinned
	DPPath     string         // -dp-path: the device plugin's directory

	Stdout, Stderr io.Writer

	refused map[string]string // flag name -> why, from Refuse
}

// New returns a Tool with the common flags registered, reporting to
// os.Stdout and os.Stderr. name is the program's name in messages,
// summary its one-line description in -h, and defaultFilter the -filter
// default (empty: every frame).
func New(name, summary, defaultFilter string) *Tool {
	t := &Tool{Name: name, Flags: flag.NewFlagSet(name, flag.ContinueOnError), Stdout: os.Stdout, Stderr: os.Stderr}
	f := t.Flags
	f.StringVar(&t.Iface, "i", "", "interface to attach to (required)")
	f.IntVar(&t.Queue, "q", 0, "queue id")
	f.TextVar(&t.XDPMode, "xdp-mode", redirect.ModeAuto, "XDP attach `mode`: auto, driver or generic")
	f.TextVar(&t.Bind, "bind", afxdp.BindAuto, "AF_XDP bind `mode`: auto, zerocopy or copy")
	f.DurationVar(&t.Coalesce, "coalesce", 0, "under load, sleep this long (up to 1ms) before each wait for frames, without a wake-up: fewer wake-ups for that much more latency (0: off)")
	f.StringVar(&t.Filter, "filter", defaultFilter, "tcpdump-style filter: only matching frames come to user space (empty: all)")
	f.BoolVar(&t.KeepMgmt, "keep-mgmt", true, "always leave ARP, IPv6 ND, SSH and DNS to the kernel")
	f.DurationVar(&t.Duration, "duration", 0, "how long to run (0: until SIGINT/SIGTERM)")
	f.BoolVar(&t.JSON, "json", false, "print a JSON summary on stdout at the end")
	f.StringVar(&t.Queues, "queues", "", "run one worker per queue: a list like 0-3, 0,2 or all (instead of -q)")
	f.StringVar(&t.CPUs, "cpus", "", "pin the workers to these CPUs, one per queue (default: spread over the allowed CPUs)")
	f.BoolVar(&t.SharedUMEM, "shared-umem", false, "with -queues: one UMEM shared by all workers")
	f.StringVar(&t.Pin, "pin", "", "attach or join the redirect program pinned in bpffs under this name, to run one process per queue")
	f.StringVar(&t.Metrics, "metrics", "", "serve Prometheus metrics at http://`ADDR`/metrics (e.g. 127.0.0.1:9464; empty: none)")
	f.StringVar(&t.XSKMap, "xskmap", "", "register the sockets in the XSKMAP pinned at `PATH` (xdpkit attach -pin NAME makes /sys/fs/bpf/xdpkit/NAME/xsks) instead of attaching a program: needs no CAP_BPF or CAP_NET_ADMIN")
	f.StringVar(&t.DP, "dp", "", "get the XSKMAP from the AF_XDP device plugin for Kubernetes: `uds` (its socket) or pinned (its pinned map), instead of attaching a program")
	f.StringVar(&t.DPPath, "dp-path", deviceplugin.DefaultDir, "the device plugin's `DIR`: DIR/IFACE/afxdp.sock, DIR/IFACE/xsks_map")
	f.Usage = func() {
		fmt.Fprintf(f.Output(), "%s: %s\n\nUsage: %s -i IFACE [flags]\n\n", name, summary, name)
		f.PrintDefaults()
	}
	return t
}

// Refuse makes Parse fail when one of the common flags the tool does not
// implement is set, with why (how to do it instead) in the error, so that
// no flag is silently ignored. Call it before Parse or Main.
func (t *Tool) Refuse(why string, names ...string) {
	if t.refused == nil {
		t.refused = map[string]string{}
	}
	for _, name := range names {
		t.refused[name] = why
	}
}

// SinkCoalesce is the -coalesce default of the tools that end the traffic
// they take (xdp-drop, xdp-count, xdp-dump, xdp-filter -userspace): no
// frame they receive goes anywhere, so the latency coalescing adds under
// load delays nothing, and in the bench's poll-mode rx-drop on veth it
// cut the DUT's CPU per frame by 17-41 % (bench/README.md). The
// tools that send frames on keep 0, as the library does.
const SinkCoalesce = 50 * time.Microsecond

// CoalesceByDefault makes d the -coalesce default (see SinkCoalesce).
// Call it before Parse or Main; -coalesce 0 still turns coalescing off.
func (t *Tool) CoalesceByDefault(d time.Duration) {
	t.Coalesce = d
	if f := t.Flags.Lookup("coalesce"); f != nil {
		f.DefValue = d.String()
	}
}

// IsSet reports whether the flag name was set on the command line, for a
// tool whose flags depend on each other. Valid after Parse.
func (t *Tool) IsSet(name string) bool {
	set := false
	t.Flags.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// Parse parses args (the arguments without the program name) and checks
// the common flags. Every error but flag.ErrHelp (after -h, with the usage
// printed on Stderr) is a usage error, with the flag it is about. Main
// calls Parse; a program that wants its own exit codes calls it instead.
func (t *Tool) Parse(args []string) error {
	t.Flags.SetOutput(io.Discard) // errors are printed once, by Main
	if err := t.Flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			t.Flags.SetOutput(t.Stderr)
			t.Flags.Usage()
		}
		return err
	}
	t.Flags.SetOutput(t.Stderr)
	var refused error
	t.Flags.Visit(func(f *flag.Flag) {
		if why, ok := t.refused[f.Name]; ok && refused == nil {
			refused = fmt.Errorf("-%s does not apply to %s: %s", f.Name, t.Name, why)
		}
	})
	if refused != nil {
		return refused
	}
	switch {
	case t.Flags.NArg() > 0:
		return fmt.Errorf("unexpected argument %q (flags only; see -h)", t.Flags.Arg(0))
	case t.Iface == "":
		return errors.New("-i IFACE is required")
	case t.CPUs != "" && t.Queues == "":
		return errors.New("-cpus needs -queues")
	case t.Duration < 0:
		return errors.New("-duration must not be negative")
	case t.Coalesce < 0 || t.Coalesce > afxdp.MaxCoalesce:
		return fmt.Errorf("-coalesce %v: want 0 (off) up to %v", t.Coalesce, afxdp.MaxCoalesce)
	case t.DP != "" && t.DP != "uds" && t.DP != "pinned":
		return fmt.Errorf("-dp %q: want uds or pinned", t.DP)
	case t.DP != "" && t.XSKMap != "":
		return errors.New("-dp and -xskmap both name an XSKMAP: give one")
	}
	if t.DP != "" || t.XSKMap != "" {
		for _, name := range []string{"filter", "xdp-mode", "pin", "keep-mgmt"} {
			if t.IsSet(name) {
				return fmt.Errorf("-%s does not apply with -xskmap or -dp: the XDP program is the one another process attached, with its own filter and mode (xdpkit attach -filter ...)", name)
			}
		}
	}
	return nil
}

// Main parses os.Args and calls run with a context that is cancelled by
// SIGINT, SIGTERM or the end of -duration; run's deferred Closes have run
// when it returns. Then Main exits: 0 on success (also after a signal), 2
// for a bad flag, 1 for any other failure, with one line on stderr.
func (t *Tool) Main(run func(ctx context.Context) error) {
	if err := t.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		t.Logf("%v", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if t.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.Duration)
		defer cancel()
	}
	err := run(ctx)
	stop()
	if err != nil {
		t.Logf("%s", strings.ReplaceAll(err.Error(), "\n", " "))
		os.Exit(1)
	}
}

// Logf prints one line on stderr, prefixed with the tool's name.
func (t *Tool) Logf(format string, args ...any) {
	fmt.Fprintf(t.Stderr, "%s: %s\n", t.Name, fmt.Sprintf(format, args...))
}
