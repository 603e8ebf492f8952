//go:build linux

package app

import (
	"fmt"
	"net"

	"github.com/xdpkit/xdpkit/filter"
	"github.com/xdpkit/xdpkit/redirect"
)

// redirectOptions builds the program options for -filter and -keep-mgmt:
// matching frames are redirected to the socket, the rest passed to the
// kernel.
func (a *App) redirectOptions(mode redirect.Mode) (*redirect.Options, error) {
	return a.filterOptions(mode, a.Filter, filter.Redirect, filter.Pass)
}

// filterOptions compiles expr with the given actions into program options.
func (a *App) filterOptions(mode redirect.Mode, expr string, match, nomatch filter.Action) (*redirect.Options, error) {
	o := &redirect.Options{Mode: mode}
	if expr == "" && !a.KeepMgmt && match == filter.Redirect {
		return o, nil // no filter at all: the plain redirect program
	}
	f, err := filter.CompileWithOptions(expr, match, nomatch, &filter.CompileOptions{KeepManagement: a.KeepMgmt})
	if err != nil {
		return nil, err
	}
	o.Filter = f
	return o, nil
}

// AttachFilter attaches a program that applies expr in the kernel with
// the given actions and counts its verdicts (Prog.Counters). A later Open
// uses this program for its socket.
func (a *App) AttachFilter(expr string, match, nomatch filter.Action) error {
	mode, _ := a.mode()
	o, err := a.filterOptions(mode, expr, match, nomatch)
	if err != nil {
		return err
	}
	o.Counters = true
	ifindex, err := ifindexOf(a.Iface)
	if err != nil {
		return err
	}
	a.Prog, err = redirect.Attach(ifindex, o)
	return err
}

func ifindexOf(name string) (int, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0, fmt.Errorf("interface %q: %w (check 'ip link')", name, err)
	}
	return ifi.Index, nil
}
