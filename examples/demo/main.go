//go:build linux

// Command demo runs xdpkit end to end on any Linux box, no NIC needed: it
// builds a network namespace and a veth pair, opens an AF_XDP socket on the
// host end, sends UDP datagrams from a kernel UDP socket inside the
// namespace, prints what the socket saw, and removes everything again.
//
// It shows the socket on its own, without package pipeline: afxdp.Open
// attaching a redirect program of the socket's own (Config.Redirect), and
// the receive loop Wait, Receive, Frame, Release. The other examples attach
// the program themselves and run a pipeline.
//
// Needs root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF) and Linux 5.10+, and the
// ip command (iproute2).
//
//	sudo go run ./examples/demo
//	sudo go run ./examples/demo -n 100000 -mode generic
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/redirect"
)

func main() {
	count := flag.Int("n", 1000, "UDP datagrams to send")
	var mode redirect.Mode // flag.TextVar parses it with Mode.UnmarshalText
	flag.TextVar(&mode, "mode", redirect.ModeAuto, "XDP attach `mode`: auto, driver or generic")
	flag.Parse()
	if err := run(*count, mode); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(count int, mode redirect.Mode) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root: run it with sudo (it creates a network namespace and attaches an XDP program)")
	}

	topo, err := setUp()
	defer topo.tearDown()
	if err != nil {
		return err
	}
	// Remove the topology on Ctrl-C too.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() { <-sig; topo.tearDown(); os.Exit(130) }()

	sock, err := afxdp.Open(topo.host, 0, &afxdp.Config{Redirect: &redirect.Options{Mode: mode}})
	if err != nil {
		return err
	}
	defer sock.Close()
	fmt.Printf("AF_XDP socket on %s queue 0: XDP program in %s mode, zero-copy=%v\n",
		topo.host, sock.Program().Mode(), sock.ZeroCopy())

	sendErr := make(chan error, 1)
	go func() { sendErr <- topo.sendUDP(count) }()

	descs := make([]afxdp.Desc, 64)
	received, shown := 0, 0
	var bytes int
	start := time.Now()
	for received < count {
		if err := sock.Wait(2 * time.Second); errors.Is(err, afxdp.ErrTimeout) {
			break // nothing for 2 s: the sender is done
		} else if err != nil {
			return err
		}
		n, err := sock.Receive(descs)
		if err != nil {
			return err
		}
		for _, d := range descs[:n] {
			frame := sock.Frame(d)
			src, dst, payload, ok := parseUDP(frame)
			if !ok || !strings.HasPrefix(string(payload), "hello xdpkit") {
				continue
			}
			received++
			bytes += len(frame)
			if shown < 5 {
				fmt.Printf("  %d bytes  %s -> %s  %q\n", len(frame), src, dst, payload)
				shown++
			}
		}
		if err := sock.Release(descs[:n]); err != nil {
			return err
		}
	}
	elapsed := time.Since(start)
	if err := <-sendErr; err != nil {
		return err
	}
	st, err := sock.Stats()
	if err != nil {
		return err
	}
	fmt.Printf("received %d of %d UDP datagrams (%d bytes) through AF_XDP in %v\n", received, count, bytes, elapsed.Round(time.Millisecond))
	fmt.Printf("socket stats: rx_packets=%d waits=%d rx_ring_full=%d rx_fill_ring_empty=%d rx_dropped=%d\n",
		st.RXPackets, st.Waits, st.RXRingFull, st.RXFillRingEmptyDescs, st.RXDropped)
	fmt.Printf("UMEM frames: %+v\n", sock.UMEM().Counts())
	if received != count {
		return fmt.Errorf("%d datagrams did not arrive", count-received)
	}
	return nil
}

// parseUDP reads an Ethernet/IPv4/UDP frame.
func parseUDP(f []byte) (src, dst string, payload []byte, ok bool) {
	if len(f) < 42 || binary.BigEndian.Uint16(f[12:]) != 0x0800 || f[23] != 17 {
		return "", "", nil, false
	}
	ihl := int(f[14]&0x0f) * 4
	udp := 14 + ihl
	if len(f) < udp+8 {
		return "", "", nil, false
	}
	src = fmt.Sprintf("%s:%d", net.IP(f[26:30]), binary.BigEndian.Uint16(f[udp:]))
	dst = fmt.Sprintf("%s:%d", net.IP(f[30:34]), binary.BigEndian.Uint16(f[udp+2:]))
	return src, dst, f[udp+8:], true
}

type topology struct {
	ns, host, peer string
	done           bool
}

func setUp() (*topology, error) {
	id := os.Getpid() % 100000
	t := &topology{ns: fmt.Sprintf("xdpkit-demo-%d", id), host: fmt.Sprintf("xkdemo%dh", id), peer: fmt.Sprintf("xkdemo%dp", id)}
	steps := [][]string{
		{"netns", "add", t.ns},
		{"link", "add", t.host, "type", "veth", "peer", "name", t.peer, "netns", t.ns},
		{"addr", "add", "10.77.250.1/24", "dev", t.host},
		{"-n", t.ns, "addr", "add", "10.77.250.2/24", "dev", t.peer},
		{"link", "set", "dev", t.host, "up"},
		{"-n", t.ns, "link", "set", "dev", t.peer, "up"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return t, err
		}
	}
	host, err := net.InterfaceByName(t.host)
	if err != nil {
		return t, err
	}
	// A static neighbour entry: the peer sends at once, without ARP.
	return t, ip("-n", t.ns, "neigh", "replace", "10.77.250.1", "lladdr", host.HardwareAddr.String(), "dev", t.peer, "nud", "permanent")
}

func (t *topology) tearDown() {
	if t == nil || t.done {
		return
	}
	t.done = true
	_ = ip("link", "del", t.host)
	_ = ip("netns", "del", t.ns)
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// sendUDP sends count datagrams from a kernel UDP socket made inside the
// namespace (the socket stays there after the thread switches back).
func (t *topology) sendUDP(count int) error {
	conn, err := inNetNS(t.ns, func() (net.Conn, error) {
		return net.Dial("udp4", "10.77.250.1:9000")
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	for i := range count {
		if _, err := fmt.Fprintf(conn, "hello xdpkit #%d", i); err != nil {
			return err
		}
		if i%64 == 63 {
			time.Sleep(100 * time.Microsecond) // veth queues 256 frames: do not overrun it
		}
	}
	return nil
}

func inNetNS[T any](name string, fn func() (T, error)) (T, error) {
	var zero T
	type result struct {
		v   T
		err error
	}
	c := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked if the switch back fails: the thread then dies with us
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			c <- result{zero, err}
			return
		}
		defer orig.Close()
		ns, err := os.Open("/run/netns/" + name)
		if err != nil {
			c <- result{zero, err}
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			c <- result{zero, fmt.Errorf("setns %s: %w", name, err)}
			return
		}
		v, ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			c <- result{v, fmt.Errorf("setns back: %w", err)}
			return
		}
		runtime.UnlockOSThread()
		c <- result{v, ferr}
	}()
	r := <-c
	return r.v, r.err
}
