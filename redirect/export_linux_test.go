//go:build linux

package redirect

import (
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/xdpkit/xdpkit/filter"
)

// Internals for the black-box tests in package redirect_test.

// Load creates the redirect program and its XSKMAP without attaching them.
func Load(queues int) (*ebpf.Program, *ebpf.Map, error) {
	p, m, _, err := load(queues, Options{})
	return p, m, err
}

// LoadWithFilter is Load with a compiled filter.
func LoadWithFilter(queues int, f *filter.Program) (*ebpf.Program, *ebpf.Map, error) {
	p, m, _, err := load(queues, Options{Filter: f})
	return p, m, err
}

// LoadWithOptions creates the program Attach would load for o, with its
// XSKMAP and counters map (nil without o.Counters), without attaching it.
func LoadWithOptions(queues int, o *Options) (*ebpf.Program, *ebpf.Map, *ebpf.Map, error) {
	r, err := o.resolve()
	if err != nil {
		return nil, nil, nil, err
	}
	return load(queues, r)
}

// RedirectSymbol labels the redirect part of the program.
const RedirectSymbol = redirectSymbol

// LoadFiltered loads the redirect program with filter inserted before the
// redirect, using xsks as its XSKMAP.
func LoadFiltered(filter asm.Instructions, xsks *ebpf.Map) (*ebpf.Program, error) {
	insns := instructions(filter, nil, true)
	if err := insns.AssociateMap(xsksMapSymbol, xsks); err != nil {
		return nil, err
	}
	return ebpf.NewProgram(&ebpf.ProgramSpec{Name: "xdpkit_filtered", Type: ebpf.XDP, License: license, Instructions: insns})
}

// ResolveForTest is (*Options).resolve: the validated copy Attach works with.
func ResolveForTest(o *Options) (Options, error) { return o.resolve() }
