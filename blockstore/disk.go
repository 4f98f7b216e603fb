package blockstore

import (
	"bufio"
	"bytes"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// On-disk layout under Config.Dir:
//
//	LOCK                 flock(2) held while open; holds the holder's pid
//	pins                 "shoal-pins v1" then one pin root CID per line
//	DIRTY                present while open (see recover.go)
//	blocks/<xy>/<name>   one file per block; name is the multihash in
//	                     lower-case unpadded base32, xy its next-to-last
//	                     two characters (up to 1024 shard directories,
//	                     made on first use, as Kubo's flatfs shards)
//	blocks/<xy>/.tmp-*   a block being written; removed by Open
//	refs                 the references log (refslog.go)
const (
	blocksDirName = "blocks"
	lockFileName  = "LOCK"
	pinsFileName  = "pins"
	pinsHeader    = "shoal-pins v1"
	tmpPrefix     = ".tmp-"
)

var keyEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Disk is the on-disk Store: one file per block, written to a temporary
// file in the block's directory and renamed into place, so a block is
// whole or absent after a crash at any moment.
type Disk struct {
	*engine
	disk *diskBackend
}

// Dir returns the store's directory.
func (d *Disk) Dir() string { return d.disk.dir }

// Open opens (creating if needed) the store in cfg.Dir. It scans the block
// directories once to build the index (about 1 s per million blocks on a
// warm cache; see bench/blockstore.md), removes temporary files left by a
// crash, loads the pins and walks them.
func Open(cfg Config) (*Disk, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Dir == "" {
		return nil, errors.New("blockstore: Config.Dir is empty; give the directory that holds (or will hold) the blocks")
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("blockstore: creating %s: %w", cfg.Dir, err)
	}
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	d := &diskBackend{dir: cfg.Dir, blocks: filepath.Join(cfg.Dir, blocksDirName), sync: cfg.Sync, lock: lock,
		refs: refsLog{path: filepath.Join(cfg.Dir, refsFileName)}}
	ok := false
	defer func() {
		if !ok {
			d.close()
		}
	}()
	if err := d.ensureBlocksDir(); err != nil {
		return nil, err
	}
	log := cfg.logger()
	start := time.Now()
	wasDirty, err := d.markDirty()
	if err != nil {
		return nil, fmt.Errorf("blockstore: marking %s open: %w", cfg.Dir, err)
	}
	found, err := d.scan(log)
	if err != nil {
		return nil, err
	}
	if wasDirty {
		found = d.recheckRecent(found, log)
	}
	roots, err := d.loadPins()
	if err != nil {
		return nil, err
	}
	refs, err := d.loadRefs(log)
	if err != nil {
		return nil, err
	}
	e := newEngine(cfg, d)
	slices.SortFunc(found, func(a, b scanned) int { return a.mtime.Compare(b.mtime) })
	e.mu.Lock()
	for _, f := range found {
		e.addLocked(f.key, f.size, true)
	}
	for k, r := range refs {
		if e.entries[k] != nil {
			continue // the store's own copy is there (a crash before its removal)
		}
		en := &entry{key: k, size: r.size, ref: &refLoc{path: r.path, alt: r.alt, off: r.off}}
		e.entries[k] = en
		e.refs.addedLocked(en)
	}
	for _, r := range roots {
		e.pins.roots[r.KeyString()] = r
	}
	e.mu.Unlock()
	e.lockWalk(e.pins.rootItems, false)
	e.pins.recomputeLocked(e)
	// A crash between dropping a victim from the index and unlinking it,
	// or a lowered capacity, can leave more than fits.
	var excess []string
	if cfg.CapacityBytes > 0 {
		excess = e.evictToLocked(cfg.CapacityBytes)
	}
	e.unlockWalk()
	e.removeKeys(excess)
	log.Info("blockstore: opened", "dir", cfg.Dir, "blocks", len(found), "bytes", e.used,
		"refs", len(refs), "pins", len(roots), "took", time.Since(start))
	ok = true
	d.dirty = true // only now: a failed Open leaves the marker for the next
	return &Disk{engine: e, disk: d}, nil
}

type diskBackend struct {
	dir, blocks string
	sync        bool
	lock        *os.File
	refs        refsLog
	closeOnce   sync.Once
	dirty       bool // DIRTY marker is ours to remove at close
}

func (d *diskBackend) path(key string) string {
	name := keyEncoding.EncodeToString([]byte(key))
	return filepath.Join(d.blocks, name[len(name)-3:len(name)-1], name)
}

func (d *diskBackend) where(key string) string { return d.path(key) }

func (d *diskBackend) write(key string, data []byte) error {
	name := d.path(key)
	dir := filepath.Dir(name)
	f, err := d.createTemp(dir)
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil && d.sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d.sync {
		return syncDir(dir)
	}
	return nil
}

func (d *diskBackend) read(key string) ([]byte, error) {
	return os.ReadFile(d.path(key))
}

// readInto reads the block file into dst's array: no fresh buffer to
// zero, fault in and collect per block, which was a third of what a
// seeder spent reading blocks (bench/e2e.md, "seedbuf"). A file whose
// length is not size (damaged or replaced behind the store's back) is
// read whole by read, so GetInto answers what Get would.
func (d *diskBackend) readInto(key string, size int64, dst []byte) ([]byte, error) {
	if int64(cap(dst)) < size {
		return d.read(key)
	}
	f, err := os.Open(d.path(key))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := dst[:size]
	if _, err := io.ReadFull(f, buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return d.read(key) // shorter than indexed
		}
		return nil, err
	}
	var probe [1]byte
	switch n, err := f.Read(probe[:]); {
	case n > 0:
		return d.read(key) // longer than indexed
	case err != nil && !errors.Is(err, io.EOF):
		return nil, err
	}
	return buf, nil
}

func (d *diskBackend) remove(key string) error {
	err := os.Remove(d.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (d *diskBackend) close() error {
	var err error
	d.closeOnce.Do(func() {
		err = d.refs.close()
		if d.dirty {
			if merr := d.markClean(); err == nil {
				err = merr
			}
		}
		if cerr := d.lock.Close(); err == nil {
			err = cerr
		}
	})
	return err
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ensureBlocksDir creates the blocks directory. Shard directories are
// created on first use (creating all 1024 up front makes opening and
// removing a small store slow on some file systems).
func (d *diskBackend) ensureBlocksDir() error {
	if err := os.MkdirAll(d.blocks, 0o755); err != nil {
		return fmt.Errorf("blockstore: creating %s: %w", d.blocks, err)
	}
	return nil
}

// createTemp creates a temporary file in the block's shard directory,
// creating the shard (durably, when syncing) if it is not there yet.
func (d *diskBackend) createTemp(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if !errors.Is(err, fs.ErrNotExist) {
		return f, err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	if d.sync {
		if err := syncDir(d.blocks); err != nil {
			return nil, err
		}
	}
	return os.CreateTemp(dir, tmpPrefix+"*")
}

// scanWorkers is how many shard directories Open lists at once: the scan
// waits on the file system more than on the CPU.
var scanWorkers = 8

type scanned struct {
	key   string
	size  int64
	mtime time.Time
}

// scan lists every block file, removing temporary files a crash left and
// skipping (with a warning) names that are not block keys.
func (d *diskBackend) scan(log *slog.Logger) ([]scanned, error) {
	shards, err := os.ReadDir(d.blocks)
	if err != nil {
		return nil, fmt.Errorf("blockstore: reading %s: %w", d.blocks, err)
	}
	work := make(chan string)
	var (
		mu       sync.Mutex
		all      []scanned
		firstErr error
		wg       sync.WaitGroup
	)
	for range scanWorkers {
		wg.Go(func() {
			for shard := range work {
				got, err := scanShard(filepath.Join(d.blocks, shard), shard, log)
				mu.Lock()
				all = append(all, got...)
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	for _, s := range shards {
		if s.IsDir() {
			work <- s.Name()
		}
	}
	close(work)
	wg.Wait()
	return all, firstErr
}

func scanShard(dir, shard string, log *slog.Logger) ([]scanned, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("blockstore: reading %s: %w", dir, err)
	}
	out := make([]scanned, 0, len(ents))
	for _, de := range ents {
		name := de.Name()
		if strings.HasPrefix(name, tmpPrefix) {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				log.Warn("blockstore: cannot remove temporary file", "path", filepath.Join(dir, name), "err", err)
			}
			continue
		}
		raw, err := keyEncoding.DecodeString(name)
		if err != nil || len(name) < 4 || name[len(name)-3:len(name)-1] != shard || !de.Type().IsRegular() {
			log.Warn("blockstore: ignoring a file that is not a block", "path", filepath.Join(dir, name))
			continue
		}
		if _, err := mh.Cast(raw); err != nil {
			log.Warn("blockstore: ignoring a file whose name is not a multihash", "path", filepath.Join(dir, name))
			continue
		}
		info, err := de.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("blockstore: stat %s: %w", filepath.Join(dir, name), err)
		}
		out = append(out, scanned{key: string(raw), size: info.Size(), mtime: info.ModTime()})
	}
	return out, nil
}

func (d *diskBackend) pinsPath() string { return filepath.Join(d.dir, pinsFileName) }

// savePins writes the pins file atomically and durably (always fsynced:
// it is small, rarely written and not re-fetchable).
func (d *diskBackend) savePins(roots []cid.Cid) error {
	var buf bytes.Buffer
	buf.WriteString(pinsHeader + "\n")
	for _, r := range roots {
		buf.WriteString(r.String() + "\n")
	}
	f, err := os.CreateTemp(d.dir, ".pins-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(buf.Bytes())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, d.pinsPath())
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(d.dir)
}

// loadPins reads the pins file. A line that does not parse is an error,
// never skipped: silently losing a pin would let GC delete its DAG.
func (d *diskBackend) loadPins() ([]cid.Cid, error) {
	if tmps, _ := filepath.Glob(filepath.Join(d.dir, ".pins-*")); len(tmps) > 0 {
		for _, t := range tmps {
			os.Remove(t)
		}
	}
	f, err := os.Open(d.pinsPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("blockstore: opening pins: %w", err)
	}
	defer f.Close()
	var roots []cid.Cid
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if line == 1 {
			if text != pinsHeader {
				return nil, fmt.Errorf("blockstore: %s does not start with %q; it is not a shoal pins file", d.pinsPath(), pinsHeader)
			}
			continue
		}
		if text == "" {
			continue
		}
		c, err := cid.Decode(text)
		if err != nil {
			return nil, fmt.Errorf("blockstore: %s line %d: %v; fix or delete that line", d.pinsPath(), line, err)
		}
		roots = append(roots, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("blockstore: reading %s: %w", d.pinsPath(), err)
	}
	return roots, nil
}
