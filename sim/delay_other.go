//go:build !linux

package sim

import (
	"errors"
	"time"
)

// delayer needs Linux's nfnetlink queue; elsewhere the docker runner
// cannot shape links and says so.
type delayer struct{}

func openDelayer(int, uint16, time.Duration) (*delayer, error) {
	return nil, errors.New("shaping container links needs Linux (tc, nsenter and the nfnetlink queue)")
}

func (*delayer) Err() error                                  { return nil }
func (*delayer) Late() (int64, time.Duration, time.Duration) { return 0, 0, 0 }
func (*delayer) Close() error                                { return nil }
