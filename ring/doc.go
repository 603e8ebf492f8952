// Package ring implements the four single-producer/single-consumer rings
// an AF_XDP socket shares with the kernel: [Fill] and [TX], which user space
// produces into, and [RX] and [Completion], which user space consumes from.
//
// Each ring keeps local copies of the two indices. A producer reads the
// kernel's consumer index only when its cached view has too little room, and
// publishes its own index once per batch in Submit; a consumer reads the
// kernel's producer index only when its cached view is short, and publishes
// its consumer index once per batch in Release. So the cache lines shared
// with the kernel are touched about once per batch, not once per descriptor.
// The index loads are atomic loads (acquire, at least); the index stores
// are release stores, what the kernel pairs with: on x86 a plain store,
// since every x86 store is a release and Go keeps a function's stores, and
// the loads before a store, in program order (an atomic.Store would add a
// full fence that waits for the entries' cache lines on every batch);
// atomic.Store on other CPUs and under the race detector. Batch code
// reaches the entries of a reservation or a peek as at most two
// contiguous runs ([Fill.Slots], [TX.Slots], [RX.Descs],
// [Completion.Addrs]).
//
// A batch goes like this:
//
//	idx, n := fill.Reserve(64)       // at most 64 free slots
//	for i := uint32(0); i < n; i++ {
//		fill.Set(idx+i, addr[i])      // write the entries
//	}
//	fill.Submit(n)                   // one store makes them visible
//
//	idx, n = rx.Peek(64)             // up to 64 filled slots
//	for i := uint32(0); i < n; i++ {
//		d := rx.Desc(idx + i)         // read the entries
//		_ = d
//	}
//	rx.Release(n)                    // hand the slots back
//
// Rings are mapped from a socket with [MapFill], [MapCompletion], [MapRX] and
// [MapTX], using the offsets the kernel reports through XDP_MMAP_OFFSETS, or
// built over ordinary memory with [NewFill] and friends for tests: a Fill and
// a Completion over the same memory form a producer/consumer pair, and so do
// a TX and an RX.
//
// The kernel gives no way to read a ring's size back, so the size passed to
// a Map function must be the one set with setsockopt; a smaller one that
// fits the kernel's mapping is not detected.
//
// A ring is not safe for concurrent use: one goroutine produces into it and
// the kernel consumes (or the reverse). Most users never touch this package
// directly; package afxdp drives the rings.
package ring
