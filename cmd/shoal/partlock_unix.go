//go:build unix

package main

import (
	"os"
	"syscall"
)

// lockPart marks f as the part file of a running fetch (flock, released
// when the process ends however it ends).
func lockPart(f *os.File) {
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

// partAbandoned reports whether no running fetch holds the part file p.
func partAbandoned(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}
