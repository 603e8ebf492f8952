//go:build linux

package filter_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/xdpkit/xdpkit/filter"
	"github.com/xdpkit/xdpkit/internal/testutils"
)

// differentialExprs are compared with tcpdump frame by frame.
var differentialExprs = []string{
	"",
	"ip", "ip6", "arp", "rarp", "tcp", "udp", "sctp", "icmp", "icmp6",
	"vlan", "vlan 100", "vlan 200", "vlan 4095", "vlan 1", "vlan 0", "vlan 0x64", "vlan (100)",
	"not ip", "!tcp", "not not udp",

	"host 10.0.0.1", "src host 10.0.0.1", "dst host 10.0.0.1", "src and dst host 10.0.0.1",
	"src or dst host 192.168.1.10", "ip host 10.0.0.1", "arp host 10.0.0.1", "rarp host 10.0.0.1",
	"arp src host 10.0.0.1", "ip src 10.1.2.3", "src 10.1.2.3", "dst 0.0.0.10", "host 10", "host 1.2",
	"host 2001:db8::1", "src host 2001:db8::1", "dst host fe80::1", "ip6 host ::1", "host ::ffff:1.2.3.4",
	"ip6 dst host ff02::1", "host ::", "src and dst host ::1",

	"net 10.0.0.0/8", "net 192.168.1.0/24", "src net 192.168.0.0/16", "dst net 172.16.0.0/12",
	"net 10", "net 192.168.1", "net 10.0.0.0 mask 255.0.0.0", "net 10.0.0.0 mask 255.0.255.0",
	"net 0.0.0.0/0", "net 0", "net 258", "arp net 10.0.0.0/8", "ip dst net 10.0.0.0 / 8",
	"net 2001:db8::/32", "net 2001:db8::/48", "src net fe80::/10", "ip6 net ::/0", "net 2001:db8::/127",
	"dst net ff00::/8", "net ::ffff:0:0/96",

	"port 53", "src port 53", "dst port 53", "tcp port 22", "udp port 53", "sctp port 9999",
	"tcp src port 22", "udp dst port 9999", "src and dst port 53", "port 0", "port 65535", "port 0x35",
	"port 065", "src or dst port 22", "port 22 or 53", "tcp port 22 or 80 or 443",
	"portrange 1000-2000", "tcp portrange 1-1023", "udp src portrange 2000-1000", "portrange 53",
	"dst portrange 443-443", "portrange 0-65535", "sctp portrange 9000-10000",

	"proto 17", "ip proto 6", "ip6 proto 17", "ip6 proto 44", "proto 58", "ip proto 1", "ip proto 47",
	"proto 0", "ip6 proto 0", "ip proto 6 or 17", "proto 132",

	"udp port 53 or tcp port 22", "host 10.0.0.1 and port 53", "host 10.0.0.1 or 192.168.1.10",
	"port 53 or 80 or 443", "not port 53 and udp", "tcp and not port 22", "ip and udp and dst port 9999",
	"udp or tcp and port 53", "not udp or tcp", "not (udp or tcp)", "!(host 10.0.0.1 && port 22) || arp",
	"host 10.0.0.1 and not 10.1.2.3", "port 53 and not 22", "host 10.0.0.1 or (192.168.1.10 and 10.1.2.3)",
	"host 10.0.0.1 and (port 53) or 10.1.2.3", "host (10.0.0.1 or 8.8.8.8)", "port not 53",
	"not host 10.0.0.1 and 8.8.8.8", "dst port 53 and not src net 10.0.0.0/8", "ip and not icmp",
	"tcp or icmp6", "ip6 and udp", "ip6 and port 53", "tcp port 22 and host 2001:db8::1",
	"icmp6 and not ip6 proto 17", "arp or rarp or icmp", "(tcp or udp) and (port 22 or port 53)",

	"vlan and ip", "vlan and udp port 53", "vlan 100 and vlan 200", "vlan 100 and vlan 200 and ip",
	"vlan and vlan and udp", "vlan or ip", "ip or vlan", "not vlan and ip", "vlan 100 and host 10.0.0.1",
	"vlan and arp", "vlan and ip6 and tcp", "(vlan) or udp", "vlan and net 10.0.0.0/8",
	"vlan 200 or vlan 100", "vlan and not vlan", "vlan and (udp or tcp)", "vlan 100 and port 53",
	"vlan and vlan and vlan", "vlan and vlan 100 and vlan 1 and arp", "not vlan 100", "vlan and icmp6",
	"udp or vlan and udp", "vlan and port 22 and host 10.0.0.1", "vlan and proto 17",
	"vlan and portrange 50-60",
}

// keepExpr is CompileOptions.KeepManagement in tcpdump's words.
const keepExpr = "(arp or (ip6[6] = 58 and ip6[40] >= 133 and ip6[40] <= 137) or tcp port 22 or tcp port 53 or udp port 53)"

var actionPairs = [][2]filter.Action{
	{filter.Drop, filter.Pass}, {filter.Redirect, filter.Pass}, {filter.Pass, filter.Drop},
	{filter.Redirect, filter.Drop}, {filter.Drop, filter.Redirect}, {filter.Pass, filter.Redirect},
}

// tcpdump reads pcaps and filters them.
type tcpdump struct {
	path   string
	pcap   string // the corpus
	frames []frame
}

// newTcpdump writes frames to a pcap, one second apart so that tcpdump's
// output names each frame by its timestamp.
func newTcpdump(t *testing.T, frames []frame) *tcpdump {
	t.Helper()
	path := testutils.NeedCommand(t, "tcpdump", "apt-get install tcpdump")
	file := filepath.Join(t.TempDir(), "corpus.pcap")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i, fr := range frames {
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(int64(i), 0), CaptureLength: len(fr.data), Length: len(fr.data)}
		if err := w.WritePacket(ci, fr.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return &tcpdump{path: path, pcap: file, frames: frames}
}

// errRejectsAll is tcpdump's refusal of an expression its optimizer
// proves matches nothing.
var errRejectsAll = errors.New("expression rejects all packets")

// selection runs tcpdump -r corpus -w - expr and returns which frames it
// selected. With unoptimized, tcpdump runs with -O: libpcap's optimizer
// off.
func (d *tcpdump) selection(expr string, unoptimized bool) ([]bool, error) {
	args := []string{"-r", d.pcap, "-w", "-"}
	if unoptimized {
		args = append(args, "-O")
	}
	cmd := exec.Command(d.path, append(args, expr)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			if strings.Contains(stderr.String(), "expression rejects all packets") {
				return nil, errRejectsAll
			}
			return nil, fmt.Errorf("tcpdump %q: %w: %s", expr, err, strings.TrimSpace(stderr.String()))
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return nil, fmt.Errorf("tcpdump %q: timed out", expr)
	}
	r, err := pcapgo.NewReader(&stdout)
	if err != nil {
		return nil, fmt.Errorf("tcpdump %q output: %w", expr, err)
	}
	sel := make([]bool, len(d.frames))
	for n := 0; n <= len(d.frames); n++ {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			return sel, nil
		}
		if err != nil {
			return nil, fmt.Errorf("tcpdump %q output: %w", expr, err)
		}
		i := int(ci.Timestamp.Unix())
		if i < 0 || i >= len(d.frames) || !bytes.Equal(data, d.frames[i].data) {
			return nil, fmt.Errorf("tcpdump %q output: frame with timestamp %v is not in the corpus", expr, ci.Timestamp)
		}
		sel[i] = true
	}
	return nil, fmt.Errorf("tcpdump %q output: more frames than the corpus has", expr)
}

// mustSelect is selection that treats "rejects all packets" as an empty
// selection and fails t on other errors.
func (d *tcpdump) mustSelect(t *testing.T, expr string, unoptimized bool) []bool {
	t.Helper()
	sel, err := d.selection(expr, unoptimized)
	if errors.Is(err, errRejectsAll) {
		return make([]bool, len(d.frames))
	}
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

// verdicts runs p on every frame of the corpus.
func (d *tcpdump) verdicts(t *testing.T, p *filter.Program) []filter.Action {
	t.Helper()
	prog := mustLoad(t, p)
	got := make([]filter.Action, len(d.frames))
	for i, fr := range d.frames {
		got[i] = verdict(t, prog, fr.data)
	}
	return got
}

// check compares the verdicts got of p with tcpdump's selection sel of
// expr (by tool, for messages): selected frames must get p's match
// action, the others its nomatch action, except frames in keep (if not
// nil), which must be passed. Frames marked in skip are not compared. It
// returns how many frames sel selects.
func (d *tcpdump) check(t *testing.T, tool, expr string, p *filter.Program, got []filter.Action, sel, keep, skip []bool) (selected int) {
	t.Helper()
	bad := 0
	for i, fr := range d.frames {
		want := p.NoMatch()
		switch {
		case keep != nil && keep[i]:
			want = filter.Pass
		case sel[i]:
			want = p.Match()
		}
		if sel[i] {
			selected++
		}
		if got[i] == want || skip != nil && skip[i] {
			continue
		}
		if bad++; bad <= 3 {
			t.Errorf("%q (compiled as %q): frame %d (%s, %d bytes): verdict %s, want %s (%s selects it: %v)\n% x",
				expr, p.String(), i, fr.name, len(fr.data), got[i], want, tool, sel[i], fr.data)
		}
	}
	if bad > 3 {
		t.Errorf("%q: %d frames differ from %s in all", expr, bad, tool)
	}
	return selected
}

// TestTcpdumpDifferential compiles many expressions and checks, frame by
// frame on a corpus of more than a thousand, that the program matches the
// frames tcpdump selects:
//
//   - exactly those of tcpdump (optimizer on) for the hand-written
//     expressions, and for the random ones on every frame where tcpdump
//     and tcpdump -O agree. They disagree only on frames too short for a
//     field the expression reads: libpcap's optimizer skips loads whose
//     outcome other tests decide, so whether a load beyond the end of the
//     frame, which rejects it, happens at all depends on the optimizer.
//   - exactly those of tcpdump -O (optimizer off) for every expression and
//     frame, when compiled as libpcap does without its optimizer
//     (CompileUnoptimized, which only adds the loads of address words a
//     net's mask leaves out). This checks that fields are read in the
//     same order as libpcap reads them.
//
// The normalized expression (String) must select the same frames in
// tcpdump as the original.
func TestTcpdumpDifferential(t *testing.T) {
	testutils.RequirePrivileged(t)
	frames := corpus()
	d := newTcpdump(t, frames)
	t.Logf("corpus: %d frames", len(frames))

	exprs := append([]string(nil), differentialExprs...)
	rng := rand.New(rand.NewPCG(7, 7))
	for range 150 {
		exprs = append(exprs, randomExpr(rng, 3))
	}
	some, optimizerOnly := 0, 0
	for n, expr := range exprs {
		pair := actionPairs[n%len(actionPairs)]
		p, err := filter.Compile(expr, pair[0], pair[1])
		if err != nil {
			t.Errorf("Compile(%q): %v", expr, err)
			continue
		}
		opt := d.mustSelect(t, expr, false)
		unopt := d.mustSelect(t, expr, true)
		var skip []bool
		if n >= len(differentialExprs) {
			skip = make([]bool, len(frames))
			for i := range skip {
				if skip[i] = opt[i] != unopt[i]; skip[i] {
					optimizerOnly++
				}
			}
		}
		if m := d.check(t, "tcpdump", expr, p, d.verdicts(t, p), opt, nil, skip); m > 0 && m < len(frames) {
			some++
		}

		u, err := filter.CompileUnoptimized(expr, pair[0], pair[1])
		if err != nil {
			t.Fatal(err)
		}
		d.check(t, "tcpdump -O", expr, u, d.verdicts(t, u), unopt, nil, nil)

		if norm := p.String(); norm != expr && !equalSel(d.mustSelect(t, norm, true), unopt) {
			t.Errorf("tcpdump -O selects different frames for %q and its normalized form %q", expr, norm)
		}
	}
	t.Logf("%d expressions, %d of them select some but not all frames; "+
		"%d frame verdicts of random expressions differ between tcpdump and tcpdump -O (short frames)",
		len(exprs), some, optimizerOnly)
	if some < len(exprs)/2 {
		t.Errorf("only %d of %d expressions select some but not all frames: the corpus is too uniform", some, len(exprs))
	}
}

// TestTcpdumpKeepManagement checks the management exemption against
// tcpdump, alone and in front of filters.
func TestTcpdumpKeepManagement(t *testing.T) {
	testutils.RequirePrivileged(t)
	frames := corpus()
	d := newTcpdump(t, frames)
	keep := d.mustSelect(t, keepExpr+" or (vlan and "+keepExpr+")", true)
	if !equalSel(keep, d.mustSelect(t, keepExpr+" or (vlan and "+keepExpr+")", false)) {
		t.Fatal("tcpdump and tcpdump -O disagree on the management expression")
	}
	kept := 0
	for _, k := range keep {
		if k {
			kept++
		}
	}
	if kept < 20 || kept > len(frames)/2 {
		t.Fatalf("tcpdump keeps %d of %d frames: the corpus or the expression is off", kept, len(frames))
	}
	t.Logf("%d of %d frames are management traffic", kept, len(frames))
	opts := &filter.CompileOptions{KeepManagement: true}
	for n, expr := range []string{"", "udp", "port 53", "not port 22", "arp", "vlan and udp", "host 10.0.0.1", "icmp6"} {
		pair := actionPairs[n%len(actionPairs)]
		p, err := filter.CompileWithOptions(expr, pair[0], pair[1], opts)
		if err != nil {
			t.Fatal(err)
		}
		if !p.KeepManagement() {
			t.Error("KeepManagement() = false")
		}
		d.check(t, "tcpdump", "keep management + "+expr, p, d.verdicts(t, p), d.mustSelect(t, expr, false), keep, nil)
	}
}

func equalSel(a, b []bool) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

// randomPrims are the primitives random expressions are made of, some
// with bare addresses or numbers after them that inherit their
// qualifiers.
var randomPrims = []string{
	"ip", "ip6", "arp", "rarp", "tcp", "udp", "sctp", "icmp", "icmp6", "vlan", "vlan 100", "vlan 200", "vlan 1",
	"host 10.0.0.1", "src host 8.8.8.8", "dst host 10.1.2.3", "host 2001:db8::1", "src host fe80::1",
	"net 10.0.0.0/8", "dst net 192.168.0.0/16", "net 2001:db8::/32", "src net ff00::/8", "arp host 10.0.0.1",
	"port 53", "port 22", "src port 9999", "tcp port 22", "udp dst port 53", "portrange 1000-2000",
	"udp portrange 0-100", "ip proto 17", "proto 6", "ip6 proto 58", "sctp port 53",
	"host 192.168.1.10 or 10.0.0.1", "port 80 or 443", "dst port 53 and not 22",
	"net 10", "host 1.2", "net 10.0.0.0 mask 255.0.255.0", "vlan 0x64", "port 065", "src and dst host 10.0.0.1",
	"src or dst port 53", "rarp src host 1.2.3.4", "ip6 dst net ::/0", "net 0.0.0.0/0", "host (8.8.8.8 or not 10.0.0.1)",
	"icmp6 or vlan 200 and icmp6",
}

// randomExpr returns a random expression of up to depth levels.
func randomExpr(rng *rand.Rand, depth int) string {
	if depth == 0 || rng.IntN(3) == 0 {
		s := randomPrims[rng.IntN(len(randomPrims))]
		if rng.IntN(5) == 0 {
			return "not " + s
		}
		return s
	}
	l, r := randomExpr(rng, depth-1), randomExpr(rng, depth-1)
	op := []string{" and ", " or ", " && ", " || "}[rng.IntN(4)]
	switch rng.IntN(4) {
	case 0:
		return "(" + l + ")" + op + r
	case 1:
		return l + op + "(" + r + ")"
	case 2:
		return "not (" + l + op + r + ")"
	}
	return l + op + r
}
