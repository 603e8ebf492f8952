//go:build linux

// Command xdp-dump writes every redirected frame to a pcap file that
// tcpdump, tshark and Wireshark read. Linux 5.10+, root.
//
//	sudo xdp-dump -i eth0 -filter 'udp port 53' -w dns.pcap -duration 10s
//	tcpdump -nn -r dns.pcap
package main

import (
	"errors"
	"os"

	"github.com/xdpkit/xdpkit/examples/internal/app"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/stages"
)

func main() {
	a := app.New("xdp-dump", "write redirected frames to a pcap file", "")
	path := a.Flags.String("w", "", "pcap file to write (required)")
	snaplen := a.Flags.Int("snaplen", 65535, "bytes of each frame to keep")
	nano := a.Flags.Bool("nano", false, "nanosecond timestamps")
	app.Main(a, func(a *app.App) error {
		if *path == "" {
			return errors.New("-w FILE is required")
		}
		f, err := os.Create(*path)
		if err != nil {
			return err
		}
		defer f.Close()
		w, err := stages.NewPcapWriter(f, *snaplen, &stages.PcapOptions{Nanoseconds: *nano})
		if err != nil {
			return err
		}
		if a.Queues != "" {
			return errors.New("-queues: xdp-dump writes one file from one queue; run one process per queue (with -pin) instead")
		}
		err = a.RunBuilder(func(int) (pipeline.Config, func() map[string]any, error) {
			return pipeline.Config{Stages: []pipeline.Stage{w}, Final: pipeline.Drop}, func() map[string]any {
				return map[string]any{"file": *path, "written": w.Packets(), "written_bytes": w.Bytes(), "write_errors": w.Errors()}
			}, nil
		}, nil)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = f.Close()
		}
		return err
	})
}
