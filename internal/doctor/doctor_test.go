//go:build linux

package doctor

import (
	"io/fs"
	"slices"
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
		return &Iface{Link: xnl.Link{Index: 7, Name: "v0", MTU: 1500, NumRXQueues: 1, PeerIndex: 8, PeerNetNSID: 1}, Operstate: "up", Driver: "veth",
			Features: Features{XDP: xdpBasic | xdpRedirect | xdpRXSG}, Release: "6.18.0",
			Peer: &xnl.Link{Index: 8, Name: "v1", MTU: 1500, PeerIndex: 7}, PeerNS: "netns id 1",
			Queues: []Queue{{ID: 0}, {ID: 0, TX: true}}, Holders: map[int][]string{},
			NAPIs: []NAPI{{ID: 9, IRQ: -1}}}
	}
	four := func(bound ...int) func(*Iface) {
		return func(i *Iface) {
			i.Link.NumRXQueues = 4
			i.Queues = nil
			for q := range 4 {
				i.Queues = append(i.Queues, Queue{ID: q, XSK: slices.Contains(bound, q)}, Queue{ID: q, TX: true})
			}
		}
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
		{"veth peer MTU 3506", func(i *Iface) { i.Peer.MTU = 3506 }, (*Iface).MTU, OK, ""},
		{"veth peer MTU 3507", func(i *Iface) { i.Peer.MTU = 3507 }, (*Iface).MTU, Fail, "v1 to 3506 or less"},
		{"veth own MTU 9000, peer 1500", func(i *Iface) { i.Link.MTU = 9000 }, (*Iface).MTU, OK, ""},
		{"veth MTU 3507, peer unknown", func(i *Iface) { i.Link.MTU, i.Peer = 3507, nil }, (*Iface).MTU, Warn, "3506 or less"},
		{"veth peer without XDP", func(i *Iface) {}, (*Iface).VethPeer, Info, "ethtool -K v1 gro on"},
		{"veth peer with XDP", func(i *Iface) { i.Peer.XDP = xnl.XDPInfo{Attached: 1, ProgID: 3} }, (*Iface).VethPeer, OK, ""},
		{"napi not deferred", func(i *Iface) {}, (*Iface).NAPI, Info, "napi_defer_hard_irqs 2"},
		{"napi deferred", func(i *Iface) { i.NAPIs[0].DeferHardIRQs, i.NAPIs[0].GROFlushTimeout = 2, 200000 }, (*Iface).NAPI, Info, ""},
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
		{"queue 0 of 4", four(), func(i *Iface) Result { return i.QueueCheck(0) }, Warn, "-queues all"},
		{"queue 4 of 4", four(), func(i *Iface) Result { return i.QueueCheck(4) }, Fail, "-q 3"},
		{"socket on 0 of 4", four(0), func(i *Iface) Result { return i.QueueCheck(-1) }, Warn, "ethtool -N"},
		{"sockets on 4 of 4", four(0, 1, 2, 3), func(i *Iface) Result { return i.QueueCheck(-1) }, OK, ""},
		{"announced on 0 of 4, old kernel", func(i *Iface) { four()(i); i.Release = "6.6.0"; i.Holders[0] = []string{"pid 9 (x)"} },
			func(i *Iface) Result { return i.QueueCheck(-1) }, Warn, "-queues all"},
		{"queue 1 free", four(0), func(i *Iface) Result { return i.Holder(1) }, OK, ""},
		{"queue 0 held, owner unknown", four(0), func(i *Iface) Result { return i.Holder(0) }, Warn, "EBUSY"},
		{"queue 0 held by announced", func(i *Iface) { four(0)(i); i.Holders[0] = []string{"pid 9 (xdp-drop)"} },
			func(i *Iface) Result { return i.Holder(0) }, Warn, "shares that socket's UMEM"},
		{"queue 0, old kernel", func(i *Iface) { four()(i); i.Release = "6.6.0" }, func(i *Iface) Result { return i.Holder(0) }, Info, ""},
	} {
		i := veth()
		c.change(i)
		r := c.check(i)
		if r.Verdict != c.verdict || !strings.Contains(r.Fix, c.fix) {
			t.Errorf("%s: %v, want %v with fix %q", c.name, r, c.verdict, c.fix)
		}
	}
}
