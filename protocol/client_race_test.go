//go:build race

package protocol

// raceEnabled shrinks the multi-host tests under the race detector, which
// slows hashing and copying about tenfold.
const raceEnabled = true
