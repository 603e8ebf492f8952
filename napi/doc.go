// Package napi tunes an interface's NAPI for busy polling —
// /sys/class/net/IF/napi_defer_hard_irqs and gro_flush_timeout — on behalf
// of several sockets in several processes, and puts the device's own values
// back when the last of them is done, even if the others were killed.
//
// Busy polling on a real NIC wants the device's interrupts deferred while
// the application polls (e.g. 2 and 200µs). Those are settings of the whole
// device, not of a socket: every process using the interface must agree on
// them, and somebody must undo them. [Apply] records who uses the settings
// and what they replaced in a state file, shared by every process:
//
//   - The first user records the current values as the originals, then
//     writes its own. Later users asking for the same values join; users
//     asking for others get a [*ConflictError] naming the values in force
//     and the processes that set them.
//   - The function Apply returns removes its caller; when no live user is
//     left, the originals are written back and the state file is removed.
//   - A user is a PID and that process's start time (field 22 of
//     /proc/PID/stat), so a PID reused by another process is not taken for
//     a live user, nor is a zombie. Users found dead (SIGKILLed, crashed)
//     are dropped by the next Apply, which undoes their values first when
//     none is left, and by [RestoreStale] and [RestoreAllStale], which a
//     daemon or tool can call at start-up.
//
// # State files
//
// The state directory is /run/xdpkit/napi, created with mode 0700. It and
// its files (mode 0600) must belong to the effective user, and no part of
// its path may be a symlink or writable by others (a sticky, world-writable
// parent owned by root, such as /tmp, is allowed); otherwise the package
// refuses to use it. There is one file per interface, named
// NETNS-IFINDEX-IFNAME after the inode of /proc/self/ns/net, the interface
// index and the name, so same-named interfaces in two network namespaces
// and a deleted and re-created interface do not share state. Each is JSON
// (comment added):
//
//	{
//		"version": 1,
//		"boot_id": "…",  // /proc/sys/kernel/random/boot_id: state from an earlier boot is dropped
//		"netns": 4026531840,
//		"ifname": "eth0",
//		"ifindex": 2,
//		"original": {"napi_defer_hard_irqs": "0", "gro_flush_timeout": "0"},
//		"applied": {"napi_defer_hard_irqs": "2", "gro_flush_timeout": "200000"},
//		"users": [{"pid": 1234, "start_time": 56789, "pidns": 4026531836, "seq": 1, "comm": "fwd"}]
//	}
//
// A file is read and changed only under an exclusive flock(2) on it, and
// replaced atomically: a new file is locked, written, synced and renamed
// over the old one, so the lock moves with the content.
//
// # Concurrency
//
// Apply, the restore functions it returns, RestoreStale and RestoreAllStale
// are safe to call from any number of goroutines and processes at once: the
// file lock serializes them per interface, also within one process. A call
// waits at most 10 s for another process's lock.
//
// # Limits
//
// Liveness is checked in the caller's PID namespace; users recorded from
// another PID namespace are always taken for alive. The interface is the
// one /sys/class/net shows, which is the network namespace sysfs was
// mounted in: call from a process whose sysfs matches its network
// namespace. Values changed by hand while the settings are in use are
// overwritten with the originals when the last user leaves.
//
// # Privileges and platforms
//
// Writing the sysfs files needs root (CAP_NET_ADMIN in the interface's
// network namespace, and a writable sysfs), and so does the default state
// directory. The package is Linux-only; elsewhere every function returns an
// error matching [errors.ErrUnsupported].
//
// # Example
//
//	restore, err := napi.Apply("eth0", napi.Settings{DeferHardIRQs: 2, GROFlushTimeout: 200 * time.Microsecond})
//	if errors.Is(err, napi.ErrConflict) {
//		log.Fatal(err) // another process busy-polls eth0 with other values
//	} else if err != nil {
//		log.Fatal(err)
//	}
//	defer restore()
package napi
