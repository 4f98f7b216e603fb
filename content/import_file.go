package content

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// fileLayout holds the parameters of a balanced file DAG. ImportFile always
// uses profile2025; tests use small layouts to reach deep trees quickly.
type fileLayout struct {
	chunkSize int // bytes per leaf
	maxLinks  int // links per internal node
}

// profile2025 is the unixfs-v1-2025 profile of IPIP-499: 1 MiB chunks and
// at most 1024 links per node (plus CIDv1, sha2-256 and raw leaves, which
// the code below hard-wires).
var profile2025 = fileLayout{chunkSize: 1 << 20, maxLinks: 1024}

// chunkPool recycles profile-sized chunk buffers across imports, so that
// importing many small files does not allocate a megabyte per file.
var chunkPool = sync.Pool{New: func() any {
	b := make([]byte, profile2025.chunkSize)
	return &b
}}

// ImportFile chunks r into a UnixFS file DAG exactly as Kubo does with the
// unixfs-v1-2025 profile (CIDv1, sha2-256, 1 MiB chunks, raw leaves,
// balanced DAG of at most 1024 links per node) and puts every block into
// dst; with dst nil it only computes the CID.
//
// Chunks are hashed by opt.Workers goroutines while one chunk at a time is
// read from r; leaves may reach dst out of order and concurrently, but a
// parent node is put only after all its children were. Memory stays bounded
// whatever the size of the input: 2×Workers+2 chunk buffers of 1 MiB plus
// one node's links per tree level. Cancelling ctx stops the import between
// reads (a Read that blocks forever blocks the import).
func ImportFile(ctx context.Context, r io.Reader, dst BlockPutter, opt ImportOptions) (ImportResult, error) {
	return importFile(ctx, r, dst, opt, profile2025)
}

// chunkSlot carries one chunk from the reading worker, through hashing and
// storing, to the tree builder. A fixed set of slots bounds the chunks in
// flight.
type chunkSlot struct {
	buf  *[]byte
	n    int
	off  uint64
	c    cid.Cid
	err  error
	done chan struct{} // signalled once hashed and stored (or failed)
}

// chunkFeed is the shared sequential reader the workers take turns on.
// Holding mu while reading and queueing keeps the queue in file order.
type chunkFeed struct {
	mu      sync.Mutex
	r       io.Reader
	off     uint64
	stopped bool
	size    int
	free    chan *chunkSlot                                                     // slots not in flight
	ordered chan *chunkSlot                                                     // slots in flight, in file order
	leaf    func(ctx context.Context, c cid.Cid, offset uint64, size int) error // ImportOptions.Leaf
}

func importFile(ctx context.Context, r io.Reader, dst BlockPutter, opt ImportOptions, lay fileLayout) (ImportResult, error) {
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	feed := newChunkFeed(r, lay.chunkSize, 2*workers+2)
	feed.leaf = opt.Leaf
	feed.start(ctx, dst, workers)
	tb := newTreeBuilder(ctx, lay.maxLinks, dst)
	size, err := feed.collect(tb, cancel)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return ImportResult{}, err
	}
	if tb.leaves == 0 {
		c := rawCID(nil)
		if err := putBlock(ctx, dst, c, nil); err != nil {
			return ImportResult{}, fmt.Errorf("content: storing empty file block %s: %w", c, err)
		}
		if err := tb.addLeaf(c, 0); err != nil {
			return ImportResult{}, err
		}
	}
	root, err := tb.finish()
	if err != nil {
		return ImportResult{}, err
	}
	return ImportResult{CID: root.c, Size: size, Tsize: root.tsize, Blocks: tb.blocks}, nil
}

func newChunkFeed(r io.Reader, size, nslots int) *chunkFeed {
	f := &chunkFeed{
		r:       r,
		size:    size,
		free:    make(chan *chunkSlot, nslots),
		ordered: make(chan *chunkSlot, nslots),
	}
	for range nslots {
		f.free <- &chunkSlot{done: make(chan struct{}, 1)}
	}
	return f
}

// start reads and hashes the first chunk on the calling goroutine (a file
// of one chunk, like most files in a directory, then costs no goroutines)
// and starts the workers if there is more.
func (f *chunkFeed) start(ctx context.Context, dst BlockPutter, workers int) {
	first := <-f.free
	last, ok := f.next(ctx, first)
	if !ok {
		f.free <- first
		close(f.ordered)
		return
	}
	f.process(ctx, first, dst)
	if last {
		close(f.ordered)
		return
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { f.work(ctx, dst) })
	}
	go func() {
		wg.Wait()
		close(f.ordered)
	}()
}

// collect feeds the hashed chunks to tb in file order and returns the
// content size. On the first error it cancels the workers, then keeps
// draining until they have all exited, so it returns with none running.
func (f *chunkFeed) collect(tb *treeBuilder, cancel context.CancelFunc) (uint64, error) {
	var size uint64
	var err error
	for slot := range f.ordered {
		<-slot.done
		if err == nil && slot.err != nil {
			err = slot.err
			cancel()
		}
		if err == nil {
			size += uint64(slot.n)
			if err = tb.addLeaf(slot.c, uint64(slot.n)); err != nil {
				cancel()
			}
		}
		if err == nil {
			f.free <- slot
		} else {
			releaseBuf(slot)
		}
	}
	// Give back the buffers of idle slots too.
	for len(f.free) > 0 {
		releaseBuf(<-f.free)
	}
	return size, err
}

func releaseBuf(s *chunkSlot) {
	if s.buf != nil && len(*s.buf) == profile2025.chunkSize {
		chunkPool.Put(s.buf)
	}
	s.buf = nil
}

// work reads the next chunk under the feed lock, queues it in order, then
// hashes and stores it outside the lock. It returns at end of input, on a
// read error (queued as the slot's error) or when ctx is done.
func (f *chunkFeed) work(ctx context.Context, dst BlockPutter) {
	for {
		var slot *chunkSlot
		select {
		case slot = <-f.free:
		case <-ctx.Done():
			return
		}
		last, ok := f.next(ctx, slot)
		if !ok {
			f.free <- slot // capacity is nslots, so this never blocks
			return
		}
		f.process(ctx, slot, dst)
		if last {
			return
		}
	}
}

// process hashes and stores a queued chunk and signals it done.
func (f *chunkFeed) process(ctx context.Context, slot *chunkSlot, dst BlockPutter) {
	if slot.err == nil {
		data := (*slot.buf)[:slot.n]
		slot.c = rawCID(data)
		var err error
		if f.leaf != nil && slot.n > 0 {
			err = f.leaf(ctx, slot.c, slot.off, slot.n)
		} else {
			err = putBlock(ctx, dst, slot.c, data)
		}
		if err != nil {
			slot.err = fmt.Errorf("content: storing chunk %s (bytes %d-%d): %w",
				slot.c, slot.off, slot.off+uint64(slot.n), err)
		}
	}
	slot.done <- struct{}{}
}

// next fills slot with the next chunk and queues it. ok is false when there
// is nothing more to read; last is true when this chunk ends the input.
func (f *chunkFeed) next(ctx context.Context, slot *chunkSlot) (last, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped || ctx.Err() != nil {
		return false, false
	}
	if slot.buf == nil {
		if f.size == profile2025.chunkSize {
			slot.buf = chunkPool.Get().(*[]byte)
		} else {
			b := make([]byte, f.size)
			slot.buf = &b
		}
	}
	n, err := io.ReadFull(f.r, *slot.buf)
	switch {
	case err == io.EOF:
		f.stopped = true
		return false, false
	case errors.Is(err, io.ErrUnexpectedEOF):
		f.stopped = true
		err = nil
	case err != nil:
		f.stopped = true
		err = fmt.Errorf("content: reading input at byte %d: %w", f.off+uint64(n), err)
	}
	slot.n, slot.off, slot.err = n, f.off, err
	f.off += uint64(n)
	f.ordered <- slot // capacity is nslots, so this never blocks
	return f.stopped, true
}

// putBlock stores a block whose CID the importer has just computed from
// data: through PutVerified when dst has it, so the block is not hashed a
// second time.
func putBlock(ctx context.Context, dst BlockPutter, c cid.Cid, data []byte) error {
	if dst == nil {
		return nil
	}
	if vp, ok := dst.(VerifiedPutter); ok {
		return vp.PutVerified(ctx, c, data)
	}
	return dst.Put(ctx, c, data)
}

// blockHashes counts the blocks the importer has hashed, so a test can
// check that each is hashed once; one atomic add beside a hash of up to a
// megabyte costs nothing.
var blockHashes atomic.Uint64

// rawCID is the CIDv1 (raw codec, sha2-256) of data.
func rawCID(data []byte) cid.Cid {
	return sha256CID(cid.Raw, data)
}

func sha256CID(codec uint64, data []byte) cid.Cid {
	blockHashes.Add(1)
	sum := sha256.Sum256(data)
	buf := make([]byte, 2, 2+sha256.Size)
	buf[0], buf[1] = mh.SHA2_256, sha256.Size
	return cid.NewCidV1(codec, mh.Multihash(append(buf, sum[:]...)))
}
