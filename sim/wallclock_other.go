//go:build !linux

package sim

import "time"

// wallNow is time.Now; inside a synctest bubble on this platform the
// recorded wall time is virtual.
func wallNow() time.Time { return time.Now() }
