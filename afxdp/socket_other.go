//go:build !linux

package afxdp

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"time"
)

// Outside Linux there is no AF_XDP: Open fails with ErrNotSupported, so
// no Socket exists for the methods below to be called on.

var errUnsupported = fmt.Errorf("afxdp: AF_XDP on %s/%s: %w", runtime.GOOS, runtime.GOARCH, ErrNotSupported)

func openName(string, int, *Config) (*Socket, error)    { return nil, errUnsupported }
func openIndex(int, int, *Config) (*Socket, error)      { return nil, errUnsupported }
func waitAny(time.Duration, ...*Socket) error           { return errUnsupported }
func (s *sock) receive([]Desc) (int, error)             { return 0, errUnsupported }
func (s *sock) release([]Desc, bool) error              { return errUnsupported }
func (s *sock) discard([]Desc) (int, uint64, error)     { return 0, 0, errUnsupported }
func (s *sock) transmit([]Desc) (int, error)            { return 0, errUnsupported }
func (s *sock) complete() int                           { return 0 }
func (s *sock) pendingTX() int                          { return 0 }
func (s *sock) flush(time.Duration) error               { return errUnsupported }
func (s *sock) readStats() (Stats, error)               { return Stats{}, errUnsupported }
func (s *sock) waitFor(time.Duration) error             { return errUnsupported }
func (s *sock) waitContext(context.Context) error       { return errUnsupported }
func (s *sock) waitPoll(time.Duration) error            { return errUnsupported }
func (s *sock) waitTX(time.Duration) error              { return errUnsupported }
func (s *sock) busyPollOnce()                           {}
func (s *sock) receivePackets([]Desc) (int, error)      { return 0, errUnsupported }
func (s *sock) writePacket([]Desc, []byte) (int, error) { return 0, errUnsupported }
func (s *sock) teardown() error                         { return nil }

func newSocketFD() (int, error)                               { return -1, errUnsupported }
func sendSocket(*net.UnixConn, int) error                     { return errUnsupported }
func receiveSocket(*net.UnixConn, time.Duration) (int, error) { return -1, errUnsupported }
