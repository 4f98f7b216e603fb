package node

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// dropCached asks the kernel to drop the page cache of f's bytes
// [off, off+n), which must be synced already (dirty pages are not dropped;
// the kernel only starts writing them). Not a file, or no descriptor: nothing.
func dropCached(f any, off, n int64) {
	sc, ok := f.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.Fadvise(int(fd), off, n, unix.FADV_DONTNEED)
	})
}
