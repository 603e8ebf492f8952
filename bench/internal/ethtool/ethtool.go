// Package ethtool reads a network device's driver statistics (what
// `ethtool -S` prints) with the ETHTOOL_GSTATS ioctl, so the harness counts
// frames from the veth's own per-queue counters.
package ethtool

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	ethtoolGSTRINGS  = 0x1b
	ethtoolGSTATS    = 0x1d
	ethtoolGSSETINFO = 0x37
	ethSSStats       = 1
	stringLen        = 32
)

// Stats reads the statistics of one device through a socket (of the
// network namespace the device is in).
type Stats struct {
	fd     int
	ifname string
	names  []string
	buf    []byte
}

type ifreq struct {
	name [16]byte
	data unsafe.Pointer
	_    [16]byte
}

func (s *Stats) ioctl(buf []byte) error {
	var r ifreq
	copy(r.name[:15], s.ifname)
	r.data = unsafe.Pointer(&buf[0])
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(s.fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&r)))
	if e != 0 {
		return e
	}
	return nil
}

// New reads the statistic names of ifname. fd is any socket (AF_INET
// datagram) in the device's network namespace; it stays the caller's.
func New(fd int, ifname string) (*Stats, error) {
	s := &Stats{fd: fd, ifname: ifname}
	info := make([]byte, 20)
	binary.NativeEndian.PutUint32(info[0:], ethtoolGSSETINFO)
	binary.NativeEndian.PutUint64(info[8:], 1<<ethSSStats)
	if err := s.ioctl(info); err != nil {
		return nil, fmt.Errorf("ethtool %s: sset info: %w", ifname, err)
	}
	n := int(binary.NativeEndian.Uint32(info[16:]))
	str := make([]byte, 12+n*stringLen)
	binary.NativeEndian.PutUint32(str[0:], ethtoolGSTRINGS)
	binary.NativeEndian.PutUint32(str[4:], ethSSStats)
	binary.NativeEndian.PutUint32(str[8:], uint32(n))
	if err := s.ioctl(str); err != nil {
		return nil, fmt.Errorf("ethtool %s: strings: %w", ifname, err)
	}
	for i := 0; i < n; i++ {
		b := str[12+i*stringLen : 12+(i+1)*stringLen]
		for j, c := range b {
			if c == 0 {
				b = b[:j]
				break
			}
		}
		s.names = append(s.names, string(b))
	}
	s.buf = make([]byte, 8+n*8)
	return s, nil
}

// Read returns every statistic by name.
func (s *Stats) Read() (map[string]uint64, error) {
	binary.NativeEndian.PutUint32(s.buf[0:], ethtoolGSTATS)
	binary.NativeEndian.PutUint32(s.buf[4:], uint32(len(s.names)))
	if err := s.ioctl(s.buf); err != nil {
		return nil, fmt.Errorf("ethtool %s: stats: %w", s.ifname, err)
	}
	m := make(map[string]uint64, len(s.names))
	for i, name := range s.names {
		m[name] = binary.NativeEndian.Uint64(s.buf[8+i*8:])
	}
	return m, nil
}
