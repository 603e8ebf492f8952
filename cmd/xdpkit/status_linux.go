package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/xdpkit/xdpkit/internal/doctor"
	xnl "github.com/xdpkit/xdpkit/internal/netlink"
	"github.com/xdpkit/xdpkit/metrics"
	"github.com/xdpkit/xdpkit/redirect"
)

// socketRow is one (process, interface, queue) of `xdpkit status`.
type socketRow struct {
	PID       int                `json:"pid"`
	Process   string             `json:"process"`
	Interface string             `json:"interface"`
	Queue     string             `json:"queue"`
	Setup     *metrics.Socket    `json:"setup,omitempty"` // rings and UMEM, from the announcement
	Counters  map[string]float64 `json:"counters"`        // metric name without xdpkit_ and _total
	Rates     map[string]float64 `json:"rates,omitempty"`
}

// kernelRow is a socket the kernel reports: through xsk_diag with its
// owners and rings, or, without xsk_diag, only as a queue marked bound.
type kernelRow struct {
	Interface string         `json:"interface"`
	Queue     int            `json:"queue"`
	Socket    *doctor.XSK    `json:"xsk_diag,omitempty"`
	Owners    []doctor.Owner `json:"owners,omitempty"`
}

type programRow struct {
	Interface string `json:"interface"`
	ID        uint32 `json:"id"`
	Name      string `json:"name"`
	Mode      string `json:"mode"`
}

type statusReport struct {
	Sockets []socketRow `json:"sockets"`
	// Kernel lists the sockets of other processes than announced xdpkit
	// ones; XSKDiag says why they come without owners when they do.
	Kernel   []kernelRow  `json:"kernel_sockets"`
	XSKDiag  string       `json:"xsk_diag"`
	Stale    int          `json:"stale_removed"`
	Programs []programRow `json:"xdp_programs"`
	Pins     []string     `json:"pins"`
}

// rows turns the processes' series into one row per socket.
func rows(procs []metrics.Process) []socketRow {
	var out []socketRow
	for _, p := range procs {
		byKey := map[[2]string]*socketRow{}
		var keys [][2]string
		for _, s := range p.Series {
			iface, q := s.Labels["interface"], s.Labels["queue"]
			if iface == "" || q == "" || len(s.Labels) != 2 { // per-stage and per-verdict series are not a socket's
				continue
			}
			k := [2]string{iface, q}
			r := byKey[k]
			if r == nil {
				r = &socketRow{PID: p.PID, Process: p.Name, Interface: iface, Queue: q, Counters: map[string]float64{}}
				for k := range p.Sockets {
					if so := &p.Sockets[k]; so.Interface == iface && strconv.Itoa(so.Queue) == q {
						r.Setup = so
					}
				}
				byKey[k] = r
				keys = append(keys, k)
			}
			name := strings.TrimSuffix(strings.TrimPrefix(s.Name, "xdpkit_"), "_total")
			r.Counters[name] = s.Value
		}
		sort.Slice(keys, func(i, j int) bool {
			return keys[i][0] < keys[j][0] || keys[i][0] == keys[j][0] && keys[i][1] < keys[j][1]
		})
		for _, k := range keys {
			out = append(out, *byKey[k])
		}
	}
	return out
}

// kernelSockets lists what the kernel knows of sockets that no row of
// announced accounts for: every AF_XDP socket through xsk_diag, or else
// the queues netdev queue-get marks as bound.
func kernelSockets(announced []socketRow) ([]kernelRow, string) {
	known := map[string]bool{}
	pids := map[int]bool{}
	for _, r := range announced {
		known[r.Interface+"/"+r.Queue] = true
		pids[r.PID] = true
	}
	names := map[int]string{}
	ifs, _ := net.Interfaces()
	for _, ifc := range ifs {
		names[ifc.Index] = ifc.Name
	}
	var out []kernelRow
	xsks, err := doctor.XDPSockets()
	if err == nil {
		for k := range xsks {
			x := &xsks[k]
			mine := false
			for _, o := range x.Owners {
				mine = mine || pids[o.PID]
			}
			if mine {
				continue
			}
			out = append(out, kernelRow{Interface: names[int(x.Ifindex)], Queue: int(x.Queue), Socket: x, Owners: x.Owners})
		}
		return out, "ok"
	}
	diag := err.Error()
	if errors.Is(err, doctor.ErrNoXSKDiag) {
		diag = "this kernel has no xsk_diag (CONFIG_XDP_SOCKETS_DIAG) to name the owner"
	}
	for _, ifc := range ifs {
		qs, err := doctor.DeviceQueues(ifc.Index)
		if err != nil {
			continue
		}
		for _, q := range qs {
			if !q.TX && q.XSK && !known[ifc.Name+"/"+strconv.Itoa(q.ID)] {
				out = append(out, kernelRow{Interface: ifc.Name, Queue: q.ID})
			}
		}
	}
	return out, diag
}

func programs() []programRow {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []programRow
	for _, ifc := range ifs {
		l, err := xnl.LinkByIndex(ifc.Index)
		if err != nil || !l.XDP.IsAttached() {
			continue
		}
		id := l.XDP.AnyProgID()
		out = append(out, programRow{Interface: ifc.Name, ID: id, Name: doctor.ProgramName(id), Mode: l.XDP.Mode()})
	}
	return out
}

func pins() []string {
	var out []string
	_ = filepath.WalkDir(redirect.DefaultPinDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, path)
		}
		return nil
	})
	return out
}

func runStatus(args []string, stdout, stderr io.Writer) int {
	f := flag.NewFlagSet("xdpkit status", flag.ContinueOnError)
	f.SetOutput(stderr)
	asJSON := f.Bool("json", false, "print the report as JSON")
	watch := f.Duration("watch", 0, "refresh every `D` with per-socket rates, until Ctrl-C (0: once)")
	dir := f.String("run-dir", metrics.RunDir, "where xdpkit processes announce themselves")
	if err := f.Parse(args); err != nil {
		return 2
	}
	if *watch < 0 {
		fmt.Fprintln(stderr, "xdpkit status: -watch must not be negative")
		return 2
	}
	report := func(prev map[string]socketRow, dt float64) (statusReport, error) {
		procs, stale, err := metrics.Peers(*dir)
		if err != nil {
			return statusReport{}, err
		}
		r := statusReport{Sockets: rows(procs), Stale: stale, Programs: programs(), Pins: pins()}
		r.Kernel, r.XSKDiag = kernelSockets(r.Sockets)
		for i, s := range r.Sockets {
			if p, ok := prev[rowKey(s)]; ok && dt > 0 {
				r.Sockets[i].Rates = map[string]float64{}
				for k, v := range s.Counters {
					r.Sockets[i].Rates[k] = (v - p.Counters[k]) / dt
				}
			}
		}
		return r, nil
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	defer signal.Stop(sig)
	prev, at := map[string]socketRow{}, time.Now()
	for {
		r, err := report(prev, time.Since(at).Seconds())
		if err != nil {
			fmt.Fprintf(stderr, "xdpkit status: %v\n", err)
			return 1
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(r)
		} else {
			printStatus(stdout, r)
		}
		if *watch == 0 {
			return 0
		}
		prev, at = map[string]socketRow{}, time.Now()
		for _, s := range r.Sockets {
			prev[rowKey(s)] = s
		}
		select {
		case <-sig:
			return 0
		case <-time.After(*watch):
		}
	}
}

func rowKey(s socketRow) string { return fmt.Sprint(s.PID, "/", s.Interface, "/", s.Queue) }

func printStatus(w io.Writer, r statusReport) {
	fmt.Fprintf(w, "%-7s %-14s %-12s %-5s %-22s %12s %12s %12s %10s %10s\n", "PID", "PROCESS", "INTERFACE", "QUEUE", "RINGS RX/TX/FILL/COMP", "RX", "TX", "DROPPED", "RING-FULL", "FILL-EMPTY")
	for _, s := range r.Sockets {
		c := s.Counters
		rings := "-"
		if s.Setup != nil {
			rings = fmt.Sprintf("%d/%d/%d/%d", s.Setup.RX, s.Setup.TX, s.Setup.Fill, s.Setup.Completion)
		}
		fmt.Fprintf(w, "%-7d %-14s %-12s %-5s %-22s %12.0f %12.0f %12.0f %10.0f %10.0f", s.PID, s.Process, s.Interface, s.Queue, rings,
			c["rx_packets"], c["tx_packets"], c["dropped_packets"], c["kernel_rx_ring_full"], c["kernel_rx_fill_ring_empty"])
		if s.Rates != nil {
			fmt.Fprintf(w, "  rx %.0f/s tx %.0f/s drop %.0f/s", s.Rates["rx_packets"], s.Rates["tx_packets"], s.Rates["dropped_packets"])
		}
		fmt.Fprintln(w)
		if u := s.Setup; u != nil {
			mode := "copy"
			if u.ZeroCopy {
				mode = "zero-copy"
			}
			huge := ""
			if u.HugePages {
				huge = ", huge pages"
			}
			fmt.Fprintf(w, "        %s, UMEM %d x %d B%s, %d frames free\n", mode, u.Frames, u.FrameSize, huge, u.FreeFrames)
		}
	}
	if len(r.Sockets) == 0 {
		fmt.Fprintln(w, "(no xdpkit process announced itself)")
	}
	if r.Stale > 0 {
		fmt.Fprintf(w, "removed %d stale entries of processes that are gone\n", r.Stale)
	}
	for _, k := range r.Kernel {
		if x := k.Socket; x != nil {
			var owners []string
			for _, o := range k.Owners {
				owners = append(owners, fmt.Sprintf("pid %d (%s)", o.PID, o.Name))
			}
			if len(owners) == 0 {
				owners = []string{"owner unknown"}
			}
			where := "unbound"
			if x.Bound {
				where = fmt.Sprintf("%s queue %d", k.Interface, k.Queue)
			}
			fmt.Fprintf(w, "xsk: inode %d %s, %s, rings %d/%d/%d/%d", x.Inode, where, strings.Join(owners, ", "), x.RX, x.TX, x.Fill, x.Completion)
			if x.Stats != nil {
				fmt.Fprintf(w, ", rx-dropped %d rx-full %d fill-empty %d", x.Stats.RXDropped, x.Stats.RXFull, x.Stats.FillRingEmpty)
			}
			fmt.Fprintln(w)
			continue
		}
		fmt.Fprintf(w, "xsk: %s queue %d is bound to a socket of a process that did not announce itself; %s\n", k.Interface, k.Queue, r.XSKDiag)
	}
	for _, p := range r.Programs {
		fmt.Fprintf(w, "xdp: %s: program %d %s (%s mode)\n", p.Interface, p.ID, p.Name, p.Mode)
	}
	for _, p := range r.Pins {
		fmt.Fprintf(w, "pin: %s\n", p)
	}
}
