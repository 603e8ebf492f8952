// Command xdp-lb is an L4 load balancer: UDP and TCP flows to -vip are
// spread over the -backend servers by a consistent hash of the 5-tuple
// (the same flow always lands on the same backend; removing a backend
// moves only its own flows) and transmitted out of the same interface.
// It shows stages.LoadBalancer in a pipeline, and its per-backend
// counters.
//
// -mode dsr, the default, is direct server return: only the Ethernet
// header changes (the backend's MAC address), the packet stays addressed
// to the VIP. Each backend holds the VIP on its loopback interface,
// without answering ARP for it, and answers the client from the VIP:
//
//	ip addr add VIP/32 dev lo
//	sysctl -w net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
//
// -mode ipip encapsulates each packet in IPIP to the backend's address
// (LVS-TUN, Katran), from -tunnel-src; an IPv6 VIP in 6in4 to the IPv4
// address given as the -backend flag's third field. The backend
// decapsulates with a tunnel device and holds the VIP on loopback:
//
//	ip link add tun0 type ipip local BACKEND_IP remote any; ip link set tun0 up
//	ip addr add VIP/32 dev lo; sysctl -w net.ipv4.conf.tun0.rp_filter=0
//
// -mode nat also rewrites the destination address to the backend's (the
// checksums updated incrementally, RFC 1624). The backend then answers
// from its own address, which a TCP client of the VIP rejects: use it only
// where the replies are translated back, or for clients that accept them.
//
// By default the kernel fast path (package fastpath) carries the flows:
// the first frame of a flow is balanced in user space, which installs
// the same rewrite in the XDP program, and the XDP program transmits the
// rest itself. -fastpath=false keeps every frame in user space.
//
// A connection table keeps every flow xdp-lb has seen on its backend
// while backends come and go (except flows whose backend went away), and
// the backends change without a restart: -backends FILE (one IP,MAC a
// line) is read again on SIGHUP, and -admin 127.0.0.1:PORT serves them as
// JSON (curl http://127.0.0.1:PORT/backends; POST {"ip","mac"} to add
// one, DELETE /backends/IP to remove one).
//
// Linux 5.10+, root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF).
//
//	sudo xdp-lb -i eth0 -vip 10.0.0.100:80 \
//	    -backend 10.0.0.11,02:00:00:00:00:11 -backend 10.0.0.12,02:00:00:00:00:12
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/cli"
	"github.com/xdpkit/xdpkit/fastpath"
	"github.com/xdpkit/xdpkit/metrics"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/stages"
	"github.com/xdpkit/xdpkit/workers"
)

// backendList is the repeatable -backend IP,MAC flag.
type backendList []stages.Backend

func (b *backendList) String() string { return fmt.Sprint(*b) }

func (b *backendList) Set(s string) error {
	parts := strings.Split(s, ",")
	if len(parts) != 2 && len(parts) != 3 {
		return fmt.Errorf("backend %q: want IP,MAC or, for -mode ipip with an IPv6 VIP, IP,MAC,TUNNEL_IPV4", s)
	}
	ip, err := netip.ParseAddr(parts[0])
	if err != nil {
		return fmt.Errorf("backend %q: %w", s, err)
	}
	mac, err := net.ParseMAC(parts[1])
	if err != nil || len(mac) != 6 {
		return fmt.Errorf("backend %q: bad MAC %q", s, parts[1])
	}
	be := stages.Backend{IP: ip, MAC: mac}
	if len(parts) == 3 {
		if be.TunnelIP, err = netip.ParseAddr(parts[2]); err != nil {
			return fmt.Errorf("backend %q: tunnel address: %w", s, err)
		}
	}
	*b = append(*b, be)
	return nil
}

func main() {
	tool := cli.New("xdp-lb", "spread flows to a VIP over backends by consistent hashing", "")
	vip := tool.Flags.String("vip", "", "virtual IP address and port, ADDR:PORT (required)")
	var backends backendList
	tool.Flags.Var(&backends, "backend", "backend IP,MAC[,TUNNEL] (repeat the flag for more; TUNNEL: its IPv4 address for -mode ipip with an IPv6 VIP)")
	var mode stages.LBMode // dsr
	tool.Flags.TextVar(&mode, "mode", stages.LBModeDSR, "how frames reach the backends: dsr (direct server return: the MAC only), ipip (encapsulated to the backend's address) or nat (the destination address rewritten)")
	tunnelSrc := tool.Flags.String("tunnel-src", "", "with -mode ipip: the outer source `ADDR`, an IPv4 address of this host")
	backendsFile := tool.Flags.String("backends", "", "`FILE` of backends, one IP,MAC a line, read at start and again on SIGHUP (with the -backend flags)")
	admin := tool.Flags.String("admin", "", "serve the backends as JSON on this loopback `ADDR:PORT`: GET /backends, POST /backends {\"ip\",\"mac\"}, DELETE /backends/IP")
	useFastPath := tool.Flags.Bool("fastpath", true, "balance each flow's first frame in user space and the rest in the XDP program (package fastpath); false: every frame in user space")
	recompute := tool.Flags.Bool("recompute-csum", false, "recompute UDP/TCP checksums instead of updating them (for senders with checksum offload, e.g. veth)")
	tool.Main(func(ctx context.Context) error {
		if *vip == "" {
			return errors.New("-vip ADDR:PORT is required")
		}
		vap, err := netip.ParseAddrPort(*vip)
		if err != nil {
			return fmt.Errorf("-vip: %w", err)
		}
		// The backends: the -backend flags and the -backends file, which
		// SIGHUP re-reads.
		initial := func() ([]stages.Backend, error) {
			bs := slices.Clone([]stages.Backend(backends))
			if *backendsFile != "" {
				fromFile, err := readBackends(*backendsFile)
				if err != nil {
					return nil, err
				}
				bs = append(bs, fromFile...)
			}
			return bs, nil
		}
		first, err := initial()
		if err != nil {
			return err
		}
		if len(first) == 0 && *admin == "" {
			return errors.New("no backends: give -backend IP,MAC, -backends FILE, or -admin to add them later")
		}
		var tunSrc netip.Addr
		if *tunnelSrc != "" {
			if tunSrc, err = netip.ParseAddr(*tunnelSrc); err != nil {
				return fmt.Errorf("-tunnel-src: %w", err)
			}
		}
		live := &backendSet{cur: first}
		// The fast path: the XDP program applies each offloaded flow's
		// rewrite itself. Its entries age out like the connection table's.
		var fp *fastpath.FastPath
		if *useFastPath {
			if *recompute {
				return errors.New("-recompute-csum needs -fastpath=false: the XDP program only updates checksums")
			}
			if tool.Pin != "" {
				return errors.New("-pin needs -fastpath=false: the fast path's maps are not pinned")
			}
			if fp, err = fastpath.New(&fastpath.Config{IdleTimeout: stages.DefaultLBConnIdle}); err != nil {
				return err
			}
			defer fp.Close() // after the program, which run closes first
		}
		iface, err := net.InterfaceByName(tool.Iface)
		if err != nil {
			return fmt.Errorf("interface %q: %w", tool.Iface, err)
		}
		// A worker's pipeline: the balancer rewrites flows to the VIP and
		// transmits them, from this interface's MAC; anything else is
		// dropped. With -queues every worker has its own table: built
		// alike, they send each flow to the same backend.
		newPipeline := func() (pipeline.Config, func() map[string]any, error) {
			lb, err := stages.NewLoadBalancer(vap, first, &stages.LoadBalancerOptions{
				Mode: mode, SrcMAC: iface.HardwareAddr, RecomputeL4Checksum: *recompute, Other: pipeline.Drop,
				FastPath: fp, TunnelSrc: tunSrc,
			})
			if err != nil {
				return pipeline.Config{}, nil, err
			}
			summary := func() map[string]any {
				var bs []map[string]any
				for _, b := range lb.Stats() {
					bs = append(bs, map[string]any{"ip": b.IP.String(), "mac": b.MAC.String(), "packets": b.Packets})
				}
				return map[string]any{"vip": vap.String(), "mode": mode.String(), "backends": bs, "connections": connections(lb.ConnStats()),
					"encap_errors": lb.EncapErrors(), "lb_offload_errors": lb.OffloadErrors()}
			}
			live.lbs = append(live.lbs, lb)
			// Tick, on the worker's goroutine, applies backend changes
			// and gives the connection table its clock, once per tick
			// instead of per packet.
			return pipeline.Config{Stages: []pipeline.Stage{lb}, Final: pipeline.Drop, Tick: lb.Tick, FastPath: fp}, summary, nil
		}
		if *admin != "" {
			l, err := listenAdmin(*admin)
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: adminHandler(live), ReadHeaderTimeout: 5 * time.Second}
			go func() { _ = srv.Serve(l) }()
			defer srv.Close()
			tool.Logf("admin endpoint on http://%s/backends", l.Addr())
		}
		if *backendsFile != "" {
			// SIGHUP: the file (and the flags) again, replacing whatever
			// the admin endpoint changed.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-hup:
					}
					bs, err := initial()
					if err == nil {
						err = live.set(bs)
					}
					if err != nil {
						tool.Logf("SIGHUP: backends unchanged: %v", err)
						continue
					}
					tool.Logf("SIGHUP: %d backends from %s and the flags", len(bs), *backendsFile)
				}
			}()
		}
		return run(ctx, tool, iface, fp, newPipeline)
	})
}

// connections are the connection table's counters, as numbers the
// summary sums over queues.
func connections(c stages.ConnStats) map[string]uint64 {
	return map[string]uint64{
		"connections": uint64(c.Connections), "capacity": uint64(c.Capacity),
		"new": c.New, "moved": c.Moved, "expired": c.Expired, "evicted": c.Evicted,
	}
}

// run attaches the redirect program and runs a worker, with a pipeline
// from newPipeline, on each queue: the one of -q, or each of -queues.
func run(ctx context.Context, tool *cli.Tool, iface *net.Interface, fp *fastpath.FastPath, newPipeline func() (pipeline.Config, func() map[string]any, error)) error {
	opts, err := tool.RedirectOptions() // -xdp-mode, and -filter in front of the redirect
	if err != nil {
		return err
	}
	opts.FastPath = fp // nil with -fastpath=false
	// The program this process attaches, or joins with -pin; or, with
	// -xskmap or -dp, another process's XSKMAP (xdpkit attach, the AF_XDP
	// device plugin), which needs no BPF privileges.
	steer, err := tool.AttachOrJoin(iface.Index, opts)
	if err != nil {
		return err
	}
	defer steer.Close()
	if steer.Program == nil && fp != nil {
		return errors.New("the fast path runs in the program xdp-lb attaches: with -xskmap or -dp, add -fastpath=false")
	}

	queues, cpus, err := tool.WorkerQueues(steer.Queues)
	if err != nil {
		return err
	}
	summaries := map[int]func() map[string]any{}
	set, err := workers.New(workers.Config{
		Interface:  tool.Iface,
		Queues:     queues,
		CPUs:       cpus,
		SharedUMEM: tool.SharedUMEM,
		Socket:     afxdp.Config{Bind: tool.Bind, Coalesce: tool.Coalesce},
		Steering:   steer, // each worker's socket is registered for its queue
		Pipeline: func(queue int) (pipeline.Config, error) {
			cfg, summary, err := newPipeline()
			summaries[queue] = summary
			return cfg, err
		},
	})
	if err != nil {
		return err
	}
	defer set.Close()
	tool.Logf("workers on %s queues %v, CPUs %v", tool.Iface, set.Queues(), set.CPUs())
	m := metrics.New() // what -metrics ADDR serves at /metrics
	m.AddWorkers(tool.Iface, set)
	if steer.Program != nil {
		m.AddProgram(tool.Iface, steer.Program)
	}
	if fp != nil {
		m.AddFastPath(tool.Iface, fp)
	}
	stopMetrics, err := tool.ServeMetrics(m)
	if err != nil {
		return err
	}
	defer stopMetrics()
	stop := tool.LiveRate(func() pipeline.Stats { return set.Snapshot().Total }, nil)
	st, err := set.Run(ctx) // until Ctrl-C or -duration
	stop()
	if err != nil {
		return err
	}
	if fp != nil {
		// The frames the XDP program balanced itself, for the whole set.
		summaries[cli.SetWide] = func() map[string]any {
			c, err := fp.Counters()
			if err != nil {
				return map[string]any{"fastpath_error": err.Error()}
			}
			return map[string]any{"fastpath": map[string]uint64{
				"transmitted": c.FlowTransmitted + c.FlowEncapped, "to_socket": c.Default, "errors": c.FlowErrors, "expired": c.Expired,
			}}
		}
	}
	return tool.WorkersSummary(st, set, summaries)
}
