module github.com/xdpkit/xdpkit

go 1.26.0

require golang.org/x/sys v0.50.0

require github.com/cilium/ebpf v0.22.0

require (
	github.com/google/gopacket v1.1.19
	golang.org/x/net v0.48.0 // indirect
)
