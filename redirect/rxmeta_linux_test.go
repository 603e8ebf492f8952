//go:build linux

package redirect_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/fastpath"
	"github.com/xdpkit/xdpkit/filter"
	"github.com/xdpkit/xdpkit/internal/netlink"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/redirect"
)

const (
	enodata    = 61 // ENODATA: the driver has nothing for this frame
	eopnotsupp = 95 // EOPNOTSUPP: the driver lacks the kfunc
)

// kernelSpec is the running kernel's BTF, or a skip before Linux 6.8.
func kernelSpec(tb testing.TB) *btf.Spec {
	tb.Helper()
	testutils.SkipOnOldKernel(tb, "6.8", "XDP RX metadata kfuncs")
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		tb.Fatalf("kernel BTF: %v", err)
	}
	return spec
}

// The kfuncs the program calls exist with the arguments it passes, and
// the package's constants are the kernel's (include/net/xdp.h enum
// xdp_rss_hash_type, include/uapi/linux/netdev.h enum
// netdev_xdp_rx_metadata), read from the kernel's BTF.
func TestRXMetadataKernelBTF(t *testing.T) {
	spec := kernelSpec(t)
	if _, err := redirect.KfuncIDsForTest(); err != nil {
		t.Fatal(err)
	}
	for _, name := range redirect.RXMetadataKfuncNames() {
		var fn *btf.Func
		if err := spec.TypeByName(name, &fn); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %v", name, fn.Type)
	}
	enum := func(name string) map[string]uint64 {
		var e *btf.Enum
		if err := spec.TypeByName(name, &e); err != nil {
			t.Fatal(err)
		}
		m := map[string]uint64{}
		for _, v := range e.Values {
			m[v.Name] = v.Value
		}
		return m
	}
	rss := enum("xdp_rss_hash_type")
	for name, v := range map[string]redirect.RSSHashType{
		"XDP_RSS_L3_IPV4": redirect.RSSL3IPv4, "XDP_RSS_L3_IPV6": redirect.RSSL3IPv6, "XDP_RSS_L3_DYNHDR": redirect.RSSL3DynHdr,
		"XDP_RSS_L4": redirect.RSSL4, "XDP_RSS_L4_TCP": redirect.RSSL4TCP, "XDP_RSS_L4_UDP": redirect.RSSL4UDP,
		"XDP_RSS_L4_SCTP": redirect.RSSL4SCTP, "XDP_RSS_L4_IPSEC": redirect.RSSL4IPSec, "XDP_RSS_L4_ICMP": redirect.RSSL4ICMP,
		"XDP_RSS_TYPE_L4_ANY": redirect.RSSL4, "XDP_RSS_TYPE_L4_IPV4_UDP": redirect.RSSL3IPv4 | redirect.RSSL4 | redirect.RSSL4UDP,
	} {
		if got, ok := rss[name]; !ok || got != uint64(v) {
			t.Errorf("kernel %s = %#x (present %v), package has %#x", name, got, ok, uint32(v))
		}
	}
	feat := enum("netdev_xdp_rx_metadata")
	for name, v := range map[string]uint64{"NETDEV_XDP_RX_METADATA_TIMESTAMP": 1, "NETDEV_XDP_RX_METADATA_HASH": 2, "NETDEV_XDP_RX_METADATA_VLAN_TAG": 4} {
		if got, ok := feat[name]; !ok || got != v {
			t.Errorf("kernel %s = %#x (present %v), want %#x", name, got, ok, v)
		}
	}
}

// A kernel without the kfuncs, or with other signatures, is refused with
// ErrNotSupported naming the kfunc and the release it needs.
func TestRXMetadataMissingKfuncs(t *testing.T) {
	t.Parallel()
	// A BTF spec with only the timestamp kfunc, as on Linux 6.3 to 6.7
	// the VLAN one is missing.
	var b btf.Builder
	ptr := &btf.Pointer{Target: &btf.Int{Name: "u64", Size: 8}}
	ts := &btf.Func{Name: "bpf_xdp_metadata_rx_timestamp", Type: &btf.FuncProto{
		Return: &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed},
		Params: []btf.FuncParam{{Name: "ctx", Type: ptr}, {Name: "timestamp", Type: ptr}},
	}, Linkage: btf.GlobalFunc}
	hash := &btf.Func{Name: "bpf_xdp_metadata_rx_hash", Type: &btf.FuncProto{
		Return: &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed},
		Params: []btf.FuncParam{{Name: "ctx", Type: ptr}, {Name: "hash", Type: ptr}}, // the 6.3-rc signature
	}, Linkage: btf.GlobalFunc}
	for _, tc := range []struct {
		funcs []*btf.Func
		want  string
	}{
		{nil, "no kfunc bpf_xdp_metadata_rx_timestamp (Linux 6.3 or later)"},
		{[]*btf.Func{ts}, "no kfunc bpf_xdp_metadata_rx_hash (Linux 6.3 or later)"},
		{[]*btf.Func{ts, hash}, "not the 3 arguments of Linux 6.3"},
	} {
		b = btf.Builder{}
		for _, fn := range tc.funcs {
			if _, err := b.Add(fn); err != nil {
				t.Fatal(err)
			}
		}
		raw, err := b.Marshal(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		err = redirect.KfuncIDsOf(spec)
		if !errors.Is(err, redirect.ErrNotSupported) || !strings.Contains(fmt.Sprint(err), tc.want) {
			t.Errorf("%d kfuncs: %v, want ErrNotSupported and %q", len(tc.funcs), err, tc.want)
		}
	}
}

// The program the tests run with stand-ins is the real one: the same
// instructions but for the three calls.
func TestRXMetadataStubsMatchProgram(t *testing.T) {
	t.Parallel()
	real, stubbed := redirect.RXMetadataInstructions([3]uint32{1001, 1002, 1003})
	if len(real) != len(stubbed) {
		t.Fatalf("%d instructions, stubbed %d", len(real), len(stubbed))
	}
	kfuncs := 0
	for i := range real {
		r, s := real[i], stubbed[i]
		if r.IsKfuncCall() {
			if !s.IsFunctionCall() {
				t.Errorf("instruction %d: kfunc call %v, stubbed %v", i, r, s)
			}
			if want := int64(1001 + kfuncs); r.Constant != want || r.Offset != 0 {
				t.Errorf("kfunc call %d: imm %d off %d, want imm %d (the BTF ID) off 0 (vmlinux)", kfuncs, r.Constant, r.Offset, want)
			}
			kfuncs++
			continue
		}
		if r.OpCode != s.OpCode || r.Dst != s.Dst || r.Src != s.Src || r.Offset != s.Offset || r.Constant != s.Constant ||
			r.Symbol() != s.Symbol() || r.Reference() != s.Reference() {
			t.Errorf("instruction %d: %v, stubbed %v", i, r, s)
		}
	}
	if kfuncs != 3 {
		t.Errorf("%d kfunc calls, want 3", kfuncs)
	}
	t.Logf("the redirect program with RX metadata:\n%v", real)
}

// xdpFrameSize is sizeof(struct xdp_frame): bpf_xdp_adjust_meta keeps the
// metadata above it in the headroom.
func xdpFrameSize(tb testing.TB) int {
	tb.Helper()
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		tb.Fatal(err)
	}
	var s *btf.Struct
	if err := spec.TypeByName("xdp_frame", &s); err != nil {
		tb.Fatal(err)
	}
	return int(s.Size)
}

// BPF_PROG_RUN of the program with stand-ins for the kfuncs: the metadata
// area, byte for byte, and the redirect. (The kernel test-runs no
// device-bound program; TestRXMetadataDeviceBound checks that, and the
// afxdp tests run the real one on a veth.)
func TestRXMetadataProgRun(t *testing.T) {
	testutils.RequirePrivileged(t)
	if !littleEndian() {
		t.Skip("the areas below are written for a little-endian host")
	}
	v := testutils.NewVeth(t, testutils.VethOptions{})
	frame := testutils.UDPFrame(v.HostMAC, v.PeerMAC, v.PeerIP.As4(), v.HostIP.As4(), 1000, 2000, []byte("hello"))
	// An unbound AF_XDP socket in the XSKMAP makes the redirect return
	// XDP_REDIRECT on kernels that take one (6.x), else XDP_PASS.
	xsk, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(xsk)

	be16 := func(v uint16) uint16 { return binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, v)) }
	allOK := redirect.RXStubs{Timestamp: 0x0102030405060708, Hash: 0xa1b2c3d4, HashType: 0x29, VLANProto: be16(0x8100), VLANTCI: 0x2065}
	allFail := allOK
	allFail.TimestampRet, allFail.HashRet, allFail.VLANRet = -enodata, -eopnotsupp, -enodata
	mixed := allOK
	mixed.Timestamp, mixed.HashRet = 0, -enodata
	stale := mustHex(t, "07014b58") // the last word of a complete area

	// Metadata already in front of the frame (BPF_PROG_RUN takes it in
	// the input, ctx->data bytes of it) is dropped first. Less headroom
	// is made by a filter growing the head with bpf_xdp_adjust_head: the
	// metadata must stay above the struct xdp_frame at the start of the
	// 256-byte headroom.
	fsize := xdpFrameSize(t)
	growHead := func(n int) asm.Instructions {
		return asm.Instructions{
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.Mov.Imm(asm.R2, int32(-n)),
			asm.FnXdpAdjustHead.Call(),
		}
	}
	short := 256 - fsize - 16 // leaves 16 bytes: not the area, but 4 bytes
	full := 256 - fsize       // leaves none
	t.Logf("sizeof(struct xdp_frame) = %d: growing the head by %d bytes leaves room for 4 bytes of metadata, by %d for none", fsize, short, full)

	for _, tc := range []struct {
		name     string
		stubs    redirect.RXStubs
		metaIn   int              // bytes of metadata in the input, 0xee with stale at the end
		filter   asm.Instructions // runs first
		grown    int              // bytes the filter adds in front of the frame
		want     string           // hex of the metadata in front of the frame after the run
		wantMeta redirect.RXMetadata
		wantOK   bool
	}{
		{
			name: "all kfuncs succeed", stubs: allOK,
			want: "0807060504030201 d4c3b2a1 29000000 8100 6520 07014b58",
			wantMeta: redirect.RXMetadata{Timestamp: 0x0102030405060708, TimestampOK: true, Hash: 0xa1b2c3d4, HashType: 0x29, HashOK: true,
				VLANProto: 0x8100, VLANTCI: 0x2065, VLANOK: true},
			wantOK: true,
		},
		{
			// The stand-ins write their values before failing: the
			// program zeroes the fields again.
			name: "all kfuncs fail", stubs: allFail,
			want:   "0000000000000000 00000000 00000000 0000 0000 00014b58",
			wantOK: true,
		},
		{
			name: "zero timestamp and no hash", stubs: mixed,
			want:     "0000000000000000 00000000 00000000 8100 6520 04014b58",
			wantMeta: redirect.RXMetadata{VLANProto: 0x8100, VLANTCI: 0x2065, VLANOK: true},
			wantOK:   true,
		},
		{
			// Metadata of someone else's in front of the frame is
			// replaced: the area ends where the data begins.
			name: "metadata already there", stubs: allOK, metaIn: 212,
			want:     "0807060504030201 d4c3b2a1 29000000 8100 6520 07014b58",
			wantMeta: redirect.RXMetadata{Timestamp: 0x0102030405060708, TimestampOK: true, Hash: 0xa1b2c3d4, HashType: 0x29, HashOK: true, VLANProto: 0x8100, VLANTCI: 0x2065, VLANOK: true},
			wantOK:   true,
		},
		{
			name: "4 bytes of metadata already there", stubs: allFail, metaIn: 4,
			want:   "0000000000000000 00000000 00000000 0000 0000 00014b58",
			wantOK: true,
		},
		{
			// No room for the area: 4 zero bytes where the last word
			// would be, so that no stale metadata passes for this frame's.
			name: "room for 4 bytes only", stubs: allOK, filter: growHead(short), grown: short,
			want: "00000000",
		},
		{
			// No room at all: the frame is redirected without metadata.
			name: "no room", stubs: allOK, filter: growHead(full), grown: full,
			want: "",
		},
	} {
		for _, counters := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/counters=%v", tc.name, counters), func(t *testing.T) {
				xsks, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: 1})
				if err != nil {
					t.Fatal(err)
				}
				defer xsks.Close()
				prog, cm, err := redirect.LoadRXMetadataStubs(xsks, tc.stubs, counters, tc.filter)
				if err != nil {
					t.Fatal(err)
				}
				defer prog.Close()
				defer cm.Close()
				for _, registered := range []bool{false, true} {
					wantAction := uint32(xdpPass)
					if registered {
						if err := xsks.Update(uint32(0), uint32(xsk), 0); err != nil {
							t.Logf("unbound AF_XDP socket refused (%v): XDP_REDIRECT not checked", err)
							continue
						}
						wantAction = xdpRedirect
					}
					in := bytes.Repeat([]byte{0xee}, tc.metaIn)
					if tc.metaIn > 0 {
						copy(in[tc.metaIn-4:], stale)
					}
					in = append(in, frame...)
					var ctxOut xdpMD
					opts := &ebpf.RunOptions{
						Data:       in,
						DataOut:    make([]byte, len(in)+redirect.RXMetadataSize+tc.grown+64),
						Context:    xdpMD{Data: uint32(tc.metaIn), DataEnd: uint32(len(in)), IngressIfindex: uint32(v.HostIndex)},
						ContextOut: &ctxOut,
					}
					ret, err := prog.Run(opts)
					if err != nil {
						t.Fatalf("BPF_PROG_RUN: %v", err)
					}
					if ret != wantAction {
						t.Errorf("registered %v: action %d, want %d", registered, ret, wantAction)
					}
					out := opts.DataOut
					meta, data := out[:ctxOut.Data], out[ctxOut.Data:]
					if got := hex.EncodeToString(meta); got != strings.ReplaceAll(tc.want, " ", "") {
						t.Errorf("metadata in front of the frame:\n got %s\nwant %s", got, strings.ReplaceAll(tc.want, " ", ""))
					}
					if len(data) < tc.grown || !bytes.Equal(data[tc.grown:], frame) {
						t.Errorf("frame changed:\n got %x\nwant %x", data, frame)
					}
					m, ok := redirect.ParseRXMetadata(meta)
					if ok != tc.wantOK || m != tc.wantMeta {
						t.Errorf("ParseRXMetadata = %+v, %v; want %+v, %v", m, ok, tc.wantMeta, tc.wantOK)
					}
					if err := xsks.Delete(uint32(0)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
						t.Fatal(err)
					}
				}
				if cm != nil {
					var perCPU []uint64
					var pass uint64
					if err := cm.Lookup(uint32(xdpPass), &perCPU); err != nil {
						t.Fatal(err)
					}
					for _, n := range perCPU {
						pass += n
					}
					if pass == 0 {
						t.Errorf("counters: no XDP_PASS counted")
					}
				}
			})
		}
	}
}

// The real program: the verifier takes it bound to a veth, with the
// other options; the kernel refuses to test-run it (net/bpf/test_run.c
// bpf_prog_test_run_xdp returns EINVAL for a device-bound program, as the
// kfuncs would read driver state a test run does not have); a program
// not bound to a device cannot call the kfuncs at all.
func TestRXMetadataDeviceBound(t *testing.T) {
	testutils.RequirePrivileged(t)
	kernelSpec(t)
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 2})
	f := mustCompile(t, "udp", filter.Redirect, filter.Pass, false)
	for _, o := range []redirect.Options{
		{RXMetadata: true},
		{RXMetadata: true, Counters: true},
		{RXMetadata: true, MultiBuffer: true},
		{RXMetadata: true, Filter: f, Counters: true},
		{RXMetadata: true, FastPath: newFastPath(t, &fastpath.Config{Default: fastpath.Redirect}), Counters: true, MultiBuffer: true},
		{RXMetadata: true, FastPath: newFastPath(t, &fastpath.Config{Default: fastpath.Pass, PreciseClock: true}), Filter: f},
	} {
		prog, xsks, counters, err := redirect.LoadForTest(v.HostIndex, 2, &o)
		if err != nil {
			t.Fatalf("load %+v: %v", o, err)
		}
		info, err := prog.Info()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%+v: loaded, %s", o, info.Tag)
		_, rerr := prog.Run(&ebpf.RunOptions{Data: make([]byte, 64)})
		if !errors.Is(rerr, unix.EINVAL) {
			t.Errorf("BPF_PROG_RUN of a device-bound program: %v, want EINVAL", rerr)
		}
		prog.Close()
		xsks.Close()
		counters.Close()
	}

	// Without the binding the verifier refuses the kfuncs.
	ids, err := redirect.KfuncIDsForTest()
	if err != nil {
		t.Fatal(err)
	}
	real, _ := redirect.RXMetadataInstructions(ids)
	xsks, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer xsks.Close()
	if err := real.AssociateMap("xsks_map", xsks); err != nil {
		t.Fatal(err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "Dual MIT/GPL", Instructions: real})
	if err == nil {
		prog.Close()
		t.Fatal("the verifier took the RX metadata kfuncs in a program not bound to a device")
	}
	if !strings.Contains(err.Error(), "metadata kfuncs require device-bound program") {
		t.Errorf("unbound program: %v, want the verifier's \"metadata kfuncs require device-bound program\"", err)
	}
}

func TestRXMetadataAttach(t *testing.T) {
	testutils.RequirePrivileged(t)
	kernelSpec(t)
	v := testutils.NewVeth(t, testutils.VethOptions{})
	features, err := redirect.DeviceRXMetadataForTest(v.HostIndex)
	if err != nil {
		t.Fatal(err)
	}
	if features != 7 {
		t.Errorf("veth xdp-rx-metadata-features = %#x, want 7 (timestamp, hash, VLAN tag: drivers/net/veth.c veth_xdp_metadata_ops)", features)
	}
	for _, mode := range []redirect.Mode{redirect.ModeAuto, redirect.ModeDriver} {
		p, err := redirect.Attach(v.HostIndex, &redirect.Options{Mode: mode, RXMetadata: true})
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if !p.RXMetadata() || p.Mode() != redirect.ModeDriver {
			t.Errorf("%s: RXMetadata %v, Mode %s; want true, driver", mode, p.RXMetadata(), p.Mode())
		}
		wantAttached(t, v.HostIndex, p.XDPProgram(), netlink.XDPAttachedDrv)
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}
	p, err := redirect.Attach(v.HostIndex, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.RXMetadata() {
		t.Error("a program attached without Options.RXMetadata reports RXMetadata")
	}
	p.Close()
	var nilProgram *redirect.Program
	if nilProgram.RXMetadata() {
		t.Error("nil Program reports RXMetadata")
	}
}

func TestRXMetadataInvalidOptions(t *testing.T) {
	testutils.RequirePrivileged(t)
	v := testutils.NewVeth(t, testutils.VethOptions{})
	never := mustCompile(t, "udp", filter.Drop, filter.Pass, false)
	for _, tc := range []struct {
		name string
		opts redirect.Options
		want string
	}{
		{"generic mode", redirect.Options{RXMetadata: true, Mode: redirect.ModeGeneric}, "needs driver mode"},
		{"filter that never redirects", redirect.Options{RXMetadata: true, Filter: never}, "never redirects"},
	} {
		if err := tc.opts.Validate(); !errors.Is(err, redirect.ErrInvalidOptions) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate = %v, want ErrInvalidOptions and %q", tc.name, err, tc.want)
		}
		if p, err := redirect.Attach(v.HostIndex, &tc.opts); !errors.Is(err, redirect.ErrInvalidOptions) {
			p.Close()
			t.Errorf("%s: Attach = %v, want ErrInvalidOptions", tc.name, err)
		}
	}

	prog, xsks := userProgram(t, 1)
	if p, err := redirect.AttachProgram(v.HostIndex, prog, xsks, &redirect.Options{RXMetadata: true}); !errors.Is(err, redirect.ErrInvalidOptions) {
		p.Close()
		t.Errorf("AttachProgram with RXMetadata: %v, want ErrInvalidOptions", err)
	}
	dir := filepath.Join(privateBPFFS(t), "xdpkit")
	if p, err := redirect.AttachPinned(v.HostIndex, "rxmeta", &redirect.Options{RXMetadata: true, PinDir: dir}); !errors.Is(err, redirect.ErrInvalidOptions) || !strings.Contains(fmt.Sprint(err), "only Attach") {
		p.Close()
		t.Errorf("AttachPinned with RXMetadata: %v, want ErrInvalidOptions", err)
	} else {
		t.Log(err)
	}
}

// Devices without the kfuncs, in the veth's namespace: a bridge and a
// macvlan (no native XDP, ndo_bpf: the kernel refuses to bind a program
// to them, kernel/bpf/offload.c) and a tap (tun
// has native XDP but no xdp_metadata_ops: the kernel binds and attaches
// the program, and every kfunc would return EOPNOTSUPP at run time). In
// both cases netdev xdp-rx-metadata-features is 0 and Attach fails with
// ErrNotSupported instead of attaching a program that stores no
// metadata.
func TestRXMetadataDeviceWithoutKfuncs(t *testing.T) {
	testutils.RequirePrivileged(t)
	kernelSpec(t)
	v := testutils.NewVeth(t, testutils.VethOptions{})
	created := map[string]bool{}
	if _, err := testutils.Run("ip", "-n", v.NS, "link", "add", "xkbr0", "type", "bridge"); err == nil {
		created["xkbr0"] = true
	} else {
		t.Logf("no bridge: %v", err)
	}
	if _, err := testutils.Run("ip", "-n", v.NS, "tuntap", "add", "xktap0", "mode", "tap"); err == nil {
		created["xktap0"] = true
	} else {
		t.Logf("no tap: %v", err)
	}
	if _, err := testutils.Run("ip", "-n", v.NS, "link", "add", "link", v.Peer, "name", "xkmv0", "type", "macvlan"); err == nil {
		created["xkmv0"] = true
	} else {
		t.Logf("no macvlan: %v", err)
	}
	if len(created) == 0 {
		t.Skip("neither a bridge nor a tap can be created here")
	}
	ids, err := redirect.KfuncIDsForTest()
	if err != nil {
		t.Fatal(err)
	}
	// The netdev query runs in the calling thread's namespace: the peer
	// end, a veth, has all three there.
	v.InPeer(t, func() error {
		features, err := redirect.DeviceRXMetadataForTest(v.PeerIndex)
		if err == nil && features != 7 {
			t.Errorf("veth peer (ifindex %d in %s): xdp-rx-metadata-features %#x, want 7", v.PeerIndex, v.NS, features)
		}
		return err
	})
	for name := range created {
		testutils.MustRun(t, "ip", "-n", v.NS, "link", "set", name, "up")
		v.InPeer(t, func() error {
			l, err := netlink.LinkByName(name)
			if err != nil {
				return err
			}
			features, err := redirect.DeviceRXMetadataForTest(l.Index)
			if err != nil {
				return err
			}
			if features != 0 {
				t.Errorf("%s: xdp-rx-metadata-features %#x, want 0", name, features)
			}

			// What the kernel does with a device-bound program with the
			// kfuncs for this device.
			real, _ := redirect.RXMetadataInstructions(ids)
			xsks, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: 1})
			if err != nil {
				return err
			}
			defer xsks.Close()
			if err := real.AssociateMap("xsks_map", xsks); err != nil {
				return err
			}
			prog, lerr := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "Dual MIT/GPL", Instructions: real,
				Ifindex: uint32(l.Index), Flags: unix.BPF_F_XDP_DEV_BOUND_ONLY})
			switch {
			case lerr != nil:
				t.Logf("%s: the kernel refuses to load the device-bound program: %v", name, lerr)
				if name != "xktap0" && !errors.Is(lerr, unix.EOPNOTSUPP) {
					t.Errorf("%s: load %v, want EOPNOTSUPP (no ndo_bpf)", name, lerr)
				}
			default:
				lk, aerr := link.AttachXDP(link.XDPOptions{Program: prog, Interface: l.Index, Flags: link.XDPDriverMode})
				t.Logf("%s: the kernel loads the device-bound program; attach in driver mode: %v (the kfuncs then return EOPNOTSUPP: TestRXMetadataKfuncResults)", name, aerr)
				if aerr == nil {
					lk.Close()
				}
				prog.Close()
			}

			p, err := redirect.Attach(l.Index, &redirect.Options{RXMetadata: true})
			if err == nil {
				p.Close()
				t.Errorf("%s: Attach with RXMetadata succeeded", name)
				return nil
			}
			if !errors.Is(err, redirect.ErrNotSupported) || !strings.Contains(err.Error(), "implements none of the XDP RX metadata kfuncs") {
				t.Errorf("%s: %v, want ErrNotSupported saying the device implements none of the kfuncs", name, err)
			}
			t.Logf("%s: %v", name, err)
			if xdpInfo(t, l.Index).IsAttached() {
				t.Errorf("%s: a program was left attached", name)
			}
			return nil
		})
	}
}

// kfuncProbe is a device-bound XDP program for ifindex that calls the
// three kfuncs with stack buffers preset to 0x55 and stores what they
// return and write in an array map, then passes the frame.
type kfuncProbe struct {
	prog *ebpf.Program
	m    *ebpf.Map
}

// kfuncResult is the probe map's value, as the program lays it out on
// its stack.
type kfuncResult struct {
	VLANRet, HashRet, TimestampRet int32
	VLANTCI                        uint16
	VLANProto                      [2]byte
	HashType, Hash                 uint32
	Timestamp                      uint64
}

func newKfuncProbe(t *testing.T, ifindex int) *kfuncProbe {
	t.Helper()
	ids, err := redirect.KfuncIDsForTest()
	if err != nil {
		t.Fatal(err)
	}
	call := func(id uint32) asm.Instruction {
		return asm.Instruction{OpCode: asm.OpCode(asm.JumpClass).SetJumpOp(asm.Call), Src: asm.PseudoKfuncCall, Constant: int64(id)}
	}
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 32, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	ptr := func(r asm.Register, off int32) asm.Instructions {
		return asm.Instructions{asm.Mov.Reg(r, asm.RFP), asm.Add.Imm(r, off)}
	}
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadImm(asm.R1, 0x5555555555555555, asm.DWord),
		asm.StoreMem(asm.RFP, -8, asm.R1, asm.DWord),
		asm.StoreMem(asm.RFP, -16, asm.R1, asm.DWord),
		asm.StoreMem(asm.RFP, -24, asm.R1, asm.DWord),
		asm.StoreMem(asm.RFP, -32, asm.R1, asm.DWord),
		asm.Mov.Reg(asm.R1, asm.R6),
	}
	insns = append(insns, ptr(asm.R2, -8)...)
	insns = append(insns, call(ids[0]), asm.StoreMem(asm.RFP, -24, asm.R0, asm.Word), asm.Mov.Reg(asm.R1, asm.R6))
	insns = append(insns, ptr(asm.R2, -12)...)
	insns = append(insns, ptr(asm.R3, -16)...)
	insns = append(insns, call(ids[1]), asm.StoreMem(asm.RFP, -28, asm.R0, asm.Word), asm.Mov.Reg(asm.R1, asm.R6))
	insns = append(insns, ptr(asm.R2, -18)...)
	insns = append(insns, ptr(asm.R3, -20)...)
	insns = append(insns, call(ids[2]), asm.StoreMem(asm.RFP, -32, asm.R0, asm.Word),
		asm.Mov.Imm(asm.R1, 0), asm.StoreMem(asm.RFP, -36, asm.R1, asm.Word),
		asm.LoadMapPtr(asm.R1, m.FD()))
	insns = append(insns, ptr(asm.R2, -36)...)
	insns = append(insns, ptr(asm.R3, -32)...)
	insns = append(insns, asm.Mov.Imm(asm.R4, 0), asm.FnMapUpdateElem.Call(), asm.Mov.Imm(asm.R0, xdpPass), asm.Return())
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "xdpkit_kfprobe", Type: ebpf.XDP, License: "Dual MIT/GPL", Instructions: insns,
		Ifindex: uint32(ifindex), Flags: unix.BPF_F_XDP_DEV_BOUND_ONLY})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: link.XDPDriverMode})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return &kfuncProbe{prog: prog, m: m}
}

// wait returns the probe's result once the program has run.
func (p *kfuncProbe) wait(t *testing.T) kfuncResult {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var r kfuncResult
		if err := p.m.Lookup(uint32(0), &r); err != nil {
			t.Fatal(err)
		}
		if r != (kfuncResult{}) {
			return r
		}
	}
	t.Fatal("the probe program did not run within 5s")
	return kfuncResult{}
}

// What the kfuncs themselves return, on the kernel under test: on a veth
// for a frame that arrives as an skb, success with a zero timestamp (its
// hardware timestamp), a hash, and -ENODATA for the VLAN tag of an
// untagged frame (with the TCI zeroed all the same); on a tap, whose driver (tun) implements none, -EOPNOTSUPP
// for all three with nothing written. The redirect program's ok bits
// follow from these.
func TestRXMetadataKfuncResults(t *testing.T) {
	testutils.RequirePrivileged(t)
	kernelSpec(t)
	const sentinel = 0x5555555555555555

	t.Run("veth", func(t *testing.T) {
		v := testutils.NewVeth(t, testutils.VethOptions{})
		p := newKfuncProbe(t, v.HostIndex)
		ps := v.OpenPeerPacketSocket(t)
		if err := ps.Send(testutils.UDPFrame(v.HostMAC, v.PeerMAC, v.PeerIP.As4(), v.HostIP.As4(), 1000, 2000, []byte("probe"))); err != nil {
			t.Fatal(err)
		}
		r := p.wait(t)
		t.Logf("veth, skb: %+v", r)
		if r.TimestampRet != 0 || r.Timestamp != 0 {
			t.Errorf("timestamp: %d, %#x; want 0, 0 (the skb's unset hardware timestamp)", r.TimestampRet, r.Timestamp)
		}
		if r.HashRet != 0 || r.Hash == 0 || redirect.RSSHashType(r.HashType) != redirect.RSSL4 {
			t.Errorf("hash: %d, %#x type %#x; want 0, a hash, XDP_RSS_TYPE_L4_ANY", r.HashRet, r.Hash, r.HashType)
		}
		// __vlan_hwaccel_get_tag zeroes the TCI when it fails: a kfunc
		// may write its buffers and fail, which is why the program zeroes
		// the fields of a failed call.
		if r.VLANRet != -enodata || r.VLANTCI != 0 || r.VLANProto != [2]byte{0x55, 0x55} {
			t.Errorf("VLAN tag: %d, TCI %#x, proto %x; want -ENODATA, TCI zeroed, proto not written", r.VLANRet, r.VLANTCI, r.VLANProto)
		}
	})

	t.Run("tap", func(t *testing.T) {
		v := testutils.NewVeth(t, testutils.VethOptions{})
		if _, err := testutils.Run("ip", "-n", v.NS, "tuntap", "add", "xkprobetap", "mode", "tap"); err != nil {
			t.Skipf("no tap: %v", err)
		}
		testutils.MustRun(t, "ip", "-n", v.NS, "link", "set", "xkprobetap", "up")
		var p *kfuncProbe
		var tun int
		v.InPeer(t, func() error {
			l, err := netlink.LinkByName("xkprobetap")
			if err != nil {
				return err
			}
			p = newKfuncProbe(t, l.Index)
			if tun, err = unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0); err != nil {
				return err
			}
			ifr, err := unix.NewIfreq("xkprobetap")
			if err != nil {
				return err
			}
			ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
			return unix.IoctlIfreq(tun, unix.TUNSETIFF, ifr)
		})
		defer unix.Close(tun)
		frame := testutils.UDPFrame([]byte{2, 0, 0, 0, 0, 1}, []byte{2, 0, 0, 0, 0, 2}, [4]byte{10, 0, 0, 2}, [4]byte{10, 0, 0, 1}, 1000, 2000, []byte("probe"))
		if _, err := unix.Write(tun, frame); err != nil { // the tap receives it: tun_get_user runs XDP
			t.Fatal(err)
		}
		r := p.wait(t)
		t.Logf("tap: %+v", r)
		if r.TimestampRet != -eopnotsupp || r.HashRet != -eopnotsupp || r.VLANRet != -eopnotsupp {
			t.Errorf("returns %d %d %d, want -EOPNOTSUPP (net/core/xdp.c's defaults) for all three", r.TimestampRet, r.HashRet, r.VLANRet)
		}
		if r.Timestamp != sentinel || r.Hash != 0x55555555 || r.VLANTCI != 0x5555 {
			t.Errorf("the kfuncs wrote to their buffers: %+v", r)
		}
	})
}
