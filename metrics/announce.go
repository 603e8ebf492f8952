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
	Sockets []Socket  `json:"sockets"`
}

// Socket is how one of an announced process's sockets is set up.
type Socket struct {
	Interface  string `json:"interface"`
	Queue      int    `json:"queue"`
	ZeroCopy   bool   `json:"zero_copy"`
	RX         uint32 `json:"rx_ring"` // ring sizes, in slots
	TX         uint32 `json:"tx_ring"`
	Fill       uint32 `json:"fill_ring"`
	Completion uint32 `json:"completion_ring"`
	Frames     uint32 `json:"umem_frames"`
	FrameSize  uint32 `json:"umem_frame_size"`
	HugePages  bool   `json:"umem_huge_pages"`
	FreeFrames int    `json:"free_frames"` // in the socket's pool, when asked
}
