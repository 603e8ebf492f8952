package workers

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseList parses a list of numbers like "0-3", "0,2,5", "1-2,6" or
// "all" (which gives 0 to n-1), for queues. Duplicates are an error.
func ParseList(spec string, n int) ([]int, error) { return parseList(spec, n, false) }

// ParseCPUs parses a CPU list in the same syntax; a CPU may repeat, to put
// several workers on it.
func ParseCPUs(spec string, n int) ([]int, error) { return parseList(spec, n, true) }

func parseList(spec string, n int, dups bool) ([]int, error) {
	spec = strings.TrimSpace(spec)
	if spec == "all" {
		if n <= 0 {
			return nil, fmt.Errorf("workers: %q: count unknown: %w", spec, ErrInvalidConfig)
		}
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out, nil
	}
	if spec == "" {
		return nil, fmt.Errorf("workers: empty list: %w", ErrInvalidConfig)
	}
	var out []int
	seen := map[int]bool{}
	for _, part := range strings.Split(spec, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("workers: bad number %q in %q: %w", lo, spec, ErrInvalidConfig)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("workers: bad range %q in %q: %w", part, spec, ErrInvalidConfig)
			}
		}
		if b-a > 1<<16 {
			return nil, fmt.Errorf("workers: range %q too large: %w", part, ErrInvalidConfig)
		}
		for k := 0; k <= b-a; k++ { // counting, not i <= b, which is always true for b = math.MaxInt
			i := a + k
			if seen[i] && !dups {
				return nil, fmt.Errorf("workers: %d listed twice in %q: %w", i, spec, ErrInvalidConfig)
			}
			seen[i] = true
			out = append(out, i)
		}
	}
	return out, nil
}
