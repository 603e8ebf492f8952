package ring

import "errors"

// MaxSize is the largest ring size accepted. The kernel itself takes any
// power of two that fits in memory; this bound keeps mistakes (a frame
// count passed as ring size) from pinning gigabytes.
const MaxSize = 1 << 20

const (
	addrSize = 8  // sizeof(__u64), a fill or completion entry
	descSize = 16 // sizeof(struct xdp_desc), an RX or TX entry
)

// ErrInvalidSize is returned for a ring size that is not a power of two in
// [1, MaxSize].
var ErrInvalidSize = errors.New("ring size must be a power of 2 between 1 and 1048576")

// ValidSize reports whether size is a usable ring size.
func ValidSize(size uint32) bool {
	return size > 0 && size <= MaxSize && size&(size-1) == 0
}
