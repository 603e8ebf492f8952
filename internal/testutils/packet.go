//go:build linux

package testutils

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// PacketSocket is an AF_PACKET socket bound to one interface: it injects
// whole Ethernet frames and captures what the interface receives.
type PacketSocket struct {
	fd      int
	ifindex int
}

// OpenPacketSocket opens an AF_PACKET socket on ifindex in the current
// thread's namespace (call it inside [Veth.InPeer] for the peer side). It is
// closed with tb.Cleanup.
func OpenPacketSocket(tb testing.TB, ifindex int) *PacketSocket {
	tb.Helper()
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		tb.Fatalf("AF_PACKET socket: %v", err)
	}
	tb.Cleanup(func() { unix.Close(fd) })
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}
	if err := unix.Bind(fd, sa); err != nil {
		tb.Fatalf("AF_PACKET bind ifindex %d: %v", ifindex, err)
	}
	// Only frames arriving at the interface, not our own transmissions.
	_ = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
	// 8 MiB, past rmem_max (as root: SO_RCVBUFFORCE), so that a capture
	// a loaded machine reads late does not drop.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 8<<20)
	return &PacketSocket{fd: fd, ifindex: ifindex}
}

// Send transmits one whole Ethernet frame, retrying briefly on ENOBUFS.
func (p *PacketSocket) Send(frame []byte) error {
	sa := &unix.SockaddrLinklayer{Ifindex: p.ifindex, Halen: 6}
	for try := 0; ; try++ {
		err := unix.Sendto(p.fd, frame, 0, sa)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.ENOBUFS) && !errors.Is(err, unix.EAGAIN) || try > 1000 {
			return fmt.Errorf("AF_PACKET send: %w", err)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// Recv reads one frame into buf, waiting at most timeout. It returns
// os.ErrDeadlineExceeded-like unix.EAGAIN when nothing came.
func (p *PacketSocket) Recv(buf []byte, timeout time.Duration) (int, error) {
	tv := unix.NsecToTimeval(timeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(p.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return 0, err
	}
	for {
		n, _, err := unix.Recvfrom(p.fd, buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return n, err
	}
}

func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// UDPFrame builds an Ethernet/IPv4/UDP frame with a valid IPv4 header
// checksum and a zero (absent) UDP checksum.
func UDPFrame(dstMAC, srcMAC []byte, src, dst [4]byte, sport, dport uint16, payload []byte) []byte {
	f := make([]byte, 14+20+8+len(payload))
	copy(f[0:6], dstMAC)
	copy(f[6:12], srcMAC)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	ip[8] = 64
	ip[9] = 17
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	udp := f[34:42]
	binary.BigEndian.PutUint16(udp[0:], sport)
	binary.BigEndian.PutUint16(udp[2:], dport)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	copy(f[42:], payload)
	return f
}

// OpenPeerPacketSocket opens an AF_PACKET socket on the peer end of v,
// inside its namespace, closed with tb.Cleanup.
func (v *Veth) OpenPeerPacketSocket(tb testing.TB) *PacketSocket {
	tb.Helper()
	var ps *PacketSocket
	v.InPeer(tb, func() error { ps = OpenPacketSocket(tb, v.PeerIndex); return nil })
	return ps
}
