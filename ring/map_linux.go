package ring

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/sys"
)

// The page offsets a socket's rings are mapped at.
const (
	pgoffFill       = unix.XDP_UMEM_PGOFF_FILL_RING
	pgoffCompletion = unix.XDP_UMEM_PGOFF_COMPLETION_RING
	pgoffRX         = unix.XDP_PGOFF_RX_RING
	pgoffTX         = unix.XDP_PGOFF_TX_RING
)

// mapRing maps a ring of size entries from socket fd at page offset pgoff.
func mapRing(fd int, pgoff int64, off Offsets, size uint32, entry uint64) ([]byte, error) {
	if !ValidSize(size) {
		return nil, fmt.Errorf("invalid ring size %d: %w", size, ErrInvalidSize)
	}
	mem, err := sys.MmapRing(fd, pgoff, int(off.Desc+uint64(size)*entry))
	if err != nil {
		return nil, fmt.Errorf("mmap ring: %w", err)
	}
	if err := check(mem, off, size, entry); err != nil {
		_ = sys.Munmap(mem)
		return nil, err
	}
	return mem, nil
}

func unmap(mem []byte) error { return sys.Munmap(mem) }
