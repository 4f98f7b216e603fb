package blockstore

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"
)

// Without Config.Sync a block file survives a process kill whole (rename
// is atomic and the page cache outlives the process) but not necessarily
// a power cut: the kernel may have written the rename and not yet the
// data. It writes dirty data back within about 30 s, so only blocks
// written shortly before the cut are at risk. A DIRTY marker, present
// while a store is open, tells Open that the last run did not Close, and
// Open then rehashes the blocks written within recoveryWindow of the
// newest one and removes those that fail.
const (
	dirtyFileName  = "DIRTY"
	recoveryWindow = time.Minute
)

// markDirty creates the marker and reports whether it was already there.
func (d *diskBackend) markDirty() (wasDirty bool, err error) {
	p := filepath.Join(d.dir, dirtyFileName)
	if _, err := os.Stat(p); err == nil {
		return true, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return false, err
	}
	if err := f.Close(); err != nil {
		return false, err
	}
	return false, syncDir(d.dir)
}

func (d *diskBackend) markClean() error {
	if err := os.Remove(filepath.Join(d.dir, dirtyFileName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return syncDir(d.dir)
}

// recheckRecent rehashes the blocks written within recoveryWindow of the
// newest one, removes the files that fail, and returns the rest.
func (d *diskBackend) recheckRecent(found []scanned, log *slog.Logger) []scanned {
	var newest time.Time
	for _, f := range found {
		if f.mtime.After(newest) {
			newest = f.mtime
		}
	}
	since := newest.Add(-recoveryWindow)
	bad := make([]bool, len(found))
	work := make(chan int)
	var wg sync.WaitGroup
	var checked, removed int
	var mu sync.Mutex
	for range max(2, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for i := range work {
				data, err := d.read(found[i].key)
				if err == nil {
					err = checkHash([]byte(found[i].key), data)
				}
				mu.Lock()
				checked++
				if err != nil {
					bad[i] = true
					removed++
					log.Warn("blockstore: removing a block damaged by an unclean shutdown", "cid", keyCid(found[i].key), "err", err)
					if rerr := d.remove(found[i].key); rerr != nil {
						log.Warn("blockstore: cannot remove damaged block", "cid", keyCid(found[i].key), "err", rerr)
					}
				}
				mu.Unlock()
			}
		})
	}
	for i, f := range found {
		if !f.mtime.Before(since) {
			work <- i
		}
	}
	close(work)
	wg.Wait()
	log.Info("blockstore: last run did not close cleanly; rehashed recent blocks", "checked", checked, "removed", removed)
	out := found[:0]
	for i, f := range found {
		if !bad[i] {
			out = append(out, f)
		}
	}
	return out
}
