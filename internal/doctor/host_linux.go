package doctor

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Host is where the host checks read: the file system (Read) and the
// process's own limits, so that tests can give them other values.
type Host struct {
	Read         func(path string) ([]byte, error)
	Release      string // uname -r
	MemlockLimit uint64 // RLIMIT_MEMLOCK soft limit, bytes (unix.RLIM_INFINITY: none)
	MountsAt     string // the mount table to read, /proc/self/mounts
}

// ThisHost is the Host the process runs on.
func ThisHost() (*Host, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return nil, fmt.Errorf("uname: %w", err)
	}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &rl); err != nil {
		return nil, fmt.Errorf("getrlimit: %w", err)
	}
	return &Host{Read: os.ReadFile, Release: unix.ByteSliceToString(u.Release[:]), MemlockLimit: rl.Cur, MountsAt: "/proc/self/mounts"}, nil
}

// Checks runs every host check.
func (h *Host) Checks() []Result {
	caps := h.caps()
	return []Result{Kernel(h.Release), h.JIT(), h.UnprivilegedBPF(caps), h.BTF(), h.BPFFS(), h.Capabilities(caps), h.Memlock(caps), h.Hugepages(), h.CPUs()}
}

func (h *Host) readTrim(path string) (string, error) {
	b, err := h.Read(path)
	return strings.TrimSpace(string(b)), err
}

// JIT checks that BPF programs are compiled, not interpreted.
func (h *Host) JIT() Result {
	r := Result{Check: "bpf-jit"}
	v, err := h.readTrim("/proc/sys/net/core/bpf_jit_enable")
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.Verdict, r.Evidence = OK, "no bpf_jit_enable: the JIT is always on (CONFIG_BPF_JIT_ALWAYS_ON)"
	case err != nil:
		r.Verdict, r.Evidence = Warn, err.Error()
	case v == "0":
		r.Verdict, r.Evidence = Warn, "bpf_jit_enable is 0: XDP programs run in the interpreter, several times slower"
		r.Fix = "sysctl -w net.core.bpf_jit_enable=1"
	default:
		r.Verdict, r.Evidence = OK, "bpf_jit_enable is "+v
	}
	return r
}

// capability bits (linux/capability.h)
const (
	capNetAdmin = 12
	capNetRaw   = 13
	capIPCLock  = 14
	capSysAdmin = 21
	capBPF      = 39
)

var capNames = map[int]string{capNetAdmin: "CAP_NET_ADMIN", capNetRaw: "CAP_NET_RAW", capIPCLock: "CAP_IPC_LOCK", capSysAdmin: "CAP_SYS_ADMIN", capBPF: "CAP_BPF"}

// caps reads the effective capabilities (CapEff in /proc/self/status);
// ok is false if they could not be read.
type capSet struct {
	bits uint64
	ok   bool
}

func (c capSet) has(bit int) bool { return c.ok && c.bits&(1<<bit) != 0 }

func (h *Host) caps() capSet {
	b, err := h.Read("/proc/self/status")
	if err != nil {
		return capSet{}
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			bits, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return capSet{bits: bits, ok: err == nil}
		}
	}
	return capSet{}
}

// Capabilities checks what attaching a program and opening a socket take.
func (h *Host) Capabilities(c capSet) Result {
	r := Result{Check: "capabilities"}
	if !c.ok {
		r.Verdict, r.Evidence = Warn, "cannot read CapEff from /proc/self/status"
		return r
	}
	var missing []string
	for _, bit := range []int{capNetAdmin, capNetRaw} {
		if !c.has(bit) {
			missing = append(missing, capNames[bit])
		}
	}
	if !c.has(capBPF) && !c.has(capSysAdmin) {
		missing = append(missing, "CAP_BPF (or CAP_SYS_ADMIN)")
	}
	if len(missing) > 0 {
		r.Verdict = Fail
		r.Evidence = "missing " + strings.Join(missing, ", ") + ": loading and attaching the redirect program needs CAP_BPF and CAP_NET_ADMIN, an AF_XDP socket CAP_NET_RAW"
		r.Fix = "run as root, or grant them: setcap cap_net_admin,cap_net_raw,cap_bpf,cap_ipc_lock+ep ./your-tool"
		return r
	}
	r.Verdict, r.Evidence = OK, "CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF (or CAP_SYS_ADMIN) are effective"
	return r
}

// UnprivilegedBPF reports the sysctl that decides whether BPF needs
// privileges; it matters only to a process without them.
func (h *Host) UnprivilegedBPF(c capSet) Result {
	r := Result{Check: "unpriv-bpf"}
	v, err := h.readTrim("/proc/sys/kernel/unprivileged_bpf_disabled")
	if err != nil {
		r.Verdict, r.Evidence = Info, "cannot read unprivileged_bpf_disabled: "+err.Error()
		return r
	}
	r.Evidence = "unprivileged_bpf_disabled is " + v
	switch {
	case v == "0":
		r.Verdict = Info
		r.Evidence += ": unprivileged processes may load some BPF programs (not XDP ones)"
	case c.has(capBPF) || c.has(capSysAdmin):
		r.Verdict = OK
		r.Evidence += ": BPF needs CAP_BPF, which this process has"
	default:
		r.Verdict = Fail
		r.Evidence += ": BPF needs CAP_BPF, which this process lacks"
		r.Fix = "run as root or with CAP_BPF"
	}
	return r
}

// BTF checks for the kernel's type information (RX metadata kfuncs and
// most BPF tooling need it).
func (h *Host) BTF() Result {
	if _, err := h.Read("/sys/kernel/btf/vmlinux"); err != nil {
		return Result{Check: "btf", Verdict: Warn, Evidence: "no /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF): the RX metadata kfuncs and bpftool's type output need it"}
	}
	return Result{Check: "btf", Verdict: OK, Evidence: "/sys/kernel/btf/vmlinux is there"}
}

// BPFFS checks that a BPF file system is mounted at /sys/fs/bpf, where
// pinned programs (-pin) and maps live.
func (h *Host) BPFFS() Result {
	r := Result{Check: "bpffs"}
	b, err := h.Read(h.MountsAt)
	if err != nil {
		r.Verdict, r.Evidence = Warn, "cannot read the mount table: "+err.Error()
		return r
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && f[2] == "bpf" && f[1] == "/sys/fs/bpf" {
			r.Verdict, r.Evidence = OK, "bpf file system mounted at /sys/fs/bpf"
			return r
		}
	}
	r.Verdict = Warn
	r.Evidence = "no bpf file system at /sys/fs/bpf: pinned programs (-pin, one process per queue) cannot be shared; single processes work"
	r.Fix = "mount -t bpf bpf /sys/fs/bpf"
	return r
}

// defaultUMEM is what a socket with the default configuration locks: 4096
// frames of 4 KiB, plus its four rings.
const defaultUMEM = 4096*4096 + 4*2048*16

// Memlock checks the locked-memory limit against a default socket's UMEM.
func (h *Host) Memlock(c capSet) Result {
	r := Result{Check: "memlock"}
	limit := "unlimited"
	if h.MemlockLimit != unix.RLIM_INFINITY {
		limit = fmt.Sprintf("%d KiB", h.MemlockLimit/1024)
	}
	switch {
	case c.has(capIPCLock):
		r.Verdict, r.Evidence = OK, "CAP_IPC_LOCK: UMEM registrations are not charged to RLIMIT_MEMLOCK ("+limit+")"
	case h.MemlockLimit == unix.RLIM_INFINITY || h.MemlockLimit >= defaultUMEM:
		r.Verdict, r.Evidence = OK, fmt.Sprintf("RLIMIT_MEMLOCK %s, a default socket locks %d KiB", limit, defaultUMEM/1024)
	default:
		r.Verdict = Fail
		r.Evidence = fmt.Sprintf("RLIMIT_MEMLOCK %s is less than the %d KiB a default socket locks (4096 frames of 4 KiB and its rings): registering the UMEM fails with ENOBUFS/EPERM", limit, defaultUMEM/1024)
		r.Fix = "ulimit -l unlimited (or LimitMEMLOCK=infinity in the systemd unit), or grant CAP_IPC_LOCK, or a smaller umem.Options.FrameCount"
	}
	return r
}

// Hugepages reports the reserved 2 MiB pages a hugepage UMEM takes.
func (h *Host) Hugepages() Result {
	r := Result{Check: "hugepages"}
	b, err := h.Read("/proc/meminfo")
	if err != nil {
		r.Verdict, r.Evidence = Info, "cannot read /proc/meminfo: "+err.Error()
		return r
	}
	fields := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseUint(strings.Fields(v + " 0")[0], 10, 64)
		fields[k] = n
	}
	total, free, size := fields["HugePages_Total"], fields["HugePages_Free"], fields["Hugepagesize"]
	r.Evidence = fmt.Sprintf("%d of %d hugepages of %d KiB free", free, total, size)
	need := uint64(defaultUMEM) / 1024 / max(size, 1)
	if free*max(size, 1)*1024 >= defaultUMEM {
		r.Verdict = OK
		return r
	}
	r.Verdict = Warn
	r.Evidence += ": a UMEM on hugepages (umem.Options.HugePages) will fail or fall back to 4 KiB pages"
	r.Fix = fmt.Sprintf("echo %d > /proc/sys/vm/nr_hugepages (enough for one default socket)", total+need+1)
	return r
}

// CPUs reports the CPUs and the isolated ones, where pinned workers go.
func (h *Host) CPUs() Result {
	iso, _ := h.readTrim("/sys/devices/system/cpu/isolated")
	r := Result{Check: "cpus", Verdict: Info, Evidence: fmt.Sprintf("%d CPUs usable", runtime.NumCPU())}
	if iso != "" {
		r.Evidence += ", isolated: " + iso + " (give them to workers with -cpus)"
	} else {
		r.Evidence += ", none isolated"
	}
	return r
}
