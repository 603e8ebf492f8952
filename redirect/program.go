//go:build linux

package redirect

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/filter"
	"github.com/xdpkit/xdpkit/internal/sys"
)

const (
	// progName and mapName are what bpftool and ip link show (at most 15
	// bytes each).
	progName = "xdpkit_redirect"
	mapName  = "xsks_map"
	// license is GPL-compatible so that filters inserted later may call
	// GPL-only helpers.
	license = "Dual MIT/GPL"

	// xsksMapSymbol is the reference the instructions use for the XSKMAP.
	xsksMapSymbol = mapName
	// redirectSymbol labels the first redirect instruction: a filter may
	// jump there to steer the frame to its queue's socket.
	redirectSymbol = filter.RedirectSymbol

	// xdpMDRxQueueIndex is offsetof(struct xdp_md, rx_queue_index).
	xdpMDRxQueueIndex = 16
	// xskSymbol labels the XSKMAP redirect when a fast path comes first
	// (then redirectSymbol is the fast path's entry).
	xskSymbol = "xdpkit_xsk"

	// xdpPass is XDP_PASS. Since Linux 5.3 the low bits of
	// bpf_redirect_map's flags are the action returned when the key has no
	// entry.
	xdpPass = 2
)

// instructions builds the redirect program. On entry R1 is the struct
// xdp_md context; it is kept in R6, which helper calls preserve.
//
// filter runs before the redirect. It may use R0-R5 and R7-R9 but must
// not change R6 (the context). It either returns its own verdict (for
// example XDP_PASS to leave a frame to the kernel) or falls through, or
// jumps to redirectSymbol, to hand the frame to its queue's socket.
// Without tail the redirect is left out: the verifier refuses
// instructions no path reaches, so a filter that never redirects must be
// the whole program.
//
// fast, if not empty, is the fast path: it starts at redirectSymbol and
// jumps to xskSymbol for the frames it leaves to the socket.
func instructions(filter, fast asm.Instructions, tail bool) asm.Instructions {
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
	}
	insns = append(insns, filter...)
	if !tail {
		return insns
	}
	redirect := redirectSymbol
	if len(fast) > 0 {
		fast[0] = fast[0].WithSymbol(redirectSymbol)
		insns = append(insns, fast...)
		redirect = xskSymbol
	}
	return append(insns,
		// r2 = ctx->rx_queue_index
		asm.LoadMem(asm.R2, asm.R6, xdpMDRxQueueIndex, asm.Word).WithSymbol(redirect),
		// return bpf_redirect_map(&xsks_map, r2, XDP_PASS)
		asm.LoadMapPtr(asm.R1, 0).WithReference(xsksMapSymbol),
		asm.Mov.Imm(asm.R3, xdpPass),
		asm.FnRedirectMap.Call(),
		asm.Return(),
	)
}

// load is loadFor without an interface: for programs that are not bound
// to one (AttachPinned), so it refuses Options.RXMetadata.
func load(queues int, o Options) (_ *ebpf.Program, _ *ebpf.Map, counters *ebpf.Map, err error) {
	return loadFor(0, queues, o)
}

// loadFor creates the XSKMAP with queues entries and the program that uses
// it, with f (if not nil) deciding first; frags loads it with
// BPF_F_XDP_HAS_FRAGS. With Options.RXMetadata the program is bound to
// ifindex (see rxmeta_linux.go). On error nothing is left open; the error
// has no "redirect:" prefix, the caller adds the context.
func loadFor(ifindex, queues int, o Options) (_ *ebpf.Program, _ *ebpf.Map, counters *ebpf.Map, err error) {
	// RX metadata: find the kfuncs and check the device first, before
	// anything is created (rxmeta_linux.go).
	var rx *rxKfuncs
	if o.RXMetadata {
		if rx, err = rxMetadataKfuncs(ifindex); err != nil {
			return nil, nil, nil, err
		}
	}

	f, withCounters, frags := o.Filter, o.Counters, o.MultiBuffer
	xsks, err := ebpf.NewMap(&ebpf.MapSpec{
		Name:       mapName,
		Type:       ebpf.XSKMap,
		KeySize:    4,
		ValueSize:  4,
		MaxEntries: uint32(queues),
	})
	if err != nil {
		return nil, nil, nil, loadError(fmt.Sprintf("create XSKMAP with %d entries", queues), err,
			func() error { return features.HaveMapType(ebpf.XSKMap) })
	}
	defer func() {
		if err != nil {
			xsks.Close()
			if counters != nil {
				counters.Close()
			}
		}
	}()

	var filterInsns asm.Instructions
	tail := true
	if f != nil {
		filterInsns, tail = f.Instructions(), f.Redirects()
	}
	var fast asm.Instructions
	if o.FastPath != nil {
		if fast, err = o.FastPath.Instructions(xskSymbol); err != nil {
			return nil, nil, nil, err
		}
	}
	insns := instructions(filterInsns, fast, tail)
	if rx != nil {
		insns = withRXMetadata(insns, len(fast) > 0, rx.calls())
	}
	if tail {
		if err := insns.AssociateMap(xsksMapSymbol, xsks); err != nil {
			return nil, nil, nil, fmt.Errorf("build program: %w", err)
		}
	}
	if withCounters {
		if counters, err = newCounters(); err != nil {
			return nil, nil, nil, err
		}
		insns = counted(insns)
		if err := insns.AssociateMap(countersName, counters); err != nil {
			return nil, nil, nil, fmt.Errorf("build program: %w", err)
		}
	}
	spec := &ebpf.ProgramSpec{
		Name:         progName,
		Type:         ebpf.XDP,
		License:      license,
		Instructions: insns,
	}
	if frags {
		spec.Flags = unix.BPF_F_XDP_HAS_FRAGS
	}
	if rx != nil {
		spec.Ifindex, spec.Flags = uint32(ifindex), spec.Flags|unix.BPF_F_XDP_DEV_BOUND_ONLY
	}
	prog, err := ebpf.NewProgram(spec)
	if err != nil && rx != nil {
		return nil, nil, nil, rx.loadError(err)
	}
	if err != nil {
		what := "load XDP program"
		if f != nil {
			what = fmt.Sprintf("load XDP program with filter %q", f.String())
		}
		return nil, nil, nil, loadError(what, err, func() error {
			if frags && errors.Is(err, unix.EINVAL) && sys.KernelBefore(5, 18) {
				return fmt.Errorf("XDP programs with fragments (Options.MultiBuffer) need Linux 5.18+: %w", ErrNotSupported)
			}
			if o.FastPath != nil && sys.KernelBefore(5, 18) {
				return fmt.Errorf("the fast path (Options.FastPath) needs Linux 5.18+: %w", ErrNotSupported)
			}
			return features.HaveProgramType(ebpf.XDP)
		})
	}
	return prog, xsks, counters, nil
}

// loadError wraps a map or program creation error with the hint that fits.
// probe is only run for errors that are not about privileges.
func loadError(step string, err error, probe func() error) error {
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("%s: %w (loading the XDP program needs CAP_BPF and CAP_NET_ADMIN; without them, register the sockets in an XSKMAP "+
			"a privileged process attached: xdpkit attach, redirect.OpenXSKMap; on kernels before 5.11 also raise RLIMIT_MEMLOCK with rlimit.RemoveMemlock from github.com/cilium/ebpf/rlimit)", step, err)
	case errors.Is(err, unix.ENOMEM):
		return fmt.Errorf("%s: %w (on kernels before 5.11 RLIMIT_MEMLOCK may be too low: "+
			"call rlimit.RemoveMemlock from github.com/cilium/ebpf/rlimit first)", step, err)
	}
	if perr := probe(); errors.Is(perr, ErrNotSupported) {
		return fmt.Errorf("%s: %w (%w)", step, perr, err)
	}
	return fmt.Errorf("%s: %w", step, err)
}
