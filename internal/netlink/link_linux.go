//go:build linux

package netlink

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

const (
	// rtextFilterSkipStats is RTEXT_FILTER_SKIP_STATS (Linux 4.20): leave
	// the interface statistics out of the answer. Older kernels ignore it.
	rtextFilterSkipStats = 1 << 3
	// nlaTypeMask strips NLA_F_NESTED and NLA_F_NET_BYTEORDER.
	nlaTypeMask = ^uint16(unix.NLA_F_NESTED | 0x4000)
	// ifNameMax is IFNAMSIZ minus the terminating NUL.
	ifNameMax = unix.IFNAMSIZ - 1
	// recvBufSize holds one RTM_NEWLINK answer; it is a few KiB without
	// statistics, and MSG_TRUNC is checked anyway.
	recvBufSize = 64 << 10
)

var seq atomic.Uint32

// LinkByIndex returns the interface with index ifindex in the calling
// thread's network namespace. A missing interface gives an error matching
// [ErrNotFound] and unix.ENODEV.
func LinkByIndex(ifindex int) (Link, error) {
	what := fmt.Sprintf("ifindex %d", ifindex)
	if ifindex <= 0 || ifindex > int(^uint32(0)>>1) {
		return Link{}, fmt.Errorf("netlink: get link %s: invalid index: %w", what, ErrNotFound)
	}
	return getLink(what, int32(ifindex), "")
}

// LinkByName returns the interface called name in the calling thread's
// network namespace. A missing interface gives an error matching
// [ErrNotFound] and unix.ENODEV.
func LinkByName(name string) (Link, error) {
	what := fmt.Sprintf("%q", name)
	switch {
	case name == "":
		return Link{}, fmt.Errorf("netlink: get link %s: empty name: %w", what, ErrNotFound)
	case len(name) > ifNameMax:
		return Link{}, fmt.Errorf("netlink: get link %s: name longer than %d bytes: %w", what, ifNameMax, ErrNotFound)
	case strings.IndexByte(name, 0) >= 0:
		return Link{}, fmt.Errorf("netlink: get link %s: name contains NUL: %w", what, ErrNotFound)
	}
	return getLink(what, 0, name)
}

// getLink sends one RTM_GETLINK for index (or, when index is 0, name) and
// parses the RTM_NEWLINK answer.
func getLink(what string, index int32, name string) (Link, error) {
	wrap := func(step string, err error) error {
		return fmt.Errorf("netlink: get link %s: %s: %w", what, step, err)
	}

	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return Link{}, wrap("open NETLINK_ROUTE socket", err)
	}
	defer unix.Close(fd)

	tv := unix.NsecToTimeval(Timeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return Link{}, wrap("set SO_RCVTIMEO", err)
	}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		return Link{}, wrap("set SO_SNDTIMEO", err)
	}
	// Extended acks carry the kernel's error message; best effort (4.12+).
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return Link{}, wrap("bind", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return Link{}, wrap("getsockname", err)
	}
	local, ok := sa.(*unix.SockaddrNetlink)
	if !ok {
		return Link{}, wrap("getsockname", fmt.Errorf("unexpected address type %T", sa))
	}

	s := seq.Add(1)
	req := buildGetLink(s, index, name)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return Link{}, wrap("send RTM_GETLINK", err)
	}

	buf := make([]byte, recvBufSize)
	for {
		n, _, flags, from, err := unix.Recvmsg(fd, buf, nil, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			return Link{}, wrap("receive", fmt.Errorf("no answer within %v: %w", Timeout, err))
		}
		if err != nil {
			return Link{}, wrap("receive", err)
		}
		if flags&unix.MSG_TRUNC != 0 {
			return Link{}, wrap("receive", fmt.Errorf("answer larger than %d bytes: %w", len(buf), unix.EMSGSIZE))
		}
		if nl, ok := from.(*unix.SockaddrNetlink); !ok || nl.Pid != 0 {
			continue // not from the kernel
		}
		link, done, err := parseAnswer(buf[:n], s, local.Pid)
		if err != nil {
			if errors.Is(err, unix.ENODEV) {
				err = fmt.Errorf("%w (%w)", ErrNotFound, err)
			}
			return Link{}, wrap("RTM_GETLINK", err)
		}
		if done {
			return link, nil
		}
	}
}

// buildGetLink encodes nlmsghdr + ifinfomsg + attributes.
func buildGetLink(seq uint32, index int32, name string) []byte {
	ne := binary.NativeEndian
	b := make([]byte, unix.SizeofNlMsghdr+unix.SizeofIfInfomsg, 64)
	// nlmsghdr: length is patched below.
	ne.PutUint16(b[4:], unix.RTM_GETLINK)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(b[8:], seq)
	// ifinfomsg: family AF_UNSPEC, index.
	ifi := b[unix.SizeofNlMsghdr:]
	ifi[0] = unix.AF_UNSPEC
	ne.PutUint32(ifi[4:], uint32(index))

	var mask [4]byte
	ne.PutUint32(mask[:], rtextFilterSkipStats)
	b = appendAttr(b, unix.IFLA_EXT_MASK, mask[:])
	if name != "" {
		b = appendAttr(b, unix.IFLA_IFNAME, append([]byte(name), 0))
	}
	ne.PutUint32(b[0:], uint32(len(b)))
	return b
}

func appendAttr(b []byte, typ uint16, data []byte) []byte {
	var hdr [unix.SizeofRtAttr]byte
	binary.NativeEndian.PutUint16(hdr[0:], uint16(unix.SizeofRtAttr+len(data)))
	binary.NativeEndian.PutUint16(hdr[2:], typ)
	b = append(b, hdr[:]...)
	b = append(b, data...)
	for len(b)%unix.NLMSG_ALIGNTO != 0 {
		b = append(b, 0)
	}
	return b
}

// parseAnswer walks one datagram. done is true once the answer to seq was
// found (a link or an error); messages for other requests are skipped.
func parseAnswer(b []byte, seq, pid uint32) (link Link, done bool, err error) {
	ne := binary.NativeEndian
	for len(b) >= unix.SizeofNlMsghdr {
		l := ne.Uint32(b[0:])
		if l < unix.SizeofNlMsghdr || uint64(l) > uint64(len(b)) {
			return Link{}, true, fmt.Errorf("malformed netlink message (length %d, %d bytes left)", l, len(b))
		}
		typ, flags := ne.Uint16(b[4:]), ne.Uint16(b[6:])
		mseq, mpid := ne.Uint32(b[8:]), ne.Uint32(b[12:])
		body := b[unix.SizeofNlMsghdr:l]
		b = b[min(nlmAlign(int(l)), len(b)):]

		if mseq != seq || mpid != pid {
			continue
		}
		switch typ {
		case unix.NLMSG_ERROR:
			return Link{}, true, parseError(body, flags)
		case unix.RTM_NEWLINK:
			link, err := parseLink(body)
			return link, true, err
		case unix.NLMSG_NOOP, unix.NLMSG_DONE:
			continue
		default:
			return Link{}, true, fmt.Errorf("unexpected netlink message type %d", typ)
		}
	}
	return Link{}, false, nil
}

// parseError decodes struct nlmsgerr, plus the extended-ack message when
// the kernel attached one.
func parseError(body []byte, flags uint16) error {
	if len(body) < 4 {
		return fmt.Errorf("truncated NLMSG_ERROR (%d bytes)", len(body))
	}
	code := int32(binary.NativeEndian.Uint32(body))
	if code == 0 {
		return errors.New("unexpected ack without a link")
	}
	errno := unix.Errno(-code)
	if flags&unix.NLM_F_ACK_TLVS == 0 {
		return errno
	}
	// The echoed request follows the error code: its header only when
	// capped, the whole message otherwise.
	off := 4 + unix.SizeofNlMsghdr
	if flags&unix.NLM_F_CAPPED == 0 && len(body) >= off {
		off = 4 + nlmAlign(int(binary.NativeEndian.Uint32(body[4:])))
	}
	if off > len(body) {
		return errno
	}
	var msg string
	_ = walkAttrs(body[off:], func(typ uint16, data []byte) {
		if typ == unix.NLMSGERR_ATTR_MSG {
			msg = strings.TrimRight(string(data), "\x00")
		}
	})
	if msg == "" {
		return errno
	}
	return fmt.Errorf("%w (kernel: %s)", errno, msg)
}

func parseLink(body []byte) (Link, error) {
	if len(body) < unix.SizeofIfInfomsg {
		return Link{}, fmt.Errorf("truncated RTM_NEWLINK (%d bytes)", len(body))
	}
	ne := binary.NativeEndian
	link := Link{Index: int(int32(ne.Uint32(body[4:])))}
	var xdp []byte
	err := walkAttrs(body[unix.SizeofIfInfomsg:], func(typ uint16, data []byte) {
		switch typ {
		case unix.IFLA_IFNAME:
			link.Name = strings.TrimRight(string(data), "\x00")
		case unix.IFLA_MTU:
			link.MTU = int(u32(data))
		case unix.IFLA_NUM_RX_QUEUES:
			link.NumRXQueues = int(u32(data))
		case unix.IFLA_NUM_TX_QUEUES:
			link.NumTXQueues = int(u32(data))
		case unix.IFLA_XDP:
			xdp = data
		}
	})
	if err != nil {
		return Link{}, fmt.Errorf("RTM_NEWLINK attributes: %w", err)
	}
	if xdp != nil {
		err := walkAttrs(xdp, func(typ uint16, data []byte) {
			switch typ {
			case unix.IFLA_XDP_ATTACHED:
				if len(data) >= 1 {
					link.XDP.Attached = data[0]
				}
			case unix.IFLA_XDP_PROG_ID:
				link.XDP.ProgID = u32(data)
			case unix.IFLA_XDP_DRV_PROG_ID:
				link.XDP.DrvProgID = u32(data)
			case unix.IFLA_XDP_SKB_PROG_ID:
				link.XDP.SKBProgID = u32(data)
			case unix.IFLA_XDP_HW_PROG_ID:
				link.XDP.HWProgID = u32(data)
			}
		})
		if err != nil {
			return Link{}, fmt.Errorf("IFLA_XDP attributes: %w", err)
		}
	}
	return link, nil
}

// walkAttrs calls fn for each netlink attribute in b, with the type's flag
// bits cleared.
func walkAttrs(b []byte, fn func(typ uint16, data []byte)) error {
	for len(b) >= unix.SizeofRtAttr {
		l := int(binary.NativeEndian.Uint16(b[0:]))
		typ := binary.NativeEndian.Uint16(b[2:]) & nlaTypeMask
		if l < unix.SizeofRtAttr || l > len(b) {
			return fmt.Errorf("malformed attribute (type %d, length %d, %d bytes left)", typ, l, len(b))
		}
		fn(typ, b[unix.SizeofRtAttr:l])
		b = b[min(nlmAlign(l), len(b)):]
	}
	return nil
}

func u32(b []byte) uint32 {
	if len(b) < 4 {
		return 0
	}
	return binary.NativeEndian.Uint32(b)
}

func nlmAlign(n int) int {
	return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
}
