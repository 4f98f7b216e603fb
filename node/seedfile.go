package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/shoalnet/shoal/blockstore"
	"github.com/shoalnet/shoal/content"
)

// checkpointBytes is how many bytes of leaves WriteFile writes between
// syncs of the file (each followed by a synced record of their
// references): what a power cut can make a resumed fetch move again. A
// kill -9 loses nothing: each leaf's reference is recorded (unsynced) as
// it is written. One fsync per 4 MiB, off the receive path, costs little
// beside writing them (BENCHMARKS.md: 1.005 bytes written per byte
// fetched).
const checkpointBytes = 4 << 20

// seedRefs are the references of one file WriteFile writes: each leaf
// written is at once a reference through the open file (served to peers,
// never written to the store), recorded under the file's name without a
// sync, and recorded durably by the next checkpoint, after the file is
// synced.
type seedRefs struct {
	store blockstore.Store
	file  io.ReaderAt
	path  string        // the file's name when WriteFile began
	final string        // the name it is renamed to (WithFinalName), or ""
	name  func() string // the file's current name, "" if it has none
	kick  chan struct{} // a checkpoint is due
	log   *slog.Logger
	// drop: once a checkpoint has synced a stretch of the file, its
	// pages leave the page cache (dropCached; transfer.cache_fetched_files
	// off), so the file is written through recycled pages, not the whole
	// file's worth of fresh ones (bench/e2e.md, "fetchfast").
	drop bool

	mu           sync.Mutex
	pending      []blockstore.Ref // not yet recorded under a name
	pendingBytes int64
	cpMu         sync.Mutex // one checkpoint at a time
}

// add makes ref (a leaf just written into the file) a reference through
// the open file and reports whether the store took it.
func (r *seedRefs) add(ref blockstore.Ref) bool {
	ref.File, ref.Path, ref.Alt, ref.NoSync = r.file, r.path, r.final, true
	if err := r.store.PutRefs(context.Background(), []blockstore.Ref{ref}); err != nil {
		return false
	}
	r.mu.Lock()
	r.pending = append(r.pending, ref)
	r.pendingBytes += ref.Size
	due := r.pendingBytes >= checkpointBytes
	r.mu.Unlock()
	if due {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
	return true
}

// run checkpoints when add says one is due, until stop is closed.
func (r *seedRefs) run(f FileTarget, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-r.kick:
			r.checkpoint(f)
		}
	}
}

// checkpoint syncs f and records the pending references under its name.
// Without a name they stay in memory and go with the file.
func (r *seedRefs) checkpoint(f FileTarget) {
	r.cpMu.Lock()
	defer r.cpMu.Unlock()
	r.mu.Lock()
	refs := r.pending
	r.pending, r.pendingBytes = nil, 0
	r.mu.Unlock()
	if len(refs) == 0 {
		return
	}
	name := r.name()
	if name == "" {
		return
	}
	if err := f.Sync(); err != nil {
		r.log.Warn("cannot sync the file being fetched; its blocks are fetched again after a crash", "path", name, "err", err)
		return
	}
	if r.drop {
		for _, ref := range refs {
			dropCached(f, ref.Offset, ref.Size)
		}
	}
	for i := range refs {
		refs[i].Path, refs[i].Alt, refs[i].NoSync = name, r.final, false
	}
	if err := r.store.PutRefs(context.Background(), refs); err != nil {
		r.log.Warn("cannot record references to the file being fetched", "path", name, "err", err)
	}
}

// canOpen reports whether this process can open the file name for
// reading: the references it records are read by name later.
func canOpen(name string) bool {
	if name == "" {
		return false
	}
	f, err := os.Open(name)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// placedFiles remembers the files WriteFile finished lately, so that
// FilePlaced can tell that a file handed back after its rename is one the
// daemon wrote (same inode) before it records references to its new name.
type placedFiles struct {
	mu     sync.Mutex
	recent []placedFile // oldest first, at most maxPlaced
}

const maxPlaced = 64

type placedFile struct {
	root cid.Cid
	fi   os.FileInfo
	refs []blockstore.Ref // one per distinct leaf, without a path
}

func (p *placedFiles) wrote(root cid.Cid, f FileTarget, l content.Layout) {
	st, ok := f.(interface{ Stat() (os.FileInfo, error) })
	if !ok {
		return
	}
	fi, err := st.Stat()
	if err != nil {
		return
	}
	pf := placedFile{root: root, fi: fi}
	seen := make(map[cid.Cid]bool)
	for _, pc := range l.Pieces {
		if pc.Data != nil || seen[pc.C] {
			continue
		}
		seen[pc.C] = true
		pf.refs = append(pf.refs, blockstore.Ref{C: pc.C, Offset: int64(pc.Offset), Size: int64(pc.Size)})
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recent = append(p.recent, pf)
	if len(p.recent) > maxPlaced {
		p.recent = p.recent[1:]
	}
}

// take removes and returns the record of root written into the file fi.
func (p *placedFiles) take(root cid.Cid, fi os.FileInfo) (placedFile, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, pf := range p.recent {
		if pf.root.Equals(root) && os.SameFile(pf.fi, fi) {
			p.recent = append(p.recent[:i], p.recent[i+1:]...)
			return pf, true
		}
	}
	return placedFile{}, false
}

// ErrNotWritten: FilePlaced was handed a file WriteFile did not write for
// that CID (or wrote too long ago).
var ErrNotWritten = errors.New("node: file not written by this daemon")

// FilePlaced is told that the file WriteFile wrote for root has been
// renamed into place; f is that file, opened again by the caller. The
// store's references to the file's leaves then name it where it is now
// (as this process sees it), and any copy of them the store still held is
// dropped: the file is the seed. It returns how many leaves it references.
func (n *Node) FilePlaced(ctx context.Context, root cid.Cid, f *os.File) (int, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("examining the file placed for %s: %w", root, err)
	}
	pf, ok := n.placed.take(root, fi)
	if !ok {
		return 0, fmt.Errorf("%w: the file handed back for %s is not one the daemon wrote lately; nothing to reference", ErrNotWritten, root)
	}
	name := fileName(f)
	if !canOpen(name) {
		return 0, fmt.Errorf("the daemon cannot open the file placed for %s by its name (%q); its blocks are fetched again when needed", root, name)
	}
	for i := range pf.refs {
		pf.refs[i].Path = name
	}
	if err := n.store.PutRefs(ctx, pf.refs); err != nil {
		return 0, fmt.Errorf("referencing %s in %s: %w", root, name, err)
	}
	return len(pf.refs), nil
}

// AddFileNoCopy shares the regular file f (open for reading) as AddFile
// does, but keeps no copy of its bytes: the store holds the DAG's
// internal nodes and references to the leaves' ranges of f, under f's
// name as this process sees it, and serves peers from the file. Editing,
// truncating or moving the file afterwards makes the blocks under the
// change missing, never wrong. f is synced first, so no reference names
// a range that is not on disk.
func (n *Node) AddFileNoCopy(ctx context.Context, f *os.File, opts ...AddOption) (AddResult, error) {
	o, err := collectAddOptions(opts)
	if err != nil {
		return AddResult{}, err
	}
	fi, err := f.Stat()
	if err != nil {
		return AddResult{}, fmt.Errorf("examining the file to share: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return AddResult{}, fmt.Errorf("sharing without a copy needs a regular file, not a %s", fi.Mode().Type())
	}
	name := fileName(f)
	if !canOpen(name) {
		return AddResult{}, errors.New("the daemon cannot open the file to share by its name (it runs as another user, or in another mount namespace): share it without --no-copy")
	}
	if err := f.Sync(); err != nil {
		return AddResult{}, fmt.Errorf("syncing %s before referencing it: %w", name, err)
	}
	var (
		mu   sync.Mutex
		refs []blockstore.Ref
	)
	leaf := func(_ context.Context, c cid.Cid, off uint64, size int) error {
		mu.Lock()
		refs = append(refs, blockstore.Ref{C: c, Offset: int64(off), Size: int64(size), Path: name})
		mu.Unlock()
		return nil
	}
	res, err := content.ImportFile(ctx, io.NewSectionReader(f, 0, fi.Size()), notifyingPutter{n}, content.ImportOptions{Leaf: leaf})
	if err != nil {
		return AddResult{}, fmt.Errorf("importing %s: %w", name, err)
	}
	if len(refs) > 0 {
		if err := n.store.PutRefs(ctx, refs); err != nil {
			return AddResult{}, fmt.Errorf("referencing the leaves of %s: %w", name, err)
		}
		for _, r := range refs {
			n.server.NotifyNewBlocks(r.C)
		}
	}
	return n.finishAdd(ctx, res, o)
}
