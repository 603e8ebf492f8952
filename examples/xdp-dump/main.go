//go:build unix

// Command xdp-dump writes every redirected frame to a pcap file that
// tcpdump, tshark and Wireshark read. It shows a single socket on one queue
// with one stage, stages.PcapWriter; for several queues, run one process per
// queue sharing a program pinned in bpffs (-pin).
//
// Linux 5.10+, root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF).
//
//	sudo xdp-dump -i eth0 -filter 'udp port 53' -w dns.pcap -duration 10s
//	tcpdump -nn -r dns.pcap
//
// A capture holds other people's traffic and xdp-dump runs as root, so the
// file is created only readable by its owner (-mode 0600), never through a
// symbolic link, and never over an existing file unless -force says so.
package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strconv"
	"syscall"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/cli"
	"github.com/xdpkit/xdpkit/metrics"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/stages"
)

func main() {
	tool := cli.New("xdp-dump", "write redirected frames to a pcap file", "")
	tool.CoalesceByDefault(cli.SinkCoalesce) // it ends the traffic: coalescing delays nothing
	path := tool.Flags.String("w", "", "pcap file to write (required)")
	snaplen := tool.Flags.Int("snaplen", 65535, "bytes of each frame to keep")
	nano := tool.Flags.Bool("nano", false, "nanosecond timestamps")
	rxts := tool.Flags.Bool("rx-timestamps", false, "write the NIC's RX timestamps (XDP RX metadata, Linux 6.8+, drivers that report them) instead of the capture time, where a frame has one")
	force := tool.Flags.Bool("force", false, "overwrite the -w file if it exists (a regular file, not a symbolic link)")
	mode := tool.Flags.String("mode", "0600", "permission bits of the -w file, in octal (the umask does not apply)")
	tool.Refuse("it writes one file from one queue; run one process per queue (with -pin) instead", "queues", "cpus", "shared-umem")
	tool.Main(func(ctx context.Context) (err error) {
		if *path == "" {
			return errors.New("-w FILE is required")
		}
		perm, err := strconv.ParseUint(*mode, 8, 32)
		if err != nil || perm > 0o777 {
			return fmt.Errorf("-mode %q: want octal permission bits, like 0600 or 0640", *mode)
		}
		f, err := createCapture(*path, *force, os.FileMode(perm))
		if err != nil {
			return err
		}
		var w *stages.PcapWriter
		defer func() {
			f.Close()
			if err != nil && !*force && (w == nil || w.Packets() == 0) {
				os.Remove(*path) // nothing captured: leave no empty file that would need -force next time
			}
		}()
		w, err = stages.NewPcapWriter(f, *snaplen, &stages.PcapOptions{Nanoseconds: *nano, RXTimestamps: *rxts})
		if err != nil {
			return err
		}
		summary := func() map[string]any {
			return map[string]any{"file": *path, "written": w.Packets(), "written_bytes": w.Bytes(), "write_errors": w.Errors(), "rx_timestamped": w.RXTimestamped()}
		}
		err = run(ctx, tool, w, *rxts, summary)
		if cerr := w.Close(); err == nil { // flushes the last records
			err = cerr
		}
		if err == nil {
			err = f.Close()
		}
		return err
	})
}

// run attaches the redirect program, opens the socket on -q and writes
// every frame it receives with w, until Ctrl-C or -duration.
func run(ctx context.Context, tool *cli.Tool, w *stages.PcapWriter, rxts bool, summary func() map[string]any) error {
	iface, err := net.InterfaceByName(tool.Iface)
	if err != nil {
		return fmt.Errorf("interface %q: %w", tool.Iface, err)
	}
	// -filter chooses what is captured, in the kernel: the rest goes on to
	// the stack, uncaptured.
	opts, err := tool.RedirectOptions() // -xdp-mode, and -filter
	if err != nil {
		return err
	}
	// -rx-timestamps: a program bound to the device that stores what the
	// driver reports (timestamp, hash, VLAN tag) in front of each frame.
	opts.RXMetadata = rxts
	// The program this process attaches, or joins with -pin (one process
	// per queue); or, with -xskmap or -dp, another process's XSKMAP.
	steer, err := tool.AttachOrJoin(iface.Index, opts)
	if err != nil {
		return err
	}
	defer steer.Close()

	sock, err := afxdp.Open(tool.Iface, tool.Queue, &afxdp.Config{Bind: tool.Bind, Coalesce: tool.Coalesce, Steering: steer})
	if err != nil {
		return err
	}
	defer sock.Close()
	// The writer returns Continue; the frame then gets Final, Drop.
	r, err := pipeline.New(pipeline.Config{Socket: sock, Stages: []pipeline.Stage{w}, Final: pipeline.Drop})
	if err != nil {
		return err
	}
	m := metrics.New() // what -metrics ADDR serves at /metrics
	m.AddRunner(tool.Iface, tool.Queue, r, sock)
	if steer.Program != nil {
		m.AddProgram(tool.Iface, steer.Program)
	}
	stopMetrics, err := tool.ServeMetrics(m)
	if err != nil {
		return err
	}
	defer stopMetrics()
	stop := tool.LiveRate(r.Snapshot, nil)
	st, err := r.Run(ctx)
	stop()
	if err != nil {
		return err
	}
	return tool.Summary(st, sock, summary)
}

// createCapture opens the capture file for writing. O_NOFOLLOW refuses a
// symbolic link in the last path element, so nobody can point the file at
// /etc/shadow; O_EXCL refuses an existing file unless force is set. With
// force an existing regular file is truncated; anything else (a device, a
// FIFO, a directory) is refused. O_NONBLOCK only keeps the open from
// hanging on a FIFO before that check. The file gets exactly perm, whatever
// the umask or the permissions an overwritten file had.
func createCapture(path string, force bool, perm os.FileMode) (*os.File, error) {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL | syscall.O_NOFOLLOW
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC | syscall.O_NOFOLLOW | syscall.O_NONBLOCK
	}
	f, err := os.OpenFile(path, flags, perm)
	switch {
	case errors.Is(err, syscall.ELOOP):
		return nil, fmt.Errorf("%s is a symbolic link: refusing to write through it; give the path of a file instead", path)
	case errors.Is(err, fs.ErrExist):
		if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, fmt.Errorf("%s is a symbolic link: refusing to write through it; give the path of a file instead", path)
		}
		return nil, fmt.Errorf("%s exists: use -force to overwrite it", path)
	case errors.Is(err, syscall.ENXIO): // a FIFO nobody reads, a device without a driver
		return nil, fmt.Errorf("%s is not a regular file: refusing to write a capture into it", path)
	case err != nil:
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file (%s): refusing to write a capture into it", path, fi.Mode().Type())
	}
	if err == nil {
		err = f.Chmod(perm)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
