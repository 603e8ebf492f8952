//go:build linux

// Package sys wraps the AF_XDP system calls xdpkit needs, once, with their
// option lengths checked. It is the only package that makes raw syscalls
// and converts pointers with unsafe for them.
package sys

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Socket opens a non-blocking AF_XDP socket, so the runtime poller can wait
// on it.
func Socket() (int, error) {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return -1, err
	}
	return fd, nil
}

// AdoptSocket checks that fd, made by another process or inherited, is
// an AF_XDP socket, and gives it the flags Socket's have (non-blocking,
// close-on-exec).
func AdoptSocket(fd int) error {
	dom, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return fmt.Errorf("fd %d: %w", fd, err)
	}
	if dom != unix.AF_XDP {
		return fmt.Errorf("fd %d is a socket of family %d, not AF_XDP (%d): %w", fd, dom, unix.AF_XDP, unix.EAFNOSUPPORT)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return fmt.Errorf("fd %d: %w", fd, err)
	}
	unix.CloseOnExec(fd)
	return nil
}

// RegisterUMEM is setsockopt(XDP_UMEM_REG) of the first size bytes of
// area as frames of frameSize bytes, without TX metadata.
func RegisterUMEM(fd int, area []byte, size uint64, frameSize, headroom, flags uint32) error {
	return RegisterUMEMTXMetadata(fd, area, size, frameSize, headroom, flags, 0)
}

// RegisterUMEMTXMetadata is RegisterUMEM with tx_metadata_len set (Linux
// 6.8+): the bytes the kernel reserves for a struct xsk_tx_metadata in
// front of every TX descriptor's data. Linux 6.11+ honour it only with
// XDP_UMEM_TX_METADATA_LEN in flags, which 6.8 to 6.10 refuse (EINVAL);
// kernels before 6.8 ignore the field.
func RegisterUMEMTXMetadata(fd int, area []byte, size uint64, frameSize, headroom, flags, txMetadataLen uint32) error {
	reg := unix.XDPUmemReg{
		Addr:            uint64(uintptr(unsafe.Pointer(&area[0]))), // the kernel pins these pages; the caller keeps area mapped
		Len:             size,
		Size:            frameSize,
		Headroom:        headroom,
		Flags:           flags,
		Tx_metadata_len: txMetadataLen,
	}
	// The whole struct: tx_metadata_len sits where older kernels have
	// padding (the struct is 32 bytes either way), and a shorter optlen
	// would make them ignore Flags.
	return setsockopt(fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg))
}

// SetRingSize sets the size of one ring (XDP_RX_RING, XDP_TX_RING,
// XDP_UMEM_FILL_RING or XDP_UMEM_COMPLETION_RING).
func SetRingSize(fd, ring int, size uint32) error {
	return unix.SetsockoptInt(fd, unix.SOL_XDP, ring, int(size))
}

// ringOffsetV1 is the layout kernels before 5.4 return: no flags word.
type ringOffsetV1 struct{ Producer, Consumer, Desc uint64 }

type mmapOffsetsV1 struct{ Rx, Tx, Fr, Cr ringOffsetV1 }

// MmapOffsets is getsockopt(XDP_MMAP_OFFSETS). On kernels that answer with
// the shorter v1 layout, the flags word is placed right after the consumer
// index, where those kernels keep it (as libxdp does).
func MmapOffsets(fd int) (unix.XDPMmapOffsets, error) {
	var off unix.XDPMmapOffsets
	n, err := getsockopt(fd, unix.XDP_MMAP_OFFSETS, unsafe.Pointer(&off), unsafe.Sizeof(off))
	if err != nil {
		return off, err
	}
	switch n {
	case unsafe.Sizeof(off):
		return off, nil
	case unsafe.Sizeof(mmapOffsetsV1{}):
		// The kernel wrote the v1 layout into the start of off: reread it.
		v1 := *(*mmapOffsetsV1)(unsafe.Pointer(&off))
		conv := func(r ringOffsetV1) unix.XDPRingOffset {
			return unix.XDPRingOffset{Producer: r.Producer, Consumer: r.Consumer, Desc: r.Desc, Flags: r.Consumer + 4}
		}
		return unix.XDPMmapOffsets{Rx: conv(v1.Rx), Tx: conv(v1.Tx), Fr: conv(v1.Fr), Cr: conv(v1.Cr)}, nil
	default:
		return off, fmt.Errorf("XDP_MMAP_OFFSETS: unexpected option length %d", n)
	}
}

// Statistics is getsockopt(XDP_STATISTICS). Kernels before 5.9 fill only
// the first three counters; the rest stay zero.
func Statistics(fd int) (unix.XDPStatistics, error) {
	var st unix.XDPStatistics
	_, err := getsockopt(fd, unix.XDP_STATISTICS, unsafe.Pointer(&st), unsafe.Sizeof(st))
	return st, err
}

// Options is getsockopt(XDP_OPTIONS): XDP_OPTIONS_ZEROCOPY when bound in
// zero-copy mode.
func Options(fd int) (uint32, error) {
	var opts uint32
	_, err := getsockopt(fd, unix.XDP_OPTIONS, unsafe.Pointer(&opts), unsafe.Sizeof(opts))
	return opts, err
}

// Bind binds fd to (ifindex, queue). sharedFD is used with XDP_SHARED_UMEM.
func Bind(fd, ifindex, queue int, flags uint16, sharedFD int) error {
	sa := &unix.SockaddrXDP{Flags: flags, Ifindex: uint32(ifindex), QueueID: uint32(queue)}
	if flags&unix.XDP_SHARED_UMEM != 0 {
		sa.SharedUmemFD = uint32(sharedFD)
	}
	return unix.Bind(fd, sa)
}

// SetsockoptInt sets an integer socket option.
func SetsockoptInt(fd, level, opt, value int) error {
	return unix.SetsockoptInt(fd, level, opt, value)
}

// Kick is sendto(fd, NULL, 0, MSG_DONTWAIT): it makes the kernel process
// the TX ring. It returns a bare unix.Errno so the caller's fast path does
// not allocate. It is a raw syscall: it never blocks, and telling the Go
// scheduler about it (as Syscall does) made the runtime hand the thread's
// P to another thread on every longer copy-mode send, tens of thousands of
// context switches a second.
func Kick(fd int) error {
	_, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// WakeupRX is recvfrom(fd, NULL, 0, MSG_DONTWAIT): in zero-copy mode it
// makes the driver look at a fill ring that had run empty, and with busy
// polling it runs the device's NAPI poll. Raw, like Kick: it never blocks.
func WakeupRX(fd int) error {
	_, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// Close closes fd.
func Close(fd int) error { return unix.Close(fd) }

// Dup duplicates fd with close-on-exec set.
func Dup(fd int) (int, error) { return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0) }

func setsockopt(fd, opt int, p unsafe.Pointer, size uintptr) error {
	_, _, errno := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p), size, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

func getsockopt(fd, opt int, p unsafe.Pointer, size uintptr) (uintptr, error) {
	l := uint32(size)
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p), uintptr(unsafe.Pointer(&l)), 0)
	if errno != 0 {
		return 0, errno
	}
	return uintptr(l), nil
}

// Poll is poll(2), retried on EINTR.
func Poll(fds []unix.PollFd, timeoutMs int) (int, error) {
	for {
		n, err := unix.Poll(fds, timeoutMs)
		if err != unix.EINTR {
			return n, err
		}
	}
}

// PollHeld is ppoll(2) for at most timeout without telling the Go
// scheduler that the thread blocks: the goroutine keeps its P while it
// sleeps, as a busy-polling loop would. A poll that the scheduler knows
// of (Poll) loses its P to sysmon when it sleeps past one of sysmon's
// ticks (20 µs and up) while no other P is idle, and getting it back costs
// the waking thread a slow path and often a futex wake-up of another
// thread (afxdp's pollWait has the numbers). The runtime still reaches a
// held goroutine: preemption (the GC's stop-the-world, sysmon's 10 ms
// time slice) signals its thread, the signal ends ppoll with EINTR, and
// PollHeld yields (runtime.Gosched) before it polls again for what is
// left of the timeout, which ppoll wrote back. (poll(2) would start the
// whole timeout again after every signal, and sysmon signals a goroutine
// that seems to run for 10 ms, so a wait longer than that would never
// end.) While it sleeps, the P runs nothing else: keep timeout bounded.
func PollHeld(fds []unix.PollFd, timeout time.Duration) (int, error) {
	if len(fds) == 0 {
		return 0, unix.EINVAL
	}
	ts := unix.NsecToTimespec(int64(timeout))
	for {
		// RawSyscall6: no entersyscall, so the P stays with this goroutine;
		// fds and ts live across the call (uintptrkeepalive); on EINTR ts
		// holds the time left.
		n, _, errno := unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&fds[0])), uintptr(len(fds)), uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
		switch errno {
		case 0:
			return int(n), nil
		case unix.EINTR:
			runtime.Gosched() // let the preemption that signalled us happen
		default:
			return 0, errno
		}
	}
}

// SleepHeld sleeps d on the calling thread, keeping its P as PollHeld
// does; a signal (the runtime's preemption) ends it early after letting
// the preemption happen, since callers look at the ring again anyway.
// The sleep lasts d, not d plus the thread's timer slack (see
// withSlack).
func SleepHeld(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	var errno unix.Errno
	withSlack(func() {
		// RawSyscall: no entersyscall, so the P stays (see PollHeld); ts
		// lives across the call.
		_, _, errno = unix.RawSyscall(unix.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
	})
	if errno == unix.EINTR {
		runtime.Gosched()
	}
}

// Sleep is SleepHeld through the scheduler: the P may go to other
// goroutines while the thread sleeps.
func Sleep(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	withSlack(func() {
		_ = unix.Nanosleep(&ts, nil) // EINTR: the caller looks at the ring again anyway
	})
}

// SleepSlack is the timer slack a SleepHeld or Sleep runs with, in ns.
// The kernel may end a thread's timed sleep up to the thread's timer
// slack late (prctl(2) PR_SET_TIMERSLACK: 50 µs unless changed), and on
// an otherwise idle CPU it does: a 20 µs nanosleep lasts 77 µs here, one
// with this slack 27 (the rest is the wake-up). 0 would mean "the
// default" to prctl.
const SleepSlack = 1000

// processSlack is the timer slack withSlack puts back: that of the first
// thread that slept, as every thread of a Go process inherits the same
// one unless the program changed it; 0 until then.
var processSlack atomic.Uintptr

// withSlack runs fn on the calling thread with its timer slack at
// SleepSlack, then puts the process's slack back: two prctl calls, about
// 0.6 µs, against the 50 µs the default slack would add to fn's sleep.
// The goroutine stays on its thread meanwhile, so that the slack it sets
// and restores is that of the thread that sleeps.
func withSlack(fn func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	old := processSlack.Load()
	if old == 0 {
		v, _, errno := unix.RawSyscall(unix.SYS_PRCTL, unix.PR_GET_TIMERSLACK, 0, 0)
		if errno != 0 || v == 0 {
			fn()
			return
		}
		processSlack.Store(v)
		old = v
	}
	if old <= SleepSlack {
		fn() // already as precise (a real-time thread, or one the program set)
		return
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_PRCTL, unix.PR_SET_TIMERSLACK, SleepSlack, 0); errno != 0 {
		fn()
		return
	}
	fn()
	_, _, _ = unix.RawSyscall(unix.SYS_PRCTL, unix.PR_SET_TIMERSLACK, old, 0)
}

// Eventfd opens a non-blocking, close-on-exec eventfd.
func Eventfd() (int, error) {
	return unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
}

// EventfdSignal adds one to eventfd fd, making it readable.
func EventfdSignal(fd int) error {
	var one = [8]byte{1} // a native-endian uint64 of 1 on little-endian; any non-zero value wakes
	if _, err := unix.Write(fd, one[:]); err != nil && err != unix.EAGAIN {
		return err
	}
	return nil
}

// NetNS identifies the network namespace of the calling thread (the
// device and inode of /proc/thread-self/ns/net): sockets it opens live
// there, and bind finds interfaces there.
func NetNS() (dev, ino uint64, err error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return 0, 0, err
	}
	return st.Dev, st.Ino, nil
}
