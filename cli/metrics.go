package cli

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/xdpkit/xdpkit/metrics"
)

// ServeMetrics makes m's counters visible until stop is called: to
// `xdpkit status`, through an entry in metrics.RunDir (if the directory
// cannot be written, a line on stderr says so and the tool goes on), and,
// with -metrics ADDR, to Prometheus at http://ADDR/metrics. It listens
// before it returns, so an address in use or not the machine's is an
// error here, not later. The counters are those of m's sources
// (metrics.Collector), named as in the -json summary.
func (t *Tool) ServeMetrics(m *metrics.Collector) (stop func(), err error) {
	var stops []func()
	stopAll := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	if t.Metrics != "" {
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
		stops = append(stops, func() { srv.Close(); <-done })
	}
	if a, err := metrics.Announce(metrics.RunDir, t.Name, m); err != nil {
		t.Logf("%v (xdpkit status will not list this process)", err)
	} else {
		stops = append(stops, func() { _ = a.Close() })
	}
	return stopAll, nil
}
