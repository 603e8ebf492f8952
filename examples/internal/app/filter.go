//go:build linux

package app

import (
	"fmt"
	"net"

	"github.com/xdpkit/xdpkit/redirect"
)

// redirectOptions builds the program options for the -filter flag.
func (a *App) redirectOptions(mode redirect.Mode) (*redirect.Options, error) {
	if a.Filter != "" {
		return nil, fmt.Errorf("-filter is not supported yet")
	}
	return &redirect.Options{Mode: mode}, nil
}

func ifindexOf(name string) (int, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0, fmt.Errorf("interface %q: %w (check 'ip link')", name, err)
	}
	return ifi.Index, nil
}
