package doctor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// XSK is one AF_XDP socket as xsk_diag reports it.
type XSK struct {
	Inode  uint64 // xdiag_ino, as in /proc/PID/fd's "socket:[INODE]"
	Cookie uint64 // the socket cookie (xdiag_cookie[0] low, [1] high)
	UID    uint32 // XDP_DIAG_UID, valid when HasUID
	HasUID bool

	// Bound is true when XDP_DIAG_INFO names a device. The kernel sends
	// INFO with ifindex 0 for a socket that was never bound, so the
	// attribute alone does not mean bound.
	Bound          bool
	Ifindex, Queue uint32 // XDP_DIAG_INFO

	// Ring entries; 0 when the ring is absent.
	RX, TX, Fill, Completion uint32

	UMEM   *XSKUMEM  // XDP_DIAG_UMEM; nil without a UMEM
	Stats  *XSKStats // XDP_DIAG_STATS; nil before Linux 5.9
	Owners []Owner   // the processes holding the socket, by PID
}

// XSKUMEM is struct xdp_diag_umem. Ifindex and Queue are those of the
// buffer pool, which a shared UMEM may have on another queue than the
// socket.
type XSKUMEM struct {
	Size                              uint64
	ID, NumPages, ChunkSize, Headroom uint32
	Ifindex, Queue, Flags, Refs       uint32
	ZeroCopy                          bool // Flags & XDP_DU_F_ZEROCOPY
}

// XSKStats is struct xdp_diag_stats.
type XSKStats struct {
	RXDropped, RXInvalid, RXFull, FillRingEmpty, TXInvalid, TXRingEmpty uint64
}

// Owner is a process holding a socket.
type Owner struct {
	PID  int
	Name string // /proc/PID/comm; "" when unreadable
}

// ErrNoXSKDiag means the kernel has no AF_XDP socket diagnostics. It
// matches errors.ErrUnsupported too.
var ErrNoXSKDiag = fmt.Errorf("kernel has no AF_XDP socket diagnostics (xsk_diag): %w", errors.ErrUnsupported)

// include/uapi/linux/xdp_diag.h.
const (
	sizeofXDPDiagReq   = 20 // u8 family, u8 protocol, u16 pad, u32 ino, u32 show, u32 cookie[2]
	sizeofXDPDiagMsg   = 16 // u8 family, u8 type, u16 pad, u32 ino, u32 cookie[2]
	sizeofXDPDiagInfo  = 8
	sizeofXDPDiagRing  = 4
	sizeofXDPDiagUMEM  = 40
	sizeofXDPDiagStats = 48

	xdpShowInfo    = 1 << 0
	xdpShowRingCfg = 1 << 1
	xdpShowUMEM    = 1 << 2
	xdpShowStats   = 1 << 4 // ignored before Linux 5.9

	xdpDiagInfo               = 1
	xdpDiagUID                = 2
	xdpDiagRXRing             = 3
	xdpDiagTXRing             = 4
	xdpDiagUMEM               = 5
	xdpDiagUMEMFillRing       = 6
	xdpDiagUMEMCompletionRing = 7
	xdpDiagStats              = 9

	xdpDUFZeroCopy = 1 << 0
)

// xskDiagTimeout bounds the dump.
const xskDiagTimeout = 5 * time.Second

// XDPSockets dumps every AF_XDP socket of the calling thread's network
// namespace, with the processes that hold each one. The kernel leaves out
// sockets being closed, and (a kernel quirk) may end the dump at one.
func XDPSockets() ([]XSK, error) {
	xs, err := dumpXSK()
	if err != nil {
		return nil, err
	}
	if len(xs) == 0 {
		return xs, nil
	}
	owners, err := SocketOwners()
	if err != nil {
		return nil, err
	}
	for i := range xs {
		xs[i].Owners = owners[xs[i].Inode]
	}
	return xs, nil
}

func xskDiagError(step string, err error) error {
	return fmt.Errorf("doctor: xsk_diag: %s: %w", step, err)
}

func dumpXSK() ([]XSK, error) {
	c, err := netlink.Dial(unix.NETLINK_SOCK_DIAG, nil)
	if err != nil {
		return nil, xskDiagError("open NETLINK_SOCK_DIAG socket", err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(xskDiagTimeout)); err != nil {
		return nil, xskDiagError("set deadline", err)
	}
	return dumpXSKOn(c)
}

// dumpXSKOn sends the dump request on c and parses the answers.
func dumpXSKOn(c *netlink.Conn) ([]XSK, error) {
	// xsk_diag only dumps and filters on nothing: ino and cookie stay 0.
	req := make([]byte, sizeofXDPDiagReq)
	req[0] = unix.AF_XDP
	binary.NativeEndian.PutUint32(req[8:], xdpShowInfo|xdpShowRingCfg|xdpShowUMEM|xdpShowStats)
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.SOCK_DIAG_BY_FAMILY, Flags: netlink.Request | netlink.Dump},
		Data:   req,
	})
	if err != nil {
		// sock_diag answers ENOENT for a family without a handler, after
		// trying to load its module (net-pf-16-proto-4-type-44).
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("doctor: xsk_diag: dump: %w (enable CONFIG_XDP_SOCKETS_DIAG; modprobe xsk_diag where it is a module): %w", ErrNoXSKDiag, err)
		}
		return nil, xskDiagError("dump", err)
	}
	xs := make([]XSK, 0, len(msgs))
	for i, m := range msgs {
		if m.Header.Type != unix.SOCK_DIAG_BY_FAMILY {
			return nil, xskDiagError("dump", fmt.Errorf("message %d has type %d, want SOCK_DIAG_BY_FAMILY", i, m.Header.Type))
		}
		x, err := parseXDPDiag(m.Data)
		if err != nil {
			return nil, xskDiagError(fmt.Sprintf("message %d", i), err)
		}
		xs = append(xs, x)
	}
	return xs, nil
}

// parseXDPDiag decodes one answer: struct xdp_diag_msg, then attributes.
// Structs may be longer than this code knows (a newer kernel), not shorter.
func parseXDPDiag(b []byte) (XSK, error) {
	ne := binary.NativeEndian
	if len(b) < sizeofXDPDiagMsg {
		return XSK{}, fmt.Errorf("truncated xdp_diag_msg (%d bytes, want %d)", len(b), sizeofXDPDiagMsg)
	}
	if b[0] != unix.AF_XDP {
		return XSK{}, fmt.Errorf("xdp_diag_msg of family %d, want AF_XDP (%d)", b[0], unix.AF_XDP)
	}
	x := XSK{
		Inode:  uint64(ne.Uint32(b[4:])),
		Cookie: uint64(ne.Uint32(b[8:])) | uint64(ne.Uint32(b[12:]))<<32,
	}
	ad, err := netlink.NewAttributeDecoder(b[sizeofXDPDiagMsg:])
	if err != nil {
		return XSK{}, fmt.Errorf("attributes: %w", err)
	}
	for ad.Next() {
		d := ad.Bytes()
		need := func(name string, n int) error {
			if len(d) < n {
				return fmt.Errorf("truncated %s (%d bytes, want %d)", name, len(d), n)
			}
			return nil
		}
		ring := func(name string, dst *uint32) error {
			if err := need(name, sizeofXDPDiagRing); err != nil {
				return err
			}
			*dst = ne.Uint32(d)
			return nil
		}
		var err error
		switch ad.Type() {
		case xdpDiagInfo:
			if err = need("XDP_DIAG_INFO", sizeofXDPDiagInfo); err == nil {
				x.Ifindex, x.Queue = ne.Uint32(d), ne.Uint32(d[4:])
				x.Bound = x.Ifindex != 0
			}
		case xdpDiagUID:
			if err = need("XDP_DIAG_UID", 4); err == nil {
				x.UID, x.HasUID = ne.Uint32(d), true
			}
		case xdpDiagRXRing:
			err = ring("XDP_DIAG_RX_RING", &x.RX)
		case xdpDiagTXRing:
			err = ring("XDP_DIAG_TX_RING", &x.TX)
		case xdpDiagUMEMFillRing:
			err = ring("XDP_DIAG_UMEM_FILL_RING", &x.Fill)
		case xdpDiagUMEMCompletionRing:
			err = ring("XDP_DIAG_UMEM_COMPLETION_RING", &x.Completion)
		case xdpDiagUMEM:
			if err = need("XDP_DIAG_UMEM", sizeofXDPDiagUMEM); err == nil {
				u := &XSKUMEM{
					Size: ne.Uint64(d), ID: ne.Uint32(d[8:]), NumPages: ne.Uint32(d[12:]),
					ChunkSize: ne.Uint32(d[16:]), Headroom: ne.Uint32(d[20:]), Ifindex: ne.Uint32(d[24:]),
					Queue: ne.Uint32(d[28:]), Flags: ne.Uint32(d[32:]), Refs: ne.Uint32(d[36:]),
				}
				u.ZeroCopy = u.Flags&xdpDUFZeroCopy != 0
				x.UMEM = u
			}
		case xdpDiagStats:
			if err = need("XDP_DIAG_STATS", sizeofXDPDiagStats); err == nil {
				x.Stats = &XSKStats{
					RXDropped: ne.Uint64(d), RXInvalid: ne.Uint64(d[8:]), RXFull: ne.Uint64(d[16:]),
					FillRingEmpty: ne.Uint64(d[24:]), TXInvalid: ne.Uint64(d[32:]), TXRingEmpty: ne.Uint64(d[40:]),
				}
			}
		}
		// XDP_DIAG_MEMINFO and attributes newer than this code are skipped.
		if err != nil {
			return XSK{}, err
		}
	}
	if err := ad.Err(); err != nil {
		return XSK{}, fmt.Errorf("attributes: %w", err)
	}
	return x, nil
}

// SocketOwners maps socket inodes to the processes holding them, from the
// "socket:[INODE]" links in /proc/PID/fd. Processes that exit during the
// scan, or whose fds the caller may not read, are left out.
func SocketOwners() (map[uint64][]Owner, error) {
	return socketOwners("/proc")
}

func socketOwners(proc string) (map[uint64][]Owner, error) {
	ents, err := os.ReadDir(proc)
	if err != nil {
		return nil, fmt.Errorf("doctor: socket owners: %w", err)
	}
	owners := make(map[uint64][]Owner)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue // not a process: "self", "net", ...
		}
		dir := filepath.Join(proc, e.Name())
		inodes, err := processSockets(dir)
		if skippable(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("doctor: socket owners: pid %d: %w", pid, err)
		}
		if len(inodes) == 0 {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(dir, "comm"))
		if vanished(err) {
			continue
		}
		o := Owner{PID: pid, Name: strings.TrimSuffix(string(comm), "\n")}
		for _, ino := range inodes {
			owners[ino] = append(owners[ino], o)
		}
	}
	for _, list := range owners {
		slices.SortFunc(list, func(a, b Owner) int { return a.PID - b.PID })
	}
	return owners, nil
}

// processSockets returns the socket inodes a process's fds refer to, each
// once.
func processSockets(dir string) ([]uint64, error) {
	fds, err := os.ReadDir(filepath.Join(dir, "fd"))
	if err != nil {
		return nil, err
	}
	var inodes []uint64
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join(dir, "fd", fd.Name()))
		if skippable(err) {
			continue // closed since ReadDir
		}
		if err != nil {
			return nil, err
		}
		s, ok1 := strings.CutPrefix(l, "socket:[")
		s, ok2 := strings.CutSuffix(s, "]")
		ino, err := strconv.ParseUint(s, 10, 64)
		if !ok1 || !ok2 || err != nil {
			continue // a file, pipe, anon_inode:..., or an odd link
		}
		if !slices.Contains(inodes, ino) {
			inodes = append(inodes, ino)
		}
	}
	return inodes, nil
}

// vanished reports an error from reading a process that has exited.
func vanished(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH)
}

// skippable adds the errors of a process the caller may not inspect.
func skippable(err error) bool {
	return vanished(err) || errors.Is(err, fs.ErrPermission)
}
