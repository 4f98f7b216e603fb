//go:build unix

package main

import (
	"syscall"
	"testing"
)

// TestRaiseOpenFileLimit: a soft open-file limit below the hard one is
// lifted to it.
func TestRaiseOpenFileLimit(t *testing.T) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
	if old.Max < 512 {
		t.Skipf("hard open-file limit %d leaves no room to lower the soft one", old.Max)
	}
	low := old
	low.Cur = 256
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	got, err := raiseOpenFileLimit()
	if err != nil {
		t.Fatal(err)
	}
	var now syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &now); err != nil {
		t.Fatal(err)
	}
	if got != old.Max || now.Cur != old.Max {
		t.Fatalf("after raising: returned %d, soft limit %d, want the hard limit %d", got, now.Cur, old.Max)
	}
}
