//go:build !linux

package redirect

import "github.com/cilium/ebpf"

func newXSKMap(m *ebpf.Map, what string) (*XSKMap, error) { return nil, errPlatform("XSKMAP " + what) }
func xskMapFromFD(fd int) (*XSKMap, error)                { return nil, errPlatform("XSKMAP from an fd") }
func openXSKMap(path string) (*XSKMap, error)             { return nil, errPlatform("open XSKMAP " + path) }

// Register is only implemented on Linux.
func (x *XSKMap) Register(queue int, socketFD int) error { return errPlatform("register") }

// Unregister is only implemented on Linux.
func (x *XSKMap) Unregister(queue int) error { return errPlatform("unregister") }
