//go:build !unix

package metrics

import (
	"errors"
	"time"
)

// RunDir is where xdpkit processes announce themselves.
const RunDir = "/run/xdpkit"

// Series is one exported counter.
type Series struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
	Value  float64           `json:"value"`
}

// Process is what an announced process says about itself.
type Process struct {
	PID     int       `json:"pid"`
	Name    string    `json:"name"`
	Args    []string  `json:"args"`
	Started time.Time `json:"started"`
	Series  []Series  `json:"series"`
}

// Announcement is a process's entry in the run directory.
type Announcement struct{}

var errNoAnnounce = errors.New("metrics: announcing needs unix sockets")

// Announce is not available without unix sockets.
func Announce(dir, name string, c *Collector) (*Announcement, error) { return nil, errNoAnnounce }

// Close does nothing.
func (a *Announcement) Close() error { return nil }

// Peers is not available without unix sockets.
func Peers(dir string) ([]Process, int, error) { return nil, 0, errNoAnnounce }
