//go:build race

package content_test

// raceEnabled lets the heaviest oracle runs skip under the race detector,
// which slows them tenfold; the plain run covers them.
const raceEnabled = true
