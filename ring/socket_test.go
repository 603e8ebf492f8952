//go:build linux

package ring_test

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/sys"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/ring"
)

// Ring sizes for the socket tests: all different, so that a ring mapped at
// another ring's page offset or with another ring's size would show.
const (
	sockFill = 32
	sockComp = 16
	sockRX   = 64
	sockTX   = 8
)

// xdpSocket opens an AF_XDP socket, closed in tb.Cleanup, and registers a
// 16-frame UMEM on it. With setSizes it also sizes all four rings.
func xdpSocket(tb testing.TB, setSizes bool) int {
	tb.Helper()
	testutils.RequirePrivileged(tb)
	fd, err := sys.Socket()
	if errors.Is(err, unix.EAFNOSUPPORT) {
		testutils.SkipOrFail(tb, "kernel without AF_XDP sockets (CONFIG_XDP_SOCKETS)")
	}
	if err != nil {
		tb.Fatalf("socket(AF_XDP): %v", err)
	}
	tb.Cleanup(func() {
		if err := sys.Close(fd); err != nil {
			tb.Errorf("close socket: %v", err)
		}
	})

	// The UMEM is registered and never read or written here.
	const frames, frameSize = 16, 4096
	area, err := unix.Mmap(-1, 0, frames*frameSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		tb.Fatalf("mmap umem: %v", err)
	}
	// Registered last, so it runs after the socket is closed and the
	// kernel has dropped its pin on the pages.
	tb.Cleanup(func() {
		if err := unix.Munmap(area); err != nil {
			tb.Errorf("munmap umem: %v", err)
		}
	})
	if err := sys.RegisterUMEM(fd, area, frames*frameSize, frameSize, 0, 0); err != nil {
		tb.Fatalf("register umem: %v", err)
	}
	if setSizes {
		for _, s := range []struct {
			opt  int
			size uint32
		}{
			{unix.XDP_UMEM_FILL_RING, sockFill},
			{unix.XDP_UMEM_COMPLETION_RING, sockComp},
			{unix.XDP_RX_RING, sockRX},
			{unix.XDP_TX_RING, sockTX},
		} {
			if err := sys.SetRingSize(fd, s.opt, s.size); err != nil {
				tb.Fatalf("set ring size (option %d) to %d: %v", s.opt, s.size, err)
			}
		}
	}
	return fd
}

func TestMapFromSocket(t *testing.T) {
	fd := xdpSocket(t, true)
	off, err := sys.MmapOffsets(fd)
	if err != nil {
		t.Fatalf("XDP_MMAP_OFFSETS: %v", err)
	}
	t.Logf("offsets: fill %+v, completion %+v, rx %+v, tx %+v", off.Fr, off.Cr, off.Rx, off.Tx)

	fill, err := ring.MapFill(fd, off.Fr, sockFill)
	if err != nil {
		t.Fatalf("MapFill: %v", err)
	}
	comp, err := ring.MapCompletion(fd, off.Cr, sockComp)
	if err != nil {
		t.Fatalf("MapCompletion: %v", err)
	}
	rx, err := ring.MapRX(fd, off.Rx, sockRX)
	if err != nil {
		t.Fatalf("MapRX: %v", err)
	}
	tx, err := ring.MapTX(fd, off.Tx, sockTX)
	if err != nil {
		t.Fatalf("MapTX: %v", err)
	}
	closers := []struct {
		name  string
		close func() error
	}{{"fill", fill.Close}, {"completion", comp.Close}, {"rx", rx.Close}, {"tx", tx.Close}}
	defer func() {
		for _, c := range closers {
			for i := range 2 {
				if err := c.close(); err != nil {
					t.Errorf("%s Close #%d: %v", c.name, i+1, err)
				}
			}
		}
	}()

	for _, s := range []struct {
		name      string
		got, want uint32
	}{
		{"fill", fill.Size(), sockFill},
		{"completion", comp.Size(), sockComp},
		{"rx", rx.Size(), sockRX},
		{"tx", tx.Size(), sockTX},
	} {
		if s.got != s.want {
			t.Errorf("%s Size() = %d, want %d", s.name, s.got, s.want)
		}
	}

	// Fresh rings: producers have every slot free and consumers see nothing.
	if _, n := rx.Peek(sockRX); n != 0 {
		t.Errorf("fresh RX Peek got %d", n)
	}
	if n := rx.Available(); n != 0 {
		t.Errorf("fresh RX Available() = %d", n)
	}
	if _, n := comp.Peek(sockComp); n != 0 {
		t.Errorf("fresh completion Peek got %d", n)
	}
	// The kernel sets XDP_RING_NEED_WAKEUP on a new TX ring ("Tx needs to
	// be explicitly woken up the first time", net/xdp/xsk.c, since 5.4) and
	// leaves the fill ring's flags clear until bound with
	// XDP_USE_NEED_WAKEUP, so this checks the flags word is mapped at the
	// right place on both.
	if fill.NeedWakeup() {
		t.Error("fill NeedWakeup() = true on an unbound socket")
	}
	if !tx.NeedWakeup() {
		t.Error("TX NeedWakeup() = false on a fresh TX ring; the kernel sets the flag when the ring is created")
	}
	idx, n := fill.Reserve(2 * sockFill)
	if n != sockFill {
		t.Errorf("fresh fill Reserve(%d) got %d, want %d", 2*sockFill, n, sockFill)
	}
	// An unbound socket's kernel side never consumes: what we submit stays
	// pending, and shows on no other ring, so each ring is its own mapping.
	for i := range uint32(3) {
		fill.Set(idx+i, uint64(i)*4096)
	}
	fill.Cancel(n - 3)
	fill.Submit(3)
	if p := fill.Pending(); p != 3 {
		t.Errorf("fill Pending() = %d, want 3", p)
	}
	if _, n := tx.Reserve(sockTX); n != sockTX {
		t.Errorf("fresh TX Reserve(%d) got %d", sockTX, n)
	} else {
		tx.Cancel(sockTX - 2)
		tx.Submit(2)
	}
	if p := tx.Pending(); p != 2 {
		t.Errorf("TX Pending() = %d, want 2", p)
	}
	if a, b := comp.Available(), rx.Available(); a != 0 || b != 0 {
		t.Errorf("after submitting to fill and TX: completion Available() = %d, RX Available() = %d, want 0", a, b)
	}
	if _, n := fill.Reserve(sockFill); n != sockFill-3 {
		t.Errorf("fill Reserve(%d) with 3 pending got %d, want %d", sockFill, n, sockFill-3)
	}
}

// TestMapSizeMismatch maps rings with sizes other than the kernel's. The
// kernel keeps no size we can read back; mmap only refuses a length beyond
// the memory it allocated for the ring, which is page-rounded. So a size
// larger than the kernel's fails only once the ring's bytes cross that
// memory's end, and a smaller size always maps. Either way nothing may
// crash, and a refused map must return an error wrapping the errno.
func TestMapSizeMismatch(t *testing.T) {
	fd := xdpSocket(t, true)
	off, err := sys.MmapOffsets(fd)
	if err != nil {
		t.Fatalf("XDP_MMAP_OFFSETS: %v", err)
	}
	pageSize := uint64(unix.Getpagesize())

	t.Run("invalid size", func(t *testing.T) {
		for _, size := range []uint32{0, 3, sockFill + 1, ring.MaxSize * 2} {
			if f, err := ring.MapFill(fd, off.Fr, size); !errors.Is(err, ring.ErrInvalidSize) {
				t.Errorf("MapFill(size %d) error = %v, want ErrInvalidSize", size, err)
				if f != nil {
					_ = f.Close()
				}
			}
		}
	})

	t.Run("beyond the kernel's pages", func(t *testing.T) {
		// The smallest power of two whose entries do not fit in the pages
		// holding a sockFill-entry ring.
		kernelBytes := (off.Fr.Desc + sockFill*addrEntry + pageSize - 1) / pageSize * pageSize
		size := uint32(sockFill)
		for off.Fr.Desc+uint64(size)*addrEntry <= kernelBytes {
			size *= 2
		}
		for _, s := range []uint32{size, size * 4, ring.MaxSize} {
			f, err := ring.MapFill(fd, off.Fr, s)
			if err == nil {
				_ = f.Close()
				t.Errorf("MapFill(size %d) over a %d-entry kernel ring (%d bytes mapped) succeeded", s, sockFill, kernelBytes)
				continue
			}
			if !errors.Is(err, unix.EINVAL) {
				t.Errorf("MapFill(size %d) error = %v, want one wrapping EINVAL", s, err)
			}
			t.Logf("MapFill(size %d) with kernel size %d: %v", s, sockFill, err)
		}
		r, err := ring.MapRX(fd, off.Rx, ring.MaxSize)
		if err == nil {
			_ = r.Close()
			t.Errorf("MapRX(size %d) over a %d-entry kernel ring succeeded", ring.MaxSize, sockRX)
		}
	})

	t.Run("within the kernel's pages", func(t *testing.T) {
		// These map: the kernel cannot tell. The ring then masks indices
		// with the wrong size, so entries land in slots the kernel does not
		// read. This is the caller's contract (MapFill's doc says the size
		// must be the one set with XDP_UMEM_FILL_RING); record it here.
		for _, s := range []uint32{sockFill / 2, sockFill * 2} {
			f, err := ring.MapFill(fd, off.Fr, s)
			if err != nil {
				t.Logf("MapFill(size %d) with kernel size %d refused: %v", s, sockFill, err)
				continue
			}
			t.Logf("MapFill(size %d) with kernel size %d maps: the kernel only checks the length against its page-rounded allocation", s, sockFill)
			if f.Size() != s {
				t.Errorf("Size() = %d, want %d", f.Size(), s)
			}
			for range 2 {
				if err := f.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}
		}
	})
}

// TestMapErrors maps rings that cannot be mapped: no ring size set, a
// socket that is not AF_XDP, a closed descriptor.
func TestMapErrors(t *testing.T) {
	fd := xdpSocket(t, false)
	off, err := sys.MmapOffsets(fd)
	if err != nil {
		t.Fatalf("XDP_MMAP_OFFSETS: %v", err)
	}
	udp, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socket(AF_INET): %v", err)
	}
	defer unix.Close(udp)

	for _, tc := range []struct {
		name string
		fd   int
	}{
		{"no ring size set", fd},
		{"not an AF_XDP socket", udp},
		{"bad descriptor", -1},
	} {
		for _, m := range []struct {
			name string
			mapf func() (func() error, error)
		}{
			{"MapFill", func() (func() error, error) { r, err := ring.MapFill(tc.fd, off.Fr, 16); return closer(r, err) }},
			{"MapCompletion", func() (func() error, error) { r, err := ring.MapCompletion(tc.fd, off.Cr, 16); return closer(r, err) }},
			{"MapRX", func() (func() error, error) { r, err := ring.MapRX(tc.fd, off.Rx, 16); return closer(r, err) }},
			{"MapTX", func() (func() error, error) { r, err := ring.MapTX(tc.fd, off.Tx, 16); return closer(r, err) }},
		} {
			c, err := m.mapf()
			if err == nil {
				_ = c()
				t.Errorf("%s: %s succeeded", tc.name, m.name)
				continue
			}
			var errno unix.Errno
			if !errors.As(err, &errno) {
				t.Errorf("%s: %s error %q does not wrap an errno", tc.name, m.name, err)
			}
		}
	}
}

// closer turns a mapped ring and its error into a Close func, without
// wrapping a nil pointer in a non-nil interface.
func closer[R interface{ Close() error }](r R, err error) (func() error, error) {
	if err != nil {
		return nil, err
	}
	return r.Close, nil
}
