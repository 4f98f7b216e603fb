package node

import (
	"context"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"

	"github.com/ipfs/go-cid"

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
// goroutine that stored the block: it must be quick). A failed transfer
// is its error; a cancelled ctx stops the writing but not t.
//
// The store still keeps its own copy of every block (the seed peers read);
// f is only the user's file.
func (n *Node) WriteFile(ctx context.Context, t *Transfer, f FileTarget, progress func(written uint64)) (uint64, error) {
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
	return layout.Size, nil
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
// written already or c is not part of the file.
func (s *fileSink) write(c cid.Cid, data []byte) {
	sl := s.slots[c]
	if sl == nil || !sl.done.CompareAndSwap(false, true) {
		return
	}
	for _, p := range sl.pieces {
		b, err := p.PieceData(data)
		if err == nil {
			_, err = s.f.WriteAt(b, int64(p.Offset))
		}
		if err != nil {
			s.fail(fmt.Errorf("writing block %s at byte %d: %w", c, p.Offset, err))
			return
		}
		w := s.written.Add(p.Size)
		if s.progress != nil {
			s.progress(w)
		}
	}
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
		data, err := n.store.Get(ctx, c)
		if err != nil {
			return contentErr(c, err)
		}
		s.write(c, data)
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

// fileSinks are the files being written now. Every block the node stores
// is offered to each of them (deliver) before the store's Put returns.
type fileSinks struct {
	mu    sync.RWMutex // held for reading while a delivery writes
	sinks []*fileSink
}

func (fs *fileSinks) add(s *fileSink) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.sinks = append(fs.sinks, s)
}

// remove takes s out; once it returns, no delivery to s is in flight.
func (fs *fileSinks) remove(s *fileSink) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i, x := range fs.sinks {
		if x == s {
			fs.sinks = append(fs.sinks[:i], fs.sinks[i+1:]...)
			return
		}
	}
}

// deliver offers a block just stored (verified against c) to every file
// being written. data is not kept.
func (fs *fileSinks) deliver(c cid.Cid, data []byte) {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	for _, s := range fs.sinks {
		s.write(c, data)
	}
}
