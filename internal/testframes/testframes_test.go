package testframes_test

import (
	"bytes"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/xdpkit/xdpkit/internal/testframes"
)

func TestHex(t *testing.T) {
	for _, c := range []struct {
		dump string
		want []byte
	}{
		{"", []byte{}},
		{"00 ff\t1A", []byte{0x00, 0xff, 0x1a}},
		{"\n\t\t01 02 # a comment: 03 04\n\t\t05 # another\n# a whole line\n06", []byte{1, 2, 5, 6}},
		{"0 1 0 2", []byte{1, 2}},
		{"01 # no newline at the end", []byte{1}},
	} {
		if got := testframes.Hex(c.dump); !bytes.Equal(got, c.want) {
			t.Errorf("Hex(%q) = %x, want %x", c.dump, got, c.want)
		}
	}
	for _, dump := range []string{"0", "zz", "01 0", "01 # 02\n 3"} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.HasPrefix(r.(string), "bad hex dump: ") {
					t.Errorf("Hex(%q) panicked with %v, want a bad hex dump", dump, r)
				}
			}()
			testframes.Hex(dump)
		}()
	}
}

// TestOnlyTestsImport checks that no non-test file of the module imports
// testframes.
func TestOnlyTestsImport(t *testing.T) {
	const self = "github.com/xdpkit/xdpkit/internal/testframes"
	root := filepath.Join("..", "..")
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		n++
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == self {
				t.Errorf("%s imports %s, which is for tests only", path, self)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("found only %d non-test Go files under %s", n, root)
	}
}
