//go:build !unix

package metrics

import "errors"

// Announcement is a process's entry in the run directory.
type Announcement struct{}

var errNoAnnounce = errors.New("metrics: announcing needs unix sockets")

// Announce is not available without unix sockets.
func Announce(dir, name string, c *Collector) (*Announcement, error) { return nil, errNoAnnounce }

// Close does nothing.
func (a *Announcement) Close() error { return nil }

// Peers is not available without unix sockets.
func Peers(dir string) ([]Process, int, error) { return nil, 0, errNoAnnounce }
