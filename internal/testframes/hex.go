package testframes

import (
	"encoding/hex"
	"strings"
)

// Hex decodes a hex dump: whitespace is ignored, and so is everything from
// a # to the end of its line. It panics on a dump that is not hex.
func Hex(dump string) []byte {
	var sb strings.Builder
	for line := range strings.Lines(dump) {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		sb.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(sb.String())
	if err != nil {
		panic("bad hex dump: " + err.Error())
	}
	return b
}
