//go:build linux

package afxdp_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/internal/sys"
	"github.com/xdpkit/xdpkit/internal/testframes"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/packet"
	"github.com/xdpkit/xdpkit/ring"
	"github.com/xdpkit/xdpkit/umem"
)

// txmdFixture is a veth pair whose host end has a transmit-only AF_XDP
// socket (copy mode, no XDP program) on a UMEM with TX metadata, and
// whose peer end has a kernel UDP socket and a packet socket, which sees
// the frames as they arrive, checksums and all.
type txmdFixture struct {
	v    *testutils.Veth
	u    *umem.UMEM
	s    *afxdp.Socket
	udp  *net.UDPConn // in the peer's namespace
	port uint16
	ps   *testutils.PacketSocket
	// violations: the test makes the kernel complete frames it should
	// not; the UMEM's ownership errors are expected, only its counts
	// are checked at the end.
	violations bool
}

func newTXMDFixture(t *testing.T, swChecksum bool) *txmdFixture {
	t.Helper()
	f := &txmdFixture{v: testutils.NewVeth(t, testutils.VethOptions{})}
	u, err := umem.New(&umem.Options{FrameCount: 256, FrameSize: 2048, FillRingSize: 64, CompletionRingSize: 64,
		TXMetadata: true, TXSoftwareChecksum: swChecksum})
	testutils.SkipIfNotSupported(t, err, "6.8", "AF_XDP TX metadata (tx_metadata_len)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := u.Check(); err != nil && !f.violations {
			t.Errorf("UMEM accounting after close: %v", err)
		}
		if c := u.Counts(); c.Free != c.Total {
			t.Errorf("counts after close: %+v, want every frame free", c)
		}
		_ = u.Close()
	})
	f.u = u
	f.s = openHost(t, f.v, 0, &afxdp.Config{UMEM: u, Bind: afxdp.BindCopy, Steering: afxdp.NoSteering, RXRingSize: 64, TXRingSize: 64})
	f.v.InPeer(t, func() (err error) {
		f.udp, err = net.ListenUDP("udp4", &net.UDPAddr{IP: f.v.PeerIP.AsSlice()})
		return err
	})
	t.Cleanup(func() { f.udp.Close() })
	f.port = uint16(f.udp.LocalAddr().(*net.UDPAddr).Port)
	f.ps = f.v.OpenPeerPacketSocket(t)
	return f
}

// frame is a UDP datagram from the host to the peer's UDP socket with a
// correct checksum, computed by gopacket.
func (f *txmdFixture) frame(payload string) []byte {
	b := testframes.Build(testframes.Spec{Src: f.v.HostIP, Dst: f.v.PeerIP, Proto: 17, TTL: 64, SrcPort: 4242, DstPort: f.port, Payload: []byte(payload)})
	copy(b[0:6], f.v.PeerMAC)
	copy(b[6:12], f.v.HostMAC)
	return b
}

// send puts frame in a frame of the pool (at XDP_PACKET_HEADROOM, as a
// received one would be), lets prepare adjust its descriptor, transmits
// it and waits for its completion.
func (f *txmdFixture) send(t *testing.T, frame []byte, prepare func(d *afxdp.Desc) error) afxdp.Desc {
	t.Helper()
	d := txFrame(t, f.s, frame, 256)
	if prepare != nil {
		if err := prepare(&d); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := f.s.Transmit([]afxdp.Desc{d}); n != 1 || err != nil {
		t.Fatalf("Transmit: %d, %v", n, err)
	}
	if err := f.s.Flush(2 * time.Second); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	return d
}

// received waits up to timeout for a datagram on the peer's UDP socket.
func (f *txmdFixture) received(t *testing.T, timeout time.Duration) (string, bool) {
	t.Helper()
	buf := make([]byte, 2048)
	_ = f.udp.SetReadDeadline(time.Now().Add(timeout))
	n, _, err := f.udp.ReadFromUDP(buf)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n]), true
}

// captured returns the first frame the peer's packet socket saw from the
// host's UDP port 4242.
func (f *txmdFixture) captured(t *testing.T) []byte {
	t.Helper()
	buf := make([]byte, 4096)
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		n, err := f.ps.Recv(buf, 200*time.Millisecond)
		if err != nil {
			continue
		}
		var h packet.Headers
		if packet.Parse(buf[:n], &h) == nil && h.IPProto == packet.ProtoUDP && h.SrcPort == 4242 {
			return bytes.Clone(buf[:n])
		}
	}
	t.Fatal("the peer's packet socket saw no frame from the AF_XDP socket")
	return nil
}

// udpCsumErrors reads Udp InCsumErrors in the peer's namespace.
func (f *txmdFixture) udpCsumErrors(t *testing.T) uint64 {
	t.Helper()
	var n uint64
	f.v.InPeer(t, func() error {
		// /proc/net is /proc/self/net, the main thread's namespace: ask
		// for the calling thread's.
		fh, err := os.Open("/proc/thread-self/net/snmp")
		if err != nil {
			return err
		}
		defer fh.Close()
		var names []string
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) == 0 || fs[0] != "Udp:" {
				continue
			}
			if names == nil {
				names = fs
				continue
			}
			for i, name := range names {
				if name == "InCsumErrors" && i < len(fs) {
					n, err = strconv.ParseUint(fs[i], 10, 64)
					return err
				}
			}
		}
		return fmt.Errorf("no Udp InCsumErrors in /proc/net/snmp")
	})
	return n
}

// TestTXChecksumOffload sends UDP datagrams whose checksum field holds
// only the pseudo-header sum, asking for the checksum through TX
// metadata, and checks what the peer's UDP socket and packet socket get.
func TestTXChecksumOffload(t *testing.T) {
	for _, tc := range []struct {
		name string
		sw   bool // umem.Options.TXSoftwareChecksum
		// The host end's TX checksum offload is off: the stack finishes
		// the CHECKSUM_PARTIAL packet instead of the "device".
		noOffload bool
		wire      string // what the checksum on the wire is: "complete" or "partial"
	}{
		{"software checksum", true, false, "complete"},
		{"partial on veth", false, false, "partial"},
		{"stack finishes it", false, true, "complete"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTXMDFixture(t, tc.sw)
			if tc.noOffload {
				if err := sys.EthtoolSetTXChecksum(f.v.Host, false); err != nil {
					t.Fatal(err)
				}
			}
			errsBefore := f.udpCsumErrors(t)
			want := f.frame("checksum " + tc.name)
			var pseudo uint16
			f.send(t, want, func(d *afxdp.Desc) error {
				b := f.s.Frame(*d)
				binary.BigEndian.PutUint16(b[40:], 0xdead) // PrepareL4Checksum overwrites it
				if err := f.s.RequestL4Checksum(d); err != nil {
					return err
				}
				pseudo = binary.BigEndian.Uint16(b[40:])
				return nil
			})
			if got, ok := f.received(t, 2*time.Second); !ok || got != "checksum "+tc.name {
				t.Fatalf("peer's UDP socket got %q, %v", got, ok)
			}
			got := f.captured(t)
			switch cs := binary.BigEndian.Uint16(got[40:]); tc.wire {
			case "complete":
				if !bytes.Equal(got, want) {
					t.Errorf("on the wire:\n%x\nwant gopacket's\n%x", got, want)
				}
				testframes.CheckChecksums(t, got)
			case "partial":
				// veth hands the CHECKSUM_PARTIAL skb to its peer as it
				// is: the field still holds the pseudo-header sum, and
				// the peer's stack trusts it.
				if cs != pseudo || pseudo == binary.BigEndian.Uint16(want[40:]) {
					t.Errorf("checksum on the wire %#04x, want the partial %#04x (complete: %#04x)", cs, pseudo, binary.BigEndian.Uint16(want[40:]))
				}
			}
			if n := f.udpCsumErrors(t); n != errsBefore {
				t.Errorf("Udp InCsumErrors went from %d to %d", errsBefore, n)
			}
			checkAccounting(t, f.s)
		})
	}
}

// TestTXChecksumNegativeControl: the same datagram with a wrong checksum
// and no offload request is dropped by the peer's UDP stack, which counts
// it in InCsumErrors, so the tests above see the offload work, not a
// stack that ignores checksums.
func TestTXChecksumNegativeControl(t *testing.T) {
	f := newTXMDFixture(t, false)
	errsBefore := f.udpCsumErrors(t)
	frame := f.frame("bad checksum")
	binary.BigEndian.PutUint16(frame[40:], binary.BigEndian.Uint16(frame[40:])^0x5a5a)
	f.send(t, frame, nil)
	if got, ok := f.received(t, 500*time.Millisecond); ok {
		t.Fatalf("the peer's UDP socket took a datagram with a bad checksum: %q", got)
	}
	if n := f.udpCsumErrors(t); n != errsBefore+1 {
		t.Errorf("Udp InCsumErrors went from %d to %d, want one more", errsBefore, n)
	}
	// And a good one still arrives.
	f.send(t, f.frame("good"), nil)
	if got, ok := f.received(t, 2*time.Second); !ok || got != "good" {
		t.Errorf("peer's UDP socket got %q, %v", got, ok)
	}
}

// TestTXTimestampCopyMode: in copy mode the kernel writes a software TX
// timestamp (CLOCK_TAI, when it frees the skb) into every frame that asks
// for one, and TXTimestamps returns them in order; with a launch time
// asked for too, veth sends at once.
func TestTXTimestampCopyMode(t *testing.T) {
	f := newTXMDFixture(t, true)
	const n = 16
	descs := make([]afxdp.Desc, n)
	launch := clockTAI(t) + uint64(5*time.Second)
	for i := range descs {
		descs[i] = txFrame(t, f.s, f.frame(fmt.Sprint("stamp ", i)), 256)
		if err := f.s.RequestTXTimestamp(&descs[i]); err != nil {
			t.Fatal(err)
		}
		if err := f.s.RequestL4Checksum(&descs[i]); err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			err := f.s.RequestLaunchTime(&descs[i], launch)
			testutils.SkipIfNotSupported(t, err, "6.15", "AF_XDP TX launch time (XDP_TXMD_FLAGS_LAUNCH_TIME)")
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	before := clockTAI(t)
	start := time.Now()
	if sent, err := f.s.Transmit(descs); sent != n || err != nil {
		t.Fatalf("Transmit: %d, %v", sent, err)
	}
	if err := f.s.Flush(2 * time.Second); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	after := clockTAI(t)
	for i := range n {
		if got, ok := f.received(t, 2*time.Second); !ok || got != fmt.Sprint("stamp ", i) {
			t.Fatalf("datagram %d: %q, %v", i, got, ok)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v: a launch time 5s ahead held the packets on veth", d)
	}
	ts := make([]afxdp.TXTimestamp, 2*n)
	got := f.s.TXTimestamps(ts)
	if got != n {
		t.Fatalf("TXTimestamps = %d, want %d", got, n)
	}
	for i, x := range ts[:got] {
		if x.Addr != descs[i].Addr || x.Time < before || x.Time > after {
			t.Errorf("timestamp %d: addr %#x time %d; want addr %#x, time in [%d, %d] (CLOCK_TAI)", i, x.Addr, x.Time, descs[i].Addr, before, after)
		}
	}
	t.Logf("TX timestamps %d..%d ns after the first Transmit", ts[0].Time-before, ts[got-1].Time-before)

	// Requests, transmission, completion and timestamps allocate nothing.
	frame := f.frame("allocs")
	addrs := make([]uint64, 4)
	var stamped, sentAll int
	allocs := testing.AllocsPerRun(200, func() {
		k := f.s.Pool().AllocInto(addrs)
		for i := range k {
			descs[i] = afxdp.Desc{Addr: addrs[i] + 256, Len: uint32(copy(f.u.Frame(addrs[i]+256), frame))}
			if f.s.RequestL4Checksum(&descs[i]) != nil || f.s.RequestTXTimestamp(&descs[i]) != nil {
				panic("request refused")
			}
		}
		sent, _ := f.s.Transmit(descs[:k])
		_ = f.s.Release(descs[sent:k])
		sentAll += sent
		stamped += f.s.TXTimestamps(ts)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per round, want 0", allocs)
	}
	if err := f.s.Flush(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	stamped += f.s.TXTimestamps(ts)
	if stamped != sentAll || sentAll < 200 {
		t.Errorf("%d timestamps for %d frames sent", stamped, sentAll)
	}
	if st, _ := f.s.Stats(); st.TXTimestampsLost != 0 {
		t.Errorf("TXTimestampsLost = %d", st.TXTimestampsLost)
	}
	checkAccounting(t, f.s)
}

// TestTXMetadataKernelRefuses shows, with descriptors put on the ring
// without Transmit's checks, why Transmit refuses what it refuses: the
// kernel drops a descriptor without room for the metadata in front of
// it, never completing its frame, and fails every sendto on one whose
// metadata it does not take, which then blocks the TX ring. Closing the
// socket gives the frames back either way.
func TestTXMetadataKernelRefuses(t *testing.T) {
	t.Run("no room", func(t *testing.T) {
		f := newTXMDFixture(t, false)
		d := txFrame(t, f.s, f.frame("no room"), 0)
		if _, err := f.s.TransmitUncheckedForTest([]unix.XDPDesc{d}); err != nil {
			t.Fatal(err)
		}
		if _, ok := f.received(t, 200*time.Millisecond); ok {
			t.Error("the dropped frame arrived")
		}
		f.s.Complete()
		st, err := f.s.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.TXInvalidDescs != 1 {
			t.Errorf("TXInvalidDescs %d, want 1", st.TXInvalidDescs)
		}
		// Linux 6.18 completes the dropped descriptor's frame; af_xdp.rst
		// says the kernel does not. Either is fine for the accounting.
		t.Logf("dropped frame completed: %v", f.s.PendingTX() == 0)
		// The ring goes on.
		f.send(t, f.frame("after"), nil)
		if got, ok := f.received(t, 2*time.Second); !ok || got != "after" {
			t.Errorf("after the dropped one: %q, %v", got, ok)
		}
	})
	t.Run("unknown flag", func(t *testing.T) {
		f := newTXMDFixture(t, false)
		// Linux 6.18 completes the stuck descriptor's frame on every
		// failed sendto (xsk_build_skb frees the skb, whose destructor
		// already put the address on the completion ring), though the
		// descriptor stays on the TX ring: the pool refuses the second
		// completion of a frame it already has back, and records it.
		f.violations = true
		d := txFrame(t, f.s, f.frame("unknown flag"), 256)
		binary.NativeEndian.PutUint64(f.u.Bytes(d.Addr-umem.TXMetadataLen, 8), 1<<7)
		d.Options = ring.TXMetadata
		if _, err := f.s.TransmitUncheckedForTest([]unix.XDPDesc{d}); !errors.Is(err, unix.EINVAL) {
			t.Fatalf("sendto with unknown TX metadata flags: %v, want EINVAL", err)
		}
		// A good frame behind it does not go either.
		good := txFrame(t, f.s, f.frame("good"), 256)
		if n, err := f.s.Transmit([]afxdp.Desc{good}); n != 1 || !errors.Is(err, unix.EINVAL) {
			t.Errorf("Transmit behind the stuck descriptor: %d, %v; want 1, EINVAL", n, err)
		}
		if _, ok := f.received(t, 200*time.Millisecond); ok {
			t.Error("a frame got past the stuck descriptor")
		}
		st, _ := f.s.Stats()
		t.Logf("%d sendto calls, %d completions, none sent", st.Kicks, st.TXCompleted)
		// Transmit itself refuses such a descriptor.
		bad := txFrame(t, f.s, f.frame("refused"), 256)
		binary.NativeEndian.PutUint64(f.u.Bytes(bad.Addr-umem.TXMetadataLen, 8), 1<<7)
		bad.Options = ring.TXMetadata
		if n, err := f.s.Transmit([]afxdp.Desc{bad}); n != 0 || !errors.Is(err, afxdp.ErrInvalidDescriptor) {
			t.Errorf("Transmit of the bad descriptor: %d, %v", n, err)
		}
		if err := f.s.Release([]afxdp.Desc{bad}); err != nil {
			t.Error(err)
		}
	})
}

// TestTXMetadataFeatures checks the capability query on the veth and on
// loopback: neither driver has TX metadata ops (xsk_tx_metadata_ops), so
// the kernel reports no features, which is what `xdpkit doctor` shows for
// them too.
func TestTXMetadataFeatures(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	testutils.SkipOnOldKernel(t, "6.8", "netdev xsk-features")
	for _, ifname := range []string{v.Host, "lo"} {
		f, err := afxdp.TXMetadataFeatures(ifname)
		if err != nil || f != 0 {
			t.Errorf("TXMetadataFeatures(%s) = %v, %v; want none", ifname, f, err)
		}
	}
	if _, err := afxdp.TXMetadataFeatures("xdpkit-nonesuch"); !errors.Is(err, afxdp.ErrInterfaceNotFound) {
		t.Errorf("TXMetadataFeatures of a missing interface: %v", err)
	}
}
