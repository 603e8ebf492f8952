package stages

import (
	_ "github.com/google/gopacket/pcapgo" // pcap writer (capture stage)
)
