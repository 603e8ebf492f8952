//go:build linux

package doctor

import (
	"io/fs"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	xnl "github.com/xdpkit/xdpkit/internal/netlink"
)

// fakeHost reads files from a map.
func fakeHost(files map[string]string, memlock uint64) *Host {
	return &Host{Read: func(p string) ([]byte, error) {
		if s, ok := files[p]; ok {
			return []byte(s), nil
		}
		return nil, fs.ErrNotExist
	}, Release: "6.18.0", MemlockLimit: memlock, MountsAt: "/proc/self/mounts"}
}

const rootCaps = "Name:\tx\nCapEff:\t000001ffffffffff\n"

func TestKernel(t *testing.T) {
	for rel, want := range map[string]Verdict{"6.18.44-fc": OK, "5.10.0": OK, "5.4.0-100-generic": Fail, "garbage": Warn} {
		if r := Kernel(rel); r.Verdict != want {
			t.Errorf("Kernel(%q) = %v (%s), want %v", rel, r.Verdict, r.Evidence, want)
		}
	}
	if r := Kernel("6.6.1"); !strings.Contains(r.Evidence, "multi-buffer") || !strings.Contains(r.Evidence, "lacks: TX metadata") {
		t.Errorf("6.6: %s", r.Evidence)
	}
}

func TestHostChecks(t *testing.T) {
	mounts := "sysfs /sys sysfs rw 0 0\nbpf /sys/fs/bpf bpf rw 0 0\n"
	meminfo := "MemTotal: 1 kB\nHugePages_Total:      16\nHugePages_Free:       16\nHugepagesize:       2048 kB\n"
	good := map[string]string{
		"/proc/sys/net/core/bpf_jit_enable": "1\n", "/proc/self/status": rootCaps, "/proc/self/mounts": mounts,
		"/proc/meminfo": meminfo, "/sys/kernel/btf/vmlinux": "x", "/proc/sys/kernel/unprivileged_bpf_disabled": "2\n",
	}
	for _, r := range fakeHost(good, 64*1024).Checks() {
		if r.Verdict == Fail || r.Verdict == Warn {
			t.Errorf("healthy host: %v", r)
		}
	}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range good {
			m[a] = b
		}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	noLock := "CapEff:\t000001ffffffbfff\n" // all but CAP_IPC_LOCK (14)
	for _, c := range []struct {
		name    string
		h       *Host
		check   func(h *Host) Result
		verdict Verdict
		fix     string
	}{
		{"jit off", fakeHost(with("/proc/sys/net/core/bpf_jit_enable", "0"), 0), (*Host).JIT, Warn, "bpf_jit_enable=1"},
		{"jit always on", fakeHost(with("/proc/sys/net/core/bpf_jit_enable", ""), 0), (*Host).JIT, OK, ""},
		{"no bpffs", fakeHost(with("/proc/self/mounts", "sysfs /sys sysfs rw 0 0\n"), 0), (*Host).BPFFS, Warn, "mount -t bpf"},
		{"no btf", fakeHost(with("/sys/kernel/btf/vmlinux", ""), 0), (*Host).BTF, Warn, ""},
		{"no hugepages", fakeHost(with("/proc/meminfo", "HugePages_Total: 0\nHugePages_Free: 0\nHugepagesize: 2048 kB\n"), 0), (*Host).Hugepages, Warn, "nr_hugepages"},
		{"low memlock", fakeHost(with("/proc/self/status", noLock), 64*1024), func(h *Host) Result { return h.Memlock(h.caps()) }, Fail, "ulimit -l"},
		{"low memlock, CAP_IPC_LOCK", fakeHost(good, 64*1024), func(h *Host) Result { return h.Memlock(h.caps()) }, OK, ""},
		{"no memlock limit", fakeHost(with("/proc/self/status", noLock), unix.RLIM_INFINITY), func(h *Host) Result { return h.Memlock(h.caps()) }, OK, ""},
		{"no caps", fakeHost(with("/proc/self/status", "CapEff:\t0000000000000000\n"), 0), func(h *Host) Result { return h.Capabilities(h.caps()) }, Fail, "setcap"},
		{"no caps, unprivileged bpf off", fakeHost(with("/proc/self/status", "CapEff:\t0000000000000000\n"), 0), func(h *Host) Result { return h.UnprivilegedBPF(h.caps()) }, Fail, "CAP_BPF"},
	} {
		r := c.check(c.h)
		if r.Verdict != c.verdict || !strings.Contains(r.Fix, c.fix) {
			t.Errorf("%s: %v, want %v with fix %q", c.name, r, c.verdict, c.fix)
		}
	}
}

func TestIfaceChecks(t *testing.T) {
	veth := func() *Iface {
		return &Iface{Link: xnl.Link{Index: 7, Name: "v0", MTU: 1500, NumRXQueues: 1}, Operstate: "up", Driver: "veth",
			Features: Features{XDP: xdpBasic | xdpRedirect | xdpRXSG}}
	}
	for _, r := range veth().Checks(0) {
		if r.Verdict == Fail || r.Verdict == Warn {
			t.Errorf("healthy veth: %v", r)
		}
	}
	for _, c := range []struct {
		name    string
		change  func(*Iface)
		check   func(*Iface) Result
		verdict Verdict
		fix     string
	}{
		{"down", func(i *Iface) { i.Operstate = "down" }, (*Iface).LinkState, Fail, "up"},
		{"veth MTU 3506", func(i *Iface) { i.Link.MTU = 3506 }, (*Iface).MTU, OK, ""},
		{"veth MTU 3507", func(i *Iface) { i.Link.MTU = 3507 }, (*Iface).MTU, Fail, "3506 or less"},
		{"macvlan", func(i *Iface) { i.Driver, i.Features.XDP = "macvlan", 0 }, (*Iface).XDP, Warn, "generic"},
		{"zero-copy", func(i *Iface) { i.Features.XDP |= xdpZeroCopy; i.Features.ZCMaxSegs = 1 }, (*Iface).ZeroCopy, OK, ""},
		{"foreign program", func(i *Iface) {
			i.Link.XDP = xnl.XDPInfo{Attached: 1, ProgID: 42, DrvProgID: 42}
			i.Program = "their_prog"
		}, (*Iface).Attached, Warn, "xdp off"},
		{"our program", func(i *Iface) {
			i.Link.XDP = xnl.XDPInfo{Attached: 1, ProgID: 42, DrvProgID: 42}
			i.Program = "xdpkit_redirect"
		}, (*Iface).Attached, OK, ""},
		{"queue 0 of 4", func(i *Iface) { i.Link.NumRXQueues = 4 }, func(i *Iface) Result { return i.Queues(0) }, Warn, "-queues all"},
		{"queue 4 of 4", func(i *Iface) { i.Link.NumRXQueues = 4 }, func(i *Iface) Result { return i.Queues(4) }, Fail, "-q 3"},
	} {
		i := veth()
		c.change(i)
		r := c.check(i)
		if r.Verdict != c.verdict || !strings.Contains(r.Fix, c.fix) {
			t.Errorf("%s: %v, want %v with fix %q", c.name, r, c.verdict, c.fix)
		}
	}
}
