package cli

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/xdpkit/xdpkit/metrics"
)

// ServeMetrics serves m at /metrics on the -metrics address, until stop
// is called; without -metrics it does nothing. It listens before it
// returns, so an address in use or not the machine's is an error here, not
// later. The counters are those of m's sources (metrics.Collector), named
// as in the -json summary.
func (t *Tool) ServeMetrics(m *metrics.Collector) (stop func(), err error) {
	if t.Metrics == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", t.Metrics)
	if err != nil {
		return nil, fmt.Errorf("-metrics %s: %w", t.Metrics, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Logf("metrics: %v", err)
		}
	}()
	return func() { srv.Close(); <-done }, nil
}
