package stages_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/stages"
)

// synthPcapFrames are frames of the sizes a capture meets: minimal,
// full-sized and jumbo.
func synthPcapFrames() [][]byte {
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	return [][]byte{
		synthUDP4,
		synthTCP6,
		synthARP,
		synthFrame(a, b, 17, 4000, 4001, 1472), // 1514 bytes
		synthFrame(a, b, 17, 4000, 4001, 8958), // 9000 bytes
		synthTruncated,
	}
}

// synthClock returns a Now that starts at a fixed time and steps by
// 1.234567891 s a call.
func synthClock() (now func() time.Time, at func(i int) time.Time) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	at = func(i int) time.Time { return t0.Add(time.Duration(i) * 1234567891) }
	i := 0
	return func() time.Time { i++; return at(i - 1) }, at
}

// readPcap reads a whole pcap stream back with gopacket.
func readPcap(tb testing.TB, stream []byte) (*pcapgo.Reader, [][]byte, []gopacket.CaptureInfo) {
	tb.Helper()
	r, err := pcapgo.NewReader(bytes.NewReader(stream))
	if err != nil {
		tb.Fatalf("pcapgo.NewReader: %v", err)
	}
	var datas [][]byte
	var cis []gopacket.CaptureInfo
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			return r, datas, cis
		}
		if err != nil {
			tb.Fatalf("record %d: %v", len(datas), err)
		}
		datas = append(datas, data)
		cis = append(cis, ci)
	}
}

func TestPcapWriterRoundTrip(t *testing.T) {
	t.Parallel()
	frames := synthPcapFrames()
	for _, tc := range []struct {
		snaplen int
		nanos   bool
	}{{0, false}, {0, true}, {1500, false}, {100, true}, {14, false}} {
		t.Run(fmt.Sprintf("snaplen=%d/nanos=%v", tc.snaplen, tc.nanos), func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			now, at := synthClock()
			w, err := stages.NewPcapWriter(&out, tc.snaplen, &stages.PcapOptions{Nanoseconds: tc.nanos, BufferSize: 4096, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			if out.Len() != 24 {
				t.Errorf("after NewPcapWriter the stream has %d bytes, want the 24-byte file header", out.Len())
			}
			for _, f := range frames {
				synthHandle(t, w, f, 1, pipeline.Continue)
			}
			if err := w.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			snaplen := tc.snaplen
			if snaplen == 0 {
				snaplen = stages.MaxSnaplen
			}
			r, datas, cis := readPcap(t, out.Bytes())
			if r.LinkType() != layers.LinkTypeEthernet || r.Snaplen() != uint32(snaplen) {
				t.Errorf("file header: link type %v, snaplen %d; want Ethernet, %d", r.LinkType(), r.Snaplen(), snaplen)
			}
			if len(datas) != len(frames) {
				t.Fatalf("read %d records, wrote %d", len(datas), len(frames))
			}
			var wantBytes uint64
			for i, f := range frames {
				want := f[:min(len(f), snaplen)]
				wantBytes += uint64(len(want))
				if !bytes.Equal(datas[i], want) {
					t.Errorf("record %d: data\n got %x\nwant %x", i, datas[i], want)
				}
				if cis[i].CaptureLength != len(want) || cis[i].Length != len(f) {
					t.Errorf("record %d: capture length %d, length %d; want %d, %d", i, cis[i].CaptureLength, cis[i].Length, len(want), len(f))
				}
				wantTS := at(i)
				if !tc.nanos {
					wantTS = wantTS.Truncate(time.Microsecond)
				}
				if !cis[i].Timestamp.Equal(wantTS) {
					t.Errorf("record %d: timestamp %v, want %v", i, cis[i].Timestamp.UTC(), wantTS)
				}
			}
			if w.Packets() != uint64(len(frames)) || w.Bytes() != wantBytes || w.Errors() != 0 || w.Err() != nil {
				t.Errorf("Packets %d, Bytes %d, Errors %d, Err %v; want %d, %d, 0, nil", w.Packets(), w.Bytes(), w.Errors(), w.Err(), len(frames), wantBytes)
			}
			// gopacket decodes what was written.
			pkt := gopacket.NewPacket(datas[0], layers.LayerTypeEthernet, gopacket.Default)
			if snaplen >= len(frames[0]) {
				udp, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
				if udp == nil || udp.SrcPort != 1234 || udp.DstPort != 53 || string(udp.Payload) != "abcd" {
					t.Errorf("gopacket decoded record 0 as %v", pkt)
				}
			} else if eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet); eth == nil || eth.EthernetType != layers.EthernetTypeIPv4 {
				t.Errorf("gopacket decoded cut record 0 as %v", pkt)
			}
		})
	}
}

// tcpdump, if the machine has it, reads the stream and counts the same
// packets. On CI (env CI set) its absence fails the test.
func TestPcapWriterTcpdump(t *testing.T) {
	t.Parallel()
	tcpdump := testutils.NeedCommand(t, "tcpdump", "apt-get install tcpdump")
	frames := synthPcapFrames()
	for _, nanos := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "capture.pcap")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		now, _ := synthClock()
		w, err := stages.NewPcapWriter(f, 1500, &stages.PcapOptions{Nanoseconds: nanos, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		const rounds = 100
		for range rounds {
			for _, fr := range frames {
				synthHandle(t, w, fr, 1, pipeline.Continue)
			}
		}
		if err := errors.Join(w.Close(), f.Close()); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		args, wantTS := []string{"-r", path, "-nn"}, "03:04:05.123456 "
		if nanos {
			args, wantTS = append(args, "--time-stamp-precision=nano"), "03:04:05.123456789 "
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, tcpdump, args...)
		cmd.Env = append(os.Environ(), "TZ=UTC")
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err = cmd.Run()
		cancel()
		if err != nil {
			t.Fatalf("tcpdump -r %s: %v\n%s", path, err, stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		t.Logf("nanos %v: tcpdump printed %d lines, the first ones:\n%s", nanos, len(lines), strings.Join(lines[:min(len(lines), len(frames))], "\n"))
		if len(lines) != rounds*len(frames) {
			t.Errorf("nanos %v: tcpdump printed %d packets, wrote %d:\n%s", nanos, len(lines), rounds*len(frames), stdout.String())
		}
		if !strings.HasPrefix(lines[0], wantTS+"IP 10.0.0.1.1234 > 10.0.0.2.53: ") {
			t.Errorf("nanos %v: tcpdump's first line is %q", nanos, lines[0])
		}
		if strings.Contains(stderr.String(), "truncated dump file") {
			t.Errorf("nanos %v: tcpdump says\n%s", nanos, stderr.String())
		}
	}
}

// synthFailWriter takes n bytes, then fails with errSynthFail. It counts
// Close calls.
type synthFailWriter struct {
	n      int
	closed int
}

var errSynthFail = errors.New("disk on fire")

func (w *synthFailWriter) Write(b []byte) (int, error) {
	if len(b) > w.n {
		k := w.n
		w.n = 0
		return k, errSynthFail
	}
	w.n -= len(b)
	return len(b), nil
}

func (w *synthFailWriter) Close() error { w.closed++; return nil }

func TestPcapWriterErrors(t *testing.T) {
	// Not parallel: it counts allocations.
	if _, err := stages.NewPcapWriter(&synthFailWriter{n: 10}, 0, nil); !errors.Is(err, errSynthFail) {
		t.Errorf("NewPcapWriter on a failing writer: %v, want errSynthFail", err)
	}
	for _, tc := range []struct {
		w       io.Writer
		snaplen int
		opts    *stages.PcapOptions
	}{
		{nil, 0, nil},
		{io.Discard, -1, nil},
		{io.Discard, stages.MaxSnaplen + 1, nil},
		{io.Discard, 0, &stages.PcapOptions{BufferSize: 15}},
		{io.Discard, 0, &stages.PcapOptions{BufferSize: -1}},
	} {
		if _, err := stages.NewPcapWriter(tc.w, tc.snaplen, tc.opts); err == nil {
			t.Errorf("NewPcapWriter(%v, %d, %+v): no error", tc.w, tc.snaplen, tc.opts)
		}
	}

	// Room for the header and three records of synthUDP4 (16+46 bytes)
	// and a bit; the buffer holds two.
	fw := &synthFailWriter{n: 24 + 3*62 + 10}
	w, err := stages.NewPcapWriter(fw, 0, &stages.PcapOptions{BufferSize: 2 * 62})
	if err != nil {
		t.Fatal(err)
	}
	synthHandle(t, w, synthUDP4, 10, pipeline.Continue)
	if !errors.Is(w.Err(), errSynthFail) {
		t.Errorf("Err() = %v, want errSynthFail", w.Err())
	}
	if w.Packets()+w.Errors() != 10 || w.Errors() < 5 {
		t.Errorf("Packets %d, Errors %d: want 10 in all, the last at least 5 errors", w.Packets(), w.Errors())
	}
	p := synthPacket(synthUDP4)
	if n := testing.AllocsPerRun(100, func() { w.Handle(p) }); n != 0 {
		t.Errorf("after an error: %v allocations per packet, want 0", n)
	}
	if err := w.Flush(); !errors.Is(err, errSynthFail) {
		t.Errorf("Flush() = %v, want errSynthFail", err)
	}
	if err := w.Close(); !errors.Is(err, errSynthFail) {
		t.Errorf("Close() = %v, want errSynthFail", err)
	}
	if fw.closed != 0 {
		t.Error("Close closed the caller's writer")
	}
}

func TestPcapWriterClose(t *testing.T) {
	t.Parallel()
	fw := &synthFailWriter{n: 1 << 20}
	w, err := stages.NewPcapWriter(fw, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	synthHandle(t, w, synthUDP4, 2, pipeline.Continue)
	if got := 1<<20 - fw.n; got != 24 {
		t.Errorf("%d bytes written before Flush, want only the 24 of the file header", got)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := 1<<20 - fw.n; got != 24+2*62 {
		t.Errorf("%d bytes written after Flush, want %d", got, 24+2*62)
	}
	synthHandle(t, w, synthUDP4, 1, pipeline.Continue)
	for range 2 {
		if err := w.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if got := 1<<20 - fw.n; got != 24+3*62 {
		t.Errorf("%d bytes written after Close, want %d", got, 24+3*62)
	}
	synthHandle(t, w, synthUDP4, 4, pipeline.Continue)
	if w.Packets() != 3 || w.Errors() != 4 || w.Err() != nil || w.Flush() != nil || fw.closed != 0 {
		t.Errorf("after Close: Packets %d, Errors %d, Err %v, closed %d; want 3, 4, nil, 0", w.Packets(), w.Errors(), w.Err(), fw.closed)
	}
	if got := 1<<20 - fw.n; got != 24+3*62 {
		t.Errorf("%d bytes written after Close and more packets, want %d", got, 24+3*62)
	}
}

func TestPcapWriterAllocs(t *testing.T) {
	for _, opts := range []*stages.PcapOptions{nil, {Nanoseconds: true, BufferSize: 1 << 12}, {Now: time.Now}} {
		w, err := stages.NewPcapWriter(io.Discard, 0, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, frame := range synthPcapFrames() {
			p := synthPacket(frame)
			if n := testing.AllocsPerRun(1000, func() { w.Handle(p) }); n != 0 {
				t.Errorf("%+v, %d-byte frame: %v allocations per packet, want 0", opts, len(frame), n)
			}
		}
		if w.Err() != nil {
			t.Error(w.Err())
		}
	}
}

// FuzzPcapWriter writes arbitrary frames with arbitrary snap lengths: no
// panic, the frame untouched, and pcapgo reads back the frame cut to the
// snap length.
func FuzzPcapWriter(f *testing.F) {
	for i, frame := range synthPcapFrames() {
		f.Add(frame, uint16(i*50), i%2 == 0)
	}
	f.Add([]byte{}, uint16(0), false)
	f.Add([]byte{}, uint16(1), true)
	// Snap lengths of none, inside a header, at or past the frame's end.
	snaplens := []uint16{0, 60, 14, 1514, 1, 0, 42, 100, 0, 7}
	for i, frame := range edgeFrames {
		f.Add(frame, snaplens[i%len(snaplens)], i%2 == 1)
	}
	var out bytes.Buffer
	f.Fuzz(func(t *testing.T, frame []byte, snaplen uint16, nanos bool) {
		out.Reset()
		w, err := stages.NewPcapWriter(&out, int(snaplen), &stages.PcapOptions{Nanoseconds: nanos, BufferSize: 4096})
		if err != nil {
			t.Fatal(err)
		}
		p, check := synthGuarded(t, frame)
		if v := w.Handle(p); v != pipeline.Continue {
			t.Fatalf("Handle = %v, want Continue", v)
		}
		check()
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		_, datas, cis := readPcap(t, out.Bytes())
		keep := len(frame)
		if snaplen != 0 {
			keep = min(keep, int(snaplen))
		}
		if len(datas) != 1 || !bytes.Equal(datas[0], frame[:keep]) || cis[0].Length != len(frame) || cis[0].CaptureLength != keep {
			t.Fatalf("read back %d records: %x, %+v; want %x of length %d", len(datas), datas, cis, frame[:keep], len(frame))
		}
	})
}

func BenchmarkPcapWriter(b *testing.B) {
	now := time.Now()
	for _, tc := range []struct {
		name string
		size int
		opts *stages.PcapOptions
	}{
		{"len=64", 64, nil},
		{"len=64/fixedtime", 64, &stages.PcapOptions{Now: func() time.Time { return now }}},
		{"len=1514", 1514, nil},
		{"len=9000/snaplen=1514", 9000, nil},
	} {
		b.Run(tc.name, func(b *testing.B) {
			snaplen := 0
			if strings.Contains(tc.name, "snaplen") {
				snaplen = 1514
			}
			w, err := stages.NewPcapWriter(io.Discard, snaplen, tc.opts)
			if err != nil {
				b.Fatal(err)
			}
			a := netip.MustParseAddr("192.0.2.1")
			p := synthPacket(synthFrame(a, a, 17, 1, 2, tc.size-42))
			b.ReportAllocs()
			b.SetBytes(int64(min(tc.size, 1514))) // bytes written
			for b.Loop() {
				w.Handle(p)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkt/s")
			if w.Err() != nil {
				b.Fatal(w.Err())
			}
		})
	}
}

func ExamplePcapWriter() {
	var out bytes.Buffer // an *os.File, say
	w, err := stages.NewPcapWriter(&out, 96, nil)
	if err != nil {
		panic(err)
	}
	defer w.Close()
	p := &pipeline.Packet{Data: synthUDP4}
	p.Reparse()
	w.Handle(p)
	if err := w.Flush(); err != nil {
		panic(err)
	}
	fmt.Println(out.Len(), "bytes:", w.Packets(), "packet")
	// Output: 86 bytes: 1 packet
}
