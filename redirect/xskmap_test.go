//go:build linux

package redirect_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/redirect"
)

func TestXSKMap(t *testing.T) {
	testutils.RequirePrivileged(t)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: 2})
	if err != nil {
		t.Fatal(err)
	}
	x, err := redirect.NewXSKMap(m)
	if err != nil {
		t.Fatal(err)
	}
	if x.Queues() != 2 {
		t.Errorf("Queues %d, want 2", x.Queues())
	}
	if err := x.Register(2, 0); !errors.Is(err, unix.EINVAL) {
		t.Errorf("queue 2 of 2: %v, want EINVAL", err)
	}
	f, _ := os.Open("/dev/null")
	defer f.Close()
	if err := x.Register(0, int(f.Fd())); err == nil {
		t.Error("registering /dev/null: no error")
	} else {
		t.Log(err)
	}
	if err := x.Unregister(1); err != nil {
		t.Errorf("unregistering an empty entry: %v", err)
	}
	if err := x.Close(); err != nil || x.Close() != nil {
		t.Errorf("Close: %v", err)
	}
	if err := x.Register(0, 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("after Close: %v, want os.ErrClosed", err)
	}
	arr, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := redirect.NewXSKMap(arr); !errors.Is(err, redirect.ErrInvalidOptions) {
		t.Errorf("an array map: %v, want ErrInvalidOptions", err)
	}
	if _, err := redirect.OpenXSKMap(filepath.Join(t.TempDir(), "none")); err == nil || !strings.Contains(err.Error(), "xdpkit attach") {
		t.Errorf("a missing pin: %v, want the hint", err)
	}
}
