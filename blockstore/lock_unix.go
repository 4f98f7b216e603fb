//go:build unix

package blockstore

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockDir takes an exclusive advisory lock on dir/LOCK so that two
// processes never open one store. The kernel drops it when the process
// dies, so a killed daemon never leaves a stale lock.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(dir+"/LOCK", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("blockstore: opening lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("blockstore: %s is in use by another process (is a shoal daemon running with this home?)", dir)
		}
		return nil, fmt.Errorf("blockstore: locking %s: %w", dir, err)
	}
	return f, nil
}
