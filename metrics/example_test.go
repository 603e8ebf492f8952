//go:build linux

package metrics_test

import (
	"context"
	"log"
	"net/http"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/metrics"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/stages"
)

// A reflector on eth0 queue 0 whose counters Prometheus scrapes at
// http://127.0.0.1:9464/metrics.
func ExampleCollector() {
	sock, err := afxdp.Open("eth0", 0, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sock.Close()
	r, err := pipeline.New(pipeline.Config{Socket: sock, Stages: []pipeline.Stage{stages.NewMACSwap()}})
	if err != nil {
		log.Fatal(err)
	}

	m := metrics.New()
	m.AddRunner("eth0", 0, r, sock) // xdpkit_rx_packets_total{interface="eth0",queue="0"}, ...
	http.Handle("/metrics", m.Handler())
	go func() { log.Fatal(http.ListenAndServe("127.0.0.1:9464", nil)) }()

	if _, err := r.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}
