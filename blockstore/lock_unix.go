//go:build unix

package blockstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockDir takes an exclusive advisory lock on dir/LOCK so that two
// processes never open one store, and writes the holder's pid into it so
// the process that is refused can name the one that holds it. The kernel
// drops the lock when the process dies, so a killed daemon never leaves a
// stale lock (a stale pid in the file is only read while the lock is held).
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("blockstore: opening lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &InUseError{Dir: dir, PID: lockHolder(path)}
		}
		return nil, fmt.Errorf("blockstore: locking %s: %w", dir, err)
	}
	// The pid is a courtesy for the error above; failing to write it
	// does not make the lock any less held.
	if f.Truncate(0) == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// lockHolder reads the pid the holder of a lock wrote; 0 if unknown.
func lockHolder(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
