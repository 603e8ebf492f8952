// Package metrics exports xdpkit's counters to Prometheus: a
// [prometheus.Collector] for pipelines (per stage and verdict too), their
// sockets (xdpkit's own counters and the kernel's XDP_STATISTICS), worker
// sets (per queue), the redirect program's verdict counters and the
// kernel fast path's.
//
// A [Collector] reads the counters when it is scraped, from
// Runner.Snapshot, workers.Set.Snapshot, Socket.Stats and
// Program.Counters, all safe to call from the scrape's goroutine while
// the pipeline runs; nothing is added to the per-packet path. The
// Runner's snapshot is published every Config.TickInterval (100 ms by
// default), so a scrape sees counters at most that old.
//
//	m := metrics.New()
//	m.AddRunner("eth0", 0, runner, sock)
//	http.Handle("/metrics", m.Handler())
//
// # Names
//
// Every name starts with xdpkit_; counters end in _total. Labels:
// interface and queue on every per-socket series, stage and verdict where
// they apply. The names follow the tools' -json summaries (rx_packets is
// xdpkit_rx_packets_total, kernel.rx_ring_full is
// xdpkit_kernel_rx_ring_full_total):
//
//	xdpkit_rx_packets_total{interface,queue}          frames the pipeline received
//	xdpkit_rx_bytes_total{interface,queue}            their bytes
//	xdpkit_tx_packets_total{interface,queue}          frames transmitted or forwarded
//	xdpkit_tx_bytes_total{interface,queue}            their bytes
//	xdpkit_forwarded_packets_total{interface,queue}   of those, forwarded to another socket
//	xdpkit_dropped_packets_total{interface,queue}     frames dropped (verdict, Final, Malformed, full TX ring, TX error)
//	xdpkit_malformed_packets_total{interface,queue}   frames a stage called malformed
//	xdpkit_tx_ring_full_total{interface,queue}        frames dropped because the TX ring was full
//	xdpkit_parse_errors_total{interface,queue}        frames packet.Parse could not parse
//	xdpkit_tx_errors_total{interface,queue}           transmits that failed
//	xdpkit_bad_data_total{interface,queue}            frames to send whose data a stage left outside their frame
//	xdpkit_offloaded_total{interface,queue}           flows and sources offloaded to the fast path
//	xdpkit_offload_errors_total{interface,queue}      offloads that failed
//	xdpkit_stage_packets_total{interface,queue,stage} frames a stage saw
//	xdpkit_stage_verdicts_total{interface,queue,stage,verdict}
//	                                                  what it decided: drop, transmit, forward, malformed
//	xdpkit_socket_kicks_total{interface,queue}        sendto calls that started transmission
//	xdpkit_socket_rx_wakeups_total{interface,queue}   recvfrom calls that woke or busy-polled the driver
//	xdpkit_socket_waits_total{interface,queue}        waits that slept in poll(2) or the poller
//	xdpkit_socket_coalesced_total{interface,queue}    waits that first slept Coalesce after a burst
//	xdpkit_socket_tx_completed_total{interface,queue} frames the kernel completed
//	xdpkit_socket_tx_stalls_total{interface,queue}    times transmit reported a stalled TX ring
//	xdpkit_socket_tx_refused_total{interface,queue}   descriptors transmit refused as invalid
//	xdpkit_kernel_rx_dropped_total{interface,queue}   XDP_STATISTICS rx_dropped
//	xdpkit_kernel_rx_invalid_descs_total{interface,queue}
//	xdpkit_kernel_tx_invalid_descs_total{interface,queue}
//	xdpkit_kernel_rx_ring_full_total{interface,queue}
//	xdpkit_kernel_rx_fill_ring_empty_total{interface,queue}
//	xdpkit_kernel_tx_ring_empty_total{interface,queue}
//	xdpkit_xdp_verdicts_total{interface,verdict}      the redirect program's: aborted, drop, pass, tx, redirect
//	xdpkit_fastpath_packets_total{interface,outcome}  the kernel fast path's (fastpath.Counters): blocked, allowed,
//	                                                  rate_dropped, rate_passed, flow_dropped, flow_passed,
//	                                                  flow_redirected, flow_transmitted, flow_encapped,
//	                                                  flow_errors, expired, default, unparsed
//
// # Announcements
//
// [Announce] makes a process visible to `xdpkit status`: a unix socket in
// [RunDir] answers with a [Process], the Collector's counters plus each
// socket's set-up ([Collector.Sockets]: rings, UMEM, free frames). [Peers]
// asks every announced process and removes the entries of dead ones.
//
// # Concurrency
//
// A Collector's Add methods and its collection may run on any goroutines
// at once. Sources are kept until the process ends: add those a program
// runs for its life (a tool's runner, set or program).
package metrics
