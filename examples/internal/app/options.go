//go:build linux

package app

import (
	"fmt"
	"runtime"

	"github.com/xdpkit/xdpkit/filter"
	"github.com/xdpkit/xdpkit/redirect"
	"github.com/xdpkit/xdpkit/workers"
)

// RedirectOptions turns -xdp-mode, -filter and -keep-mgmt into the options
// of the redirect program: the filter compiled to run in the kernel in
// front of the redirect (matching frames go to the sockets, the rest to
// the kernel stack). xdp-drop's main.go spells this out.
func (c *CLI) RedirectOptions() (*redirect.Options, error) {
	opts := &redirect.Options{Mode: c.XDPMode}
	if c.Filter == "" && !c.KeepMgmt {
		return opts, nil
	}
	f, err := filter.CompileWithOptions(c.Filter, filter.Redirect, filter.Pass,
		&filter.CompileOptions{KeepManagement: c.KeepMgmt})
	if err != nil {
		return nil, err // "filter: ...", naming the expression
	}
	opts.Filter = f
	return opts, nil
}

// WorkerQueues turns -q, or -queues and -cpus, into workers.Config's
// Queues and CPUs. With -q it is that one queue on a thread left unpinned
// (an empty CPU list); with -queues, "all" means every queue prog has an
// XSKMAP entry for, and without -cpus the workers are spread over the
// CPUs the process may use (a nil list).
func (c *CLI) WorkerQueues(prog *redirect.Program) (queues, cpus []int, err error) {
	if c.Queues == "" {
		return []int{c.Queue}, []int{}, nil
	}
	if queues, err = workers.ParseList(c.Queues, prog.Queues()); err != nil {
		return nil, nil, fmt.Errorf("-queues: %w", err)
	}
	if c.CPUs != "" {
		if cpus, err = workers.ParseCPUs(c.CPUs, runtime.NumCPU()); err != nil {
			return nil, nil, fmt.Errorf("-cpus: %w", err)
		}
	}
	return queues, cpus, nil
}
