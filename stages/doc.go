// Package stages holds ready-made pipeline stages: MAC swap, address and
// port swap, flow counting, per-source rate limiting, L4 load balancing
// and pcap capture. Each is allocation-free per packet and safe on
// arbitrary bytes: a frame it cannot handle is counted as malformed, never
// a panic.
package stages
