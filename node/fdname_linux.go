package node

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// fileName is where f is now as this process sees it (its descriptor's
// link in /proc follows renames), "" if it was deleted or cannot be
// named. It names the file the references the store keeps point to.
func fileName(f any) string {
	sc, ok := f.(syscall.Conn)
	if !ok {
		return ""
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return ""
	}
	var name string
	_ = rc.Control(func(fd uintptr) {
		name, err = os.Readlink("/proc/self/fd/" + strconv.FormatUint(uint64(fd), 10))
	})
	if err != nil || !filepath.IsAbs(name) || strings.HasSuffix(name, " (deleted)") {
		return ""
	}
	return name
}
