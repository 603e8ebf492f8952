package xsk

// UMEMOf and PoolOf return the implementation behind a *umem.UMEM or a
// *umem.Pool (nil for nil). Package umem sets them in its init, so that
// afxdp can reach what umem does not export.
var (
	UMEMOf func(any) *UMEM
	PoolOf func(any) *Pool
)
