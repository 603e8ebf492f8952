package deviceplugin

import (
	"time"

	"github.com/xdpkit/xdpkit/redirect"
)

// XSKMap asks the plugin's socket under dir for netdev's XSKMAP (the
// whole exchange of XSKMapFD): the map to register the pod's sockets in.
func XSKMap(dir, netdev string, timeout time.Duration) (*redirect.XSKMap, error) {
	fd, err := XSKMapFD(dir, netdev, timeout)
	if err != nil {
		return nil, err
	}
	return redirect.XSKMapFromFD(fd)
}

// PinnedXSKMap opens the XSKMAP the plugin pinned for netdev under dir
// (its pinned-map mode).
func PinnedXSKMap(dir, netdev string) (*redirect.XSKMap, error) {
	return redirect.OpenXSKMap(PinnedMapPath(dir, netdev))
}
