//go:build linux

package sys

import "testing"

func TestReleaseBefore(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rel  string
		want bool
	}{
		{"6.18.44-fc-v657", false},
		{"5.9.0", false},
		{"5.9-rc1", false},
		{"5.8.18-100.fc31.x86_64", true},
		{"4.19.0-18-amd64", true},
		{"garbage", false},
		{"", false},
	} {
		if got := ReleaseBefore(tc.rel, 5, 9); got != tc.want {
			t.Errorf("ReleaseBefore(%q, 5, 9) = %v, want %v", tc.rel, got, tc.want)
		}
	}
}
