package pipeline

import (
	"errors"

	"golang.org/x/sys/unix"
)

// gone reports whether err says the socket's device went away (ENXIO: the
// kernel unbound the socket) or its descriptor is gone (EBADF).
func gone(err error) bool { return errors.Is(err, unix.ENXIO) || errors.Is(err, unix.EBADF) }
