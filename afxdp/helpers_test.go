//go:build linux

package afxdp_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/internal/testutils"
)

// magic marks the test's own frames; anything else the peer's kernel sends
// (IPv6 router solicitations, ...) is ignored.
var magic = []byte("xdpkit-test!")

const testPort = 9999

// testFrame is a UDP frame from the peer to the host carrying magic and
// seq, padded to size bytes (at least 60).
func testFrame(v *testutils.Veth, seq uint32, sport uint16, size int) []byte {
	payload := make([]byte, max(size-42, len(magic)+4))
	copy(payload, magic)
	binary.BigEndian.PutUint32(payload[len(magic):], seq)
	for i := len(magic) + 4; i < len(payload); i++ {
		payload[i] = byte(seq) + byte(i)
	}
	return testutils.UDPFrame(v.HostMAC, v.PeerMAC, v.PeerIP.As4(), v.HostIP.As4(), sport, testPort, payload)
}

// seqOf returns the sequence number of a test frame, or false.
func seqOf(frame []byte) (uint32, bool) {
	const off = 42
	if len(frame) < off+len(magic)+4 || !bytes.Equal(frame[off:off+len(magic)], magic) {
		return 0, false
	}
	return binary.BigEndian.Uint32(frame[off+len(magic):]), true
}

// openHost opens a socket on the host side of v, closed at cleanup.
func openHost(t testing.TB, v *testutils.Veth, queue int, cfg *afxdp.Config) *afxdp.Socket {
	t.Helper()
	s, err := afxdp.OpenIndex(v.HostIndex, queue, cfg)
	if err != nil {
		t.Fatalf("open %s queue %d: %v", v.Host, queue, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// openPeerTX opens a transmit-only socket on the peer side, in its
// namespace, with no XDP program.
func openPeerTX(t testing.TB, v *testutils.Veth, cfg *afxdp.Config) *afxdp.Socket {
	t.Helper()
	c := afxdp.Config{Bind: afxdp.BindCopy, Steering: afxdp.NoSteering}
	if cfg != nil {
		c = *cfg
		c.Steering = afxdp.NoSteering
	}
	var s *afxdp.Socket
	v.InPeer(t, func() (err error) {
		s, err = afxdp.OpenIndex(v.PeerIndex, 0, &c)
		return err
	})
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// receiveUntil receives from s, calling fn for every test frame, until
// done returns true or timeout passes. Frames are released after fn.
// It returns the number of frames that were not test frames.
func receiveUntil(t testing.TB, s *afxdp.Socket, timeout time.Duration, done func() bool, fn func(seq uint32, frame []byte)) (others int) {
	t.Helper()
	descs := make([]unix.XDPDesc, 64)
	deadline := time.Now().Add(timeout)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v", timeout)
		}
		if err := s.Wait(100 * time.Millisecond); err != nil && !errors.Is(err, afxdp.ErrTimeout) {
			t.Fatalf("wait: %v", err)
		}
		n, err := s.Receive(descs)
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		for _, d := range descs[:n] {
			f := s.Frame(d)
			if seq, ok := seqOf(f); ok {
				fn(seq, f)
			} else {
				others++
			}
		}
		if err := s.Release(descs[:n]); err != nil {
			t.Fatalf("release: %v", err)
		}
	}
	return others
}

// sendFromPeer transmits frames through peer socket p, waiting for all
// completions.
func sendFromPeer(t testing.TB, p *afxdp.Socket, frames [][]byte) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(frames) > 0 {
		n, err := p.TransmitBytes(frames)
		if err != nil {
			t.Fatalf("peer transmit: %v", err)
		}
		frames = frames[n:]
		if n == 0 {
			p.Complete()
			if time.Now().After(deadline) {
				t.Fatal("peer transmit made no progress for 10s")
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	if err := p.Flush(5 * time.Second); err != nil {
		t.Fatalf("peer flush: %v", err)
	}
}

func checkAccounting(t testing.TB, s *afxdp.Socket) {
	t.Helper()
	if err := s.UMEM().Check(); err != nil {
		t.Errorf("UMEM accounting: %v", err)
	}
	c := s.UMEM().Counts()
	if c.Free+c.Fill+c.App+c.TX != c.Total {
		t.Errorf("counts do not add up: %+v", c)
	}
}

// waitKinds are the socket's ways to wait for frames, for tests that hold
// for each: Wait, WaitPoll and WaitAny on the one socket.
var waitKinds = []struct {
	name string
	wait func(*afxdp.Socket, time.Duration) error
}{
	{"Wait", (*afxdp.Socket).Wait},
	{"WaitPoll", (*afxdp.Socket).WaitPoll},
	{"WaitAny", func(s *afxdp.Socket, d time.Duration) error { return afxdp.WaitAny(d, s) }},
}
