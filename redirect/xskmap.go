package redirect

import (
	"sync"

	"github.com/cilium/ebpf"
)

// XSKMap is an XSKMAP that another process made — `xdpkit attach`, the
// AF_XDP device plugin, a C loader — given as a map, an fd or a bpffs
// pin. It registers sockets (it is an afxdp.Registrar: put it in
// afxdp.Config.Steering) with one map update each, which needs no
// CAP_BPF or CAP_NET_ADMIN: whoever holds the map's fd may update it.
// Its methods are safe for concurrent use; Close is idempotent and
// closes the map's fd.
type XSKMap struct {
	mu     sync.RWMutex
	m      *ebpf.Map
	closed bool
	what   string // where it came from, for errors
}

// NewXSKMap takes m, an XSKMAP; the XSKMap owns it from then on.
func NewXSKMap(m *ebpf.Map) (*XSKMap, error) { return newXSKMap(m, "map") }

// XSKMapFromFD takes an XSKMAP's fd (received over a unix socket, say);
// the XSKMap owns it from then on.
func XSKMapFromFD(fd int) (*XSKMap, error) { return xskMapFromFD(fd) }

// OpenXSKMap opens the XSKMAP pinned at path (e.g.
// /sys/fs/bpf/xdpkit/NAME/xsks, or the device plugin's
// /tmp/afxdp_dp/IFACE/xsks_map).
func OpenXSKMap(path string) (*XSKMap, error) { return openXSKMap(path) }

// Map returns the map; it stays owned by the XSKMap.
func (x *XSKMap) Map() *ebpf.Map { return x.m }

// Queues is how many queues the map has room for (its max_entries).
func (x *XSKMap) Queues() int { return int(x.m.MaxEntries()) }

// Close closes the map's fd: the map lives on while its program (or a
// pin) holds it. Sockets registered stay registered.
func (x *XSKMap) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return nil
	}
	x.closed = true
	return x.m.Close()
}
