//go:build !linux

package testutils

import "runtime"

// kernelRelease names the OS: there is no Linux kernel.
func kernelRelease() string { return runtime.GOOS }

// releaseBefore reports true: every Linux feature is missing here.
func releaseBefore(string, int, int) bool { return true }

func errnoNotSupported(error) bool { return false }
