//go:build linux

// Package app is the process glue the example programs share, and nothing
// of the library's work: the common flags, a context cancelled by
// SIGINT/SIGTERM or at the end of -duration, the one-line error exit, the
// live rate line on stderr and the JSON summary on stdout.
//
// It opens no socket and attaches no program: every example's main.go does
// that itself, in the open, with the public API only. Besides printing it
// turns two groups of flags into library values (RedirectOptions,
// WorkerQueues), the steps xdp-drop's main.go spells out. Copy the main.go;
// this package is only how the tools read flags and print.
package app

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
	"github.com/xdpkit/xdpkit/redirect"
)

// CLI is one example program's command line: the flags every tool shares,
// and where it reports.
type CLI struct {
	Name  string
	Flags *flag.FlagSet

	Iface      string         // -i: interface name
	Queue      int            // -q: queue id (without -queues)
	XDPMode    redirect.Mode  // -xdp-mode: where the redirect program attaches
	Bind       afxdp.BindMode // -bind: zero-copy or copy
	Filter     string         // -filter: tcpdump expression of the frames to redirect
	KeepMgmt   bool           // -keep-mgmt: ARP, ND, SSH and DNS always go to the kernel
	Duration   time.Duration  // -duration: how long to run, 0 until a signal
	JSON       bool           // -json: summary on stdout
	Queues     string         // -queues: one worker per queue instead of -q
	CPUs       string         // -cpus: the CPU of each worker
	SharedUMEM bool           // -shared-umem: one UMEM for all workers
	Pin        string         // -pin: the bpffs name of a redirect program shared with other processes

	Stdout, Stderr io.Writer
}

// New registers the common flags; the tool adds its own to Flags before
// Main. defaultFilter is the -filter default.
func New(name, summary, defaultFilter string) *CLI {
	c := &CLI{Name: name, Flags: flag.NewFlagSet(name, flag.ContinueOnError), Stdout: os.Stdout, Stderr: os.Stderr}
	f := c.Flags
	f.StringVar(&c.Iface, "i", "", "interface to attach to (required)")
	f.IntVar(&c.Queue, "q", 0, "queue id")
	f.TextVar(&c.XDPMode, "xdp-mode", redirect.ModeAuto, "XDP attach `mode`: auto, driver or generic")
	f.TextVar(&c.Bind, "bind", afxdp.BindAuto, "AF_XDP bind `mode`: auto, zerocopy or copy")
	f.StringVar(&c.Filter, "filter", defaultFilter, "tcpdump-style filter: only matching frames come to user space (empty: all)")
	f.BoolVar(&c.KeepMgmt, "keep-mgmt", true, "always leave ARP, IPv6 ND, SSH and DNS to the kernel")
	f.DurationVar(&c.Duration, "duration", 0, "how long to run (0: until SIGINT/SIGTERM)")
	f.BoolVar(&c.JSON, "json", false, "print a JSON summary on stdout at the end")
	f.StringVar(&c.Queues, "queues", "", "run one worker per queue: a list like 0-3, 0,2 or all (instead of -q)")
	f.StringVar(&c.CPUs, "cpus", "", "pin the workers to these CPUs, one per queue (default: spread over the allowed CPUs)")
	f.BoolVar(&c.SharedUMEM, "shared-umem", false, "with -queues: one UMEM shared by all workers")
	f.StringVar(&c.Pin, "pin", "", "attach or join the redirect program pinned in bpffs under this name, to run one process per queue")
	f.Usage = func() {
		fmt.Fprintf(f.Output(), "%s: %s\n\nUsage: %s -i IFACE [flags]\n\n", name, summary, name)
		f.PrintDefaults()
	}
	return c
}

// parse parses and checks the flags.
func (c *CLI) parse(args []string) error {
	c.Flags.SetOutput(io.Discard) // errors are printed once, by Main
	if err := c.Flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.Flags.SetOutput(c.Stderr)
			c.Flags.Usage()
		}
		return err
	}
	c.Flags.SetOutput(c.Stderr)
	switch {
	case c.Flags.NArg() > 0:
		return fmt.Errorf("unexpected argument %q (flags only; see -h)", c.Flags.Arg(0))
	case c.Iface == "":
		return errors.New("-i IFACE is required")
	case c.CPUs != "" && c.Queues == "":
		return errors.New("-cpus needs -queues")
	case c.Duration < 0:
		return errors.New("-duration must not be negative")
	}
	return nil
}

// Main parses the flags and calls run with a context that is cancelled by
// SIGINT, SIGTERM or the end of -duration; run's deferred Closes have run
// when it returns. Then Main exits: 0 on success (also after a signal), 2
// for a bad flag, 1 for any other failure, with one line on stderr.
func (c *CLI) Main(run func(ctx context.Context) error) {
	if err := c.parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		c.Logf("%v", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if c.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Duration)
		defer cancel()
	}
	err := run(ctx)
	stop()
	if err != nil {
		c.Logf("%s", strings.ReplaceAll(err.Error(), "\n", " "))
		os.Exit(1)
	}
}

// Logf prints one line on stderr, prefixed with the tool's name.
func (c *CLI) Logf(format string, args ...any) {
	fmt.Fprintf(c.Stderr, "%s: %s\n", c.Name, fmt.Sprintf(format, args...))
}
