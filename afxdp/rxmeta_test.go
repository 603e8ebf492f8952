//go:build linux

package afxdp_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/redirect"
	"github.com/xdpkit/xdpkit/umem"
)

// The RX metadata tests run the real device-bound program on the host end
// of a veth. What veth reports (drivers/net/veth.c, veth_xdp_rx_timestamp,
// veth_xdp_rx_hash, veth_xdp_rx_vlan_tag) depends on how the frame came:
//   - as an skb (sent by the peer's stack or a packet socket): the
//     timestamp is skb_hwtstamps(skb)->hwtstamp, which nothing sets on a
//     veth, so 0 (reported as none); the hash is skb_get_hash(skb), of
//     type XDP_RSS_TYPE_L4_ANY when it covered the ports; the VLAN tag is
//     the skb's offloaded one (__vlan_hwaccel_get_tag), -ENODATA if none.
//   - as an XDP frame (XDP_TX by the peer's program, or redirected into
//     the veth): no skb, so -ENODATA for all three.

// openRXMeta opens a socket on the host end of v with a private redirect
// program that stores RX metadata, skipping before Linux 6.8.
func openRXMeta(t *testing.T, v *testutils.Veth, uo *umem.Options) *afxdp.Socket {
	t.Helper()
	s, err := afxdp.OpenIndex(v.HostIndex, 0, &afxdp.Config{
		UMEMOptions: uo, RXRingSize: 256, TXRingSize: 64,
		Redirect: &redirect.Options{RXMetadata: true},
	})
	testutils.SkipIfNotSupported(t, err, "6.8", "XDP RX metadata kfuncs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if !s.Program().RXMetadata() {
		t.Fatal("the private program does not store RX metadata")
	}
	return s
}

// rxFrame is a received test frame with its descriptor's metadata.
type rxFrame struct {
	seq   uint32
	frame []byte // a copy
	meta  afxdp.RXMetadata
	ok    bool
	// parsed is redirect.ParseRXMetadata of the frame's headroom, the
	// way the bytes look without the socket's check of its program.
	parsed   afxdp.RXMetadata
	parsedOK bool
}

// collect receives until n test frames have arrived (or fails after
// timeout) and returns them in arrival order. each, if not nil, runs on
// every test frame's descriptor before it is recycled.
func collect(t *testing.T, s *afxdp.Socket, n int, timeout time.Duration, each func(afxdp.Desc)) []rxFrame {
	t.Helper()
	var got []rxFrame
	descs := make([]afxdp.Desc, 64)
	deadline := time.Now().Add(timeout)
	for len(got) < n {
		if time.Now().After(deadline) {
			st, _ := s.Stats()
			t.Fatalf("received %d of %d test frames in %v (%+v)", len(got), n, timeout, st)
		}
		if err := s.Wait(100 * time.Millisecond); err != nil && !errors.Is(err, afxdp.ErrTimeout) {
			t.Fatal(err)
		}
		k, err := s.Receive(descs)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range descs[:k] {
			f := s.Frame(d)
			seq, isTest := seqOf(f)
			if !isTest && len(f) >= 46 && binary.BigEndian.Uint16(f[12:]) == unix.ETH_P_8021Q {
				seq, isTest = seqOf(append(f[:12:12], f[16:]...)) // an in-band VLAN tag
			}
			if !isTest {
				continue
			}
			r := rxFrame{seq: seq, frame: append([]byte(nil), f...)}
			r.meta, r.ok = s.RXMetadata(d)
			head, off := s.FrameHeadroom(d)
			r.parsed, r.parsedOK = redirect.ParseRXMetadata(head[:off])
			if each != nil {
				each(d)
			}
			got = append(got, r)
		}
		// Straight back to the fill ring, so the next burst finds it full.
		if err := s.Recycle(descs[:k]); err != nil {
			t.Fatal(err)
		}
	}
	return got
}

// peerUDP sends n datagrams carrying the test magic and a sequence number
// from the peer's kernel stack to the host's testPort, from a UDP socket
// bound to sport.
func peerUDP(t *testing.T, v *testutils.Veth, sport, first, n int) {
	t.Helper()
	var c *net.UDPConn
	v.InPeer(t, func() (err error) {
		c, err = net.DialUDP("udp4", &net.UDPAddr{IP: v.PeerIP.AsSlice(), Port: sport}, &net.UDPAddr{IP: v.HostIP.AsSlice(), Port: testPort})
		return err
	})
	defer c.Close()
	for i := range n {
		p := make([]byte, len(magic)+4)
		copy(p, magic)
		binary.BigEndian.PutUint32(p[len(magic):], uint32(first+i))
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
	}
}

// Frames from the peer's kernel stack, on UMEMs of each kind: metadata
// present, the hash of every frame of a flow the same and of type L4,
// no VLAN tag, and no timestamp (veth has no hardware timestamps, even
// with software RX timestamping enabled) or, if a kernel ever reports
// one, a non-zero and monotonic one.
func TestRXMetadataFromPeerStack(t *testing.T) {
	for _, tc := range []struct {
		name string
		uo   umem.Options
	}{
		{"aligned", umem.Options{FrameCount: 512, FrameSize: 2048, FillRingSize: 256, CompletionRingSize: 64}},
		{"headroom", umem.Options{FrameCount: 512, FrameSize: 4096, Headroom: 100, FillRingSize: 256, CompletionRingSize: 64}},
		{"unaligned", umem.Options{FrameCount: 512, FrameSize: 3000, Unaligned: true, FillRingSize: 256, CompletionRingSize: 64}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := testutils.NewVeth(t, testutils.VethOptions{})
			s := openRXMeta(t, v, &tc.uo)

			// Software RX timestamps on (net_enable_timestamp): a socket
			// with SO_TIMESTAMPNS, in the host's namespace. It changes
			// skb->tstamp, not the hardware timestamp veth reports.
			ts, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(ts)
			if err := unix.SetsockoptInt(ts, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
				t.Fatal(err)
			}

			const perFlow = 16
			peerUDP(t, v, 40001, 0, perFlow)
			peerUDP(t, v, 40002, perFlow, perFlow)
			allocs := -1.0
			got := collect(t, s, 2*perFlow, 5*time.Second, func(d afxdp.Desc) {
				if allocs < 0 {
					allocs = testing.AllocsPerRun(100, func() { _, _ = s.RXMetadata(d) })
				}
			})
			if allocs != 0 {
				t.Errorf("RXMetadata allocates %v times per call, want 0", allocs)
			}

			hashes := map[uint16]uint32{} // by source port
			var lastTS uint64
			timestamps := 0
			for _, r := range got {
				if !r.ok || r.meta != r.parsed || !r.parsedOK {
					t.Fatalf("frame %d: RXMetadata %+v %v, parsed %+v %v; want the same, ok", r.seq, r.meta, r.ok, r.parsed, r.parsedOK)
				}
				m := r.meta
				if !m.HashOK || m.Hash == 0 || m.HashType&redirect.RSSL4 == 0 {
					t.Errorf("frame %d: hash %#x type %#x ok %v, want a non-zero L4 hash", r.seq, m.Hash, m.HashType, m.HashOK)
				}
				sport := binary.BigEndian.Uint16(r.frame[34:])
				if h, seen := hashes[sport]; seen && h != m.Hash {
					t.Errorf("frame %d: hash %#x, but %#x for an earlier frame of the same flow", r.seq, m.Hash, h)
				}
				hashes[sport] = m.Hash
				if m.VLANOK || m.VLANProto != 0 || m.VLANTCI != 0 {
					t.Errorf("frame %d: VLAN %#x/%#x ok %v for an untagged frame", r.seq, m.VLANProto, m.VLANTCI, m.VLANOK)
				}
				switch {
				case m.TimestampOK && (m.Timestamp == 0 || m.Timestamp < lastTS):
					t.Errorf("frame %d: timestamp %d after %d: want non-zero and monotonic", r.seq, m.Timestamp, lastTS)
				case m.TimestampOK:
					lastTS = m.Timestamp
					timestamps++
				case m.Timestamp != 0:
					t.Errorf("frame %d: timestamp %d without TimestampOK", r.seq, m.Timestamp)
				}
			}
			if len(hashes) == 2 && hashes[40001] == hashes[40002] {
				t.Logf("both flows hash to %#x (possible, unlikely)", hashes[40001])
			}
			t.Logf("%d frames: %d with a timestamp; hashes by source port %#x; first %v", len(got), timestamps, hashes, got[0].meta)
			if timestamps > 0 {
				t.Logf("this kernel's veth reports RX timestamps")
			}
		})
	}
}

// vlanPush is a TC program (TCX egress on the peer) that gives every
// frame an offloaded 802.1Q tag (bpf_skb_vlan_push puts it in the skb, not
// in the data), as a VLAN device over a NIC with TX VLAN offload would.
func vlanPush(t *testing.T, v *testutils.Veth, tci uint16) {
	t.Helper()
	testutils.SkipOnOldKernel(t, "6.6", "TCX")
	proto := binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, unix.ETH_P_8021Q)) // __be16
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "xdpkit_vlanpush", Type: ebpf.SchedCLS, License: "Dual MIT/GPL",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R2, int32(proto)),
			asm.Mov.Imm(asm.R3, int32(tci)),
			asm.FnSkbVlanPush.Call(), // r1 is the skb
			asm.Mov.Imm(asm.R0, 0),   // TCX_PASS
			asm.Return(),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	var l link.Link
	v.InPeer(t, func() (err error) {
		l, err = link.AttachTCX(link.TCXOptions{Interface: v.PeerIndex, Program: prog, Attach: ebpf.AttachTCXEgress})
		return err
	})
	t.Cleanup(func() { l.Close() })
}

// A VLAN tag offloaded into the skb (the path veth_xdp_rx_vlan_tag reads)
// is reported and is not in the frame; a tag in the frame's data, as a
// packet socket sends it, is not reported and stays in the frame.
func TestRXMetadataVLAN(t *testing.T) {
	t.Run("offloaded", func(t *testing.T) {
		v := testutils.NewVeth(t, testutils.VethOptions{})
		s := openRXMeta(t, v, &umem.Options{FrameCount: 256, FrameSize: 2048, FillRingSize: 128, CompletionRingSize: 64})
		const tci = 3<<13 | 59 // priority 3, VLAN 59
		vlanPush(t, v, tci)
		peerUDP(t, v, 40003, 0, 8)
		for _, r := range collect(t, s, 8, 5*time.Second, nil) {
			m := r.meta
			if !r.ok || !m.VLANOK || m.VLANProto != unix.ETH_P_8021Q || m.VLANTCI != tci || m.VLANID() != 59 {
				t.Errorf("frame %d: %v ok %v, want VLAN 0x8100/%#x", r.seq, m, r.ok, tci)
			}
			if et := binary.BigEndian.Uint16(r.frame[12:]); et != unix.ETH_P_IP {
				t.Errorf("frame %d: EtherType %#x in the data, want 0x0800 (the tag stripped)", r.seq, et)
			}
			if !m.HashOK {
				t.Errorf("frame %d: no hash", r.seq)
			}
		}
	})
	t.Run("in the data", func(t *testing.T) {
		v := testutils.NewVeth(t, testutils.VethOptions{})
		s := openRXMeta(t, v, &umem.Options{FrameCount: 256, FrameSize: 2048, FillRingSize: 128, CompletionRingSize: 64})
		ps := v.OpenPeerPacketSocket(t)
		for seq := range uint32(8) {
			f := testFrame(v, seq, 40004, 60)
			tagged := append(append(append([]byte(nil), f[:12]...), 0x81, 0x00, 0x00, 59), f[12:]...)
			if err := ps.Send(tagged); err != nil {
				t.Fatal(err)
			}
		}
		for _, r := range collect(t, s, 8, 5*time.Second, nil) {
			m := r.meta
			if !r.ok || m.VLANOK {
				t.Errorf("frame %d: %v ok %v, want metadata without a VLAN tag", r.seq, m, r.ok)
			}
			if tpid := binary.BigEndian.Uint16(r.frame[12:]); tpid != unix.ETH_P_8021Q {
				t.Errorf("frame %d: TPID %#x in the data, want the tag still there", r.seq, tpid)
			}
		}
	})
}

// Frames that reach the host end as XDP frames, without an skb (the peer's
// XDP program sends them back with XDP_TX): the program still stores the
// magic, and every kfunc says -ENODATA, so no field is ok.
func TestRXMetadataXDPFrames(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	s := openRXMeta(t, v, &umem.Options{FrameCount: 256, FrameSize: 2048, FillRingSize: 128, CompletionRingSize: 64})
	bounce, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "xdpkit_bounce", Type: ebpf.XDP, License: "Dual MIT/GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 3), asm.Return()}, // XDP_TX
	})
	if err != nil {
		t.Fatal(err)
	}
	defer bounce.Close()
	var l link.Link
	v.InPeer(t, func() (err error) {
		l, err = link.AttachXDP(link.XDPOptions{Program: bounce, Interface: v.PeerIndex, Flags: link.XDPDriverMode})
		return err
	})
	defer l.Close()

	ps := testutils.OpenPacketSocket(t, v.HostIndex) // out of the host end, back as XDP frames
	for seq := range uint32(8) {
		if err := ps.Send(testFrame(v, seq, 40005, 60)); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range collect(t, s, 8, 5*time.Second, nil) {
		if !r.ok || r.meta != (afxdp.RXMetadata{}) {
			t.Errorf("frame %d: %v ok %v, want metadata with no field ok", r.seq, r.meta, r.ok)
		}
	}
}

// A socket whose program stores no metadata reports none, even when the
// headroom of its frames still holds the metadata of frames an earlier
// socket on the same UMEM received through an RXMetadata program.
func TestRXMetadataWithoutRXMetadataProgram(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	u, err := umem.New(&umem.Options{FrameCount: 256, FrameSize: 2048, FillRingSize: 64, CompletionRingSize: 32})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	cfg := func(rx bool) *afxdp.Config {
		return &afxdp.Config{UMEM: u, RXRingSize: 128, TXRingSize: 32, Redirect: &redirect.Options{RXMetadata: rx}}
	}

	first, err := afxdp.OpenIndex(v.HostIndex, 0, cfg(true))
	testutils.SkipIfNotSupported(t, err, "6.8", "XDP RX metadata kfuncs")
	if err != nil {
		t.Fatal(err)
	}
	for batch := range 3 { // each as many frames as the fill ring holds
		peerUDP(t, v, 40006, 64*batch, 64)
		for _, r := range collect(t, first, 64, 5*time.Second, nil) {
			if !r.ok {
				t.Fatalf("frame %d through the RXMetadata program: no metadata", r.seq)
			}
		}
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	second, err := afxdp.OpenIndex(v.HostIndex, 0, cfg(false))
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if second.Program().RXMetadata() {
		t.Fatal("program without Options.RXMetadata reports RXMetadata")
	}
	peerUDP(t, v, 40006, 1000, 64)
	stale := 0
	for _, r := range collect(t, second, 64, 5*time.Second, nil) {
		if r.ok {
			t.Errorf("frame %d through a program without RX metadata: %v, ok", r.seq, r.meta)
		}
		if r.parsedOK {
			stale++
		}
	}
	t.Logf("%d of 64 frames had an earlier frame's metadata in their headroom, which RXMetadata ignored", stale)
	if stale == 0 {
		t.Error("no frame reused a buffer with metadata in its headroom: the check of the program is not exercised")
	}
}

// Attach's error on a device without the kfuncs reaches Open, with
// ErrNotSupported, and Open leaves nothing attached. A tap (tun) has
// native XDP but no xdp_metadata_ops.
func TestRXMetadataOpenUnsupportedDevice(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	if _, err := testutils.Run("ip", "-n", v.NS, "tuntap", "add", "xkrxtap", "mode", "tap"); err != nil {
		t.Skipf("no tap: %v", err)
	}
	testutils.MustRun(t, "ip", "-n", v.NS, "link", "set", "xkrxtap", "up")
	v.InPeer(t, func() error {
		ifc, err := net.InterfaceByName("xkrxtap")
		if err != nil {
			return err
		}
		s, err := afxdp.OpenIndex(ifc.Index, 0, &afxdp.Config{Redirect: &redirect.Options{RXMetadata: true}})
		if err == nil {
			s.Close()
			t.Error("Open with RXMetadata on a tap succeeded")
			return nil
		}
		testutils.SkipOnOldKernel(t, "6.8", "XDP RX metadata kfuncs")
		if !errors.Is(err, afxdp.ErrNotSupported) || !strings.Contains(err.Error(), "implements none of the XDP RX metadata kfuncs") {
			t.Errorf("Open: %v, want ErrNotSupported naming the device's missing kfuncs", err)
		}
		t.Log(err)
		return nil
	})
}

// Receive with RX metadata: the private program stores each frame's RX
// timestamp, RSS hash and VLAN tag in front of it. Needs root and a driver
// with the XDP RX metadata kfuncs (Linux 6.8+).
func ExampleSocket_RXMetadata() {
	s, err := afxdp.Open("eth0", 0, &afxdp.Config{Redirect: &redirect.Options{RXMetadata: true}})
	if err != nil {
		log.Fatal(err) // errors.Is(err, afxdp.ErrNotSupported): kernel or driver without the kfuncs
	}
	defer s.Close()
	descs := make([]afxdp.Desc, 64)
	for {
		if err := s.Wait(-1); err != nil {
			log.Fatal(err)
		}
		n, err := s.Receive(descs)
		if err != nil {
			log.Fatal(err)
		}
		for _, d := range descs[:n] {
			if m, ok := s.RXMetadata(d); ok && m.TimestampOK {
				fmt.Printf("%d bytes received at %d ns (device clock), hash %#x\n", d.Len, m.Timestamp, m.Hash)
			}
		}
		if err := s.Recycle(descs[:n]); err != nil {
			log.Fatal(err)
		}
	}
}
