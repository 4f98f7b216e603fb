package content

import (
	"context"
	"slices"
	"sync"

	"github.com/ipfs/go-cid"
)

// readAhead is FileReader's read-ahead: the blocks that follow the one
// being read, in file order, fetched in parallel so that a reader of a
// file held by peers waits for one round trip, not one per block. Its
// state is guarded by FileReader.mu; its goroutines touch only their own
// pendingBlock.
type readAhead struct {
	blocks  int    // how many blocks beyond the one being read; 0: off
	from    uint64 // only blocks holding bytes of [from, end) are fetched ahead
	end     uint64
	held    func(cid.Cid) bool // blocks the getter has at hand: not worth fetching ahead
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	pending map[cid.Cid]*pendingBlock
	window  []cid.Cid // scratch of readAhead, reused
}

// pendingBlock is one block being fetched ahead. data and err are set
// before done is closed; whoever takes it out of pending owns data.
type pendingBlock struct {
	done   chan struct{}
	cancel context.CancelFunc
	data   []byte
	err    error
}

// ReadAhead makes every later read fetch, in parallel and ahead of the
// reader, up to blocks of the blocks that follow the one it reads in file
// order and hold bytes of [from, end), when the byte it reads is in
// there: a reader that says what it will read (a Range request) gets no
// block it will not read, and a read elsewhere (the first bytes, to sniff
// a content type) fetches nothing ahead. Internal nodes count as blocks:
// past the last leaf of a node the next node is fetched, and its leaves
// once the reader reaches it. blocks 0 turns read-ahead off. held, when
// not nil, says which blocks the getter has at hand (a store's index):
// they count in the window but are not fetched ahead, since reading them
// when the reader gets there costs no round trip. Blocks fetched ahead
// and not read are dropped when the reader moves away from them and at
// Close; the BlockGetter has them (a store keeps them as cache).
func (r *FileReader) ReadAhead(blocks int, from, end uint64, held func(cid.Cid) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := &r.ahead
	if a.ctx == nil {
		a.ctx, a.cancel = context.WithCancel(r.ctx)
		a.pending = map[cid.Cid]*pendingBlock{}
	}
	a.blocks, a.from, a.end, a.held = max(blocks, 0), from, end, held
}

// Close stops the read-ahead's fetches and waits for them to end. The
// reader must not be used after it; Close is safe to call twice.
func (r *FileReader) Close() error {
	r.mu.Lock()
	a := &r.ahead
	if a.cancel != nil {
		a.cancel()
	}
	a.blocks = 0
	for c, p := range a.pending {
		delete(a.pending, c)
		p.cancel()
	}
	r.mu.Unlock()
	a.wg.Wait()
	return nil
}

// get returns block c: the read-ahead's copy when one is on the way, else
// fetched now.
func (r *FileReader) get(c cid.Cid) ([]byte, error) {
	if p := r.ahead.pending[c]; p != nil {
		delete(r.ahead.pending, c)
		select {
		case <-p.done:
		case <-r.ctx.Done():
			p.cancel()
			return nil, r.ctx.Err()
		}
		p.cancel()
		if p.err == nil {
			return p.data, nil
		}
		// A failed read-ahead (cancelled, a peer gone) is retried once
		// in the reader's own time.
	}
	return r.g.Get(r.ctx, c)
}

// readAhead runs with r.mu held, at the block holding byte off, reached
// through frames. Outside [from, end) it does nothing; inside, it starts fetching the blocks that follow
// (the rest of the innermost node's children, then the next node at the
// first level up that has one) and drops what was fetched ahead of an
// earlier position.
func (r *FileReader) readAhead(frames []frame, off uint64) {
	a := &r.ahead
	if a.blocks == 0 || off < a.from || off >= a.end {
		return
	}
	a.window = a.window[:0]
	deepest := len(frames) - 1
	for d := deepest; d >= 0 && len(a.window) < a.blocks; d-- {
		f := frames[d]
		for j := f.i + 1; j < len(f.n.links) && len(a.window) < a.blocks; j++ {
			if f.linksAt+f.n.ends[j-1] >= a.end {
				d = -1 // everything further is past the end too
				break
			}
			if f.linksAt+f.n.ends[j] <= a.from {
				continue // before the range: not what the reader will read
			}
			a.window = append(a.window, f.n.links[j])
			if d < deepest {
				// The next node's children are known once it arrives.
				d = -1
				break
			}
		}
	}
	for c, p := range a.pending {
		if !slices.Contains(a.window, c) {
			delete(a.pending, c)
			p.cancel()
		}
	}
	for _, c := range a.window {
		if a.pending[c] == nil && !r.onPath(c) && (a.held == nil || !a.held(c)) {
			r.fetchAhead(c)
		}
	}
}

// fetchAhead starts fetching c into a.pending (r.mu held).
func (r *FileReader) fetchAhead(c cid.Cid) {
	a := &r.ahead
	ctx, cancel := context.WithCancel(a.ctx)
	p := &pendingBlock{done: make(chan struct{}), cancel: cancel}
	a.pending[c] = p
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		p.data, p.err = r.g.Get(ctx, c)
		close(p.done)
	}()
}

// onPath reports whether c is a block of the last read's path (held).
func (r *FileReader) onPath(c cid.Cid) bool {
	for _, n := range r.path {
		if n.c == c {
			return true
		}
	}
	return r.root.c == c
}
