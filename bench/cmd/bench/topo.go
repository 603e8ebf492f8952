//go:build linux

package main

// The topology, like the anchors' topo.sh but with names of its own so it
// cannot collide with a concurrent run.sh:
//
//	root netns                                   netns xbgen
//	xbv0 02:bb:00:00:00:00 10.235.0.1/24 <-veth-> xbv1 02:bb:00:00:00:01 10.235.0.2/24
//	(DUT, CPU 1)                                  (generator + probe + sink, CPU 0)
//	xbv2 02:bb:00:00:00:02 10.235.1.1/24 <-veth-> xbv3 02:bb:00:00:00:03 10.235.1.2/24
//	(l2fwd output)                                (sink)
//
// One rx and one tx queue per veth, GRO off, IPv6 off, static neighbours.
// The sinks on xbv1 and xbv3 are XDP programs (BPF links held by this
// process, so they go away with it) that drop everything but latency
// probes; veth counts what they see in rx_queue_0_xdp_packets.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/bench/internal/netns"
	"github.com/xdpkit/xdpkit/bench/internal/progs"
	"github.com/xdpkit/xdpkit/internal/sys"
)

const (
	nsName    = "xbgen"
	dutIf     = "xbv0"
	genIf     = "xbv1"
	outIf     = "xbv2"
	sinkIf    = "xbv3"
	dutMAC    = "02:bb:00:00:00:00"
	genMAC    = "02:bb:00:00:00:01"
	outMAC    = "02:bb:00:00:00:02"
	sinkMAC   = "02:bb:00:00:00:03"
	dutIP     = "10.235.0.1"
	genIP     = "10.235.0.2"
	outIP     = "10.235.1.1"
	sinkIP    = "10.235.1.2"
	probePort = 7777
	loadPort  = 9 // the load's UDP ports (source port with -flows: progs.FlowBasePort + i)
)

type topo struct {
	up      bool
	sinks   []link.Link
	sinkPrg *ebpf.Program
	rootFD  int // AF_INET socket in the root netns, for ethtool
	nsFD    int // ... in the generator netns
	stats   map[string]*devStats
}

func sh(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func quiet(args ...string) { _ = exec.Command(args[0], args[1:]...).Run() }

// topoDown removes everything topoUp may have made; harmless when nothing is there.
func topoDown() {
	quiet("ip", "link", "set", "dev", dutIf, "xdp", "off")
	quiet("ip", "link", "del", dutIf)
	quiet("ip", "link", "del", outIf)
	quiet("ip", "netns", "exec", nsName, "ip", "link", "del", genIf)
	quiet("ip", "netns", "exec", nsName, "ip", "link", "del", sinkIf)
	quiet("ip", "netns", "del", nsName)
}

func (t *topo) upLinks() error {
	topoDown()
	t.up = true
	steps := [][]string{
		{"ip", "netns", "add", nsName},
		{"ip", "link", "add", dutIf, "numtxqueues", "1", "numrxqueues", "1", "type", "veth", "peer", "name", genIf, "numtxqueues", "1", "numrxqueues", "1"},
		{"ip", "link", "add", outIf, "numtxqueues", "1", "numrxqueues", "1", "type", "veth", "peer", "name", sinkIf, "numtxqueues", "1", "numrxqueues", "1"},
		{"ip", "link", "set", genIf, "netns", nsName},
		{"ip", "link", "set", sinkIf, "netns", nsName},
		{"ip", "link", "set", "dev", dutIf, "address", dutMAC, "mtu", "1500"},
		{"ip", "link", "set", "dev", outIf, "address", outMAC, "mtu", "1500"},
		{"ip", "-n", nsName, "link", "set", "dev", genIf, "address", genMAC, "mtu", "1500"},
		{"ip", "-n", nsName, "link", "set", "dev", sinkIf, "address", sinkMAC, "mtu", "1500"},
	}
	for _, s := range steps {
		if err := sh(s...); err != nil {
			return err
		}
	}
	for _, s := range [][2]string{{"", dutIf}, {"", outIf}, {nsName, genIf}, {nsName, sinkIf}} {
		path := "/proc/sys/net/ipv6/conf/" + s[1] + "/disable_ipv6"
		if s[0] == "" {
			_ = os.WriteFile(path, []byte("1"), 0)
		} else {
			quiet("ip", "netns", "exec", nsName, "sh", "-c", "echo 1 > "+path)
		}
	}
	steps = [][]string{
		{"ip", "addr", "add", dutIP + "/24", "dev", dutIf},
		{"ip", "addr", "add", outIP + "/24", "dev", outIf},
		{"ip", "-n", nsName, "addr", "add", genIP + "/24", "dev", genIf},
		{"ip", "-n", nsName, "addr", "add", sinkIP + "/24", "dev", sinkIf},
		{"ip", "neigh", "replace", genIP, "lladdr", genMAC, "dev", dutIf, "nud", "permanent"},
		{"ip", "neigh", "replace", sinkIP, "lladdr", sinkMAC, "dev", outIf, "nud", "permanent"},
		{"ip", "-n", nsName, "neigh", "replace", dutIP, "lladdr", dutMAC, "dev", genIf, "nud", "permanent"},
		{"ip", "-n", nsName, "neigh", "replace", outIP, "lladdr", outMAC, "dev", sinkIf, "nud", "permanent"},
		{"ip", "link", "set", "dev", dutIf, "up"},
		{"ip", "link", "set", "dev", outIf, "up"},
		{"ip", "-n", nsName, "link", "set", "dev", "lo", "up"},
		{"ip", "-n", nsName, "link", "set", "dev", genIf, "up"},
		{"ip", "-n", nsName, "link", "set", "dev", sinkIf, "up"},
	}
	for _, s := range steps {
		if err := sh(s...); err != nil {
			return err
		}
	}
	// GRO is off by default on veth; make sure (it would give the veth NAPI
	// without an XDP program). ethtool is optional.
	if _, err := exec.LookPath("ethtool"); err == nil {
		quiet("ethtool", "-K", dutIf, "gro", "off")
		quiet("ethtool", "-K", outIf, "gro", "off")
		quiet("ip", "netns", "exec", nsName, "ethtool", "-K", genIf, "gro", "off")
		quiet("ip", "netns", "exec", nsName, "ethtool", "-K", sinkIf, "gro", "off")
	}
	return nil
}

// up builds the topology, attaches the sinks and opens the counters.
func (t *topo) upAll() error {
	if err := t.upLinks(); err != nil {
		return err
	}
	var err error
	if t.sinkPrg, err = progs.Sink(probePort); err != nil {
		return fmt.Errorf("load sink program: %w", err)
	}
	t.rootFD, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	err = netns.Do(nsName, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		t.nsFD = fd
		for _, name := range []string{genIf, sinkIf} {
			ifc, err := net.InterfaceByName(name)
			if err != nil {
				return err
			}
			l, err := link.AttachXDP(link.XDPOptions{Program: t.sinkPrg, Interface: ifc.Index, Flags: link.XDPDriverMode})
			if err != nil {
				return fmt.Errorf("attach sink to %s: %w", name, err)
			}
			t.sinks = append(t.sinks, l)
		}
		return nil
	})
	if err != nil {
		return err
	}
	t.stats = map[string]*devStats{}
	for name, fd := range map[string]int{dutIf: t.rootFD, outIf: t.rootFD, genIf: t.nsFD, sinkIf: t.nsFD} {
		if t.stats[name], err = newDevStats(fd, name); err != nil {
			return err
		}
	}
	return nil
}

// devStats reads one device's driver statistics (what `ethtool -S`
// prints) with the ETHTOOL_GSTATS ioctl, so the harness counts frames from
// the veth's own per-queue counters. The names are read once.
type devStats struct {
	fd     int // AF_INET socket in the device's namespace (the topo closes it)
	ifname string
	names  []string
	values []uint64
}

func newDevStats(fd int, ifname string) (*devStats, error) {
	names, err := sys.EthtoolStatNamesFD(fd, ifname)
	if err != nil {
		return nil, err
	}
	return &devStats{fd: fd, ifname: ifname, names: names}, nil
}

// read returns every statistic by name.
func (s *devStats) read() (map[string]uint64, error) {
	v, err := sys.EthtoolStatValuesFD(s.fd, s.ifname, s.values)
	if err != nil {
		return nil, err
	}
	s.values = v
	if len(v) != len(s.names) {
		return nil, fmt.Errorf("ethtool stats of %s: %d values for %d names: the driver's statistics changed", s.ifname, len(v), len(s.names))
	}
	m := make(map[string]uint64, len(s.names))
	for i, name := range s.names {
		m[name] = v[i]
	}
	return m, nil
}

// counters reads the veth statistics of all four ends.
func (t *topo) counters() (map[string]map[string]uint64, error) {
	m := map[string]map[string]uint64{}
	var errs []error
	for name, s := range t.stats {
		v, err := s.read()
		errs = append(errs, err)
		m[name] = v
	}
	if m[dutIf] != nil {
		errs = append(errs, sysfsStats(dutIf, m[dutIf])) // tx_dropped, for the TX cells
	}
	return m, errors.Join(errs...)
}

func (t *topo) down() {
	for _, l := range t.sinks {
		l.Close()
	}
	t.sinks = nil
	if t.sinkPrg != nil {
		t.sinkPrg.Close()
	}
	if t.rootFD > 0 {
		unix.Close(t.rootFD)
	}
	if t.nsFD > 0 {
		unix.Close(t.nsFD)
	}
	if t.up {
		topoDown()
	}
}

// leftovers reports what of the topology still exists (for the final check).
func leftovers() []string {
	var l []string
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), nsName) {
		l = append(l, "netns "+nsName)
	}
	for _, name := range []string{dutIf, outIf} {
		if _, err := net.InterfaceByName(name); err == nil {
			l = append(l, "link "+name)
		}
	}
	return l
}
