//go:build linux

package sys

// Internals the black-box tests in package sys_test use.
var (
	WithGuarded  = withGuarded
	EthtoolIoctl = ethtoolIoctl
)

const GstatsHeader = gstatsHeader
