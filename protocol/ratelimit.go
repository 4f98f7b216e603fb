package protocol

import (
	"context"

	"golang.org/x/time/rate"
)

// uploadLimiter is the node-wide upload budget in bytes per second, shared
// by all server workers. A nil *uploadLimiter means unlimited.
type uploadLimiter struct {
	lim   *rate.Limiter
	burst int
}

// newUploadLimiter returns nil for bytesPerSec <= 0 (unlimited). The burst
// is a quarter second of traffic (at least 32 KiB, at most 1 MiB): small
// enough that the limit holds over short spans, large enough that a message
// waits in few steps.
func newUploadLimiter(bytesPerSec int64) *uploadLimiter {
	if bytesPerSec <= 0 {
		return nil
	}
	burst := int(min(max(bytesPerSec/4, 32<<10), 1<<20))
	return &uploadLimiter{lim: rate.NewLimiter(rate.Limit(bytesPerSec), burst), burst: burst}
}

// wait blocks until n bytes may be sent. Messages larger than the burst
// take their tokens in burst-sized steps, so every byte is paid for.
func (u *uploadLimiter) wait(ctx context.Context, n int) error {
	if u == nil {
		return nil
	}
	for n > 0 {
		k := min(n, u.burst)
		if err := u.lim.WaitN(ctx, k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}
