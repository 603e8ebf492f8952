package cli

import (
	"fmt"
	"runtime"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/deviceplugin"
	"github.com/xdpkit/xdpkit/filter"
	"github.com/xdpkit/xdpkit/redirect"
	"github.com/xdpkit/xdpkit/workers"
)

// RedirectOptions turns -xdp-mode, -filter and -keep-mgmt into the options
// of a redirect program (redirect.Attach, AttachPinned, or
// afxdp.Config.Redirect): the filter compiled to run in the kernel in
// front of the redirect, so matching frames go to the sockets and the
// rest to the kernel stack. The error of a bad filter names the
// expression.
func (t *Tool) RedirectOptions() (*redirect.Options, error) {
	opts := &redirect.Options{Mode: t.XDPMode}
	if t.Filter == "" && !t.KeepMgmt {
		return opts, nil
	}
	f, err := filter.CompileWithOptions(t.Filter, filter.Redirect, filter.Pass,
		&filter.CompileOptions{KeepManagement: t.KeepMgmt})
	if err != nil {
		return nil, err // "filter: ...", naming the expression
	}
	opts.Filter = f
	return opts, nil
}

// WorkerQueues turns -q, or -queues and -cpus, into workers.Config's
// Queues and CPUs. With -q it is that one queue on a thread left unpinned
// (an empty CPU list); with -queues, "all" means queues 0 to numQueues-1
// (pass the redirect program's Queues()), and without -cpus the workers
// are spread over the CPUs the process may use (a nil list).
func (t *Tool) WorkerQueues(numQueues int) (queues, cpus []int, err error) {
	if t.Queues == "" {
		return []int{t.Queue}, []int{}, nil
	}
	if queues, err = workers.ParseList(t.Queues, numQueues); err != nil {
		return nil, nil, fmt.Errorf("-queues: %w", err)
	}
	if t.CPUs != "" {
		if cpus, err = workers.ParseCPUs(t.CPUs, runtime.NumCPU()); err != nil {
			return nil, nil, fmt.Errorf("-cpus: %w", err)
		}
	}
	return queues, cpus, nil
}

// ExistingXSKMap returns the XSKMAP -xskmap or -dp name, for a tool to
// register its sockets in (afxdp.Config.Steering, workers.Config.Steering)
// instead of attaching a program; nil when neither is set. With -dp uds
// it asks the AF_XDP device plugin's socket for -i's map; with -dp pinned
// it opens the plugin's pinned map. The caller closes it.
func (t *Tool) ExistingXSKMap() (*redirect.XSKMap, error) {
	switch {
	case t.XSKMap != "":
		return redirect.OpenXSKMap(t.XSKMap)
	case t.DP == "uds":
		return deviceplugin.XSKMap(t.DPPath, t.Iface, 0)
	case t.DP == "pinned":
		return deviceplugin.PinnedXSKMap(t.DPPath, t.Iface)
	}
	return nil, nil
}

// Steering is where a tool registers its sockets (afxdp.Config.Steering,
// workers.Config.Steering): the redirect program it attached or joined,
// or the XSKMAP of another process's program.
type Steering struct {
	afxdp.Registrar
	// Program is the program this process attached (or joined, with
	// -pin); nil with -xskmap or -dp.
	Program *redirect.Program
	// Queues is how many queues the XSKMAP has entries for: what
	// -queues all means.
	Queues int
	close  func() error
}

// Close closes the process's handles: the program is detached (unless
// pinned), a map another process attached stays.
func (s *Steering) Close() error { return s.close() }

// AttachOrJoin is what -pin, -xskmap and -dp choose between: with
// -xskmap or -dp it attaches nothing and returns the XSKMAP another
// process attached (ExistingXSKMap; it needs no BPF privileges); with
// -pin it attaches or joins the program pinned under that name
// (redirect.AttachPinned); otherwise it attaches one (redirect.Attach),
// with opts (RedirectOptions) either way.
func (t *Tool) AttachOrJoin(ifindex int, opts *redirect.Options) (*Steering, error) {
	xsks, err := t.ExistingXSKMap()
	if err != nil {
		return nil, err
	}
	if xsks != nil {
		return &Steering{Registrar: xsks, Queues: xsks.Queues(), close: xsks.Close}, nil
	}
	var prog *redirect.Program
	if t.Pin != "" {
		prog, err = redirect.AttachPinned(ifindex, t.Pin, opts) // shared with other processes
	} else {
		prog, err = redirect.Attach(ifindex, opts)
	}
	if err != nil {
		return nil, err
	}
	return &Steering{Registrar: prog, Program: prog, Queues: prog.Queues(), close: prog.Close}, nil
}
