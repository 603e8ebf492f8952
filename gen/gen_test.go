package gen_test

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/gen"
	"github.com/xdpkit/xdpkit/packet"
)

func TestPacer(t *testing.T) {
	p := gen.NewPacer(1000, 10, 0) // 1 frame per ms, bursts of 10
	if n := p.Take(0, 100); n != 10 {
		t.Errorf("first take %d, want the burst of 10", n)
	}
	if n := p.Take(int64(500*time.Microsecond), 100); n != 0 {
		t.Errorf("after 0.5 ms: %d, want 0", n)
	}
	if w := p.Wait(); w < 400*time.Microsecond || w > 600*time.Microsecond {
		t.Errorf("wait %v, want about 0.5 ms", w)
	}
	// Over a simulated second in uneven steps, 1000 frames (+ the burst).
	total := 10
	for now := int64(time.Millisecond); now <= int64(time.Second); now += int64(time.Millisecond) * (now%3 + 1) {
		total += p.Take(now, 100)
	}
	if total < 1005 || total > 1011 {
		t.Errorf("%d frames in a second at 1000/s (+10 burst)", total)
	}
	p.Return(3)
	if n := p.Take(int64(time.Second), 100); n != 3 {
		t.Errorf("returned tokens: %d, want 3", n)
	}
}

func TestHistogram(t *testing.T) {
	var h gen.Histogram
	for i := 1; i <= 10000; i++ {
		h.Add(time.Duration(i) * time.Microsecond)
	}
	for q, want := range map[float64]time.Duration{0.5: 5 * time.Millisecond, 0.99: 9900 * time.Microsecond, 0.999: 9990 * time.Microsecond} {
		got := h.Quantile(q)
		if math.Abs(float64(got-want))/float64(want) > 0.017 {
			t.Errorf("p%v = %v, want %v within 1.6%%", q*100, got, want)
		}
	}
	if h.Max() != 10*time.Millisecond || h.Count() != 10000 {
		t.Errorf("max %v count %d", h.Max(), h.Count())
	}
	var small gen.Histogram
	small.Add(5)
	if small.Quantile(0.5) != 5 || small.Quantile(1) != 5 {
		t.Errorf("exact small values: %v", small.Quantile(0.5))
	}
}

func TestTracker(t *testing.T) {
	tr := gen.NewTracker(64)
	for seq := range uint64(10) {
		tr.Sent(seq)
	}
	for _, seq := range []uint64{0, 1, 3, 2, 3, 9, 42} {
		tr.Reply(seq, time.Millisecond)
	}
	st := tr.Stats()
	want := gen.TrackerStats{Sent: 10, Replied: 5, Lost: 5, Duplicates: 1, Reordered: 1, Late: 1}
	if st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	// The window wraps: slot reuse clears the old bit.
	for seq := uint64(10); seq < 200; seq++ {
		tr.Sent(seq)
		tr.Reply(seq, time.Microsecond)
	}
	if st := tr.Stats(); st.Duplicates != 1 || st.Replied != 195 {
		t.Errorf("after wrapping: %+v", st)
	}
	tr.Reply(5, 0) // 195 behind with a window of 64: late
	if st := tr.Stats(); st.Late != 2 {
		t.Errorf("late %d, want 2", st.Late)
	}
}

func writePcap(t *testing.T, frames [][]byte, ng bool) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	t0 := time.Unix(1700000000, 0)
	if ng {
		w, err := pcapgo.NewNgWriter(f, layers.LinkTypeEthernet)
		if err != nil {
			t.Fatal(err)
		}
		for i, fr := range frames {
			ci := gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(fr), Length: len(fr), InterfaceIndex: 0}
			if err := w.WritePacket(ci, fr); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		return path
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i, fr := range frames {
		ci := gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(fr), Length: len(fr)}
		if err := w.WritePacket(ci, fr); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func someFrames(t *testing.T, n int) [][]byte {
	tpl := template(gen.UDP, false)
	tpl.Sizes, tpl.Flows = gen.IMIX, 3
	b, err := gen.NewBuilder(tpl)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for i := range uint64(n) {
		buf := make([]byte, 1500)
		l := b.Build(buf, i, false)
		b.Stamp(buf[:l], i, int64(i))
		out = append(out, buf[:l])
	}
	return out
}

func TestReadCapture(t *testing.T) {
	frames := someFrames(t, 30)
	for _, ng := range []bool{false, true} {
		c, err := gen.ReadCapture(writePcap(t, frames, ng), 4096)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Frames) != 30 || c.Duration() != 29*time.Millisecond {
			t.Fatalf("pcapng %v: %d frames over %v", ng, len(c.Frames), c.Duration())
		}
		for i := range frames {
			if !bytes.Equal(c.Frames[i].Data, frames[i]) {
				t.Fatalf("frame %d differs", i)
			}
		}
	}
	if _, err := gen.ReadCapture(writePcap(t, frames, false), 1000); err == nil {
		t.Error("a frame longer than maxFrame: no error")
	}
	junk := filepath.Join(t.TempDir(), "junk")
	_ = os.WriteFile(junk, []byte("not a capture at all"), 0o600)
	if _, err := gen.ReadCapture(junk, 4096); err == nil {
		t.Error("junk: no error")
	}
}

// A Sender on a memory socket: exact counts, the pattern of flows and
// sizes on the wire, stamps in order.
func TestSenderMemory(t *testing.T) {
	sock, kernel, err := afxdp.NewMemory(&afxdp.Config{RXRingSize: 256, TXRingSize: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	tpl := template(gen.UDP, false)
	tpl.Sizes, tpl.Flows = gen.IMIX, 5
	b, err := gen.NewBuilder(tpl)
	if err != nil {
		t.Fatal(err)
	}
	const count = 3000
	s, err := gen.NewSender(gen.SenderConfig{Socket: sock, Builder: b, Stamp: true, Count: count})
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	sizes := map[int]int{}
	ports := map[uint16]int{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var h packet.Headers
		for deadline := time.Now().Add(10 * time.Second); len(got) < count && time.Now().Before(deadline); {
			kernel.Transmitted(func(fr []byte) {
				seq, _, ok := gen.ReadStamp(fr, &h)
				if !ok {
					t.Errorf("frame %d: no stamp", len(got))
				}
				got = append(got, seq)
				sizes[len(fr)]++
				ports[h.SrcPort]++
			})
			time.Sleep(100 * time.Microsecond)
		}
	}()
	st, err := s.Run(context.Background())
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if st.Sent != count || len(got) != count {
		t.Fatalf("sent %d, the kernel side saw %d; want %d", st.Sent, len(got), count)
	}
	for i, seq := range got {
		if seq != uint64(i) {
			t.Fatalf("frame %d has sequence number %d", i, seq)
		}
	}
	if sizes[64] != 1750 || sizes[576] != 1000 || sizes[1500] != 250 || len(ports) != 5 {
		t.Errorf("sizes %v, ports %v", sizes, ports)
	}
}

// Paced on a memory socket: the mean rate over the run.
func TestSenderPaced(t *testing.T) {
	sock, kernel, err := afxdp.NewMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	b, _ := gen.NewBuilder(template(gen.UDP, false))
	s, _ := gen.NewSender(gen.SenderConfig{Socket: sock, Builder: b, Rate: 20000, Duration: 500 * time.Millisecond})
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				kernel.Transmitted(nil)
				time.Sleep(200 * time.Microsecond)
			}
		}
	}()
	st, err := s.Run(context.Background())
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	rate := float64(st.Sent) / st.Elapsed.Seconds()
	t.Logf("%d frames in %v: %.0f/s", st.Sent, st.Elapsed, rate)
	if rate < 20000*0.9 || rate > 20000*1.1 {
		t.Errorf("rate %.0f/s, want 20000 (within 10%% here; the veth test checks 2%%)", rate)
	}
}

func TestSenderAllocs(t *testing.T) {
	sock, kernel, err := afxdp.NewMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	b, _ := gen.NewBuilder(template(gen.UDP, false))
	buf := make([]byte, 64)
	var h packet.Headers
	allocs := testing.AllocsPerRun(100, func() {
		n := b.Build(buf, 3, true)
		b.Stamp(buf[:n], 7, 9)
		_, _, _ = gen.ReadStamp(buf[:n], &h)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per frame", allocs)
	}
	_ = kernel
}

func TestRXTime(t *testing.T) {
	now := gen.Now()
	wall := uint64(gen.WallEpoch() + now)
	if got, ok := gen.RXTime(wall-5000, now); !ok || got != now-5000 {
		t.Errorf("an RX timestamp 5 µs ago: %d %v, want %d", got, ok, now-5000)
	}
	if _, ok := gen.RXTime(wall-uint64(2*time.Second), now); ok {
		t.Error("a NIC clock 2 s off: taken")
	}
	if _, ok := gen.RXTime(12345, now); ok {
		t.Error("a free-running NIC clock: taken")
	}
}
