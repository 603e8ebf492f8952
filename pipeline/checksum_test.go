//go:build linux

package pipeline_test

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/umem"
)

// echoUpper sends a UDP datagram back to its sender with its payload in
// upper case, leaving the checksum stale, or to the kernel with leave.
type echoUpper struct {
	leave bool
	err   error
}

func (s *echoUpper) Name() string { return "echo-upper" }
func (s *echoUpper) Handle(p *pipeline.Packet) pipeline.Verdict {
	h := &p.Headers
	if h.IPProto != 17 || !h.IPv4 {
		return pipeline.Drop
	}
	f := p.Data
	payload := f[h.PayloadOff:]
	copy(payload, bytes.ToUpper(payload))
	var mac [6]byte
	copy(mac[:], f[0:6])
	copy(f[0:6], f[6:12])
	copy(f[6:12], mac[:])
	var ip [4]byte
	copy(ip[:], f[h.L3Off+12:])
	copy(f[h.L3Off+12:h.L3Off+16], f[h.L3Off+16:h.L3Off+20])
	copy(f[h.L3Off+16:], ip[:])
	var port [2]byte
	copy(port[:], f[h.L4Off:])
	copy(f[h.L4Off:h.L4Off+2], f[h.L4Off+2:h.L4Off+4])
	copy(f[h.L4Off+2:], port[:])
	if s.leave {
		s.err = p.LeaveL4Checksum()
	}
	return pipeline.Transmit
}

// TestLeaveL4Checksum: a stage that rewrites a datagram's payload and
// leaves the checksum to the kernel (TX metadata, the kernel computing it
// at send) gets its reply accepted by the sender's kernel UDP socket; the
// same stage without it sends a datagram the socket drops.
func TestLeaveL4Checksum(t *testing.T) {
	for _, leave := range []bool{true, false} {
		v := testutils.NewVeth(t, testutils.VethOptions{})
		s, err := afxdp.Open(v.Host, 0, &afxdp.Config{UMEMOptions: &umem.Options{TXMetadata: true, TXSoftwareChecksum: true}})
		if err != nil {
			t.Fatal(err)
		}
		stage := &echoUpper{leave: leave}
		r, err := pipeline.New(pipeline.Config{Socket: s, Stages: []pipeline.Stage{stage}})
		if err != nil {
			t.Fatal(err)
		}
		stop := start(t, r)
		var conn *net.UDPConn
		v.InPeer(t, func() error {
			var err error
			conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: v.PeerIP.AsSlice(), Port: 5000})
			return err
		})
		if _, err := conn.WriteTo([]byte("hello, checksum"), &net.UDPAddr{IP: v.HostIP.AsSlice(), Port: 7000}); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		n, err := conn.Read(buf)
		conn.Close()
		st := stop()
		s.Close()
		switch {
		case leave && (err != nil || string(buf[:n]) != "HELLO, CHECKSUM"):
			t.Errorf("with LeaveL4Checksum: %q, %v; want the reply (stats %+v, stage error %v)", buf[:n], err, st, stage.err)
		case !leave && err == nil:
			t.Errorf("without it: the peer accepted %q with a stale checksum", buf[:n])
		}
		if leave && stage.err != nil {
			t.Errorf("LeaveL4Checksum: %v", stage.err)
		}
	}
}

// Without TX metadata in the UMEM it says so.
func TestLeaveL4ChecksumNoMetadata(t *testing.T) {
	sock, kernel, err := afxdp.NewMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	var got error
	stage := pipeline.Func(func(p *pipeline.Packet) pipeline.Verdict { got = p.LeaveL4Checksum(); return pipeline.Drop })
	r, err := pipeline.New(pipeline.Config{Socket: sock, Stages: []pipeline.Stage{stage}})
	if err != nil {
		t.Fatal(err)
	}
	kernel.Deliver(make([]byte, 60))
	if _, err := r.Poll(); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(got, pipeline.ErrNoTXMetadata) {
		t.Errorf("LeaveL4Checksum without TX metadata: %v, want ErrNoTXMetadata", got)
	}
	var p pipeline.Packet
	if !errors.Is(p.LeaveL4Checksum(), pipeline.ErrNoTXMetadata) {
		t.Error("outside a Runner: no ErrNoTXMetadata")
	}
}
