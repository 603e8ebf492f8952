//go:build !linux

package napi

import (
	"errors"
	"fmt"
	"runtime"
)

var errUnsupported = fmt.Errorf("napi: not supported on %s/%s: %w", runtime.GOOS, runtime.GOARCH, errors.ErrUnsupported)

// Apply is only implemented on Linux.
func Apply(ifname string, s Settings) (restore func() error, err error) { return nil, errUnsupported }

// RestoreStale is only implemented on Linux.
func RestoreStale(ifname string) error { return errUnsupported }

// RestoreAllStale is only implemented on Linux.
func RestoreAllStale() error { return errUnsupported }
