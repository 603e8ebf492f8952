//go:build linux

package fastpath_test

import (
	"testing"

	"github.com/xdpkit/xdpkit/fastpath"
)

// TestInstructions: the instructions load for every Default, leave their
// first instruction unlabelled for the caller, and never label two the
// same way across calls.
func TestInstructions(t *testing.T) {
	seen := map[string]bool{}
	for _, def := range []fastpath.Action{fastpath.Redirect, fastpath.Pass, fastpath.Drop} {
		fp, _ := newFastPath(t, &fastpath.Config{Default: def})
		insns, err := fp.Instructions("xsk")
		if err != nil {
			t.Fatal(err)
		}
		if sym := insns[0].Symbol(); sym != "" {
			t.Fatalf("the first instruction has the label %q", sym)
		}
		for _, ins := range insns {
			if sym := ins.Symbol(); sym != "" {
				if seen[sym] {
					t.Fatalf("label %q in two calls' instructions", sym)
				}
				seen[sym] = true
			}
		}
	}
}
