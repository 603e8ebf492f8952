//go:build !linux

package afxdp

import (
	"context"
	"fmt"
	"runtime"
	"time"
)

// Outside Linux there is no AF_XDP: Open fails with ErrNotSupported, so
// no Socket exists for the methods below to be called on.

var errUnsupported = fmt.Errorf("afxdp: AF_XDP on %s/%s: %w", runtime.GOOS, runtime.GOARCH, ErrNotSupported)

func openName(string, int, *Config) (*Socket, error)      { return nil, errUnsupported }
func openIndex(int, int, *Config) (*Socket, error)        { return nil, errUnsupported }
func waitAny(time.Duration, ...*Socket) error             { return errUnsupported }
func (s *Socket) receive([]Desc) (int, error)             { return 0, errUnsupported }
func (s *Socket) release([]Desc) error                    { return errUnsupported }
func (s *Socket) transmit([]Desc) (int, error)            { return 0, errUnsupported }
func (s *Socket) complete() int                           { return 0 }
func (s *Socket) pendingTX() int                          { return 0 }
func (s *Socket) flush(time.Duration) error               { return errUnsupported }
func (s *Socket) readStats() (Stats, error)               { return Stats{}, errUnsupported }
func (s *Socket) waitFor(time.Duration) error             { return errUnsupported }
func (s *Socket) waitContext(context.Context) error       { return errUnsupported }
func (s *Socket) waitTX(time.Duration) error              { return errUnsupported }
func (s *Socket) busyPollOnce()                           {}
func (s *Socket) receivePackets([]Desc) (int, error)      { return 0, errUnsupported }
func (s *Socket) writePacket([]Desc, []byte) (int, error) { return 0, errUnsupported }
func (s *Socket) teardown() error                         { return nil }
