package blockstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ipfs/go-cid"
)

// A reference is a block the store does not hold itself: its bytes are a
// range of a file elsewhere (a file `shoal fetch -o` wrote, or one shared
// with --no-copy), so the file is the seed and its blocks are not kept
// twice. References are entries of the index like blocks: Has, GetSize,
// pins and GC treat them alike. They take no capacity, so eviction never
// touches them; GC drops those no pin reaches.
//
// The store cannot stop a user from moving, truncating or editing the
// file, so every read of a reference rehashes the bytes (whatever
// VerifyOnRead says); a read that fails or does not match drops the
// reference and answers ErrNotFound: the block is missing, never wrong,
// and a later fetch stores it again.

// Ref names a raw block's bytes as Size bytes at Offset of a file.
type Ref struct {
	C      cid.Cid // a raw (0x55) CID: references are leaves
	Offset int64
	Size   int64
	// Path is the file as this process opens it. A reference with a
	// Path is persisted (Disk): the caller must have synced the range
	// before PutRefs, so that no crash leaves a reference to bytes that
	// were never written.
	Path string
	// Alt, when set, is a second name of the file, tried when Path does
	// not hold the block: the name a file being fetched is about to be
	// renamed to, so that a crash on either side of the rename leaves a
	// name that holds it. A read that finds the block there moves the
	// reference to it.
	Alt string
	// File, when set, is read instead of opening Path, until
	// ReleaseFile(File). A reference without a Path lives in memory only
	// (a file still being written, whose final name is not known yet).
	File io.ReaderAt
	// NoSync records the reference without fsyncing the log, for a
	// range written but not yet synced: a kill -9 keeps both (the page
	// cache holds them), a power cut may keep the record without the
	// bytes, which the hash on read then finds (missing, never wrong).
	// The caller makes it durable later: it syncs the file and puts the
	// reference again without NoSync.
	NoSync bool
}

// refLoc is where a reference's bytes are.
type refLoc struct {
	path, alt string
	file      io.ReaderAt
	off       int64
}

// refIndex keeps the counters of references and which entries read
// through an open file. Guarded by engine.mu, except drops, which
// flushRefDrops writes out.
type refIndex struct {
	count   int
	bytes   int64
	byFile  map[io.ReaderAt][]*entry
	dropped []string // keys whose reference left the index, to record
}

func (ri *refIndex) addedLocked(en *entry) {
	ri.count++
	ri.bytes += en.size
	if f := en.ref.file; f != nil {
		if ri.byFile == nil {
			ri.byFile = make(map[io.ReaderAt][]*entry)
		}
		ri.byFile[f] = append(ri.byFile[f], en)
	}
}

func (ri *refIndex) droppedLocked(en *entry) {
	ri.count--
	ri.bytes -= en.size
	if en.ref.path != "" {
		ri.dropped = append(ri.dropped, en.key)
	}
}

// flushRefDrops records the references dropped since the last call.
func (e *engine) flushRefDrops() {
	e.mu.Lock()
	keys := e.refs.dropped
	e.refs.dropped = nil
	e.mu.Unlock()
	if len(keys) == 0 {
		return
	}
	if err := e.be.dropRefs(keys); err != nil {
		e.log.Warn("blockstore: cannot record dropped references; they are checked again when read", "count", len(keys), "err", err)
	}
}

func checkRef(r Ref) error {
	switch {
	case !r.C.Defined():
		return errors.New("blockstore: reference with an undefined CID")
	case r.C.Prefix().Codec != cid.Raw:
		return fmt.Errorf("blockstore: reference to %s: only raw blocks (leaves) can be kept outside the store", r.C)
	case isIdentity(r.C):
		return fmt.Errorf("blockstore: reference to identity CID %s: its bytes are the CID", r.C)
	case r.Offset < 0 || r.Size <= 0:
		return fmt.Errorf("blockstore: reference to %s: bad range %d+%d", r.C, r.Offset, r.Size)
	case r.Path == "" && r.File == nil:
		return fmt.Errorf("blockstore: reference to %s names neither a path nor an open file", r.C)
	}
	return nil
}

// PutRefs implements Store.
func (e *engine) PutRefs(ctx context.Context, refs []Ref) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, r := range refs {
		if err := checkRef(r); err != nil {
			return err
		}
	}
	var persist []Ref
	durable := false
	for _, r := range refs {
		if r.Path != "" {
			persist = append(persist, r)
			durable = durable || !r.NoSync
		}
	}
	// The log first: an index entry without its record is only lost at a
	// crash, a record without its entry is verified when read.
	if len(persist) > 0 {
		if err := e.be.saveRefs(persist, durable); err != nil {
			return fmt.Errorf("blockstore: recording %d references: %w", len(persist), err)
		}
	}
	e.mu.Lock()
	if err := e.beginLocked(); err != nil {
		e.mu.Unlock()
		return err
	}
	defer e.ops.Done()
	var replaced []string
	for _, r := range refs {
		key := string(r.C.Hash())
		if _, busy := e.inflight[key]; busy {
			continue // being written or removed as a block: that wins
		}
		loc := &refLoc{path: r.Path, alt: r.Alt, file: r.File, off: r.Offset}
		en := e.entries[key]
		switch {
		case en == nil:
			en = &entry{key: key, size: r.Size, ref: loc}
			e.entries[key] = en
			e.refs.addedLocked(en)
			e.pins.arrivedLocked(e, en, nil)
		case en.ref != nil:
			if en.size != r.Size {
				continue // not this block's length: keep what is known
			}
			e.refs.count--
			e.refs.bytes -= en.size
			en.ref = loc
			e.refs.addedLocked(en)
		default:
			if en.size != r.Size {
				continue
			}
			// The store's own copy gives way to the file.
			e.used -= en.size
			if en.pinned {
				e.pins.bytes -= en.size
			} else {
				e.lruRemove(en)
			}
			en.ref = loc
			e.refs.addedLocked(en)
			e.inflight[key] = make(chan struct{})
			replaced = append(replaced, key)
		}
	}
	e.mu.Unlock()
	for _, k := range replaced {
		if err := e.be.remove(k); err != nil {
			e.log.Warn("blockstore: cannot remove a block now kept as a reference", "cid", keyCid(k), "err", err)
		}
	}
	if len(replaced) > 0 {
		e.mu.Lock()
		for _, k := range replaced {
			e.finishLocked(k)
		}
		e.mu.Unlock()
	}
	return nil
}

// ReleaseFile implements Store.
func (e *engine) ReleaseFile(f io.ReaderAt) {
	e.mu.Lock()
	ens := e.refs.byFile[f]
	delete(e.refs.byFile, f)
	var gone []string
	for _, en := range ens {
		if e.entries[en.key] != en || en.ref == nil || en.ref.file != f {
			continue
		}
		if en.ref.path != "" {
			en.ref = &refLoc{path: en.ref.path, alt: en.ref.alt, off: en.ref.off}
			continue
		}
		e.dropLocked(en)
		gone = append(gone, en.key)
	}
	e.mu.Unlock()
	if len(gone) > 0 {
		e.removeKeys(gone)
	}
}

// getRef reads and verifies the bytes of reference en (at loc, copied
// under the lock), into dst's array if they fit (GetInto). A read that
// fails or does not match drops en and returns ErrNotFound.
func (e *engine) getRef(c cid.Cid, en *entry, loc refLoc, dst []byte) ([]byte, error) {
	data, err := readRef(loc, en.size, dst)
	if errors.Is(err, os.ErrClosed) {
		// The file was released meanwhile: read what the entry says now.
		e.mu.Lock()
		cur := en.ref
		live := e.entries[en.key] == en
		e.mu.Unlock()
		if live && cur != nil {
			loc = *cur
			data, err = readRef(loc, en.size, dst)
		}
	}
	if err == nil {
		err = checkHash(c.Hash(), data)
	}
	if err != nil && loc.alt != "" {
		alt := refLoc{path: loc.alt, off: loc.off}
		if d, aerr := readRef(alt, en.size, dst); aerr == nil && checkHash(c.Hash(), d) == nil {
			e.mu.Lock()
			if e.entries[en.key] == en && en.ref != nil && en.ref.file == nil {
				en.ref = &alt // the rename happened: the file is there now
			}
			e.mu.Unlock()
			return d, nil
		}
	}
	if err != nil {
		where := loc.path
		if where == "" {
			where = "a file being written"
		}
		e.forgetRef(en, fmt.Sprintf("the file no longer holds it (%v)", err), where)
		return nil, fmt.Errorf("%w: %s (its file %s no longer holds it; fetch it again)", ErrNotFound, c, where)
	}
	return data, nil
}

// readRef reads a reference's size bytes, into dst's array if they fit
// its capacity, else into a new buffer.
func readRef(loc refLoc, size int64, dst []byte) ([]byte, error) {
	r := loc.file
	if r == nil {
		f, err := os.Open(loc.path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	var buf []byte
	if dst != nil && int64(cap(dst)) >= size {
		buf = dst[:size]
	} else {
		buf = make([]byte, size)
	}
	n, err := r.ReadAt(buf, loc.off)
	if int64(n) == size {
		return buf, nil
	}
	if err == nil || err == io.EOF {
		err = fmt.Errorf("the file ends %d bytes into the block's %d", n, size)
	}
	return nil, err
}

// forgetRef drops reference en if it is still indexed.
func (e *engine) forgetRef(en *entry, why, where string) {
	e.mu.Lock()
	if e.entries[en.key] != en || en.ref == nil {
		e.mu.Unlock()
		return
	}
	e.log.Warn("blockstore: dropping reference", "cid", keyCid(en.key), "reason", why, "path", where)
	e.dropLocked(en)
	e.mu.Unlock()
	e.removeKeys([]string{en.key})
}
