//go:build linux

package testutils

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// FakeDevicePlugin is the device plugin's side of the protocol, as its
// udsserver.go implements it: the first request must be /connect with a
// known pod, then /xsk_map_fd, /version, /config_busy_poll and /fin in
// any order until /fin.
type FakeDevicePlugin struct {
	ln      *net.UnixListener
	Pods    map[string]bool
	Devices map[string]int // netdev -> XSKMAP fd
	// misbehaviours
	Silent       bool // never answer
	HangUp       bool // close after the first request
	ErrOnConnect bool // answer /connect with /error, then /host_nak
	AckNoFD      bool // /fd_ack without the fd
	Version      string
	BusyPoll     func(fd, timeout, budget int) error
	done         chan struct{}
}

// StartFakeDevicePlugin serves p on a SOCK_SEQPACKET unix socket at path
// until the test ends.
func StartFakeDevicePlugin(t testing.TB, path string, p *FakeDevicePlugin) *FakeDevicePlugin {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	p.ln, p.done = ln, make(chan struct{})
	if p.Version == "" {
		p.Version = "0.1"
	}
	go func() {
		defer close(p.done)
		for {
			c, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			p.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-p.done })
	return p
}

func (p *FakeDevicePlugin) serve(c *net.UnixConn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	read := func() (string, int, bool) {
		buf, oob := make([]byte, 64), make([]byte, syscall.CmsgSpace(4))
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			return "", -1, false
		}
		fd := -1
		if msgs, err := syscall.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if fds, err := syscall.ParseUnixRights(&m); err == nil && len(fds) > 0 {
					fd = fds[0]
				}
			}
		}
		return string(buf[:n]), fd, true
	}
	write := func(s string, fd int) {
		var oob []byte
		if fd >= 0 {
			oob = syscall.UnixRights(fd)
		}
		_, _, _ = c.WriteMsgUnix([]byte(s), oob, nil)
	}
	req, _, ok := read()
	if !ok || p.Silent {
		if p.Silent {
			time.Sleep(2 * time.Second)
		}
		return
	}
	if p.HangUp {
		return
	}
	words := strings.Split(req, ",")
	if len(words) != 2 || words[0] != "/connect" {
		write("/host_nak", -1)
		return
	}
	if p.ErrOnConnect {
		write("/error", -1)
		write("/host_nak", -1)
		return
	}
	if !p.Pods[strings.ReplaceAll(words[1], " ", "")] {
		write("/host_nak", -1)
		return
	}
	write("/host_ok", -1)
	for {
		req, fd, ok := read()
		if !ok {
			return
		}
		if fd >= 0 {
			defer unix.Close(fd) // the pod's socket, received for busy poll
		}
		switch {
		case strings.HasPrefix(req, "/xsk_map_fd"):
			w := strings.Split(req, ",")
			mfd, known := -1, false
			if len(w) == 2 {
				mfd, known = p.Devices[strings.ReplaceAll(w[1], " ", "")]
			}
			switch {
			case !known:
				write("/fd_nak", -1)
			case p.AckNoFD:
				write("/fd_ack", -1)
			default:
				write("/fd_ack", mfd)
			}
		case req == "/version":
			write(p.Version, -1)
		case strings.HasPrefix(req, "/config_busy_poll"):
			w := strings.Split(req, ",")
			to, bud := 0, 0
			if len(w) == 3 {
				to, _ = strconv.Atoi(w[1])
				bud, _ = strconv.Atoi(w[2])
			}
			if fd < 0 || len(w) != 3 || p.BusyPoll == nil || p.BusyPoll(fd, to, bud) != nil {
				write("/config_busy_poll_nak", -1)
			} else {
				write("/config_busy_poll_ack", -1)
			}
		case req == "/fin":
			write("/fin_ack", -1)
			return
		default:
			write("/nak", -1)
		}
	}
}
