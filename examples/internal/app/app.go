//go:build linux

// Package app is what the example programs share: the common flags, opening
// the socket with its redirect program and filter, the live rate line on
// stderr, signal handling and the JSON summary.
package app

import (
	"context"
	"encoding/json"
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
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/redirect"
)

// App is one example program's run.
type App struct {
	Name  string
	Flags *flag.FlagSet

	Iface    string
	Queue    int
	XDPMode  string
	Bind     string
	Filter   string
	KeepMgmt bool
	Duration time.Duration
	JSON     bool

	Queues     string // -queues: one worker per queue
	CPUs       string // -cpus: the CPU of each worker
	SharedUMEM bool   // -shared-umem: one UMEM for all workers
	Pin        string // -pin: share a program pinned in bpffs with other processes

	// SocketConfig is the base socket configuration tools may adjust
	// before RunBuilder (TX budget, ring sizes).
	SocketConfig afxdp.Config

	Sock *afxdp.Socket
	Prog *redirect.Program

	Stdout, Stderr io.Writer
}

// New registers the common flags. defaultFilter is the -filter default.
func New(name, summary, defaultFilter string) *App {
	a := &App{Name: name, Flags: flag.NewFlagSet(name, flag.ContinueOnError), Stdout: os.Stdout, Stderr: os.Stderr}
	f := a.Flags
	f.StringVar(&a.Iface, "i", "", "interface to attach to (required)")
	f.IntVar(&a.Queue, "q", 0, "queue id")
	f.StringVar(&a.XDPMode, "xdp-mode", "auto", "XDP attach mode: auto, driver or generic")
	f.StringVar(&a.Bind, "bind", "auto", "AF_XDP bind mode: auto, zerocopy or copy")
	f.StringVar(&a.Filter, "filter", defaultFilter, "tcpdump-style filter: only matching frames come to user space (empty: all)")
	f.BoolVar(&a.KeepMgmt, "keep-mgmt", true, "always leave ARP, IPv6 ND, SSH and DNS to the kernel")
	f.DurationVar(&a.Duration, "duration", 0, "how long to run (0: until SIGINT/SIGTERM)")
	f.BoolVar(&a.JSON, "json", false, "print a JSON summary on stdout at the end")
	f.StringVar(&a.Queues, "queues", "", "run one worker per queue: a list like 0-3, 0,2 or all (instead of -q)")
	f.StringVar(&a.CPUs, "cpus", "", "pin the workers to these CPUs, one per queue (default: spread over the allowed CPUs)")
	f.BoolVar(&a.SharedUMEM, "shared-umem", false, "with -queues: one UMEM shared by all workers")
	f.StringVar(&a.Pin, "pin", "", "attach or join the redirect program pinned in bpffs under this name, to run one process per queue")
	f.Usage = func() {
		fmt.Fprintf(f.Output(), "%s: %s\n\nUsage: %s -i IFACE [flags]\n\n", name, summary, name)
		f.PrintDefaults()
	}
	return a
}

// Parse parses and checks the flags.
func (a *App) Parse(args []string) error {
	a.Flags.SetOutput(io.Discard) // errors are printed once, by Main
	if err := a.Flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			a.Flags.SetOutput(a.Stderr)
			a.Flags.Usage()
		}
		return err
	}
	a.Flags.SetOutput(a.Stderr)
	if a.Flags.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags only; see -h)", a.Flags.Arg(0))
	}
	if a.Iface == "" {
		return errors.New("-i IFACE is required")
	}
	if _, err := a.mode(); err != nil {
		return err
	}
	if _, err := a.bindMode(); err != nil {
		return err
	}
	if a.CPUs != "" && a.Queues == "" {
		return errors.New("-cpus needs -queues")
	}
	if a.Duration < 0 {
		return errors.New("-duration must not be negative")
	}
	return nil
}

// Mode returns the -xdp-mode flag's value.
func (a *App) Mode() (redirect.Mode, error) { return a.mode() }

// BindMode returns the -bind flag's value.
func (a *App) BindMode() (afxdp.BindMode, error) { return a.bindMode() }

func (a *App) mode() (redirect.Mode, error) {
	switch a.XDPMode {
	case "auto":
		return redirect.ModeAuto, nil
	case "driver":
		return redirect.ModeDriver, nil
	case "generic":
		return redirect.ModeGeneric, nil
	}
	return 0, fmt.Errorf("invalid -xdp-mode %q: want auto, driver or generic", a.XDPMode)
}

func (a *App) bindMode() (afxdp.BindMode, error) {
	switch a.Bind {
	case "auto":
		return afxdp.BindAuto, nil
	case "zerocopy":
		return afxdp.BindZeroCopy, nil
	case "copy":
		return afxdp.BindCopy, nil
	}
	return 0, fmt.Errorf("invalid -bind %q: want auto, zerocopy or copy", a.Bind)
}

// Open attaches the redirect program (with the -filter), unless
// AttachFilter attached one already, and opens the socket. cfg, if not
// nil, is the base socket configuration.
func (a *App) Open(cfg *afxdp.Config) error {
	bind, _ := a.bindMode()
	ifindex, err := ifindexOf(a.Iface)
	if err != nil {
		return err
	}
	if a.Prog == nil {
		mode, _ := a.mode()
		opts, err := a.redirectOptions(mode)
		if err != nil {
			return err
		}
		if a.Prog, err = redirect.Attach(ifindex, opts); err != nil {
			return err
		}
	}
	var c afxdp.Config
	if cfg != nil {
		c = *cfg
	}
	c.Bind = bind
	c.Steering = a.Prog
	if a.Sock, err = afxdp.OpenIndex(ifindex, a.Queue, &c); err != nil {
		a.Prog.Close()
		return err
	}
	return nil
}

// Close closes the socket and detaches the program.
func (a *App) Close() {
	if a.Sock != nil {
		a.Sock.Close()
	}
	if a.Prog != nil {
		a.Prog.Close()
	}
}

// Context is cancelled by SIGINT, SIGTERM or the end of -duration.
func (a *App) Context() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if a.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.Duration)
		return ctx, func() { cancel(); stop() }
	}
	return ctx, stop
}

// Run runs a pipeline over the socket until the context ends, printing the
// live rate line every second on stderr, then prints the summary: JSON on
// stdout with -json (the common fields plus extra()), a line on stderr
// otherwise.
func (a *App) Run(cfg pipeline.Config, live func() string, extra func() map[string]any) error {
	cfg.Socket = a.Sock
	r, err := pipeline.New(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := a.Context()
	defer cancel()
	stopLive := a.LiveRate(r.Snapshot, live)
	st, err := r.Run(ctx)
	stopLive()
	if err != nil {
		return err
	}
	return a.Summary(st, extra)
}

// LiveRate prints one line a second on stderr: packets/s, bits/s, drops,
// from snapshot, plus live() if not nil, until stop is called.
func (a *App) LiveRate(snapshot func() pipeline.Stats, live func() string) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		prev, prevAt := snapshot(), time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				cur := snapshot()
				dt := now.Sub(prevAt).Seconds()
				line := fmt.Sprintf("%s: rx %s pps %s  tx %s pps %s  drops %d",
					a.Name, si(float64(cur.RXPackets-prev.RXPackets)/dt), bps(float64(cur.RXBytes-prev.RXBytes)*8/dt),
					si(float64(cur.TXPackets-prev.TXPackets)/dt), bps(float64(cur.TXBytes-prev.TXBytes)*8/dt), cur.Dropped)
				if live != nil {
					line += "  " + live()
				}
				fmt.Fprintln(a.Stderr, line)
				prev, prevAt = cur, now
			}
		}
	}()
	return func() { close(done); <-finished }
}

// Summary prints the final counters.
func (a *App) Summary(st pipeline.Stats, extra func() map[string]any) error {
	if !a.JSON {
		fmt.Fprintf(a.Stderr, "%s: %d packets (%d bytes) received, %d transmitted, %d dropped in %.1fs\n",
			a.Name, st.RXPackets, st.RXBytes, st.TXPackets, st.Dropped, st.Duration.Seconds())
		return nil
	}
	out := map[string]any{
		"rx_packets": st.RXPackets,
		"rx_bytes":   st.RXBytes,
		"tx_packets": st.TXPackets + st.Forwarded,
		"tx_bytes":   st.TXBytes,
		"dropped":    st.Dropped,
		"malformed":  st.Malformed,
		"duration_s": st.Duration.Seconds(),
		"stages":     st.Stages,
	}
	if a.Sock != nil {
		if ks, err := a.Sock.Stats(); err == nil {
			out["kernel"] = map[string]uint64{
				"rx_dropped": ks.RXDropped, "rx_ring_full": ks.RXRingFull,
				"rx_fill_ring_empty": ks.RXFillRingEmptyDescs, "tx_invalid_descs": ks.TXInvalidDescs,
			}
		}
	}
	if extra != nil {
		for k, v := range extra() {
			out[k] = v
		}
	}
	enc := json.NewEncoder(a.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// Main parses the flags, runs fn and exits: 0 on success (also after
// SIGINT/SIGTERM), 2 for a bad flag, 1 for any other failure, with one
// line on stderr.
func Main(a *App, fn func(a *App) error) {
	if err := a.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(a.Stderr, "%s: %v\n", a.Name, err)
		os.Exit(2)
	}
	err := fn(a)
	a.Close()
	if err != nil {
		fmt.Fprintf(a.Stderr, "%s: %s\n", a.Name, strings.ReplaceAll(err.Error(), "\n", " "))
		os.Exit(1)
	}
}

func si(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.2fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.2fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func bps(v float64) string { return si(v) + "bit/s" }
