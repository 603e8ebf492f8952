//go:build linux

package umem_test

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/umem"
)

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		o    *umem.Options
		want error
	}{
		{"nil", nil, nil},
		{"2048", &umem.Options{FrameSize: 2048}, nil},
		{"frame size", &umem.Options{FrameSize: 3000}, umem.ErrInvalidOptions},
		{"frame size 8192", &umem.Options{FrameSize: 8192}, umem.ErrInvalidOptions},
		{"headroom", &umem.Options{FrameSize: 2048, Headroom: 1024}, umem.ErrInvalidOptions},
		{"headroom ok", &umem.Options{FrameSize: 4096, Headroom: 1024}, nil},
		{"largest headroom", &umem.Options{FrameSize: 2048, Headroom: 768}, nil},
		{"headroom one too many", &umem.Options{FrameSize: 2048, Headroom: 769}, umem.ErrInvalidOptions},
		{"headroom wraps the sum", &umem.Options{FrameSize: 2048, Headroom: 0xffffffff}, umem.ErrInvalidOptions},
		{"headroom wraps the sum to 0", &umem.Options{FrameSize: 4096, Headroom: 1<<32 - 1280}, umem.ErrInvalidOptions},
		{"fill ring", &umem.Options{FillRingSize: 1000}, umem.ErrInvalidOptions},
		{"completion ring", &umem.Options{CompletionRingSize: 3}, umem.ErrInvalidOptions},
		{"too small", &umem.Options{FrameCount: 1024, FillRingSize: 2048}, umem.ErrTooSmall},
		{"too many", &umem.Options{FrameCount: 1 << 25}, umem.ErrInvalidOptions},
	} {
		err := tc.o.Validate()
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

func newUMEM(t *testing.T, o *umem.Options) *umem.UMEM {
	t.Helper()
	testutils.RequirePrivileged(t)
	u, err := umem.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := u.Close(); err != nil {
			t.Error(err)
		}
	})
	return u
}

func TestAllocFreeAccounting(t *testing.T) {
	u := newUMEM(t, &umem.Options{FrameCount: 64, FrameSize: 2048, FillRingSize: 32, CompletionRingSize: 32, Checked: true})
	if c := u.Counts(); c != (umem.Counts{Total: 64, Free: 64}) {
		t.Fatalf("fresh counts %+v", c)
	}
	seen := map[uint64]bool{}
	var addrs []uint64
	for {
		a, ok := u.Alloc()
		if !ok {
			break
		}
		if seen[a] || a%2048 != 0 || a >= 64*2048 {
			t.Fatalf("bad or repeated frame address %#x", a)
		}
		seen[a] = true
		addrs = append(addrs, a)
		if len(u.Frame(a)) != 2048 {
			t.Fatalf("frame %#x has %d bytes", a, len(u.Frame(a)))
		}
	}
	if len(addrs) != 64 {
		t.Fatalf("allocated %d frames, want 64", len(addrs))
	}
	if c := u.Counts(); c.App != 64 || c.Free != 0 {
		t.Fatalf("counts after allocating all: %+v", c)
	}
	// Offsets inside a frame are freed as the frame.
	for _, a := range addrs {
		if err := u.Free(a + 300); err != nil {
			t.Fatal(err)
		}
	}
	if err := u.Check(); err != nil {
		t.Fatal(err)
	}
	// Frames write through to the area.
	a, _ := u.Alloc()
	copy(u.Frame(a), "hello")
	if string(u.Bytes(a, 5)) != "hello" {
		t.Fatal("bytes do not round-trip")
	}
	if err := u.Free(a); err != nil {
		t.Fatal(err)
	}
}

func TestCheckedCatchesDoubleFree(t *testing.T) {
	u := newUMEM(t, &umem.Options{FrameCount: 64, FillRingSize: 32, CompletionRingSize: 32, Checked: true})
	a, _ := u.Alloc()
	if err := u.Free(a); err != nil {
		t.Fatal(err)
	}
	err := u.Free(a)
	if !errors.Is(err, umem.ErrFrameState) || !strings.Contains(err.Error(), "free") {
		t.Fatalf("second free: %v, want ErrFrameState", err)
	}
	if c := u.Counts(); c.Free != 64 {
		t.Fatalf("double free changed the counts: %+v", c)
	}
	if err := u.Check(); !errors.Is(err, umem.ErrFrameState) {
		t.Fatalf("Check after a violation: %v", err)
	}
	if err := u.Free(1 << 40); !errors.Is(err, umem.ErrFrameState) {
		t.Fatalf("freeing an address outside the UMEM: %v", err)
	}
}

func TestHugePages(t *testing.T) {
	testutils.RequirePrivileged(t)
	const path = "/proc/sys/vm/nr_hugepages"
	old, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("no hugepage support: %v", err)
	}
	t.Cleanup(func() { _ = os.WriteFile(path, old, 0o644) })

	// None reserved: a clear error naming the fix, unless fallback is asked.
	if err := os.WriteFile(path, []byte("0"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = umem.New(&umem.Options{FrameCount: 1024, FillRingSize: 512, HugePages: true})
	if !errors.Is(err, umem.ErrNoHugePages) || !strings.Contains(err.Error(), "nr_hugepages") {
		t.Fatalf("no hugepages: got %v", err)
	}
	u := newUMEM(t, &umem.Options{FrameCount: 1024, FillRingSize: 512, HugePages: true, HugePageFallback: true})
	if u.HugePages() {
		t.Fatal("fallback UMEM claims hugepages")
	}

	// Reserved: the area is on hugepages.
	if err := os.WriteFile(path, []byte("8"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); strings.TrimSpace(string(got)) == "0" {
		testutils.SkipOrFail(t, "the kernel reserved no hugepages")
	}
	hu := newUMEM(t, &umem.Options{FrameCount: 1024, FillRingSize: 512, HugePages: true})
	if !hu.HugePages() {
		t.Fatal("UMEM not on hugepages")
	}
	a, _ := hu.Alloc()
	copy(hu.Frame(a), "x")
	_ = hu.Free(a)
}

func TestCloseIdempotent(t *testing.T) {
	u := newUMEM(t, nil)
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := u.NewPool(1); !errors.Is(err, umem.ErrClosed) || !errors.Is(err, os.ErrClosed) {
		t.Fatalf("NewPool after Close: %v", err)
	}
	if _, ok := u.Alloc(); ok {
		t.Fatal("Alloc after Close gave a frame")
	}
	var nilUMEM *umem.UMEM
	if err := nilUMEM.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestDroppedUMEMIsReleased: a UMEM the program drops without Close is
// released by the garbage collector: its registration (an AF_XDP socket)
// closes and its memory is unmapped.
func TestDroppedUMEMIsReleased(t *testing.T) {
	testutils.RequirePrivileged(t)
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	before := fds()
	func() {
		u, err := umem.New(&umem.Options{FrameCount: 4096})
		if err != nil {
			t.Fatal(err)
		}
		if fds() != before+1 {
			t.Fatalf("%d fds after New, %d before: want one more (the registration)", fds(), before)
		}
		_ = u.Counts()
	}()
	deadline := time.Now().Add(5 * time.Second)
	for fds() > before {
		if time.Now().After(deadline) {
			t.Fatal("the dropped UMEM's registration is still open 5s and many GCs later")
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}
