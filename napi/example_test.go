package napi_test

import (
	"errors"
	"log"
	"time"

	"github.com/xdpkit/xdpkit/napi"
)

// Busy polling on eth0: defer its interrupts while this process polls, and
// put its own values back when done. Needs root.
func ExampleApply() {
	restore, err := napi.Apply("eth0", napi.Settings{DeferHardIRQs: 2, GROFlushTimeout: 200 * time.Microsecond})
	if errors.Is(err, napi.ErrConflict) {
		log.Fatal(err) // another process busy-polls eth0 with other values
	} else if err != nil {
		log.Fatal(err)
	}
	defer func() {
		if err := restore(); err != nil {
			log.Print(err)
		}
	}()
	// ... open the AF_XDP sockets and poll ...
}

// A daemon's start-up undoes the settings of instances that were killed.
func ExampleRestoreAllStale() {
	if err := napi.RestoreAllStale(); err != nil {
		log.Print(err)
	}
}
