package metrics

import "time"

// RunDir is where xdpkit processes announce themselves: one unix socket
// per process, named after its pid, that `xdpkit status` asks.
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
	Series  []Series  `json:"series"` // the announced Collector's counters, as Prometheus would scrape them
}
