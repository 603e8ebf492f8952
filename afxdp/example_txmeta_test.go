package afxdp_test

import (
	"encoding/binary"
	"fmt"

	"github.com/xdpkit/xdpkit/afxdp"
)

// Prepare a UDP/IPv4 frame for a TX checksum offload: the checksum field
// gets the pseudo-header sum, and the offsets are those RequestTXChecksum
// takes (RequestL4Checksum does both).
func ExamplePrepareL4Checksum() {
	frame := []byte{
		0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00, // Ethernet
		0x45, 0, 0, 33, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 198, 51, 100, 2, // IPv4 (its header checksum plays no part)
		0x9c, 0x40, 0, 53, 0, 13, 0, 0, // UDP 40000 -> 53, length 13, checksum to be done
		'h', 'e', 'l', 'l', 'o',
	}
	start, off, ok := afxdp.PrepareL4Checksum(frame)
	// Then, for a descriptor d of this frame in a UMEM with TX metadata:
	//	err := sock.RequestTXChecksum(&d, start, off)
	fmt.Println(start, off, ok)
	fmt.Printf("pseudo-header sum %#04x\n", binary.BigEndian.Uint16(frame[start+off:]))
	// Output:
	// 34 6 true
	// pseudo-header sum 0xec55
}
