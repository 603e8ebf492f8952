package testframes

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// CheckCorpus checks that dir, a fuzz target's seed corpus under
// testdata/fuzz, holds every one of seeds as a file named by its key, so
// that `go test` runs them all. With update it writes the files instead.
// A missing or stale file fails the test with a message that says to run
// rerun, the command that updates the corpus.
func CheckCorpus(t testing.TB, dir string, seeds map[string][]byte, update bool, rerun string) {
	t.Helper()
	for name, frame := range seeds {
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(frame)))
		path := filepath.Join(dir, name)
		if update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got, err := os.ReadFile(path); err != nil || string(got) != want {
			t.Errorf("seed %s is missing or stale in %s: run %s", name, dir, rerun)
		}
	}
}
