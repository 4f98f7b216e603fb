//go:build !linux

package node

// dropCached drops cached pages only on Linux (posix_fadvise DONTNEED);
// elsewhere the file's pages stay cached.
func dropCached(any, int64, int64) {}
