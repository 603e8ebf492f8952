//go:build !linux

// Command xdpkit answers the questions of a silent AF_XDP socket; AF_XDP
// is Linux's, so elsewhere it only says so.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "xdpkit: AF_XDP is Linux-only")
	os.Exit(1)
}
