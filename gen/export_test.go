package gen

// RXTime is rxTime, for tests.
var RXTime = rxTime

// WallEpoch is wallEpoch, for tests.
func WallEpoch() int64 { return wallEpoch }
