package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"

	"github.com/ipfs/go-cid"

	"github.com/shoalnet/shoal/blockstore"
	"github.com/shoalnet/shoal/content"
)

// FileTarget is where WriteFile writes a file: an *os.File opened for
// writing (not O_APPEND: writes land at offsets).
type FileTarget interface {
	io.WriterAt
	Truncate(size int64) error
	Sync() error
}

// WriteFile writes the file that transfer t fetches into f: each piece
// lands at its offset as soon as its block is verified and stored, in
// whatever order the swarm delivers them, and blocks the store already
// holds are copied from it (every block read back is rehashed by the
// store). f is first truncated to the file's size. WriteFile returns
// once t has finished and every byte is written and synced; progress,
// when not nil, hears the bytes written so far after each piece (from the
// goroutine that stored the block, or WriteFile's own for a block already
// held, so from several at once: it must be quick and safe for
// concurrent use, and since two calls may arrive out of order, the
// largest count heard is the bytes written). A failed transfer
// is its error; a cancelled ctx stops the writing but not t.
//
// When f can also be read (an *os.File opened read-write), the file is the
// seed: a leaf written into it is not stored a second time, the store
// keeps a reference to its range instead (blockstore.Ref) and serves
// peers from f, rehashing every read. Those references live in memory
// until a checkpoint syncs f and records them under f's current name
// (every checkpointBytes written, and at the end), so a crash leaves no
// reference to a range that was never written; a checkpoint also drops
// the stretch it synced from the page cache unless
// transfer.cache_fetched_files is set; once the caller has
// renamed f into place, FilePlaced moves them to the final name.
// Otherwise the store keeps its own copy of every block and f is only the
// user's file.
func (n *Node) WriteFile(ctx context.Context, t *Transfer, f FileTarget, progress func(written uint64), opts ...WriteOption) (uint64, error) {
	var wo writeOptions
	for _, o := range opts {
		o(&wo)
	}
	root := t.t.Status().Root
	lctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { // the layout's block fetches end with a failed transfer
		select {
		case <-t.Done():
			if t.Err() != nil {
				stop()
			}
		case <-lctx.Done():
		}
	})
	layout, err := content.FileLayout(lctx, n.getter(), root)
	stop()
	wg.Wait()
	if err != nil {
		if terr := finishedErr(t); terr != nil {
			return 0, terr
		}
		return 0, contentErr(root, err)
	}
	if layout.Size > math.MaxInt64 {
		return 0, fmt.Errorf("writing %s: its size %d does not fit in a file", root, layout.Size)
	}
	if err := f.Truncate(int64(layout.Size)); err != nil {
		return 0, fmt.Errorf("writing %s: sizing the target to %d bytes: %w", root, layout.Size, err)
	}
	s := newFileSink(f, layout, progress)
	s.root = root
	// Only a file this process can name (to record the references under)
	// and open by that name (a daemon running as another user may not)
	// becomes the seed; the store keeps copies of the others' blocks.
	if ra, ok := f.(io.ReaderAt); ok && canOpen(fileName(f)) {
		s.seed = &seedRefs{store: n.store, file: ra, path: fileName(f), final: wo.final, name: func() string { return fileName(f) }, kick: make(chan struct{}, 1), log: n.log, drop: !n.cfg.Transfer.CacheFetchedFiles}
		stopCP := make(chan struct{})
		var cp sync.WaitGroup
		cp.Go(func() { s.seed.run(f, stopCP) })
		defer func() {
			close(stopCP)
			cp.Wait()
			// Whatever was written is synced and recorded under f's name
			// (a later fetch into the same target resumes from it); what
			// cannot be named is dropped with f.
			s.seed.checkpoint(f)
			n.store.ReleaseFile(ra)
		}()
	}
	n.files.add(s)
	registered := true
	defer func() {
		if registered {
			n.files.remove(s)
		}
	}()
	for _, p := range layout.Pieces {
		if p.Data != nil {
			s.write(p.C, nil)
		}
	}
	if err := s.copyStored(ctx, n, true); err != nil {
		return s.written.Load(), err
	}
	select {
	case <-t.Done():
	case <-s.failed:
		return s.written.Load(), s.failure()
	case <-ctx.Done():
		return s.written.Load(), ctx.Err()
	}
	if err := t.Err(); err != nil {
		return s.written.Load(), err
	}
	// No delivery is in flight once the sink is removed; what the
	// deliveries missed (a block stored before the sink was added and
	// found by neither pass) is copied from the store now.
	n.files.remove(s)
	registered = false
	if err := s.copyStored(ctx, n, false); err != nil {
		return s.written.Load(), err
	}
	if err := s.failure(); err != nil {
		return s.written.Load(), err
	}
	if w := s.written.Load(); w != layout.Size {
		return w, fmt.Errorf("writing %s: %d of %d bytes written (a block of it was not delivered): fetch it again", root, w, layout.Size)
	}
	if err := f.Sync(); err != nil {
		return layout.Size, fmt.Errorf("writing %s: syncing the target: %w", root, err)
	}
	if s.seed != nil {
		n.placed.wrote(root, f, layout)
	}
	return layout.Size, nil
}

// WriteOption is an optional setting of WriteFile.
type WriteOption func(*writeOptions)

type writeOptions struct{ final string }

// WithFinalName names the path the caller renames the file to once
// WriteFile is done (absolute, as this process would open it). The
// store's references then name both the file's current name and that
// one, so a crash on either side of the rename leaves one that holds the
// blocks (each read is hashed: a wrong name only makes them missing).
func WithFinalName(path string) WriteOption {
	return func(o *writeOptions) { o.final = path }
}

// finishedErr is t's error if it has already failed.
func finishedErr(t *Transfer) error {
	select {
	case <-t.Done():
		return t.Err()
	default:
		return nil
	}
}

// fileSink is one file being written by WriteFile: the pieces of each
// block of its layout and whether they have been written.
type fileSink struct {
	f        FileTarget
	root     cid.Cid
	seed     *seedRefs             // nil: f cannot be read, the store keeps copies
	slots    map[cid.Cid]*fileSlot // fixed at creation
	progress func(uint64)
	written  atomic.Uint64

	failOnce sync.Once
	failed   chan struct{} // closed with err set
	err      error
}

// fileSlot is one block's pieces (a block may hold several stretches of
// a file with repeated content). done is set by whoever writes them first.
type fileSlot struct {
	pieces []content.Piece
	done   atomic.Bool
}

func newFileSink(f FileTarget, l content.Layout, progress func(uint64)) *fileSink {
	s := &fileSink{f: f, slots: make(map[cid.Cid]*fileSlot, len(l.Pieces)), progress: progress, failed: make(chan struct{})}
	for _, p := range l.Pieces {
		sl := s.slots[p.C]
		if sl == nil {
			sl = &fileSlot{}
			s.slots[p.C] = sl
		}
		sl.pieces = append(sl.pieces, p)
	}
	return s
}

// write puts block c's pieces (data is the verified block; nil when
// every piece carries its Data) at their offsets, unless they were
// written already or c is not part of the file. It reports whether the
// store now holds c as a reference into the file.
func (s *fileSink) write(c cid.Cid, data []byte) bool {
	sl := s.slots[c]
	if sl == nil || !sl.done.CompareAndSwap(false, true) {
		return false
	}
	for _, p := range sl.pieces {
		b, err := p.PieceData(data)
		if err == nil {
			_, err = s.f.WriteAt(b, int64(p.Offset))
		}
		if err != nil {
			s.fail(fmt.Errorf("writing block %s at byte %d: %w", c, p.Offset, err))
			return false
		}
		w := s.written.Add(p.Size)
		if s.progress != nil {
			s.progress(w)
		}
	}
	if s.seed == nil || data == nil || sl.pieces[0].Data != nil {
		return false
	}
	return s.seed.add(blockstore.Ref{C: c, Offset: int64(sl.pieces[0].Offset), Size: int64(len(data))})
}

// copyStored writes every slot not yet written from the store: with
// onlyHeld the blocks the store holds, else all of them (a missing one is
// then an error).
func (s *fileSink) copyStored(ctx context.Context, n *Node, onlyHeld bool) error {
	for c, sl := range s.slots {
		if sl.done.Load() {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if onlyHeld {
			has, err := n.store.Has(ctx, c)
			if err != nil {
				return fmt.Errorf("reading block %s from the store: %w", c, err)
			}
			if !has {
				continue
			}
		}
		// The last pass fetches what is still missing: a reference
		// whose file changed since the transfer counted it as held is
		// dropped when read, and fetched again here.
		get := n.store.Get
		if !onlyHeld {
			get = n.getter().Get
		}
		data, err := get(ctx, c)
		if onlyHeld && errors.Is(err, blockstore.ErrNotFound) {
			continue // a reference whose file changed: the last pass fetches it
		}
		if err != nil {
			return contentErr(c, err)
		}
		s.write(c, data) // and the store's copy gives way to the file
		if err := s.failure(); err != nil {
			return err
		}
	}
	return nil
}

func (s *fileSink) fail(err error) {
	s.failOnce.Do(func() {
		s.err = err
		close(s.failed)
	})
}

// failure is the first write error, nil while there is none.
func (s *fileSink) failure() error {
	select {
	case <-s.failed:
		return s.err
	default:
		return nil
	}
}

// fileSinks are the files being written now. Every verified block the
// node receives is offered to each of them (take) before the store sees
// it: a leaf a file takes is kept as a reference into that file and never
// written to the store.
type fileSinks struct {
	mu    sync.RWMutex // held for reading while a delivery writes
	sinks []*fileSink
	n     atomic.Int32 // len(sinks), read without the lock
}

func (fs *fileSinks) add(s *fileSink) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.sinks = append(fs.sinks, s)
	fs.n.Store(int32(len(fs.sinks)))
}

// flush syncs every file being written for root and records its
// references under its name, so that a pin of root recorded next is
// never left incomplete by a crash.
func (fs *fileSinks) flush(root cid.Cid) {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	for _, s := range fs.sinks {
		if s.seed != nil && s.root.Equals(root) {
			s.seed.checkpoint(s.f)
		}
	}
}

// active reports whether any file is being written.
func (fs *fileSinks) active() bool { return fs.n.Load() > 0 }

// remove takes s out; once it returns, no delivery to s is in flight.
func (fs *fileSinks) remove(s *fileSink) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i, x := range fs.sinks {
		if x == s {
			fs.sinks = append(fs.sinks[:i], fs.sinks[i+1:]...)
			fs.n.Store(int32(len(fs.sinks)))
			return
		}
	}
}

// take offers a verified block to every file being written and reports
// whether the store now holds it as a reference into one of them (then
// it need not be stored). data is not kept.
func (fs *fileSinks) take(c cid.Cid, data []byte) bool {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	took := false
	for _, s := range fs.sinks {
		if s.write(c, data) {
			took = true
		}
	}
	return took
}
