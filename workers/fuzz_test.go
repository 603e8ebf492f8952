//go:build linux

package workers_test

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xdpkit/xdpkit/workers"
)

// refNumber is the reference for one number of a list: an optional sign
// (strconv.Atoi takes one: "+3", and "-0" as a range's end), then decimal
// digits, at most math.MaxInt and not negative.
func refNumber(s string) (int, bool) {
	neg := strings.HasPrefix(s, "-")
	if neg || strings.HasPrefix(s, "+") {
		s = s[1:]
	}
	if s == "" {
		return 0, false
	}
	v := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int(c - '0')
		if v > (math.MaxInt-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, !neg || v == 0
}

// refParse is the reference for ParseList (dups false) and ParseCPUs
// (dups true): "all", or comma-separated numbers and ranges lo-hi of at
// most 65537 numbers, in the order given; ok is false where they fail.
func refParse(spec string, n int, dups bool) (out []int, ok bool) {
	spec = strings.TrimSpace(spec)
	switch {
	case spec == "all" && n <= 0, spec == "":
		return nil, false
	case spec == "all":
		for i := range n {
			out = append(out, i)
		}
		return out, true
	}
	seen := map[int]bool{}
	for _, part := range strings.Split(spec, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, ok := refNumber(lo)
		if !ok {
			return nil, false
		}
		b := a
		if isRange {
			if b, ok = refNumber(hi); !ok || b < a {
				return nil, false
			}
		}
		if b-a > 1<<16 {
			return nil, false
		}
		for k := 0; k <= b-a; k++ {
			if seen[a+k] && !dups {
				return nil, false
			}
			seen[a+k] = true
			out = append(out, a+k)
		}
	}
	return out, true
}

// format writes l in the list syntax, runs of consecutive numbers as
// ranges: the canonical spelling of what ParseList returned.
func format(l []int) string {
	var parts []string
	for i := 0; i < len(l); {
		j := i
		for j+1 < len(l) && l[j] < math.MaxInt && l[j+1] == l[j]+1 && l[j+1]-l[i] <= 1<<16 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(l[i]))
		} else {
			parts = append(parts, strconv.Itoa(l[i])+"-"+strconv.Itoa(l[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// parseWithin runs parse, failing the test if it takes more than a few
// seconds (a range loop that never ends, say) instead of hanging.
func parseWithin(t *testing.T, parse func(string, int) ([]int, error), spec string, n int) ([]int, error) {
	t.Helper()
	type result struct {
		l   []int
		err error
	}
	done := make(chan result, 1)
	go func() {
		l, err := parse(spec, n)
		done <- result{l, err}
	}()
	select {
	case r := <-done:
		return r.l, r.err
	case <-time.After(5 * time.Second):
		t.Fatalf("parsing %q (n %d) did not end", spec, n)
		return nil, nil
	}
}

// FuzzParseList checks ParseList and ParseCPUs against the reference: they
// never panic or hang; they accept exactly what the reference accepts and
// return the same numbers in the same order, none negative, ParseList's
// without duplicates; and their result, written back in the list syntax,
// parses to itself.
func FuzzParseList(f *testing.F) {
	for _, spec := range []string{"0-3", "0,2,5", "1-2,6", "all", " all ", " 7 ", "", "x", "3-1", "1,1", "-1", "0-",
		"1-2,2", "1 - 2", "+3", "1-+3", "0--0", "1--0", "007", "0-65536", "0-65537", "5,4,3", "2,0-1", "1,,2", "1-2-3", "١",
		"9223372036854775807", "9223372036854775806-9223372036854775807", "9223372036854775808", "99999999999999999999-0"} {
		f.Add(spec, int16(3), false)
		f.Add(spec, int16(0), true)
	}
	f.Fuzz(func(t *testing.T, spec string, n16 int16, cpus bool) {
		if len(spec) > 40 {
			return // long lists only repeat short ones, and ranges make them expensive
		}
		n := int(n16)
		parse := workers.ParseList
		if cpus {
			parse = workers.ParseCPUs
		}
		got, err := parseWithin(t, parse, spec, n)
		want, ok := refParse(spec, n, cpus)
		switch {
		case ok && err != nil:
			t.Fatalf("%q (n %d, CPUs %v): refused: %v; the reference gives %v", spec, n, cpus, err, want)
		case !ok && err == nil:
			t.Fatalf("%q (n %d, CPUs %v): accepted as %v; the reference refuses it", spec, n, cpus, got)
		case !ok:
			if !strings.HasPrefix(err.Error(), "workers: ") {
				t.Errorf("error %q does not name the package", err)
			}
			return
		case !slices.Equal(got, want):
			t.Fatalf("%q (n %d, CPUs %v) = %v, want %v", spec, n, cpus, got, want)
		}
		seen := map[int]bool{}
		for _, v := range got {
			if v < 0 || seen[v] && !cpus {
				t.Fatalf("%q = %v: negative or repeated %d", spec, got, v)
			}
			seen[v] = true
		}
		again, err := parseWithin(t, parse, format(got), n)
		if err != nil || !slices.Equal(again, got) {
			t.Fatalf("%q = %v, written %q, parses to %v, %v", spec, got, format(got), again, err)
		}
	})
}

// TestParseListLargest parses the largest numbers an int holds, alone and
// ending ranges: a loop "for i := a; i <= b; i++" never ends there.
func TestParseListLargest(t *testing.T) {
	t.Parallel()
	const top = math.MaxInt
	for _, tc := range []struct {
		spec string
		want []int
	}{
		{strconv.Itoa(top), []int{top}},
		{strconv.Itoa(top-2) + "-" + strconv.Itoa(top), []int{top - 2, top - 1, top}},
		{"0," + strconv.Itoa(top), []int{0, top}},
	} {
		for _, parse := range []func(string, int) ([]int, error){workers.ParseList, workers.ParseCPUs} {
			if got, err := parseWithin(t, parse, tc.spec, 1); err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("%q = %v, %v; want %v", tc.spec, got, err, tc.want)
			}
		}
	}
	if got, err := parseWithin(t, workers.ParseList, strconv.Itoa(top)+","+strconv.Itoa(top), 1); err == nil {
		t.Errorf("MaxInt twice accepted as %v", got)
	}
}
