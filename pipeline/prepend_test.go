package pipeline_test

import (
	"bytes"
	"testing"

	"github.com/xdpkit/xdpkit/pipeline"
)

// TestPrepend: Data grows at the front into the headroom SetFrame gave,
// as far as there is room, and not once a stage moved Data itself.
func TestPrepend(t *testing.T) {
	buf := make([]byte, 64)
	copy(buf[40:], "payload!")
	p := &pipeline.Packet{Data: buf[40:48]}
	p.SetFrame(buf, 40)
	if !p.Prepend(20) || len(p.Data) != 28 || !bytes.Equal(p.Data[20:], []byte("payload!")) {
		t.Fatalf("Prepend(20): %q", p.Data)
	}
	if !p.Prepend(20) || len(p.Data) != 48 {
		t.Fatalf("second Prepend(20): %d bytes", len(p.Data))
	}
	if p.Prepend(1) {
		t.Fatal("Prepend past the frame's start succeeded")
	}
	p.Data = p.Data[4:] // a stage moved Data: Prepend no longer knows where it is
	if p.Prepend(2) {
		t.Fatal("Prepend after a stage moved Data succeeded")
	}
	var q pipeline.Packet
	q.Data = []byte("no frame")
	if q.Prepend(1) || q.Prepend(-1) {
		t.Fatal("Prepend without a frame succeeded")
	}
}
