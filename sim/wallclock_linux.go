package sim

import (
	"time"

	"golang.org/x/sys/unix"
)

// wallNow reads the real clock with a system call. Inside a
// testing/synctest bubble time.Now is virtual; the run's wall time must
// still be real.
func wallNow() time.Time {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &ts); err != nil {
		return time.Now()
	}
	return time.Unix(ts.Unix())
}
