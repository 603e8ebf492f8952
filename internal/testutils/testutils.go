//go:build linux

// Package testutils holds the fixtures xdpkit's privileged tests share: a
// privilege gate that fails instead of skipping under CI, kernel version
// gates ([SkipOnOldKernel], and [SkipIfNotSupported], which fails instead
// of skipping when the kernel is new enough to have the feature), and a
// network namespace with a veth pair that is removed in t.Cleanup.
//
// The DUT side of every pair stays in the test process's own namespace, so
// AF_XDP sockets and XDP links opened by the test bind to it directly; the
// peer side lives in a fresh namespace and is driven through [Veth.InPeer].
package testutils

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// RequirePrivileged skips tb when the process is not root, unless the CI
// environment variable is set: then it fails, so CI can never silently skip
// the kernel tests.
func RequirePrivileged(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() == 0 {
		return
	}
	const why = "needs root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF) for AF_XDP, XDP and network namespaces; run with sudo"
	if os.Getenv("CI") != "" {
		tb.Fatal(why + " (CI is set, so this fails instead of skipping)")
	}
	tb.Skip(why)
}

// Run runs a command with a 30 s bound and returns its combined output.
func Run(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
		}
		return out.String(), nil
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return out.String(), fmt.Errorf("%s %s: timed out after 30s", name, strings.Join(args, " "))
	}
}

// MustRun is Run that fails tb on error.
func MustRun(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	out, err := Run(name, args...)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// VethOptions shapes a test pair. The zero value is one queue, MTU 1500.
type VethOptions struct {
	Queues int // RX and TX queues on both ends; 0 means 1.
	MTU    int // 0 means the kernel default (1500).
	// IPv6 keeps IPv6 on the pair. Off by default, so the kernel's own
	// router solicitations and MLD reports do not mix with test traffic.
	IPv6 bool
}

// Veth is a veth pair: Host in the test process's namespace, Peer in NS.
type Veth struct {
	NS        string // network namespace holding Peer
	Host      string // interface name in the test's namespace (the DUT)
	Peer      string // interface name inside NS
	HostIndex int
	PeerIndex int // ifindex inside NS
	HostMAC   net.HardwareAddr
	PeerMAC   net.HardwareAddr
	HostIP    netip.Addr // 10.77.N.1
	PeerIP    netip.Addr // 10.77.N.2
}

var pairSeq atomic.Uint32

// NewVeth creates a netns and a veth pair with unique names and addresses,
// and registers their removal with tb.Cleanup (also when the test fails).
// The peer has a static neighbour entry for HostIP, so it sends without ARP.
func NewVeth(tb testing.TB, opts VethOptions) *Veth {
	tb.Helper()
	RequirePrivileged(tb)
	NeedCommand(tb, "ip", "apt-get install iproute2")
	n := pairSeq.Add(1)
	id := fmt.Sprintf("%d%c", os.Getpid()%1000000, 'a'+rune(n%26))
	if n >= 26 {
		id = fmt.Sprintf("%d%d", os.Getpid()%100000, n%100)
	}
	v := &Veth{
		NS:     "xdpkit-" + sanitize(tb.Name()) + "-" + id,
		Host:   "xk" + id + "h",
		Peer:   "xk" + id + "p",
		HostIP: netip.AddrFrom4([4]byte{10, 77, byte(n % 250), 1}),
		PeerIP: netip.AddrFrom4([4]byte{10, 77, byte(n % 250), 2}),
	}
	if len(v.NS) > 60 {
		v.NS = v.NS[:40] + "-" + id
	}
	MustRun(tb, "ip", "netns", "add", v.NS)
	tb.Cleanup(func() {
		_, _ = Run("ip", "link", "del", v.Host)
		if _, err := Run("ip", "netns", "del", v.NS); err != nil {
			tb.Errorf("cleanup: %v", err)
		}
	})
	q := opts.Queues
	if q <= 0 {
		q = 1
	}
	qs := fmt.Sprint(q)
	MustRun(tb, "ip", "link", "add", v.Host, "numtxqueues", qs, "numrxqueues", qs,
		"type", "veth", "peer", "name", v.Peer, "netns", v.NS, "numtxqueues", qs, "numrxqueues", qs)
	if opts.MTU > 0 {
		mtu := fmt.Sprint(opts.MTU)
		MustRun(tb, "ip", "link", "set", "dev", v.Host, "mtu", mtu)
		MustRun(tb, "ip", "-n", v.NS, "link", "set", "dev", v.Peer, "mtu", mtu)
	}
	if !opts.IPv6 {
		if err := disableIPv6(v.Host); err != nil {
			tb.Fatal(err)
		}
		v.InPeer(tb, func() error { return disableIPv6(v.Peer) })
	}
	MustRun(tb, "ip", "addr", "add", v.HostIP.String()+"/24", "dev", v.Host)
	MustRun(tb, "ip", "-n", v.NS, "addr", "add", v.PeerIP.String()+"/24", "dev", v.Peer)
	MustRun(tb, "ip", "link", "set", "dev", v.Host, "up")
	MustRun(tb, "ip", "-n", v.NS, "link", "set", "dev", v.Peer, "up")
	MustRun(tb, "ip", "-n", v.NS, "link", "set", "dev", "lo", "up")

	host, err := net.InterfaceByName(v.Host)
	if err != nil {
		tb.Fatal(err)
	}
	v.HostIndex, v.HostMAC = host.Index, host.HardwareAddr
	v.InPeer(tb, func() error {
		peer, err := net.InterfaceByName(v.Peer)
		if err != nil {
			return err
		}
		v.PeerIndex, v.PeerMAC = peer.Index, peer.HardwareAddr
		return nil
	})
	MustRun(tb, "ip", "-n", v.NS, "neigh", "replace", v.HostIP.String(), "lladdr", v.HostMAC.String(), "dev", v.Peer, "nud", "permanent")
	MustRun(tb, "ip", "neigh", "replace", v.PeerIP.String(), "lladdr", v.PeerMAC.String(), "dev", v.Host, "nud", "permanent")
	return v
}

// disableIPv6 is sysctl -w net.ipv6.conf.IFNAME.disable_ipv6=1 in the
// calling thread's network namespace (/proc/sys/net follows the thread).
func disableIPv6(ifname string) error {
	if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+ifname+"/disable_ipv6", []byte("1\n"), 0); err != nil {
		return fmt.Errorf("disable IPv6 on %s: %w", ifname, err)
	}
	return nil
}

// InPeer runs fn on an OS thread that has entered the peer's namespace.
// Sockets fn creates stay in that namespace after it returns, so they can be
// used from any goroutine.
func (v *Veth) InPeer(tb testing.TB, fn func() error) {
	tb.Helper()
	if err := InNetNS(v.NS, fn); err != nil {
		tb.Fatal(err)
	}
}

// InNetNS runs fn on a locked OS thread inside the named namespace. If the
// thread cannot be switched back it is left locked, so the Go runtime
// discards it instead of reusing it in the wrong namespace.
func InNetNS(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + name)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns back: %w", err) // thread stays locked and dies with the goroutine
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '-'
		}
	}
	if len(b) > 30 {
		b = b[:30]
	}
	return string(b)
}
