//go:build linux

package xsk

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/ring"
)

// cfgMD is cfg16 with TX metadata.
var cfgMD = Config{FrameCount: 16, FrameSize: 2048, FillRingSize: 4, CompletionRingSize: 4, TXMetadata: true}

// putMD writes TX metadata in front of the data at area offset a.
func putMD(u *UMEM, a uint64, flags uint64, csumStart, csumOffset uint16) {
	b := u.TXMetadataBytes(a)
	clear(b)
	binary.NativeEndian.PutUint64(b[TXMDFlagsOff:], flags)
	binary.NativeEndian.PutUint16(b[TXMDCsumStartOff:], csumStart)
	binary.NativeEndian.PutUint16(b[TXMDCsumOffsetOff:], csumOffset)
}

func TestTXMetadataBytes(t *testing.T) {
	t.Parallel()
	u := newTestUMEM(t, cfgMD)
	if got := u.TXMetadataLen(); got != TXMetadataLen {
		t.Fatalf("TXMetadataLen = %d, want %d", got, TXMetadataLen)
	}
	for _, tc := range []struct {
		addr uint64
		want int // area offset of the bytes, -1 for nil
	}{
		{0, -1},
		{TXMetadataLen - 1, -1},
		{TXMetadataLen, 0},
		{2048 + 256, 2048 + 256 - TXMetadataLen},
		{2048 + 10, -1}, // 10 bytes into its frame
		{16 * 2048, -1}, // outside
	} {
		b := u.TXMetadataBytes(tc.addr)
		if got := areaOffset(u, b); got != tc.want || b != nil && len(b) != TXMetadataLen {
			t.Errorf("TXMetadataBytes(%#x) at %d (len %d), want %d", tc.addr, got, len(b), tc.want)
		}
	}
	if b := newTestUMEM(t, cfg16).TXMetadataBytes(256); b != nil {
		t.Errorf("TXMetadataBytes without TX metadata = %d bytes, want nil", len(b))
	}
}

// TestStageTXMetadata checks what a UMEM with TX metadata refuses, and
// that a refusal leaves the frame accounting as it was.
func TestStageTXMetadata(t *testing.T) {
	t.Parallel()
	const contd, md = unix.XDP_PKT_CONTD, unix.XDP_TX_METADATA
	for _, unaligned := range []bool{false, true} {
		cfg := cfgMD
		cfg.Unaligned = unaligned
		for _, tc := range []struct {
			name    string
			descs   func(u *UMEM, a []uint64) []unix.XDPDesc
			allowed uint32
			want    int
			reason  Reason
			ts      []bool // per staged frame: asked for a timestamp
		}{
			{"at frame start", func(u *UMEM, a []uint64) []unix.XDPDesc { return []unix.XDPDesc{desc(a[0], 60)} }, md, 0, NoMetadataRoom, nil},
			{"one byte short", func(u *UMEM, a []uint64) []unix.XDPDesc {
				return []unix.XDPDesc{desc(a[0]+TXMetadataLen, 60), desc(a[1]+TXMetadataLen-1, 60)}
			}, md, 1, NoMetadataRoom, []bool{false}},
			{"no metadata asked", func(u *UMEM, a []uint64) []unix.XDPDesc {
				return []unix.XDPDesc{desc(a[0]+TXMetadataLen, 60), desc(a[1]+256, 60)}
			}, md, 2, OK, []bool{false, false}},
			{"option not allowed", func(u *UMEM, a []uint64) []unix.XDPDesc {
				return []unix.XDPDesc{{Addr: a[0] + 256, Len: 60, Options: md}}
			}, 0, 0, BadOptions, nil},
			{"timestamp and checksum", func(u *UMEM, a []uint64) []unix.XDPDesc {
				putMD(u, a[0]+256, TXMDTimestamp|TXMDChecksum, 34, 6)
				putMD(u, a[1]+256, TXMDChecksum, 56, 2) // the field's last byte is the packet's
				return []unix.XDPDesc{{Addr: a[0] + 256, Len: 60, Options: md}, {Addr: a[1] + 256, Len: 60, Options: md}}
			}, md, 2, OK, []bool{true, false}},
			{"checksum past the packet", func(u *UMEM, a []uint64) []unix.XDPDesc {
				putMD(u, a[0]+256, TXMDChecksum, 58, 1)
				return []unix.XDPDesc{{Addr: a[0] + 256, Len: 60, Options: md}}
			}, md, 0, BadMetadata, nil},
			{"unknown flag", func(u *UMEM, a []uint64) []unix.XDPDesc {
				putMD(u, a[0]+256, TXMDTimestamp, 0, 0)
				putMD(u, a[1]+256, 1<<3, 0, 0)
				return []unix.XDPDesc{{Addr: a[0] + 256, Len: 60, Options: md}, {Addr: a[1] + 256, Len: 60, Options: md}}
			}, md, 1, BadMetadata, []bool{true}},
			{"launch time the kernel lacks", func(u *UMEM, a []uint64) []unix.XDPDesc {
				u.txmdFlags &^= TXMDLaunchTime
				putMD(u, a[0]+256, TXMDLaunchTime, 0, 0)
				return []unix.XDPDesc{{Addr: a[0] + 256, Len: 60, Options: md}}
			}, md, 0, BadMetadata, nil},
			{"metadata on a continuation", func(u *UMEM, a []uint64) []unix.XDPDesc {
				putMD(u, a[0]+256, TXMDTimestamp, 0, 0)
				putMD(u, a[1]+TXMetadataLen, TXMDTimestamp, 0, 0)
				return []unix.XDPDesc{{Addr: a[0] + 256, Len: 60, Options: md | contd}, {Addr: a[1] + TXMetadataLen, Len: 60, Options: md}}
			}, md | contd, 1, BadMetadata, []bool{true}},
			{"continuation without metadata", func(u *UMEM, a []uint64) []unix.XDPDesc {
				putMD(u, a[0]+256, TXMDTimestamp, 0, 0)
				return []unix.XDPDesc{{Addr: a[0] + 256, Len: 60, Options: md | contd}, desc(a[1]+TXMetadataLen, 60),
					{Addr: a[2] + TXMetadataLen, Len: 60, Options: md}}
			}, md | contd, 3, OK, []bool{true, false, false}},
			{"a frame twice", func(u *UMEM, a []uint64) []unix.XDPDesc {
				return []unix.XDPDesc{desc(a[0]+256, 60), desc(a[0]+512, 60)}
			}, md, 1, NotHeld, []bool{false}},
			{"crosses its frame", func(u *UMEM, a []uint64) []unix.XDPDesc { return []unix.XDPDesc{desc(a[0]+2000, 60)} }, md, 0, CrossesFrame, nil},
		} {
			name := tc.name
			if unaligned {
				name += "/unaligned"
			}
			t.Run(name, func(t *testing.T) {
				u := newTestUMEM(t, cfg)
				p := u.Main()
				pr := addTestPair(t, p, 4, 4)
				a := p.allocN(t, 4)
				descs := tc.descs(u, a)
				before := p.Counts()
				p.Lock()
				k, bytes, r := p.StageTXLocked(pr.Pair, descs, tc.allowed)
				if bytes != descBytes(descs[:k]) {
					t.Errorf("StageTXLocked: %d bytes, want %d", bytes, descBytes(descs[:k]))
				}
				if k != tc.want || r != tc.reason {
					p.Unlock()
					t.Fatalf("StageTXLocked = %d, %d; want %d, %d", k, r, tc.want, tc.reason)
				}
				for i, d := range descs[:k] {
					j, _ := u.index(d.Addr)
					if u.state(d.Addr) != StateTX || u.txTS[j] != tc.ts[i] {
						t.Errorf("staged %#x: %s, timestamp asked %v; want tx, %v", d.Addr, u.state(d.Addr), u.txTS[j], tc.ts[i])
					}
				}
				p.UnstageTXLocked(descs[:k])
				p.Unlock()
				wantCounts(t, "after unstage", p, before)
				if err := u.checkIgnoringViolations(); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// TestTXTimestampLog sends frames with and without timestamp requests,
// has the "kernel" write timestamps and complete them, and checks what
// the reap logged, in order, also when the log overflows.
func TestTXTimestampLog(t *testing.T) {
	t.Parallel()
	u := newTestUMEM(t, cfgMD)
	p := u.Main()
	pr := addTestPair(t, p, 4, 4)
	if len(pr.tsLog) != 4 {
		t.Fatalf("log of %d entries, want the completion ring's 4", len(pr.tsLog))
	}
	var next uint64 = 1000
	round := func(withTS ...bool) (want []txTimestamp) {
		t.Helper()
		a := p.allocN(t, len(withTS))
		descs := make([]unix.XDPDesc, len(a))
		for i := range a {
			descs[i] = desc(a[i]+256, 60)
			if withTS[i] {
				putMD(u, a[i]+256, TXMDTimestamp, 0, 0)
				descs[i].Options = unix.XDP_TX_METADATA
			}
		}
		p.Lock()
		if k, _, r := p.StageTXLocked(pr.Pair, descs, unix.XDP_TX_METADATA); k != len(descs) {
			p.Unlock()
			t.Fatalf("StageTXLocked = %d, %d", k, r)
		}
		p.CommitTXLocked(pr.Pair, len(descs))
		p.Unlock()
		for i, d := range descs {
			next++
			// The kernel writes completion.tx_timestamp over the request,
			// for every frame that asked, before it completes it.
			if withTS[i] {
				binary.NativeEndian.PutUint64(u.TXMetadataBytes(d.Addr)[TXMDTimestampOff:], next)
				want = append(want, txTimestamp{d.Addr, next})
			}
			if pr.complete(d.Addr) != 1 {
				t.Fatal("completion ring full")
			}
		}
		if n := p.reap(pr, 16); n != uint32(len(descs)) {
			t.Fatalf("reaped %d of %d", n, len(descs))
		}
		return want
	}
	pop := func() (got []txTimestamp) {
		p.Lock()
		defer p.Unlock()
		for {
			a, ts, ok := pr.PopTXTimestampLocked()
			if !ok {
				return got
			}
			got = append(got, txTimestamp{a, ts})
		}
	}
	equal := func(what string, got, want []txTimestamp) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %v, want %v", what, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: %v, want %v", what, got, want)
			}
		}
	}

	w := round(true, false, true, true)
	equal("one round", pop(), w)
	if got := pop(); len(got) != 0 {
		t.Fatalf("log not empty after draining: %v", got)
	}
	// Six timestamped frames into a log of four: the first two are lost.
	w = append(round(true, true, true), round(true, true, true)...)
	equal("overflow", pop(), w[2:])
	p.Lock()
	lost := pr.TXTimestampsLostLocked()
	p.Unlock()
	if lost != 2 {
		t.Errorf("lost %d, want 2", lost)
	}
	// A frame sent again without a request logs nothing, though its
	// metadata still says timestamp.
	a := p.allocN(t, 1)
	putMD(u, a[0]+256, TXMDTimestamp, 0, 0)
	p.send(t, pr, desc(a[0]+256, 60))
	pr.complete(a[0] + 256)
	p.reap(pr, 16)
	equal("no request", pop(), nil)
	wantCounts(t, "at the end", p, Counts{Total: 16, Free: 12, Fill: 4}) // reaped onto pr's empty fill ring until it was full
	if err := u.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestTXMetadataFastPath checks that a UMEM without TX metadata keeps
// refusing XDP_TX_METADATA as an unknown option, and takes descriptors at
// a frame's start.
func TestTXMetadataFastPath(t *testing.T) {
	t.Parallel()
	u := newTestUMEM(t, cfg16)
	p := u.Main()
	pr := addTestPair(t, p, 4, 4)
	a := p.allocN(t, 2)
	p.Lock()
	k, _, r := p.StageTXLocked(pr.Pair, []ring.Desc{desc(a[0], 60), {Addr: a[1] + 256, Len: 60, Options: unix.XDP_TX_METADATA}}, 0)
	p.UnstageTXLocked([]ring.Desc{desc(a[0], 60)}[:k])
	p.Unlock()
	if k != 1 || r != BadOptions {
		t.Fatalf("StageTXLocked = %d, %d; want 1, BadOptions", k, r)
	}
}

// BenchmarkTXCycleMetadata is BenchmarkTXCycle on a UMEM with TX
// metadata, every frame asking for a checksum and a timestamp: the cost
// of the metadata checks when staging and of the timestamp log when
// reaping.
func BenchmarkTXCycleMetadata(b *testing.B) {
	for _, md := range []bool{false, true} {
		b.Run(map[bool]string{false: "plain", true: "metadata"}[md], func(b *testing.B) {
			u := newTestUMEM(b, Config{FrameCount: 4096, FrameSize: 4096, FillRingSize: 2048, CompletionRingSize: 2048, TXMetadata: md})
			p := u.Main()
			tp := addTestPair(b, p, 2048, 2048)
			addrs := make([]uint64, 64)
			descs := make([]unix.XDPDesc, 64)
			allowed := uint32(0)
			if md {
				allowed = unix.XDP_TX_METADATA
			}
			b.ReportAllocs()
			frames := 0
			for b.Loop() {
				n := p.AllocInto(addrs)
				for i := range n {
					descs[i] = unix.XDPDesc{Addr: addrs[i] + 256, Len: 60}
					if md {
						putMD(u, descs[i].Addr, TXMDTimestamp|TXMDChecksum, 34, 6)
						descs[i].Options = unix.XDP_TX_METADATA
					}
				}
				p.Lock()
				k, _, _ := p.StageTXLocked(tp.Pair, descs[:n], allowed)
				p.CommitTXLocked(tp.Pair, k)
				p.Unlock()
				for i := range k {
					addrs[i] = descs[i].Addr
				}
				tp.complete(addrs[:k]...)
				p.Lock()
				p.ReapLocked(tp.Pair, 64)
				for {
					if _, _, ok := tp.PopTXTimestampLocked(); !ok {
						break
					}
				}
				p.Unlock()
				frames += k
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(frames), "ns/frame")
		})
	}
}
