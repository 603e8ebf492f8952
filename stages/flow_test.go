package stages_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"runtime"
	"testing"

	"github.com/xdpkit/xdpkit/internal/testframes"
	"github.com/xdpkit/xdpkit/packet"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/stages"
)

// Test frames, as a capture shows them. The helpers in this file are
// prefixed synth so they do not clash with other stages' tests in the
// package.
var (
	// 02:00:00:00:00:01 > 02:00:00:00:00:02, 10.0.0.1.1234 > 10.0.0.2.53 UDP, 4 bytes "abcd"
	synthUDP4 = testframes.Hex("020000000002 020000000001 0800" +
		"4500 0020 0000 4000 4011 0000 0a000001 0a000002" +
		"04d2 0035 000c 0000 61626364")
	// [2001:db8::1].8080 > [2001:db8::2].50000 TCP SYN, no payload
	synthTCP6 = testframes.Hex("020000000002 020000000001 86dd" +
		"6000 0000 0014 0640 20010db8000000000000000000000001 20010db8000000000000000000000002" +
		"1f90 c350 00000000 00000000 5002 ffff 0000 0000")
	// 10.0.0.1 > 10.0.0.3 ICMP echo request, id 1 seq 1
	synthICMP4 = testframes.Hex("020000000002 020000000001 0800" +
		"4500 001c 0000 4000 4001 0000 0a000001 0a000003" +
		"0800 0000 0001 0001")
	// 2001:db8::1 > 2001:db8::2 ICMPv6 echo request
	synthICMP6 = testframes.Hex("020000000002 020000000001 86dd" +
		"6000 0000 0008 3a40 20010db8000000000000000000000001 20010db8000000000000000000000002" +
		"8000 0000 0001 0001")
	// 10.0.0.1 > 10.0.0.2 GRE header, nothing inside
	synthGRE4 = testframes.Hex("020000000002 020000000001 0800" +
		"4500 0018 0000 4000 402f 0000 0a000001 0a000002" +
		"0000 0800")
	// ARP who-has 10.0.0.2 tell 10.0.0.1
	synthARP = testframes.Hex("ffffffffffff 020000000001 0806" +
		"0001 0800 06 04 0001 020000000001 0a000001 000000000000 0a000002")
	// LLDP, an EtherType Parse does not know
	synthLLDP = testframes.Hex("0180c200000e 020000000001 88cc 0000")
	// synthUDP4 cut short inside the UDP header
	synthTruncated = synthUDP4[:14+20+4]
	// IPv4 claiming a 5-word header in a version-6 nibble
	synthMalformed = testframes.Hex("020000000002 020000000001 0800" +
		"6500 0020 0000 4000 4011 0000 0a000001 0a000002" +
		"04d2 0035 000c 0000 61626364")
)

// synthFrame builds an Ethernet frame from src to dst (both IPv4 or both
// IPv6) with a UDP or TCP header carrying the ports, or just the protocol
// number for others, and payload bytes of zeros. Checksums are left 0.
func synthFrame(src, dst netip.Addr, proto uint8, sport, dport uint16, payload int) []byte {
	var l4 []byte
	switch proto {
	case packet.ProtoUDP:
		l4 = make([]byte, 8+payload)
		binary.BigEndian.PutUint16(l4[4:], uint16(8+payload))
	case packet.ProtoTCP:
		l4 = make([]byte, 20+payload)
		l4[12] = 5 << 4
	default:
		l4 = make([]byte, 4+payload)
	}
	if proto == packet.ProtoUDP || proto == packet.ProtoTCP {
		binary.BigEndian.PutUint16(l4[0:], sport)
		binary.BigEndian.PutUint16(l4[2:], dport)
	}
	f := testframes.Hex("020000000002 020000000001")
	if src.Is4() {
		ip := make([]byte, 20)
		ip[0], ip[8], ip[9] = 0x45, 64, proto
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(l4)))
		s, d := src.As4(), dst.As4()
		copy(ip[12:], s[:])
		copy(ip[16:], d[:])
		f = binary.BigEndian.AppendUint16(f, packet.EtherTypeIPv4)
		f = append(f, ip...)
	} else {
		ip := make([]byte, 40)
		ip[0], ip[6], ip[7] = 0x60, proto, 64
		binary.BigEndian.PutUint16(ip[4:], uint16(len(l4)))
		s, d := src.As16(), dst.As16()
		copy(ip[8:], s[:])
		copy(ip[24:], d[:])
		f = binary.BigEndian.AppendUint16(f, packet.EtherTypeIPv6)
		f = append(f, ip...)
	}
	return append(f, l4...)
}

// synthPacket parses frame into a Packet, as the Runner does.
func synthPacket(frame []byte) *pipeline.Packet {
	p := &pipeline.Packet{Data: frame}
	p.Reparse()
	return p
}

// synthHandle runs frame through s, n times, failing the test on a
// verdict other than want.
func synthHandle(tb testing.TB, s pipeline.Stage, frame []byte, n int, want pipeline.Verdict) {
	tb.Helper()
	p := synthPacket(frame)
	for range n {
		if v := s.Handle(p); v != want {
			tb.Fatalf("Handle = %v, want %v", v, want)
		}
	}
}

// heapAfterGC returns the live heap after a full collection.
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func newFlowCounter(tb testing.TB, capacity int) *stages.FlowCounter {
	tb.Helper()
	c, err := stages.NewFlowCounter(capacity)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestFlowCounterCounts(t *testing.T) {
	t.Parallel()
	c := newFlowCounter(t, 0)
	synthHandle(t, c, synthUDP4, 3, pipeline.Continue)
	synthHandle(t, c, synthTCP6, 2, pipeline.Continue)
	synthHandle(t, c, synthICMP4, 1, pipeline.Continue)
	synthHandle(t, c, synthICMP6, 1, pipeline.Continue)
	synthHandle(t, c, synthGRE4, 1, pipeline.Continue)
	synthHandle(t, c, synthARP, 4, pipeline.Continue)
	synthHandle(t, c, synthLLDP, 1, pipeline.Continue)
	synthHandle(t, c, synthTruncated, 2, pipeline.Continue)
	synthHandle(t, c, synthMalformed, 1, pipeline.Continue)
	synthHandle(t, c, []byte{1, 2, 3}, 1, pipeline.Continue)

	wantProtos := map[string]uint64{"tcp": 2, "udp": 3, "icmp": 1, "icmp6": 1, "other-ip": 1, "arp": 4, "other": 1}
	if got := c.Protocols(); !reflect.DeepEqual(got, wantProtos) {
		t.Errorf("Protocols() = %v, want %v", got, wantProtos)
	}
	pc := c.ProtoCounts()
	if pc[stages.ClassUDP] != 3 || pc[stages.ClassARP] != 4 || pc[stages.ClassICMPv6] != 1 {
		t.Errorf("ProtoCounts() = %v", pc)
	}
	if got := c.Malformed(); got != 4 {
		t.Errorf("Malformed() = %d, want 4", got)
	}
	if got := c.Packets(); got != 17 {
		t.Errorf("Packets() = %d, want 17", got)
	}
	if got := c.Len(); got != 5 {
		t.Errorf("Len() = %d, want 5", got)
	}
	if got := c.Overflow(); got != 0 {
		t.Errorf("Overflow() = %d, want 0", got)
	}

	a := netip.MustParseAddr
	want := []stages.Flow{
		{Src: a("10.0.0.1"), Dst: a("10.0.0.2"), SrcPort: 1234, DstPort: 53, Proto: 17, Packets: 3, Bytes: 3 * 46},
		{Src: a("2001:db8::1"), Dst: a("2001:db8::2"), SrcPort: 8080, DstPort: 50000, Proto: 6, Packets: 2, Bytes: 2 * 74},
		{Src: a("2001:db8::1"), Dst: a("2001:db8::2"), Proto: 58, Packets: 1, Bytes: 62},
		{Src: a("10.0.0.1"), Dst: a("10.0.0.3"), Proto: 1, Packets: 1, Bytes: 42},
		{Src: a("10.0.0.1"), Dst: a("10.0.0.2"), Proto: 47, Packets: 1, Bytes: 38},
	}
	if got := c.TopN(10); !reflect.DeepEqual(got, want) {
		t.Errorf("TopN(10):\n got %+v\nwant %+v", got, want)
	}
	if got := c.TopN(2); !reflect.DeepEqual(got, want[:2]) {
		t.Errorf("TopN(2):\n got %+v\nwant %+v", got, want[:2])
	}
	if got := c.TopN(0); got != nil {
		t.Errorf("TopN(0) = %v, want nil", got)
	}

	c.Reset()
	if c.Len() != 0 || c.Packets() != 0 || c.Malformed() != 0 || c.ProtoCounts() != [stages.NumProtoClasses]uint64{} || c.TopN(1) != nil {
		t.Errorf("after Reset: Len %d, Packets %d, Malformed %d, protos %v", c.Len(), c.Packets(), c.Malformed(), c.ProtoCounts())
	}
	synthHandle(t, c, synthUDP4, 1, pipeline.Continue)
	if got := c.TopN(1); len(got) != 1 || got[0].Packets != 1 {
		t.Errorf("after Reset and one packet: TopN(1) = %+v", got)
	}
}

// An IPv4 address and the same address mapped into IPv6 are different
// flows, and so are the two directions of one conversation.
func TestFlowCounterKeys(t *testing.T) {
	t.Parallel()
	c := newFlowCounter(t, 64)
	v4a, v4b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	m6a, m6b := netip.AddrFrom16(v4a.As16()), netip.AddrFrom16(v4b.As16())
	synthHandle(t, c, synthFrame(v4a, v4b, packet.ProtoUDP, 1, 2, 0), 1, pipeline.Continue)
	synthHandle(t, c, synthFrame(m6a, m6b, packet.ProtoUDP, 1, 2, 0), 1, pipeline.Continue)
	synthHandle(t, c, synthFrame(v4b, v4a, packet.ProtoUDP, 2, 1, 0), 1, pipeline.Continue)
	synthHandle(t, c, synthFrame(v4a, v4b, packet.ProtoTCP, 1, 2, 0), 1, pipeline.Continue)
	synthHandle(t, c, synthFrame(v4a, v4b, packet.ProtoUDP, 1, 3, 0), 1, pipeline.Continue)
	if got := c.Len(); got != 5 {
		t.Errorf("Len() = %d, want 5: %+v", got, c.TopN(10))
	}
	for _, f := range c.TopN(10) {
		if f.Src.Is4In6() != f.Dst.Is4In6() || f.Src.Is4() != f.Dst.Is4() {
			t.Errorf("flow %+v mixes address families", f)
		}
	}
}

// A table that is full evicts the least recently seen flow of the probe
// window: memory stays put, a busy flow survives a stream of new ones.
func TestFlowCounterEviction(t *testing.T) {
	t.Parallel()
	c := newFlowCounter(t, 16)
	if c.Capacity() != 16 {
		t.Fatalf("Capacity() = %d, want 16", c.Capacity())
	}
	padded := append(bytes.Clone(synthUDP4), 0) // a byte of Ethernet padding
	busy := synthPacket(padded)
	p := synthPacket(bytes.Clone(synthUDP4))
	const flows = 1000
	for i := range flows {
		busy.Data = padded[:len(padded)-i%2] // whole frames are counted: 47 or 46 bytes
		c.Handle(busy)
		copy(p.Data[26:30], []byte{198, 51, byte(i >> 8), byte(i)}) // the source address
		c.Handle(p)
	}
	if c.Len() != c.Capacity() {
		t.Errorf("Len() = %d after %d flows, want the capacity %d", c.Len(), flows, c.Capacity())
	}
	if got, want := c.Overflow(), uint64(flows+1-c.Len()); got != want {
		t.Errorf("Overflow() = %d, want %d (every new flow that did not take an empty slot)", got, want)
	}
	top := c.TopN(1)
	want := stages.Flow{Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"),
		SrcPort: 1234, DstPort: 53, Proto: 17, Packets: flows, Bytes: flows/2*47 + flows/2*46}
	if len(top) != 1 || top[0] != want {
		t.Errorf("TopN(1) = %+v, want the busy flow %+v", top, want)
	}
	if n := len(c.TopN(100)); n != c.Capacity() {
		t.Errorf("len(TopN(100)) = %d, want %d", n, c.Capacity())
	}
}

func TestFlowCounterJSON(t *testing.T) {
	t.Parallel()
	c := newFlowCounter(t, 0)
	synthHandle(t, c, synthUDP4, 2, pipeline.Continue)
	synthHandle(t, c, synthTCP6, 1, pipeline.Continue)
	synthHandle(t, c, synthGRE4, 1, pipeline.Continue)
	top := c.TopN(3)
	b, err := json.Marshal(map[string]any{"top_flows": top})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"top_flows":[` +
		`{"src":"10.0.0.1","dst":"10.0.0.2","sport":1234,"dport":53,"proto":"udp","packets":2,"bytes":92},` +
		`{"src":"2001:db8::1","dst":"2001:db8::2","sport":8080,"dport":50000,"proto":"tcp","packets":1,"bytes":74},` +
		`{"src":"10.0.0.1","dst":"10.0.0.2","sport":0,"dport":0,"proto":"gre","packets":1,"bytes":38}]}`
	if string(b) != want {
		t.Errorf("JSON:\n got %s\nwant %s", b, want)
	}
	var back struct {
		Top []stages.Flow `json:"top_flows"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Top, top) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back.Top, top)
	}
	var f stages.Flow
	if err := json.Unmarshal([]byte(`{"proto":"99"}`), &f); err != nil || f.Proto != 99 {
		t.Errorf(`proto "99": %+v, %v`, f, err)
	}
	if err := json.Unmarshal([]byte(`{"proto":"nope"}`), &f); err == nil {
		t.Error(`proto "nope": no error`)
	}
}

func TestProtoNames(t *testing.T) {
	t.Parallel()
	for cls, want := range []string{"tcp", "udp", "icmp", "icmp6", "other-ip", "arp", "other"} {
		if got := stages.ProtoClass(cls).String(); got != want {
			t.Errorf("ProtoClass(%d) = %q, want %q", cls, got, want)
		}
	}
	if got := stages.NumProtoClasses.String(); got != "ProtoClass(7)" {
		t.Errorf("NumProtoClasses.String() = %q", got)
	}
	for proto, want := range map[uint8]string{6: "tcp", 17: "udp", 1: "icmp", 58: "icmp6", 132: "sctp", 253: "253"} {
		if got := stages.ProtoName(proto); got != want {
			t.Errorf("ProtoName(%d) = %q, want %q", proto, got, want)
		}
	}
}

func TestNewFlowCounterCapacity(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want int }{{0, stages.DefaultFlowCapacity}, {1, 1}, {3, 4}, {1000, 1024}, {1<<16 + 1, 1 << 17}} {
		c, err := stages.NewFlowCounter(tc.in)
		if err != nil {
			t.Errorf("NewFlowCounter(%d): %v", tc.in, err)
			continue
		}
		if c.Capacity() != tc.want {
			t.Errorf("NewFlowCounter(%d).Capacity() = %d, want %d", tc.in, c.Capacity(), tc.want)
		}
	}
	for _, in := range []int{-1, 1<<24 + 1} {
		if _, err := stages.NewFlowCounter(in); err == nil {
			t.Errorf("NewFlowCounter(%d): no error", in)
		}
	}
	// A one-slot table works too: every new flow evicts the last.
	c := newFlowCounter(t, 1)
	synthHandle(t, c, synthUDP4, 2, pipeline.Continue)
	synthHandle(t, c, synthTCP6, 1, pipeline.Continue)
	if top := c.TopN(5); c.Len() != 1 || c.Overflow() != 1 || len(top) != 1 || top[0].Proto != 6 {
		t.Errorf("one slot: Len %d, Overflow %d, TopN %+v", c.Len(), c.Overflow(), top)
	}
}

func TestFlowCounterAllocs(t *testing.T) {
	c := newFlowCounter(t, 1024)
	for _, frame := range [][]byte{synthUDP4, synthTCP6, synthICMP6, synthARP, synthTruncated} {
		p := synthPacket(frame)
		if n := testing.AllocsPerRun(1000, func() { c.Handle(p) }); n != 0 {
			t.Errorf("%x: %v allocations per packet, want 0", frame, n)
		}
	}
	// New flows and evictions do not allocate either.
	p := synthPacket(bytes.Clone(synthTCP6))
	i := 0
	n := testing.AllocsPerRun(10000, func() {
		i++
		setPorts(p.Data[54:], uint16(i), uint16(i>>16))
		c.Handle(p)
	})
	if n != 0 {
		t.Errorf("new flows: %v allocations per packet, want 0", n)
	}
	if c.Overflow() == 0 {
		t.Error("no evictions: the test did not fill the table")
	}
	// A batch, frames read by packet.Parse among them, does not either.
	frames := [][]byte{synthUDP4, synthTCP6, synthICMP6, synthARP, synthTruncated, synthFrame(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), 47, 0, 0, 0)}
	b := &pipeline.FrameBatch{Frames: frames, Verdicts: make([]pipeline.Verdict, len(frames)), Out: make([]int, len(frames))}
	if n := testing.AllocsPerRun(1000, func() { c.HandleFrames(b) }); n != 0 {
		t.Errorf("HandleFrames: %v allocations per batch, want 0", n)
	}
}

// setPorts writes the source and destination ports into a UDP or TCP
// header.
func setPorts(l4 []byte, sport, dport uint16) {
	binary.BigEndian.PutUint16(l4[0:], sport)
	binary.BigEndian.PutUint16(l4[2:], dport)
}

// A million flows through a small table: it stays at its capacity and the
// heap does not grow.
func TestFlowCounterMemoryBounded(t *testing.T) {
	c := newFlowCounter(t, 4096)
	p4, p6 := synthPacket(bytes.Clone(synthUDP4)), synthPacket(bytes.Clone(synthTCP6))
	const flows = 1 << 20
	before := heapAfterGC()
	allocs := testing.AllocsPerRun(1, func() {
		for i := range flows {
			if i%2 == 0 {
				copy(p4.Data[26:30], []byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
				c.Handle(p4)
			} else {
				copy(p6.Data[35:38], []byte{byte(i >> 16), byte(i >> 8), byte(i)})
				c.Handle(p6)
			}
		}
	})
	after := heapAfterGC()
	if allocs != 0 {
		t.Errorf("%v allocations per million packets, want 0", allocs)
	}
	if after > before+64<<10 {
		t.Errorf("heap grew from %d to %d bytes", before, after)
	}
	if c.Len() != c.Capacity() {
		t.Errorf("Len() = %d, want %d", c.Len(), c.Capacity())
	}
	t.Logf("%d flows, twice, through %d slots: %d evictions, heap %d -> %d bytes", flows, c.Capacity(), c.Overflow(), before, after)
}

// FuzzFlowCounter counts arbitrary frames: no panic, Continue, the frame
// and the bytes after it untouched, and counters that add up.
func FuzzFlowCounter(f *testing.F) {
	for _, frame := range [][]byte{synthUDP4, synthTCP6, synthICMP4, synthICMP6, synthGRE4, synthARP, synthLLDP, synthTruncated, synthMalformed, {}} {
		f.Add(frame)
	}
	for _, frame := range edgeFrames {
		f.Add(frame)
	}
	c := newFlowCounter(f, 16) // small, so evictions happen
	f.Fuzz(func(t *testing.T, frame []byte) {
		p, check := synthGuarded(t, frame)
		before := c.Packets()
		if v := c.Handle(p); v != pipeline.Continue {
			t.Fatalf("Handle = %v, want Continue", v)
		}
		check()
		var sum uint64
		for _, n := range c.ProtoCounts() {
			sum += n
		}
		if c.Packets() != before+1 || sum+c.Malformed() != c.Packets() {
			t.Fatalf("counters do not add up: packets %d (was %d), classes %v, malformed %d", c.Packets(), before, c.ProtoCounts(), c.Malformed())
		}
		if c.Len() > c.Capacity() || len(c.TopN(c.Capacity()+1)) != c.Len() {
			t.Fatalf("Len() %d, Capacity() %d, len(TopN) %d", c.Len(), c.Capacity(), len(c.TopN(c.Capacity()+1)))
		}
	})
}

// synthGuarded copies frame into a Packet whose Data has 64 bytes of
// spare capacity after it, and parses it. check fails the test if the
// frame or the spare bytes changed.
func synthGuarded(t *testing.T, frame []byte) (p *pipeline.Packet, check func()) {
	buf := make([]byte, len(frame)+64)
	for i := range buf {
		buf[i] = 0xa5
	}
	copy(buf, frame)
	orig := bytes.Clone(buf)
	p = synthPacket(buf[:len(frame)])
	return p, func() {
		t.Helper()
		if !bytes.Equal(buf, orig) {
			t.Fatalf("frame changed:\n got %x\nwant %x", buf, orig)
		}
	}
}

func BenchmarkFlowCounter(b *testing.B) {
	for _, tc := range []struct {
		name            string
		flows, capacity int
		ipv6            bool
	}{
		{"flows=1", 1, 4096, false},
		{"flows=1/ipv6", 1, 4096, true},
		{"flows=1k", 1000, 4096, false},
		{"flows=64k", 1 << 16, 1 << 17, false},
		{"flows=64k/ipv6", 1 << 16, 1 << 17, true},
		{"flows=1M/evicting", 1 << 20, 1 << 16, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := newFlowCounter(b, tc.capacity)
			p := synthPacket(bytes.Clone(synthUDP4))
			if tc.ipv6 {
				p = synthPacket(bytes.Clone(synthTCP6))
			}
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				benchFlow(c, p, i%tc.flows)
				i++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkt/s")
		})
	}
}

// benchFlow counts one packet of flow i: p with i in its source port
// and destination port.
func benchFlow(c *stages.FlowCounter, p *pipeline.Packet, i int) pipeline.Verdict {
	setPorts(p.Data[p.Headers.L4Off:], uint16(i), uint16(i>>16))
	return c.Handle(p)
}

func ExampleFlowCounter() {
	c, err := stages.NewFlowCounter(1024)
	if err != nil {
		panic(err)
	}
	// A Runner calls HandleFrames with each batch; here we call Handle.
	p := &pipeline.Packet{Data: synthUDP4}
	c.Handle(p)
	c.Handle(p)
	b, _ := json.Marshal(c.TopN(10))
	fmt.Println(string(b))
	fmt.Println(c.Protocols()["udp"])
	// Output:
	// [{"src":"10.0.0.1","dst":"10.0.0.2","sport":1234,"dport":53,"proto":"udp","packets":2,"bytes":92}]
	// 2
}

// HandleFrames counts a batch as Handle counts its frames one by one,
// whichever way each frame's tuple is read; batches longer than the
// stage's own batch of 64 included.
func TestFlowCounterHandleFrames(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	fixed := append([][]byte{synthUDP4, synthTCP6, synthICMP4, synthICMP6, synthGRE4, synthARP, synthLLDP, synthTruncated, synthMalformed, {}}, edgeFrames...)
	var frames [][]byte
	for range 1000 {
		if rng.IntN(4) == 0 {
			frames = append(frames, fixed[rng.IntN(len(fixed))])
			continue
		}
		src := netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(4)), byte(rng.IntN(256))})
		dst := netip.MustParseAddr("10.0.0.2")
		if rng.IntN(3) == 0 {
			src = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(rng.IntN(256))})
			dst = netip.MustParseAddr("2001:db8::2")
		}
		proto := []uint8{packet.ProtoUDP, packet.ProtoTCP}[rng.IntN(2)]
		frames = append(frames, synthFrame(src, dst, proto, uint16(rng.IntN(8)), 53, rng.IntN(40)))
	}
	one, batched := newFlowCounter(t, 1<<14), newFlowCounter(t, 1<<14)
	for _, f := range frames {
		synthHandle(t, one, f, 1, pipeline.Continue)
	}
	for rest := frames; len(rest) > 0; {
		n := min(len(rest), 1+rng.IntN(150))
		b := &pipeline.FrameBatch{Frames: rest[:n], Verdicts: make([]pipeline.Verdict, n), Out: make([]int, n)}
		batched.HandleFrames(b)
		for i, v := range b.Verdicts {
			if v != pipeline.Continue {
				t.Fatalf("verdict %d = %v, want Continue", i, v)
			}
		}
		rest = rest[n:]
	}
	if one.Overflow() != 0 {
		t.Fatalf("%d evictions: the table is too small for the test", one.Overflow())
	}
	if !reflect.DeepEqual(one.TopN(one.Len()), batched.TopN(batched.Len())) || one.ProtoCounts() != batched.ProtoCounts() ||
		one.Malformed() != batched.Malformed() || one.Packets() != batched.Packets() {
		t.Errorf("Handle and HandleFrames disagree:\n%d flows %v malformed %d packets %d\n%d flows %v malformed %d packets %d",
			one.Len(), one.ProtoCounts(), one.Malformed(), one.Packets(), batched.Len(), batched.ProtoCounts(), batched.Malformed(), batched.Packets())
	}
	if one.Len() < 100 || one.Malformed() == 0 {
		t.Errorf("%d flows, %d malformed: the frames do not cover the cases", one.Len(), one.Malformed())
	}
}

// TestFlowHashSpreadsPorts: flows that differ in the source port alone
// (one client's connections, or many behind one NAT address) spread over
// a FlowCounter's and a LoadBalancer's connection table as a random
// hash's would. A hash whose low bits follow the ports almost linearly
// put them in runs of neighbouring slots, and tables a quarter full lost
// flows: 1024 such flows in 4096 slots overflowed about 14 times a table
// (a random hash: once or twice in 20 tables), so the bound below, over
// 20 tables of each, tells the two apart by a wide margin.
func TestFlowHashSpreadsPorts(t *testing.T) {
	t.Parallel()
	const tables, flows = 20, 1024
	frames := flowFrames(1024, flows)
	var overflow, evicted uint64
	for range tables {
		c := newFlowCounter(t, 4096)
		for start := 0; start < flows; start += 64 {
			c.HandleFrames(&pipeline.FrameBatch{Frames: frames[start : start+64], Verdicts: make([]pipeline.Verdict, 64)})
		}
		if c.Packets() != flows {
			t.Fatalf("counted %d packets, want %d", c.Packets(), flows)
		}
		overflow += c.Overflow()

		lb := newLB(t, "198.51.100.2:53", makeBackends(4, false), &stages.LoadBalancerOptions{Connections: 4096})
		backendsOf(t, lb, frames)
		st := lb.ConnStats()
		if st.New != flows {
			t.Fatalf("ConnStats %+v: want %d new flows", st, flows)
		}
		evicted += st.Evicted
	}
	t.Logf("%d flows differing in the source port, in %d tables of 4096 slots each: FlowCounter overflowed %d times, the connection table evicted %d", flows, tables, overflow, evicted)
	if overflow > 12 || evicted > 12 {
		t.Errorf("FlowCounter overflowed %d times, the connection table evicted %d flows, in %d tables a quarter full: the hash clusters flows that differ in a port", overflow, evicted, tables)
	}
}
