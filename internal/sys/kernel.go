//go:build linux

package sys

import (
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// KernelBefore reports whether the running kernel is older than
// major.minor. It reports false when the version cannot be read, so a
// caller only adds an "upgrade" hint when it is sure.
func KernelBefore(major, minor int) bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	return ReleaseBefore(unix.ByteSliceToString(u.Release[:]), major, minor)
}

// KernelReleaseBefore is KernelBefore that also returns the release
// string ("6.18.44-...").
func KernelReleaseBefore(major, minor int) (release string, before bool) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", false
	}
	rel := unix.ByteSliceToString(u.Release[:])
	return rel, ReleaseBefore(rel, major, minor)
}

// ReleaseBefore reports whether the uname release rel ("6.1.0-18-amd64")
// is older than major.minor; false if rel does not start with N.N.
func ReleaseBefore(rel string, major, minor int) bool {
	var v [2]int
	for i := range v {
		n := 0
		for n < len(rel) && rel[n] >= '0' && rel[n] <= '9' {
			n++
		}
		x, err := strconv.Atoi(rel[:n])
		if err != nil {
			return false
		}
		v[i] = x
		rel = strings.TrimPrefix(rel[n:], ".")
	}
	return v[0] < major || v[0] == major && v[1] < minor
}
