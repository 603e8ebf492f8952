package redirect

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

func newXSKMap(m *ebpf.Map, what string) (*XSKMap, error) {
	if m == nil {
		return nil, fmt.Errorf("redirect: XSKMAP %s: nil map", what)
	}
	if m.Type() != ebpf.XSKMap {
		m.Close()
		return nil, fmt.Errorf("redirect: XSKMAP %s: a %v map, not an XSKMAP: %w", what, m.Type(), ErrInvalidOptions)
	}
	return &XSKMap{m: m, what: what}, nil
}

func xskMapFromFD(fd int) (*XSKMap, error) {
	m, err := ebpf.NewMapFromFD(fd)
	if err != nil {
		return nil, fmt.Errorf("redirect: XSKMAP fd %d: %w", fd, err)
	}
	return newXSKMap(m, fmt.Sprintf("fd %d", fd))
}

func openXSKMap(path string) (*XSKMap, error) {
	m, err := ebpf.LoadPinnedMap(path, nil)
	if err != nil {
		hint := ""
		switch {
		case errors.Is(err, os.ErrNotExist):
			hint = " (attach the program first: xdpkit attach -i IFACE -pin NAME; or is bpffs mounted here?)"
		case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
			hint = " (the pin's file permissions: the map is opened read-write)"
		}
		return nil, fmt.Errorf("redirect: open XSKMAP %s: %w%s", path, err, hint)
	}
	return newXSKMap(m, path)
}

// Register inserts socketFD, an AF_XDP socket bound to queue, in the map.
func (x *XSKMap) Register(queue int, socketFD int) error {
	op := fmt.Sprintf("redirect: register fd %d for queue %d in XSKMAP %s", socketFD, queue, x.what)
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed {
		return fmt.Errorf("%s: %w", op, os.ErrClosed)
	}
	if queue < 0 || queue >= x.Queues() {
		return fmt.Errorf("%s: the map has room for queues 0 to %d: %w", op, x.Queues()-1, unix.EINVAL)
	}
	err := x.m.Update(uint32(queue), uint32(socketFD), ebpf.UpdateAny)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EOPNOTSUPP):
		return fmt.Errorf("%s: fd is not an AF_XDP socket, or not bound yet: %w", op, err)
	case errors.Is(err, unix.EBADF):
		return fmt.Errorf("%s: fd is not open: %w", op, err)
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("%s: %w (the map's fd was opened read-only, or this kernel restricts bpf(2) to CAP_BPF)", op, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Unregister removes queue's socket from the map; an empty entry is not
// an error.
func (x *XSKMap) Unregister(queue int) error {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed {
		return fmt.Errorf("redirect: unregister queue %d in XSKMAP %s: %w", queue, x.what, os.ErrClosed)
	}
	err := x.m.Delete(uint32(queue))
	if err == nil || errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil
	}
	return fmt.Errorf("redirect: unregister queue %d in XSKMAP %s: %w", queue, x.what, err)
}
