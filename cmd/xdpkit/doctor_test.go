//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/internal/doctor"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/metrics"
	"github.com/xdpkit/xdpkit/redirect"
)

func TestMain(m *testing.M) {
	testutils.LeakCheckMain(m, func() {
		if binDir != "" {
			os.RemoveAll(binDir)
		}
	})
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds xdpkit and xdp-drop (the kernel's witness) once.
func binaries(t *testing.T) (xdpkit, xdpDrop string) {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "xdpkit-doctor-"); buildErr != nil {
			return
		}
		for _, pkg := range []string{".", "../../examples/xdp-drop"} {
			if out, err := exec.Command("go", "build", "-o", binDir+"/", pkg).CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "xdpkit"), filepath.Join(binDir, "xdp-drop")
}

// doctorRun runs `xdpkit doctor args -json` in-process and returns the
// results by check, and the exit code.
func doctorRun(t *testing.T, args ...string) (map[string]doctor.Result, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"doctor", "-json"}, args...), &out, &errb)
	return decode(t, out.Bytes(), errb.String()), code
}

func decode(t *testing.T, b []byte, stderr string) map[string]doctor.Result {
	t.Helper()
	var rs []doctor.Result
	if err := json.Unmarshal(b, &rs); err != nil {
		t.Fatalf("doctor output is not JSON: %v\n%s\n%s", err, b, stderr)
	}
	m := map[string]doctor.Result{}
	for _, r := range rs {
		m[r.Check] = r
	}
	return m
}

func want(t *testing.T, rs map[string]doctor.Result, check string, v doctor.Verdict, fix string) {
	t.Helper()
	r, ok := rs[check]
	if !ok {
		t.Errorf("no %s check", check)
		return
	}
	if r.Verdict != v || !strings.Contains(r.Fix, fix) {
		t.Errorf("%s: %s (%s; fix %q), want %s with a fix saying %q", check, r.Verdict, r.Evidence, r.Fix, v, fix)
	}
}

func TestDoctorVeth(t *testing.T) {
	testutils.RequirePrivileged(t)
	v := testutils.NewVeth(t, testutils.VethOptions{})
	rs, code := doctorRun(t, "-i", v.Host, "-q", "0")
	want(t, rs, "link", doctor.OK, "")
	want(t, rs, "native-xdp", doctor.OK, "")
	want(t, rs, "zero-copy", doctor.Info, "") // veth has no zero-copy
	want(t, rs, "xdp-program", doctor.OK, "")
	want(t, rs, "queues", doctor.OK, "")
	want(t, rs, "mtu", doctor.OK, "")
	if code != 0 {
		t.Errorf("exit %d on a healthy veth: %v", code, rs)
	}
	if rs, code := doctorRun(t, "-i", "xdpkit-no-such0"); code != 1 || rs["link"].Verdict != doctor.Fail {
		t.Errorf("a missing interface: exit %d, %v", code, rs["link"])
	}
}

// Each broken set-up: doctor's verdict, and what the kernel does when
// xdpkit tries anyway.
func TestDoctorMTUTooBig(t *testing.T) {
	testutils.RequirePrivileged(t)
	v := testutils.NewVeth(t, testutils.VethOptions{MTU: 9000})
	rs, code := doctorRun(t, "-i", v.Host)
	want(t, rs, "mtu", doctor.Fail, v.Peer+" to 3506 or less")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	attach := func() error {
		p, err := redirect.Attach(v.HostIndex, &redirect.Options{Mode: redirect.ModeDriver})
		if err == nil {
			p.Close()
		}
		return err
	}
	if attach() == nil {
		t.Error("the kernel attached a single-buffer program in driver mode at MTU 9000; doctor said it would not")
	}
	// veth checks its peer's MTU, not its own: doctor reads the peer in
	// its namespace. This end stays at 9000; the peer goes to the limit
	// and one past it.
	for _, mtu := range []int{3507, 3506} {
		verdict := map[int]doctor.Verdict{3507: doctor.Fail, 3506: doctor.OK}[mtu]
		testutils.MustRun(t, "ip", "-n", v.NS, "link", "set", "dev", v.Peer, "mtu", fmt.Sprint(mtu))
		rs, _ = doctorRun(t, "-i", v.Host)
		want(t, rs, "mtu", verdict, "")
		if err := attach(); (err == nil) != (verdict == doctor.OK) {
			t.Errorf("peer MTU %d: doctor says %s (%s), the kernel's attach: %v", mtu, verdict, rs["mtu"].Evidence, err)
		}
	}
}

// TestDoctorVethPeer: the peer, in its namespace, is named with its MTU;
// without an XDP program the check says what that means for XDP_TX.
func TestDoctorVethPeer(t *testing.T) {
	testutils.RequirePrivileged(t)
	v := testutils.NewVeth(t, testutils.VethOptions{})
	rs, _ := doctorRun(t, "-i", v.Host)
	want(t, rs, "veth-peer", doctor.Info, "ethtool -K "+v.Peer+" gro on")
	if e := rs["veth-peer"].Evidence; !strings.Contains(e, v.Peer) || !strings.Contains(e, "netns id") || !strings.Contains(e, "MTU 1500") {
		t.Errorf("veth-peer evidence %q: want the peer's name, namespace and MTU", e)
	}
	want(t, rs, "napi", doctor.Info, "")
}

func TestDoctorForeignProgram(t *testing.T) {
	testutils.RequirePrivileged(t)
	v := testutils.NewVeth(t, testutils.VethOptions{})
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "someone_elses", Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()}})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: v.HostIndex, Flags: link.XDPDriverMode})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	info, _ := prog.Info()
	id, _ := info.ID()
	rs, _ := doctorRun(t, "-i", v.Host)
	want(t, rs, "xdp-program", doctor.Warn, "xdp off")
	if r := rs["xdp-program"]; !strings.Contains(r.Evidence, "someone_elses") || !strings.Contains(r.Evidence, fmt.Sprint(id)) {
		t.Errorf("evidence %q names neither the program nor its id %d", r.Evidence, id)
	}
	if p, err := redirect.Attach(v.HostIndex, &redirect.Options{Mode: redirect.ModeDriver}); err == nil {
		p.Close()
		t.Error("xdpkit attached over someone else's program; doctor said it would not")
	}
}

func TestDoctorMacvlan(t *testing.T) {
	testutils.RequirePrivileged(t)
	v := testutils.NewVeth(t, testutils.VethOptions{})
	mv := fmt.Sprintf("xkmv%d", os.Getpid()%100000)
	testutils.MustRun(t, "ip", "link", "add", mv, "link", v.Host, "type", "macvlan", "mode", "bridge")
	t.Cleanup(func() { _, _ = testutils.Run("ip", "link", "del", mv) })
	testutils.MustRun(t, "ip", "link", "set", "dev", mv, "up")
	rs, _ := doctorRun(t, "-i", mv)
	want(t, rs, "native-xdp", doctor.Warn, "generic")
	idx, err := unixIfindex(mv)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := redirect.Attach(idx, &redirect.Options{Mode: redirect.ModeDriver}); err == nil {
		p.Close()
		t.Error("the kernel attached in driver mode on a macvlan; doctor said it has no native XDP")
	}
}

// TestDoctorQueues: the queue count against -q and against the queues
// sockets are bound to, and who holds a queue: a socket of this process
// (which does not announce itself), then xdp-drop's (which does).
func TestDoctorQueues(t *testing.T) {
	testutils.RequirePrivileged(t)
	_, xdpDrop := binaries(t)
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 4})
	rs, _ := doctorRun(t, "-i", v.Host, "-q", "0")
	want(t, rs, "queues", doctor.Warn, "-queues all")
	rs, code := doctorRun(t, "-i", v.Host, "-q", "4")
	want(t, rs, "queues", doctor.Fail, "-q 3")
	if code != 1 {
		t.Errorf("queue 4 of 4: exit %d, want 1", code)
	}
	// This kernel (6.18) marks bound queues; an older one would make
	// these verdicts Info, which the unit tests cover.
	own, err := afxdp.Open(v.Host, 2, &afxdp.Config{Steering: afxdp.NoSteering})
	if err != nil {
		t.Fatal(err)
	}
	rs, _ = doctorRun(t, "-i", v.Host, "-q", "2")
	want(t, rs, "queues", doctor.Warn, "ethtool -N")
	if e := rs["queues"].Evidence; !strings.Contains(e, "only queue 2 of 4") {
		t.Errorf("queues: %q, want it to name queue 2 as the only bound one", e)
	}
	want(t, rs, "queue-holder", doctor.Warn, "EBUSY")
	// The kernel agrees: a second socket on that queue is refused.
	if s, err := afxdp.Open(v.Host, 2, &afxdp.Config{Steering: afxdp.NoSteering, BindRetryTimeout: 1}); err == nil {
		s.Close()
		t.Error("a second socket bound queue 2; doctor said it is held")
	} else if !errors.Is(err, unix.EBUSY) {
		t.Logf("second socket on queue 2: %v", err)
	}
	rs, _ = doctorRun(t, "-i", v.Host, "-q", "1")
	want(t, rs, "queue-holder", doctor.OK, "")
	own.Close()

	c := startTool(t, xdpDrop, "-i", v.Host, "-q", "3")
	rs, _ = doctorRun(t, "-i", v.Host, "-q", "3")
	want(t, rs, "queue-holder", doctor.Warn, "shares that socket's UMEM")
	if e := rs["queue-holder"].Evidence; !strings.Contains(e, fmt.Sprintf("pid %d (xdp-drop)", c.pid)) {
		t.Errorf("queue-holder: %q, want it to name pid %d (xdp-drop)", e, c.pid)
	}
	want(t, rs, "queues", doctor.Warn, "ethtool -N")

	// What the kernel does: datagrams of 32 flows from the peer's stack
	// spread over the 4 queues, and xdp-drop on queue 3 gets only its share.
	const flows, each = 32, 4
	v.InPeer(t, func() error {
		for f := range flows {
			// Unconnected: the host's port-unreachable answers to the
			// datagrams its stack gets must not fail the next write.
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: v.PeerIP.AsSlice()})
			if err != nil {
				return err
			}
			for range each {
				if _, err := c.WriteTo([]byte("queues"), &net.UDPAddr{IP: v.HostIP.AsSlice(), Port: 7000 + f}); err != nil {
					c.Close()
					return err
				}
			}
			c.Close()
		}
		return nil
	})
	time.Sleep(500 * time.Millisecond) // let xdp-drop publish its counters
	got := -1.0
	procs, _, _ := metrics.Peers(metrics.RunDir)
	for _, p := range procs {
		for _, se := range p.Series {
			if p.PID == c.pid && se.Name == "xdpkit_rx_packets_total" {
				got = se.Value
			}
		}
	}
	if got < 0 || got >= flows*each {
		t.Errorf("xdp-drop on queue 3 of 4 received %.0f of %d datagrams of %d flows; doctor warned that it sees only its queue's share", got, flows*each, flows)
	}
	t.Logf("queue 3 of 4 received %.0f of %d datagrams", got, flows*each)
	want(t, rs, "napi", doctor.Info, "") // an XDP program gives the veth NAPI
	if e := rs["napi"].Evidence; !strings.Contains(e, "napi ") {
		t.Errorf("napi: %q, want the NAPI instances listed once xdp-drop's program is attached", e)
	}
}

// bpffs not mounted: a private mount namespace without it.
func TestDoctorNoBPFFS(t *testing.T) {
	testutils.RequirePrivileged(t)
	unshare := testutils.NeedCommand(t, "unshare", "apt-get install util-linux")
	xdpkit, _ := binaries(t)
	out, err := exec.Command(unshare, "-m", "--propagation", "private", "sh", "-c", "umount /sys/fs/bpf 2>/dev/null; exec "+xdpkit+" doctor -json").Output()
	if err != nil && !errors.As(err, new(*exec.ExitError)) {
		t.Fatal(err)
	}
	want(t, decode(t, out, ""), "bpffs", doctor.Warn, "mount -t bpf")
}

// A low RLIMIT_MEMLOCK without CAP_IPC_LOCK: doctor fails it, and a
// socket cannot register its UMEM.
func TestDoctorLowMemlock(t *testing.T) {
	testutils.RequirePrivileged(t)
	setpriv := testutils.NeedCommand(t, "setpriv", "apt-get install util-linux")
	prlimit := testutils.NeedCommand(t, "prlimit", "apt-get install util-linux")
	xdpkit, xdpDrop := binaries(t)
	v := testutils.NewVeth(t, testutils.VethOptions{})
	wrap := func(args ...string) *exec.Cmd {
		return exec.Command(setpriv, append([]string{"--bounding-set", "-ipc_lock", "--inh-caps", "-ipc_lock", "--", prlimit, "--memlock=65536:65536"}, args...)...)
	}
	out, _ := wrap(xdpkit, "doctor", "-json").Output()
	want(t, decode(t, out, ""), "memlock", doctor.Fail, "ulimit -l")
	drop := wrap(xdpDrop, "-i", v.Host, "-duration", "1s")
	msg, err := drop.CombinedOutput()
	if err == nil || !strings.Contains(strings.ToLower(string(msg)), "memlock") {
		t.Errorf("xdp-drop under the same limit: %v: %s; want a failure that names RLIMIT_MEMLOCK", err, msg)
	}
}

// Hugepages: doctor's verdict agrees with whether the kernel maps a
// default UMEM's worth of them.
func TestDoctorHugepages(t *testing.T) {
	testutils.RequirePrivileged(t)
	rs, _ := doctorRun(t)
	mem, err := unix.Mmap(-1, 0, 16<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_HUGETLB|unix.MAP_POPULATE)
	if err == nil {
		unix.Munmap(mem)
		want(t, rs, "hugepages", doctor.OK, "")
	} else {
		want(t, rs, "hugepages", doctor.Warn, "nr_hugepages")
	}
}

func TestUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "usage") {
		t.Errorf("no command: exit %d, %q", code, errb.String())
	}
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Errorf("unknown command: exit %d", code)
	}
	if code := run([]string{"doctor", "-q", "1"}, &out, &errb); code != 2 {
		t.Errorf("-q without -i: exit %d, want 2", code)
	}
}

func unixIfindex(name string) (int, error) {
	b, err := os.ReadFile("/sys/class/net/" + name + "/ifindex")
	if err != nil {
		return 0, err
	}
	var i int
	_, err = fmt.Sscan(string(b), &i)
	return i, err
}
