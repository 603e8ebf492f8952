//go:build linux

package sys

import (
	"golang.org/x/sys/unix"
)

// MmapRing maps one of a socket's rings (offset is an XDP_PGOFF_* or
// XDP_UMEM_PGOFF_* constant). MAP_POPULATE pre-faults it, as libxdp does.
func MmapRing(fd int, offset int64, length int) ([]byte, error) {
	return unix.Mmap(fd, offset, length, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
}

// MmapArea maps anonymous memory for a UMEM, optionally on hugepages.
func MmapArea(length int, hugePages bool) ([]byte, error) {
	flags := unix.MAP_PRIVATE | unix.MAP_ANONYMOUS | unix.MAP_POPULATE
	if hugePages {
		flags |= unix.MAP_HUGETLB
	}
	return unix.Mmap(-1, 0, length, unix.PROT_READ|unix.PROT_WRITE, flags)
}

// Munmap unmaps memory from MmapRing or MmapArea.
func Munmap(b []byte) error { return unix.Munmap(b) }

// PageSize is the system's base page size.
func PageSize() int { return unix.Getpagesize() }
