//go:build linux

package afxdp_test

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/redirect"
	"github.com/xdpkit/xdpkit/umem"
)

const (
	jumboMTU = 9000
	// kernelHeadroom is XDP_PACKET_HEADROOM: in copy mode the kernel
	// fills a frame from this offset to its end.
	kernelHeadroom = 256
)

// chain builds descriptors of the given lengths, chained as one packet
// each time a length is followed by '|' in ends (true = last of a packet).
func chain(lens []uint32, ends []bool) []unix.XDPDesc {
	d := make([]unix.XDPDesc, len(lens))
	for i := range lens {
		d[i] = unix.XDPDesc{Addr: uint64(i) << 12, Len: lens[i]}
		if !ends[i] {
			d[i].Options = unix.XDP_PKT_CONTD
		}
	}
	return d
}

func TestNextPacketAndPackets(t *testing.T) {
	descs := chain([]uint32{3840, 3840, 1334, 60, 3840, 160, 3840}, []bool{false, false, true, true, false, true, false})
	var got [][]int
	var lens []int
	for pkt := range afxdp.Packets(descs) {
		var idx []int
		for _, d := range pkt {
			idx = append(idx, int(d.Addr>>12))
		}
		got = append(got, idx)
		lens = append(lens, afxdp.PacketLen(pkt))
	}
	if want := "[[0 1 2] [3] [4 5]]"; fmt.Sprint(got) != want {
		t.Errorf("Packets = %v, want %v (the incomplete last packet left out)", got, want)
	}
	if want := "[9014 60 4000]"; fmt.Sprint(lens) != want {
		t.Errorf("PacketLen = %v, want %v", lens, want)
	}
	for _, c := range []struct {
		descs []unix.XDPDesc
		want  int
	}{
		{nil, 0},
		{descs, 3},
		{descs[3:], 1},
		{descs[4:], 2},
		{descs[6:], 0},
		{descs[:2], 0},
	} {
		if got := afxdp.NextPacket(c.descs); got != c.want {
			t.Errorf("NextPacket(%d descs from %v) = %d, want %d", len(c.descs), c.descs, got, c.want)
		}
	}
	// Breaking out of the loop stops the iteration.
	n := 0
	for range afxdp.Packets(descs) {
		n++
		break
	}
	if n != 1 {
		t.Errorf("break after the first packet: %d iterations", n)
	}
	if allocs := testing.AllocsPerRun(100, func() {
		for pkt := range afxdp.Packets(descs) {
			_ = afxdp.PacketLen(pkt) + afxdp.NextPacket(pkt)
		}
	}); allocs != 0 {
		t.Errorf("Packets/PacketLen/NextPacket: %v allocations, want 0", allocs)
	}
}

func ExamplePackets() {
	// Three received descriptors: a 9014-byte packet in 3840+3840+1334
	// bytes (4096-byte frames), then a 60-byte one.
	descs := []unix.XDPDesc{
		{Addr: 0x0100, Len: 3840, Options: unix.XDP_PKT_CONTD},
		{Addr: 0x1100, Len: 3840, Options: unix.XDP_PKT_CONTD},
		{Addr: 0x2100, Len: 1334},
		{Addr: 0x3100, Len: 60},
	}
	for pkt := range afxdp.Packets(descs) {
		fmt.Println(len(pkt), "descriptors,", afxdp.PacketLen(pkt), "bytes")
	}
	// Output:
	// 3 descriptors, 9014 bytes
	// 1 descriptors, 60 bytes
}

// Receive jumbo frames on eth0 (MTU 9000) with 4096-byte UMEM frames,
// gather each packet and send it back, swapping the Ethernet addresses.
func ExampleSocket_ReceivePackets() {
	sock, err := afxdp.Open("eth0", 0, &afxdp.Config{MultiBuffer: true})
	if err != nil {
		log.Fatal(err) // on kernels before 6.6: errors.Is(err, afxdp.ErrNotSupported)
	}
	defer sock.Close()
	descs := make([]unix.XDPDesc, 64)
	buf := make([]byte, 9216)
	for sock.Wait(-1) == nil {
		n, err := sock.ReceivePackets(descs) // whole packets only
		if err != nil {
			log.Fatal(err)
		}
		for pkt := range afxdp.Packets(descs[:n]) {
			size := sock.CopyPacket(buf, pkt) // or read sock.Frame(d) of each
			fmt.Println(len(pkt), "frames,", size, "bytes")

			// The Ethernet header is in the first frame: swap in place.
			f := sock.Frame(pkt[0])
			var mac [6]byte
			copy(mac[:], f[0:6])
			copy(f[0:6], f[6:12])
			copy(f[6:12], mac[:])
		}
		sent, err := sock.TransmitPackets(descs[:n]) // whole packets only
		if err != nil {
			log.Fatal(err)
		}
		sock.Release(descs[sent:n]) // what did not fit in the TX ring
	}
}

// Send a 9000-byte packet from three 4096-byte frames.
func ExampleSocket_TransmitPacket() {
	sock, err := afxdp.Open("eth0", 0, &afxdp.Config{MultiBuffer: true})
	if err != nil {
		log.Fatal(err)
	}
	defer sock.Close()
	pkt := make([]byte, 9000) // an Ethernet frame, to fill in
	descs := make([]unix.XDPDesc, afxdp.MaxPacketFrames)
	n, err := sock.WritePacket(descs, pkt) // 3 frames: 4096 + 4096 + 808 bytes
	if err != nil {
		log.Fatal(err)
	}
	for {
		sent, err := sock.TransmitPacket(descs[:n]) // all 3 descriptors or none
		if err != nil {
			log.Fatal(err)
		}
		if sent {
			break
		}
		time.Sleep(time.Millisecond) // the TX ring is full: try again
	}
	if err := sock.Flush(time.Second); err != nil {
		log.Fatal(err)
	}
}

// jumboVeth is a veth pair with a 9000-byte MTU, on a kernel with
// multi-buffer AF_XDP (the test skips on an older one, and fails if a
// kernel new enough lacks it).
func jumboVeth(t *testing.T) *testutils.Veth {
	t.Helper()
	testutils.SkipOnOldKernel(t, "6.6", "multi-buffer AF_XDP (XDP_USE_SG)")
	return testutils.NewVeth(t, testutils.VethOptions{MTU: jumboMTU})
}

// mbConfig is a socket configuration with checked accounting.
func mbConfig(frameSize uint32, mode redirect.Mode, multiBuffer bool) *afxdp.Config {
	return &afxdp.Config{
		MultiBuffer: multiBuffer,
		UMEMOptions: &umem.Options{FrameSize: frameSize, FrameCount: 4096, Checked: true},
		Redirect:    &redirect.Options{Mode: mode},
	}
}

// wantDescs is how many descriptors the kernel uses for a packet of size
// bytes in copy mode: it fills each frame from the headroom to the end.
func wantDescs(size int, frameSize uint32) int {
	room := int(frameSize) - kernelHeadroom
	return (size + room - 1) / room
}

// receivePackets receives whole packets with ReceivePackets (batches of
// batch descriptors) until want test packets came or timeout passes,
// checks each packet's descriptor chain, and returns the gathered bytes
// and descriptor counts by sequence number. Frames are released.
func receivePackets(t *testing.T, s *afxdp.Socket, batch, want int, timeout time.Duration) (pkts map[uint32][]byte, ndescs map[uint32]int) {
	t.Helper()
	pkts, ndescs = map[uint32][]byte{}, map[uint32]int{}
	descs := make([]unix.XDPDesc, batch)
	buf := make([]byte, 16<<10)
	deadline := time.Now().Add(timeout)
	for len(pkts) < want {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v with %d of %d packets", timeout, len(pkts), want)
		}
		if err := s.Wait(100 * time.Millisecond); err != nil && !errors.Is(err, afxdp.ErrTimeout) {
			t.Fatalf("wait: %v", err)
		}
		n, err := s.ReceivePackets(descs)
		if err != nil {
			t.Fatalf("receive packets: %v", err)
		}
		if n > 0 && descs[n-1].Options&unix.XDP_PKT_CONTD != 0 {
			t.Fatalf("ReceivePackets ended the batch in the middle of a packet: %v", descs[:n])
		}
		for pkt := range afxdp.Packets(descs[:n]) {
			for i, d := range pkt {
				if d.Len == 0 || d.Len > s.UMEM().FrameSize()-kernelHeadroom {
					t.Errorf("descriptor %d of a packet has length %d", i, d.Len)
				}
			}
			size := s.CopyPacket(buf, pkt)
			if size != afxdp.PacketLen(pkt) {
				t.Fatalf("CopyPacket copied %d bytes of a %d-byte packet", size, afxdp.PacketLen(pkt))
			}
			seq, ok := seqOf(buf[:size])
			if !ok {
				continue
			}
			if _, dup := pkts[seq]; dup {
				t.Fatalf("packet %d received twice", seq)
			}
			pkts[seq] = bytes.Clone(buf[:size])
			ndescs[seq] = len(pkt)
		}
		if err := s.Release(descs[:n]); err != nil {
			t.Fatalf("release: %v", err)
		}
	}
	return pkts, ndescs
}

// TestMultiBufferReceive: on a veth pair with MTU 9000, frames up to
// 9014 bytes sent by the peer arrive at a MultiBuffer socket with 4096- or
// 2048-byte frames as one packet each, split over as many descriptors as
// the kernel needs, byte for byte, in driver and generic mode.
func TestMultiBufferReceive(t *testing.T) {
	sizes := []int{60, 1500, 1792, 1793, 3840, 3841, 4000, 8000, jumboMTU + 14}
	for _, mode := range []redirect.Mode{redirect.ModeDriver, redirect.ModeGeneric} {
		for _, fs := range []uint32{4096, 2048} {
			t.Run(fmt.Sprintf("%v/%d", mode, fs), func(t *testing.T) {
				v := jumboVeth(t)
				s := openHost(t, v, 0, mbConfig(fs, mode, true))
				if got := s.Program().Mode(); got != mode {
					t.Fatalf("program attached in %v mode, want %v", got, mode)
				}
				peer := v.OpenPeerPacketSocket(t)

				const rounds = 20
				want := map[uint32][]byte{}
				for r := range rounds {
					for i, size := range sizes {
						seq := uint32(r*len(sizes) + i)
						want[seq] = testFrame(v, seq, 1000, size)
						if err := peer.Send(want[seq]); err != nil {
							t.Fatal(err)
						}
					}
				}
				// 7 descriptors per batch: 9014-byte packets (3 or 6
				// descriptors) often do not fit in what is left of a batch.
				got, ndescs := receivePackets(t, s, 7, len(want), 10*time.Second)
				for seq, w := range want {
					if !bytes.Equal(got[seq], w) {
						t.Fatalf("packet %d (%d bytes) differs: got %d bytes", seq, len(w), len(got[seq]))
					}
					if n := wantDescs(len(w), fs); ndescs[seq] != n {
						t.Errorf("packet %d of %d bytes came in %d descriptors, want %d", seq, len(w), ndescs[seq], n)
					}
				}
				st, err := s.Stats()
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%d packets; stats %+v", len(want), st)
				if st.RXDropped != 0 || st.RXRingFull != 0 || st.RXInvalidDescs != 0 {
					t.Errorf("kernel drop counters: %+v", st)
				}
				checkAccounting(t, s)
				if c := s.UMEM().Counts(); c.App != 0 || c.TX != 0 {
					t.Errorf("frames held after release: %+v", c)
				}
			})
		}
	}
}

// TestMultiBufferBatchCut checks that ReceivePackets never hands out part
// of a packet, leaving a packet that does not fit in the slice on the ring,
// drops (and counts) a packet longer than the whole slice so the queue does
// not stick, and shows that Receive, which counts descriptors, does cut
// packets.
func TestMultiBufferBatchCut(t *testing.T) {
	v := jumboVeth(t)
	s := openHost(t, v, 0, mbConfig(4096, redirect.ModeAuto, true))
	peer := v.OpenPeerPacketSocket(t)

	send := func(seqs ...uint32) {
		t.Helper()
		for _, seq := range seqs {
			if err := peer.Send(testFrame(v, seq, 1000, 8000)); err != nil { // 3 descriptors
				t.Fatal(err)
			}
		}
		if err := s.Wait(5 * time.Second); err != nil {
			t.Fatalf("wait: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // let the other packets arrive too
	}
	send(1, 2, 3)

	descs := make([]unix.XDPDesc, 64)
	if n, err := s.ReceivePackets(descs[:2]); n != 0 || !errors.Is(err, afxdp.ErrPacketTooLong) {
		t.Fatalf("ReceivePackets with 2 slots for a 3-descriptor packet: %d, %v; want 0, ErrPacketTooLong", n, err)
	}
	if st, _ := s.Stats(); st.RXTooLong != 1 {
		t.Errorf("Stats.RXTooLong = %d after a packet too long for the slice, want 1", st.RXTooLong)
	}
	// The packet too long was dropped; 5 slots hold the next one and part
	// of the one after: that one stays.
	for _, want := range []uint32{2, 3} {
		n, err := s.ReceivePackets(descs[:5])
		if err != nil || n != 3 {
			t.Fatalf("ReceivePackets(5 slots) = %d, %v; want 3 (one packet)", n, err)
		}
		if seq, _ := seqOf(s.Frame(descs[0])); seq != want {
			t.Errorf("packet has sequence %d, want %d", seq, want)
		}
		if err := s.Release(descs[:n]); err != nil {
			t.Fatal(err)
		}
	}
	checkAccounting(t, s)

	// Receive takes descriptors: 5 of them end inside the second packet.
	send(4, 5)
	n, err := s.Receive(descs[:5])
	if err != nil || n != 5 {
		t.Fatalf("Receive(5 slots) = %d, %v; want 5", n, err)
	}
	if descs[4].Options&unix.XDP_PKT_CONTD == 0 {
		t.Errorf("Receive's batch of 5 ends with a packet's last descriptor, expected it in the middle of the second packet")
	}
	if err := s.Release(descs[:n]); err != nil {
		t.Fatal(err)
	}
	n, _ = s.Receive(descs)
	if n != 1 || descs[0].Options&unix.XDP_PKT_CONTD != 0 {
		t.Errorf("the rest of the packet: %d descriptors %v, want its last one", n, descs[:n])
	}
	if err := s.Release(descs[:n]); err != nil {
		t.Fatal(err)
	}
	checkAccounting(t, s)
}

// capture reads frames from the peer until one carries a test sequence
// number, and returns it.
func capture(t *testing.T, p *testutils.PacketSocket, timeout time.Duration) []byte {
	t.Helper()
	buf := make([]byte, 16<<10)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		n, err := p.Recv(buf, 100*time.Millisecond)
		if err != nil {
			continue
		}
		if _, ok := seqOf(buf[:n]); ok {
			return bytes.Clone(buf[:n])
		}
	}
	t.Fatalf("no test frame captured in %v", timeout)
	return nil
}

// TestMultiBufferTransmit sends 9000- and 9014-byte packets built from
// several frames with TransmitPacket; the peer captures each as one
// frame with the exact bytes, and every frame comes back through the
// completion ring.
func TestMultiBufferTransmit(t *testing.T) {
	for _, fs := range []uint32{4096, 2048} {
		t.Run(fmt.Sprint(fs), func(t *testing.T) {
			v := jumboVeth(t)
			s := openHost(t, v, 0, mbConfig(fs, redirect.ModeAuto, true))
			peer := v.OpenPeerPacketSocket(t)
			pool := s.Pool()
			free := pool.FreeFrames()

			// 9000 bytes by hand, in 3 frames of 3000 bytes (6 of 1500
			// with 2048-byte frames), from the socket's pool.
			pkt := testutils.UDPFrame(v.PeerMAC, v.HostMAC, v.HostIP.As4(), v.PeerIP.As4(), testPort, 1000, payload(1, jumboMTU-42))
			descs := make([]unix.XDPDesc, afxdp.MaxPacketFrames)
			chunk := 3000 * int(fs) / 4096
			frames := len(pkt) / chunk
			for i := range frames {
				addr, ok := pool.Alloc()
				if !ok {
					t.Fatal("no free frame")
				}
				descs[i] = unix.XDPDesc{Addr: addr, Len: uint32(copy(s.UMEM().Frame(addr), pkt[i*chunk:(i+1)*chunk]))}
			}
			sent, err := s.TransmitPacket(descs[:frames])
			if err != nil || !sent {
				t.Fatalf("TransmitPacket of %d frames: %v, %v", frames, sent, err)
			}
			var sentBytes uint64
			for i := range frames {
				sentBytes += uint64(descs[i].Len)
				if last := i == frames-1; (descs[i].Options&unix.XDP_PKT_CONTD == 0) != last {
					t.Errorf("descriptor %d of %d: Options %#x", i, frames, descs[i].Options)
				}
			}
			if got := capture(t, peer, 5*time.Second); !bytes.Equal(got, pkt) {
				t.Fatalf("captured %d bytes, want the %d sent", len(got), len(pkt))
			}

			// WritePacket fills whole frames: 9014 bytes take 3 or 5.
			pkt = testutils.UDPFrame(v.PeerMAC, v.HostMAC, v.HostIP.As4(), v.PeerIP.As4(), testPort, 1000, payload(2, jumboMTU+14-42))
			n, err := s.WritePacket(descs, pkt)
			if want := (len(pkt) + int(fs) - 1) / int(fs); err != nil || n != want {
				t.Fatalf("WritePacket(%d bytes) = %d, %v; want %d", len(pkt), n, err, want)
			}
			if sent, err := s.TransmitPacket(descs[:n]); err != nil || !sent {
				t.Fatalf("TransmitPacket of %d frames: %v, %v", n, sent, err)
			}
			if got := capture(t, peer, 5*time.Second); !bytes.Equal(got, pkt) {
				t.Fatalf("captured %d bytes, want the %d sent", len(got), len(pkt))
			}

			if err := s.Flush(5 * time.Second); err != nil {
				t.Fatalf("flush: %v", err)
			}
			st, err := s.Stats()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("stats %+v", st)
			if want := uint64(frames + n); st.TXPackets != want || st.TXCompleted != want || st.TXInvalidDescs != 0 {
				t.Errorf("stats: %d descriptors sent, %d completed, %d invalid; want %d, %d, 0", st.TXPackets, st.TXCompleted, st.TXInvalidDescs, want, want)
			}
			if want := sentBytes + uint64(len(pkt)); st.TXBytes != want {
				t.Errorf("stats: %d bytes sent, want %d", st.TXBytes, want)
			}
			if got := pool.FreeFrames(); got != free {
				t.Errorf("%d free frames after completion, want %d as before", got, free)
			}
			checkAccounting(t, s)
		})
	}
}

// payload is n bytes of a test payload with sequence number seq.
func payload(seq uint32, n int) []byte {
	f := make([]byte, n)
	copy(f, magic)
	f[len(magic)+3] = byte(seq)
	for i := len(magic) + 4; i < n; i++ {
		f[i] = byte(i*7) ^ byte(seq)
	}
	return f
}

// TestMultiBufferReflect receives jumbo packets and sends their chained
// descriptors straight back with TransmitPackets.
func TestMultiBufferReflect(t *testing.T) {
	v := jumboVeth(t)
	s := openHost(t, v, 0, mbConfig(2048, redirect.ModeAuto, true))
	peer := v.OpenPeerPacketSocket(t)

	const count = 10
	want := map[uint32][]byte{}
	for seq := range uint32(count) {
		want[seq] = testFrame(v, seq, 1000, 8000+int(seq))
		if err := peer.Send(want[seq]); err != nil {
			t.Fatal(err)
		}
	}
	descs := make([]unix.XDPDesc, 64)
	reflected := 0
	deadline := time.Now().Add(5 * time.Second)
	for reflected < count*wantDescs(8000, 2048) {
		if time.Now().After(deadline) {
			t.Fatalf("reflected %d descriptors in 5s", reflected)
		}
		_ = s.Wait(100 * time.Millisecond)
		n, err := s.ReceivePackets(descs)
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < n; {
			k, err := s.TransmitPackets(descs[off:n])
			if err != nil {
				t.Fatalf("TransmitPackets: %v", err)
			}
			if k > 0 && afxdp.NextPacket(descs[off:off+k]) == 0 {
				t.Fatal("TransmitPackets took part of a packet")
			}
			off += k
			reflected += k
			if k == 0 {
				if time.Now().After(deadline) {
					t.Fatal("TX ring stayed full")
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	got := map[uint32]bool{}
	for i := 0; len(got) < count; i++ {
		if i > 10*count {
			t.Fatalf("captured %d distinct packets in %d frames", len(got), i)
		}
		f := capture(t, peer, 5*time.Second)
		seq, _ := seqOf(f)
		if !bytes.Equal(f, want[seq]) {
			t.Fatalf("reflected packet %d differs", seq)
		}
		got[seq] = true
	}
	if err := s.Flush(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	checkAccounting(t, s)
}

// TestMultiBufferTransmitRefused checks that packets the kernel would drop
// without completing their frames are refused before they reach the ring,
// and that a refused or unsent packet stays the caller's.
func TestMultiBufferTransmitRefused(t *testing.T) {
	v := jumboVeth(t)
	s := openHost(t, v, 0, mbConfig(4096, redirect.ModeAuto, true))
	single := openHost(t, testutils.NewVeth(t, testutils.VethOptions{}), 0, mbConfig(4096, redirect.ModeAuto, false))

	alloc := func(s *afxdp.Socket, n int) []unix.XDPDesc {
		descs := make([]unix.XDPDesc, n)
		for i := range descs {
			addr, ok := s.Pool().Alloc()
			if !ok {
				t.Fatal("no free frame")
			}
			descs[i] = unix.XDPDesc{Addr: addr, Len: 100}
		}
		return descs
	}
	descs := alloc(s, afxdp.MaxPacketFrames+1)
	addrs := make([]uint64, len(descs))
	for i := range descs {
		addrs[i] = descs[i].Addr
	}
	reset := func() {
		for i := range descs {
			descs[i] = unix.XDPDesc{Addr: addrs[i], Len: 100}
		}
	}
	cases := []struct {
		name  string
		s     *afxdp.Socket
		descs func() []unix.XDPDesc
		want  error
	}{
		{"empty", s, func() []unix.XDPDesc { return nil }, afxdp.ErrInvalidPacket},
		{"zero length", s, func() []unix.XDPDesc { d := descs[:3]; d[1].Len = 0; return d }, afxdp.ErrInvalidPacket},
		{"crosses frame end", s, func() []unix.XDPDesc { d := descs[:3]; d[1].Addr += 4000; return d }, afxdp.ErrInvalidPacket},
		{"outside UMEM", s, func() []unix.XDPDesc { d := descs[:2]; d[1].Addr = 4096 * 4096; return d }, afxdp.ErrInvalidPacket},
		{"unknown option", s, func() []unix.XDPDesc { d := descs[:1]; d[0].Options = unix.XDP_TX_METADATA; return d }, afxdp.ErrInvalidPacket},
		{"too many frames", s, func() []unix.XDPDesc { return descs }, afxdp.ErrPacketTooLong},
		{"several frames without MultiBuffer", single, func() []unix.XDPDesc { return alloc(single, 2) }, afxdp.ErrInvalidPacket},
	}
	for _, c := range cases {
		reset()
		d := c.descs()
		// The Options check is about TransmitPackets: TransmitPacket sets
		// the chain flags itself but keeps other bits.
		sent, err := c.s.TransmitPacket(d)
		if sent || !errors.Is(err, c.want) {
			t.Errorf("%s: TransmitPacket = %v, %v; want false, %v", c.name, sent, err, c.want)
		}
	}
	// An incomplete chain: TransmitPackets sends the whole packet before it.
	reset()
	descs[0].Options, descs[1].Options, descs[2].Options = unix.XDP_PKT_CONTD, 0, unix.XDP_PKT_CONTD
	n, err := s.TransmitPackets(descs[:3])
	if n != 2 || !errors.Is(err, afxdp.ErrInvalidPacket) {
		t.Errorf("TransmitPackets(packet, incomplete packet) = %d, %v; want 2, ErrInvalidPacket", n, err)
	}
	// A refused descriptor inside a packet: the packets before it go, the
	// part of its packet staged before it does not (nor its bytes).
	reset()
	rest := descs[2:5]
	rest[0].Options, rest[1].Options, rest[2].Len = 0, unix.XDP_PKT_CONTD, 0
	if n, err := s.TransmitPackets(rest); n != 1 || err == nil {
		t.Errorf("TransmitPackets(packet, packet with a zero-length descriptor) = %d, %v; want 1 and an error", n, err)
	}
	// A packet longer than the TX ring can never be sent.
	small := openHost(t, testutils.NewVeth(t, testutils.VethOptions{}), 0, &afxdp.Config{MultiBuffer: true, TXRingSize: 4})
	d4 := alloc(small, 5)
	if sent, err := small.TransmitPacket(d4); sent || !errors.Is(err, afxdp.ErrPacketTooLong) {
		t.Errorf("5 frames on a 4-slot TX ring: %v, %v; want ErrPacketTooLong", sent, err)
	}
	if err := s.Flush(time.Second); err != nil {
		t.Fatal(err)
	}
	if c := s.Pool().Counts(); c.App != afxdp.MaxPacketFrames+1-3 {
		t.Errorf("refused frames must stay the caller's: %+v", c)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.TXInvalidDescs != 0 {
		t.Errorf("the kernel saw %d invalid descriptors", st.TXInvalidDescs)
	}
	if want := uint64(3 * 100); st.TXPackets != 3 || st.TXBytes != want {
		t.Errorf("stats: %d descriptors, %d bytes sent; want the whole packets' 3, %d", st.TXPackets, st.TXBytes, want)
	}
	checkAccounting(t, s)
}

// TestMultiBufferKernelTXBehaviour documents what the kernel does with
// multi-buffer packets put on the TX ring with plain Transmit, past the
// checks of TransmitPacket:
//
//   - a packet with an invalid descriptor (here zero length in the
//     middle), or with more descriptors than CONFIG_MAX_SKB_FRAGS+1, is
//     dropped and all its descriptors are counted in TXInvalidDescs; the
//     next descriptor starts a new packet. af_xdp.rst says the frames are
//     not completed; Linux 6.18 completes them, which is only logged here;
//   - half a packet (the last descriptor has XDP_PKT_CONTD) is held by the
//     kernel, its frames not completed, until more descriptors come, and
//     the next descriptor, meant as a packet of its own, is glued onto it.
func TestMultiBufferKernelTXBehaviour(t *testing.T) {
	v := jumboVeth(t)
	s := openHost(t, v, 0, mbConfig(4096, redirect.ModeAuto, true))
	peer := v.OpenPeerPacketSocket(t)
	frame := testFrame(v, 1, 1000, 100)
	alloc := func(n int) []unix.XDPDesc {
		descs := make([]unix.XDPDesc, n)
		for i := range descs {
			addr, _ := s.Pool().Alloc()
			descs[i] = unix.XDPDesc{Addr: addr, Len: uint32(copy(s.UMEM().Frame(addr), frame)), Options: unix.XDP_PKT_CONTD}
		}
		descs[n-1].Options = 0
		return descs
	}
	peerGot := func() (sizes []int) {
		buf := make([]byte, 16<<10)
		for range 100 {
			n, err := peer.Recv(buf, 100*time.Millisecond)
			if err != nil {
				return sizes
			}
			if _, ok := seqOf(buf[:n]); ok {
				sizes = append(sizes, n)
			}
		}
		return sizes
	}
	stats := func() afxdp.Stats {
		st, err := s.Stats()
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	// An invalid packet of 3, one of 19, then a valid single frame.
	bad := alloc(3)
	bad[1].Len = 0
	long := alloc(afxdp.MaxPacketFrames + 1)
	for _, d := range [][]unix.XDPDesc{bad, long, alloc(1)} {
		// Past Transmit's checks, which refuse both bad packets.
		if n, err := s.TransmitUncheckedForTest(d); n != len(d) || err != nil {
			t.Fatalf("Transmit = %d, %v", n, err)
		}
	}
	flushErr := s.Flush(500 * time.Millisecond)
	if got := peerGot(); fmt.Sprint(got) != "[100]" {
		t.Errorf("peer captured frames of %v bytes, want only the valid 100-byte one", got)
	}
	st := stats()
	if want := uint64(3 + afxdp.MaxPacketFrames + 1); st.TXInvalidDescs != want {
		t.Errorf("kernel counted %d invalid TX descriptors, want %d", st.TXInvalidDescs, want)
	}
	t.Logf("invalid packets: flush %v, %d frames not completed, %d completed; Stats.TXInvalidDescs %d", flushErr, s.PendingTX(), st.TXCompleted, st.TXInvalidDescs)
	if flushErr == nil {
		checkAccounting(t, s)
	}

	// Half a packet, then a packet of one frame: the peer gets one frame
	// of both.
	if n, err := s.TransmitUncheckedForTest(alloc(3)[:2]); n != 2 || err != nil {
		t.Fatalf("Transmit = %d, %v", n, err)
	}
	pending := s.PendingTX()
	if err := s.Flush(200 * time.Millisecond); !errors.Is(err, afxdp.ErrTXStalled) {
		t.Errorf("flush with half a packet on the ring: %v, want ErrTXStalled (the kernel holds it)", err)
	}
	if s.PendingTX() != pending {
		t.Errorf("%d frames pending after flush, %d before", s.PendingTX(), pending)
	}
	if n, err := s.Transmit(alloc(1)); n != 1 || err != nil {
		t.Fatalf("Transmit = %d, %v", n, err)
	}
	if err := s.Flush(time.Second); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if got := peerGot(); fmt.Sprint(got) != "[300]" {
		t.Errorf("peer captured frames of %v bytes, want one of 300 (the half packet and the next frame glued)", got)
	}
}

// TestWithoutMultiBuffer: on the same MTU-9000 pair, a socket without
// MultiBuffer gets the small frames and never the large ones. The
// redirect program, loaded without fragment support, cannot attach in
// driver mode (veth refuses it above an MTU of about 3500), so auto mode
// falls back to generic mode, where the kernel linearizes the frame, the
// program redirects it, and the socket drops it as larger than a frame
// (Stats.RXDropped).
func TestWithoutMultiBuffer(t *testing.T) {
	v := jumboVeth(t)
	if s, err := afxdp.OpenIndex(v.HostIndex, 0, mbConfig(4096, redirect.ModeDriver, false)); !errors.Is(err, unix.ERANGE) {
		t.Errorf("driver mode without fragment support at MTU 9000: %v, want ERANGE", err)
		_ = s.Close()
	} else {
		t.Logf("driver mode: %v", err)
	}
	s := openHost(t, v, 0, mbConfig(4096, redirect.ModeAuto, false))
	if m := s.Program().Mode(); m != redirect.ModeGeneric {
		t.Errorf("auto mode attached in %v mode, want the generic fallback", m)
	}
	peer := v.OpenPeerPacketSocket(t)
	sizes := []int{60, 3840, 3841, 8000, 1500, jumboMTU + 14}
	for seq, size := range sizes {
		if err := peer.Send(testFrame(v, uint32(seq), 1000, size)); err != nil {
			t.Fatal(err)
		}
	}
	got := map[uint32]int{}
	receiveUntil(t, s, 5*time.Second, func() bool { return len(got) >= 3 }, func(seq uint32, f []byte) { got[seq] = len(f) })
	// Anything else would have come by now.
	time.Sleep(100 * time.Millisecond)
	descs := make([]unix.XDPDesc, 64)
	n, _ := s.Receive(descs)
	for _, d := range descs[:n] {
		if seq, ok := seqOf(s.Frame(d)); ok {
			got[seq] = int(d.Len)
		}
	}
	if err := s.Release(descs[:n]); err != nil {
		t.Fatal(err)
	}
	if want := map[uint32]int{0: 60, 1: 3840, 4: 1500}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("received %v (sequence: length), want %v", got, want)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stats %+v", st)
	if st.RXDropped != 3 {
		t.Errorf("kernel counted %d dropped frames, want 3 (the ones larger than 3840 bytes)", st.RXDropped)
	}
	checkAccounting(t, s)
}

// TestMultiBufferSharedProgramGeneric: a MultiBuffer socket registered in
// a shared program loaded without fragment support, attached in generic
// mode, still gets jumbo frames in several descriptors: the kernel
// linearizes the frame for the program and splits it for the socket.
func TestMultiBufferSharedProgramGeneric(t *testing.T) {
	v := jumboVeth(t)
	p, err := redirect.Attach(v.HostIndex, &redirect.Options{Mode: redirect.ModeGeneric})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() }) // after the socket's Close
	cfg := mbConfig(4096, redirect.ModeAuto, true)
	cfg.Steering, cfg.Redirect = p, nil
	s := openHost(t, v, 0, cfg)
	peer := v.OpenPeerPacketSocket(t)
	want := map[uint32][]byte{}
	for seq, size := range []int{60, 8000, jumboMTU + 14} {
		want[uint32(seq)] = testFrame(v, uint32(seq), 1000, size)
		if err := peer.Send(want[uint32(seq)]); err != nil {
			t.Fatal(err)
		}
	}
	got, ndescs := receivePackets(t, s, 64, len(want), 5*time.Second)
	for seq, w := range want {
		if !bytes.Equal(got[seq], w) || ndescs[seq] != wantDescs(len(w), 4096) {
			t.Errorf("packet %d: %d bytes in %d descriptors, want %d in %d", seq, len(got[seq]), ndescs[seq], len(w), wantDescs(len(w), 4096))
		}
	}
	checkAccounting(t, s)
}

// TestMultiBufferOpenErrors: a driver without zero-copy (veth) refuses
// BindZeroCopy with MultiBuffer, and the error says both.
func TestMultiBufferOpenErrors(t *testing.T) {
	v := jumboVeth(t)
	s, err := afxdp.OpenIndex(v.HostIndex, 0, &afxdp.Config{MultiBuffer: true, Bind: afxdp.BindZeroCopy, Steering: afxdp.NoSteering})
	if err == nil {
		_ = s.Close()
		t.Fatal("zero-copy multi-buffer on veth: no error")
	}
	t.Logf("zero-copy: %v", err)
	if !errors.Is(err, afxdp.ErrZeroCopyNotSupported) || !errors.Is(err, afxdp.ErrNotSupported) || !strings.Contains(err.Error(), "MultiBuffer") {
		t.Errorf("zero-copy multi-buffer on veth: %v; want ErrZeroCopyNotSupported mentioning MultiBuffer", err)
	}
	// Copy mode works on any driver.
	s = openHost(t, v, 0, &afxdp.Config{MultiBuffer: true, Bind: afxdp.BindCopy})
	if s.ZeroCopy() {
		t.Error("BindCopy socket reports zero-copy")
	}
}

// TestMultiBufferAllocs: receiving, gathering and releasing multi-buffer
// packets allocates nothing, and neither does the peer's WritePacket and
// TransmitPacket loop that sends them meanwhile (allocations are counted
// process-wide).
func TestMultiBufferAllocs(t *testing.T) {
	v := jumboVeth(t)
	s := openHost(t, v, 0, mbConfig(4096, redirect.ModeAuto, true))
	p := openPeerTX(t, v, &afxdp.Config{MultiBuffer: true, Bind: afxdp.BindCopy})
	frame := testFrame(v, 1, 4000, 8000)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		descs := make([]unix.XDPDesc, afxdp.MaxPacketFrames)
		for {
			select {
			case <-stop:
				return
			default:
			}
			p.Complete()
			n, err := p.WritePacket(descs, frame)
			if err != nil {
				runtime.Gosched()
				continue
			}
			if sent, _ := p.TransmitPacket(descs[:n]); !sent {
				_ = p.Release(descs[:n])
				runtime.Gosched()
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	descs := make([]unix.XDPDesc, 64)
	buf := make([]byte, 16<<10)
	var packets, bad int
	allocs := testing.AllocsPerRun(5000, func() {
		n, _ := s.ReceivePackets(descs)
		for pkt := range afxdp.Packets(descs[:n]) {
			if s.CopyPacket(buf, pkt) != len(frame) || len(pkt) != 3 {
				bad++
			}
			packets++
		}
		_ = s.Release(descs[:n])
		if n == 0 {
			runtime.Gosched() // AllocsPerRun runs with GOMAXPROCS=1: let the sender in
		}
	})
	if allocs != 0 {
		t.Errorf("receive/gather/release: %v allocations per batch, want 0", allocs)
	}
	if packets == 0 {
		t.Fatal("no packets flowed during the measurement")
	}
	if bad != 0 {
		t.Errorf("%d of %d packets were not 8000 bytes in 3 descriptors", bad, packets)
	}
	t.Logf("received %d packets during the measurement", packets)
}
