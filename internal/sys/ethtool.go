//go:build linux

package sys

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The SIOCETHTOOL commands below are the ones `ethtool -i` and `ethtool -S`
// use. Each goes through a socket: the kernel looks the interface up in the
// network namespace of that socket, not of the calling thread, so the FD
// variants reach a device in another namespace through a socket opened
// there.

// DriverInfo is what ETHTOOL_GDRVINFO reports (`ethtool -i`).
type DriverInfo struct {
	Driver          string // "veth", "ixgbe", ...
	Version         string // the driver's version; often the kernel's
	FirmwareVersion string // empty when the device has none
	BusInfo         string // "0000:03:00.0"; empty for virtual devices
	NStats          int    // how many ETH_SS_STATS statistics the driver has
}

// EthtoolStat is one of a device's named statistics (a line of
// `ethtool -S`).
type EthtoolStat struct {
	Name  string
	Value uint64
}

const (
	ethSSStats    = 1  // ETH_SS_STATS, enum ethtool_stringset
	ethGStringLen = 32 // ETH_GSTRING_LEN
	// Header sizes of struct ethtool_gstrings {cmd, string_set, len} and
	// struct ethtool_stats {cmd, n_stats}, in front of their flexible arrays.
	gstringsHeader = 12
	gstatsHeader   = 8
	// sizeChangeRetries bounds the retries when the driver's count of
	// statistics changes between two ioctls (queues added, say).
	sizeChangeRetries = 3
)

// errCountChanged means the number of statistics changed between two
// ioctls; the readers retry on it a few times.
var errCountChanged = errors.New("the number of statistics changed while reading them")

// EthtoolSocket opens the AF_INET datagram socket the SIOCETHTOOL ioctls
// go through, in the calling thread's network namespace. The caller closes
// it with [Close].
func EthtoolSocket() (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("ethtool socket: %w", err)
	}
	return fd, nil
}

// withSocket runs fn with a socket of the calling thread's namespace.
func withSocket(fn func(fd int) error) error {
	fd, err := EthtoolSocket()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return fn(fd)
}

// EthtoolDrvinfo is ETHTOOL_GDRVINFO on ifname, in the calling thread's
// network namespace. An unknown interface gives an error wrapping ENODEV.
func EthtoolDrvinfo(ifname string) (DriverInfo, error) {
	var info DriverInfo
	err := withSocket(func(fd int) (err error) {
		info, err = EthtoolDrvinfoFD(fd, ifname)
		return err
	})
	return info, err
}

// EthtoolDrvinfoFD is [EthtoolDrvinfo] through fd, a socket of the
// namespace ifname is in.
func EthtoolDrvinfoFD(fd int, ifname string) (DriverInfo, error) {
	d, err := unix.IoctlGetEthtoolDrvinfo(fd, ifname)
	if err != nil {
		return DriverInfo{}, fmt.Errorf("ethtool driver info of %s: %w", ifname, err)
	}
	return DriverInfo{
		Driver:          unix.ByteSliceToString(d.Driver[:]),
		Version:         unix.ByteSliceToString(d.Version[:]),
		FirmwareVersion: unix.ByteSliceToString(d.Fw_version[:]),
		BusInfo:         unix.ByteSliceToString(d.Bus_info[:]),
		NStats:          int(d.N_stats),
	}, nil
}

// EthtoolStats reads ifname's driver statistics (`ethtool -S`), in the
// calling thread's network namespace, in the driver's order. A device
// without statistics (loopback) gives an error wrapping EOPNOTSUPP, an
// unknown one an error wrapping ENODEV.
func EthtoolStats(ifname string) ([]EthtoolStat, error) {
	var st []EthtoolStat
	err := withSocket(func(fd int) (err error) {
		st, err = EthtoolStatsFD(fd, ifname)
		return err
	})
	return st, err
}

// EthtoolStatsFD is [EthtoolStats] through fd, a socket of the namespace
// ifname is in.
func EthtoolStatsFD(fd int, ifname string) ([]EthtoolStat, error) {
	for range sizeChangeRetries {
		names, err := EthtoolStatNamesFD(fd, ifname)
		if err != nil {
			return nil, err
		}
		values, err := EthtoolStatValuesFD(fd, ifname, nil)
		if err != nil {
			return nil, err
		}
		if len(values) != len(names) {
			continue // the set changed between the two reads
		}
		st := make([]EthtoolStat, len(names))
		for i, name := range names {
			st[i] = EthtoolStat{Name: name, Value: values[i]}
		}
		return st, nil
	}
	return nil, fmt.Errorf("ethtool stats of %s: %w", ifname, errCountChanged)
}

// EthtoolStatNamesFD is ETHTOOL_GSTRINGS for ETH_SS_STATS through fd: the
// names of ifname's statistics, in the order [EthtoolStatValuesFD] returns
// their values.
func EthtoolStatNamesFD(fd int, ifname string) ([]string, error) {
	for range sizeChangeRetries {
		n, err := statCount(fd, ifname)
		if err != nil {
			return nil, err
		}
		var names []string
		err = withGuarded(gstringsHeader+n*ethGStringLen, func(buf []byte) error {
			binary.NativeEndian.PutUint32(buf[0:], unix.ETHTOOL_GSTRINGS)
			binary.NativeEndian.PutUint32(buf[4:], ethSSStats)
			binary.NativeEndian.PutUint32(buf[8:], uint32(n))
			if err := ethtoolIoctl(fd, ifname, buf); err != nil {
				return err
			}
			got := int(binary.NativeEndian.Uint32(buf[8:]))
			if got != n {
				return errCountChanged // fewer now, or a kernel that answers a wrong count with 0
			}
			names = make([]string, got)
			for i := range names {
				off := gstringsHeader + i*ethGStringLen
				names[i] = unix.ByteSliceToString(buf[off : off+ethGStringLen])
			}
			return nil
		})
		if errors.Is(err, unix.EFAULT) || errors.Is(err, errCountChanged) {
			continue // more statistics than a moment ago: count again
		}
		if err != nil {
			return nil, fmt.Errorf("ethtool stat names of %s: %w", ifname, err)
		}
		return names, nil
	}
	return nil, fmt.Errorf("ethtool stat names of %s: %w", ifname, errCountChanged)
}

// EthtoolStatValuesFD is ETHTOOL_GSTATS through fd: the values of
// ifname's statistics, appended to dst[:0]. The caller compares the length
// with the names it read: a different length means the driver's set
// changed in between (and the names must be read again). It retries, a few
// times, when the count changes during the read itself.
func EthtoolStatValuesFD(fd int, ifname string, dst []uint64) ([]uint64, error) {
	for range sizeChangeRetries {
		n, err := statCount(fd, ifname)
		if err != nil {
			return nil, err
		}
		err = withGuarded(gstatsHeader+n*8, func(buf []byte) error {
			binary.NativeEndian.PutUint32(buf[0:], unix.ETHTOOL_GSTATS)
			binary.NativeEndian.PutUint32(buf[4:], uint32(n))
			if err := ethtoolIoctl(fd, ifname, buf); err != nil {
				return err
			}
			got := int(binary.NativeEndian.Uint32(buf[4:]))
			if got != n {
				return errCountChanged // fewer now, or a kernel that answers a wrong count with 0
			}
			dst = dst[:0]
			for i := range got {
				dst = append(dst, binary.NativeEndian.Uint64(buf[gstatsHeader+i*8:]))
			}
			return nil
		})
		if errors.Is(err, unix.EFAULT) || errors.Is(err, errCountChanged) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ethtool stats of %s: %w", ifname, err)
		}
		return dst, nil
	}
	return nil, fmt.Errorf("ethtool stats of %s: %w", ifname, errCountChanged)
}

// statCount is ETHTOOL_GSSET_INFO for ETH_SS_STATS: how many statistics
// ifname has now. EOPNOTSUPP when the driver has none.
func statCount(fd int, ifname string) (int, error) {
	// struct ethtool_sset_info {u32 cmd; u32 reserved; u64 sset_mask;
	// u32 data[]}: with one bit in the mask the kernel writes one u32.
	var info struct {
		Cmd      uint32
		Reserved uint32
		Mask     uint64
		Data     [1]uint32
	}
	info.Cmd = unix.ETHTOOL_GSSET_INFO
	info.Mask = 1 << ethSSStats
	// info stays put during the call: a goroutine's stack is not moved while
	// it is in a syscall, and ioctlData keeps r (pointing here) alive.
	if err := ioctlData(fd, ifname, unsafe.Pointer(&info)); err != nil {
		return 0, fmt.Errorf("ethtool stat count of %s: %w", ifname, err)
	}
	if info.Mask&(1<<ethSSStats) == 0 {
		return 0, fmt.Errorf("ethtool stat count of %s: the driver has no statistics: %w", ifname, unix.EOPNOTSUPP)
	}
	return int(info.Data[0]), nil
}

// withGuarded runs fn on size bytes of anonymous memory that end right at
// an inaccessible guard page. Kernels without commit 7b07be1ff1cb
// ("ethtool: Avoid overflowing userspace buffer on stats query", December
// 2025, backported to stable) have ETHTOOL_GSTRINGS and ETHTOOL_GSTATS
// write as many entries as the driver has at the time of the call,
// whatever count the caller passed: if statistics were added since
// ETHTOOL_GSSET_INFO, the copy runs into the guard page and the ioctl
// fails with EFAULT, instead of overwriting Go memory. Fixed kernels answer
// a count that is not the driver's with a count of 0 and copy nothing.
func withGuarded(size int, fn func(buf []byte) error) error {
	page := unix.Getpagesize()
	data := (size + page - 1) / page * page
	mem, err := unix.Mmap(-1, 0, data+page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("map ioctl buffer: %w", err)
	}
	defer unix.Munmap(mem)
	if err := unix.Mprotect(mem[data:], unix.PROT_NONE); err != nil {
		return fmt.Errorf("guard ioctl buffer: %w", err)
	}
	return fn(mem[data-size : data : data])
}

// ethtoolIoctl is SIOCETHTOOL with buf as the command structure.
func ethtoolIoctl(fd int, ifname string, buf []byte) error {
	// buf is mmap'ed memory (withGuarded), which the garbage collector
	// neither moves nor frees while the call runs.
	return ioctlData(fd, ifname, unsafe.Pointer(&buf[0]))
}

// ifreqData is struct ifreq with ifr_data set, laid out as x/sys/unix's
// (unexported) ifreqData: the name, the pointer, padding to sizeof(ifreq).
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [unsafe.Sizeof(unix.Ifreq{}) - unix.IFNAMSIZ - unsafe.Sizeof(uintptr(0))]byte
}

// ioctlData is ioctl(fd, SIOCETHTOOL, &ifreq{ifname, data}).
func ioctlData(fd int, ifname string, data unsafe.Pointer) error {
	if len(ifname) == 0 || len(ifname) >= unix.IFNAMSIZ {
		return fmt.Errorf("interface name %q: must be 1 to %d bytes: %w", ifname, unix.IFNAMSIZ-1, unix.EINVAL)
	}
	r := ifreqData{data: data}
	copy(r.name[:], ifname)
	// &r converted in the Syscall argument list stays valid for the call (unsafe.Pointer rule 4).
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&r)))
	if errno != 0 {
		return errno
	}
	return nil
}

// ethtoolSTXCSUM is ETHTOOL_STXCSUM: set TX checksum offload (struct
// ethtool_value).
const ethtoolSTXCSUM = 0x17

// EthtoolSetTXChecksum turns TX checksum offload of ifname, in the calling
// thread's network namespace, on or off (`ethtool -K IF tx on|off`).
// With it off the stack computes every checksum itself, so the frames
// leaving a veth carry complete checksums rather than partial ones.
func EthtoolSetTXChecksum(ifname string, on bool) error {
	v := struct{ cmd, data uint32 }{cmd: ethtoolSTXCSUM}
	if on {
		v.data = 1
	}
	return withSocket(func(fd int) error {
		// v stays on the stack of this call for the ioctl's duration.
		if err := ioctlData(fd, ifname, unsafe.Pointer(&v)); err != nil {
			return fmt.Errorf("ethtool set TX checksum offload of %s: %w", ifname, err)
		}
		return nil
	})
}
