//go:build !linux

package redirect

import (
	"fmt"
	"runtime"

	"github.com/cilium/ebpf"

	"github.com/xdpkit/xdpkit/filter"
)

// Program is an XDP redirect program. It is only implemented on Linux.
type Program struct{}

func errPlatform(op string) error {
	return fmt.Errorf("redirect: %s: not supported on %s/%s: %w", op, runtime.GOOS, runtime.GOARCH, ErrNotSupported)
}

// Attach is only implemented on Linux.
func Attach(ifindex int, opts *Options) (*Program, error) {
	return nil, errPlatform("attach")
}

// AttachProgram is only implemented on Linux.
func AttachProgram(ifindex int, prog *ebpf.Program, xsks *ebpf.Map, opts *Options) (*Program, error) {
	return nil, errPlatform("attach program")
}

// Use is only implemented on Linux.
func Use(prog *ebpf.Program, xsks *ebpf.Map) (*Program, error) {
	return nil, errPlatform("use program")
}

// Counters is only implemented on Linux.
func (p *Program) Counters() (Counters, error) { return Counters{}, errPlatform("counters") }

// Register is only implemented on Linux.
func (p *Program) Register(queue int, socketFD int) error { return errPlatform("register") }

// Unregister is only implemented on Linux.
func (p *Program) Unregister(queue int) error { return errPlatform("unregister") }

// Mode returns ModeAuto.
func (p *Program) Mode() Mode { return ModeAuto }

// Ifindex returns 0.
func (p *Program) Ifindex() int { return 0 }

// Filter returns nil.
func (p *Program) Filter() *filter.Program { return nil }

// Queues returns 0.
func (p *Program) Queues() int { return 0 }

// XDPProgram returns nil.
func (p *Program) XDPProgram() *ebpf.Program { return nil }

// Map returns nil.
func (p *Program) Map() *ebpf.Map { return nil }

// Close does nothing.
func (p *Program) Close() error { return nil }
