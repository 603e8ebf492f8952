//go:build linux

package umem_test

import (
	"errors"
	"testing"

	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/umem"
)

func TestTXMetadataOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		o    *umem.Options
		want error
	}{
		{"TX metadata", &umem.Options{TXMetadata: true}, nil},
		{"software checksum", &umem.Options{TXMetadata: true, TXSoftwareChecksum: true}, nil},
		{"software checksum without metadata", &umem.Options{TXSoftwareChecksum: true}, umem.ErrInvalidOptions},
	} {
		err := tc.o.Validate()
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	u, err := umem.NewMemory(&umem.Options{FrameCount: 64, FillRingSize: 32, CompletionRingSize: 32, TXMetadata: true})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if u.TXMetadataLen() != umem.TXMetadataLen || !u.Options().TXMetadata {
		t.Errorf("memory UMEM: TXMetadataLen %d, options %+v", u.TXMetadataLen(), u.Options())
	}
}

// TestTXMetadataRegister registers UMEMs with TX metadata with the
// kernel: Linux 6.11+ take XDP_UMEM_TX_METADATA_LEN, 6.8 to 6.10 the
// tx_metadata_len without it; older kernels refuse with ErrNotSupported.
func TestTXMetadataRegister(t *testing.T) {
	for _, o := range []umem.Options{
		{FrameCount: 64, FillRingSize: 32, CompletionRingSize: 32, TXMetadata: true},
		{FrameCount: 64, FillRingSize: 32, CompletionRingSize: 32, TXMetadata: true, TXSoftwareChecksum: true},
		{FrameCount: 64, FrameSize: 3000, FillRingSize: 32, CompletionRingSize: 32, TXMetadata: true, Unaligned: true},
	} {
		testutils.RequirePrivileged(t)
		u, err := umem.New(&o)
		testutils.SkipIfNotSupported(t, err, "6.8", "AF_XDP TX metadata (tx_metadata_len)")
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		if u.TXMetadataLen() != umem.TXMetadataLen {
			t.Errorf("%+v: TXMetadataLen %d", o, u.TXMetadataLen())
		}
		if err := u.Close(); err != nil {
			t.Error(err)
		}
	}
	plain := newUMEM(t, &umem.Options{FrameCount: 64, FillRingSize: 32, CompletionRingSize: 32})
	if plain.TXMetadataLen() != 0 {
		t.Errorf("TXMetadataLen without TX metadata: %d", plain.TXMetadataLen())
	}
}
