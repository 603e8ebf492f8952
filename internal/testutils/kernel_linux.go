package testutils

import (
	"errors"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/sys"
)

// kernelRelease returns the running kernel's release, as uname -r prints
// it, or "unknown".
func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// releaseBefore is sys.ReleaseBefore: false for a release it cannot read.
func releaseBefore(release string, major, minor int) bool {
	return sys.ReleaseBefore(release, major, minor)
}

// errnoNotSupported reports whether err is EOPNOTSUPP or ENOPROTOOPT (a
// socket option this kernel does not know).
func errnoNotSupported(err error) bool {
	return errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOPROTOOPT)
}
