package content

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"
)

// DirBuilder builds a UnixFS directory tree from entries given one at a
// time, in any order: the way a directory arrives over a stream (a tar or
// multipart upload) rather than on local disk. It gives the same root CID
// as ImportPath over the same tree, and as Kubo's `ipfs add -r --hidden`
// with the unixfs-v1-2025 profile.
//
// File contents are chunked and stored as they are added, so memory does
// not grow with file sizes; the directory structure (one small record per
// entry) is kept in memory until Finish writes the directory blocks. The
// methods may be called from several goroutines at once, so files can be
// imported in parallel.
//
// Paths are relative and "/"-separated ("docs/a.txt"); a leading "/" or
// "./" and a trailing "/" are ignored ("", "." and "./" are the root), and parent directories are created
// as needed. Adding the same path twice, or a path below a file or
// symlink, is ErrPathConflict; a path with an empty, "." or ".." segment
// is ErrInvalidPath.
type DirBuilder struct {
	dst BlockPutter
	opt ImportOptions

	mu       sync.Mutex
	root     *buildNode
	size     uint64 // content bytes of files added
	blocks   int    // blocks of files and symlinks added
	finished bool
}

// buildNode is one entry of the tree being built: a directory (children
// non-nil) or a finished file or symlink (link set).
type buildNode struct {
	children map[string]*buildNode
	c        cid.Cid
	tsize    uint64
}

// NewDirBuilder returns an empty builder that stores blocks in dst (nil:
// compute CIDs only). opt applies to every file import.
func NewDirBuilder(dst BlockPutter, opt ImportOptions) *DirBuilder {
	return &DirBuilder{dst: dst, opt: opt, root: &buildNode{children: map[string]*buildNode{}}}
}

// cleanEntryPath splits an entry path into validated segments.
func cleanEntryPath(p string) ([]string, error) {
	trimmed := strings.TrimPrefix(strings.TrimPrefix(p, "./"), "/")
	trimmed = strings.TrimSuffix(trimmed, "/")
	if trimmed == "" || trimmed == "." {
		return nil, nil
	}
	segs := strings.Split(trimmed, "/")
	for _, s := range segs {
		if err := validName(s); err != nil {
			return nil, fmt.Errorf("entry path %q: %w", p, err)
		}
	}
	return segs, nil
}

// AddDir adds a directory, which stays in the tree even if nothing is
// ever added below it. Adding a directory that already exists (because an
// entry below it was added first) is not an error.
func (b *DirBuilder) AddDir(p string) error {
	segs, err := cleanEntryPath(p)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return fmt.Errorf("content: DirBuilder: AddDir(%q) after Finish", p)
	}
	_, err = b.dirAt(p, segs)
	return err
}

// AddFile imports the file at path p from r (read to EOF) and adds it.
// Its result is returned, for progress reports. Errors reading r are
// returned wrapped with p.
func (b *DirBuilder) AddFile(ctx context.Context, p string, r io.Reader) (ImportResult, error) {
	return b.addFile(ctx, p, r, b.opt)
}

func (b *DirBuilder) addFile(ctx context.Context, p string, r io.Reader, opt ImportOptions) (ImportResult, error) {
	segs, err := b.precheck(p, "AddFile")
	if err != nil {
		return ImportResult{}, err
	}
	opt.Leaf = nil // offsets of one input only
	res, err := ImportFile(ctx, r, b.dst, opt)
	if err != nil {
		return ImportResult{}, fmt.Errorf("importing %q: %w", p, err)
	}
	return res, b.insert(p, segs, &buildNode{c: res.CID, tsize: res.Tsize}, res.Size, res.Blocks)
}

// AddImported adds a file that was already imported with ImportFile (into
// the same BlockPutter), so that callers can import files however they
// like and only assemble the tree here.
func (b *DirBuilder) AddImported(p string, res ImportResult) error {
	segs, err := b.precheck(p, "AddImported")
	if err != nil {
		return err
	}
	if !res.CID.Defined() {
		return fmt.Errorf("content: DirBuilder: AddImported(%q) with an undefined CID", p)
	}
	return b.insert(p, segs, &buildNode{c: res.CID, tsize: res.Tsize}, res.Size, res.Blocks)
}

// AddSymlink adds a symlink to target. The target is stored as given and
// never followed or checked.
func (b *DirBuilder) AddSymlink(ctx context.Context, p, target string) error {
	segs, err := b.precheck(p, "AddSymlink")
	if err != nil {
		return err
	}
	block := symlinkBlock(target)
	c := dagPBCID(block)
	if err := putBlock(ctx, b.dst, c, block); err != nil {
		return fmt.Errorf("content: storing symlink %q (%s): %w", p, c, err)
	}
	return b.insert(p, segs, &buildNode{c: c, tsize: uint64(len(block))}, 0, 1)
}

// precheck validates p before any work is done for it, so that a
// conflicting entry fails before its file is read.
func (b *DirBuilder) precheck(p, op string) ([]string, error) {
	segs, err := cleanEntryPath(p)
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("%w: %s(%q): the root of a DirBuilder is always a directory", ErrPathConflict, op, p)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return nil, fmt.Errorf("content: DirBuilder: %s(%q) after Finish", op, p)
	}
	return segs, b.conflict(p, segs)
}

// conflict reports whether an entry could not be placed at segs as
// things stand: a parent is a file or symlink, or segs exists. b.mu must
// be held.
func (b *DirBuilder) conflict(p string, segs []string) error {
	cur := b.root
	for i, s := range segs {
		next, ok := cur.children[s]
		switch {
		case !ok:
			return nil
		case i == len(segs)-1 && next.children != nil:
			return fmt.Errorf("%w: %q is already a directory", ErrPathConflict, p)
		case i == len(segs)-1:
			return fmt.Errorf("%w: %q was added twice", ErrPathConflict, p)
		case next.children == nil:
			return fmt.Errorf("%w: %q: %q is a file or symlink, not a directory", ErrPathConflict, p, strings.Join(segs[:i+1], "/"))
		}
		cur = next
	}
	return nil
}

// insert places a finished file or symlink at segs.
func (b *DirBuilder) insert(p string, segs []string, n *buildNode, size uint64, blocks int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return fmt.Errorf("content: DirBuilder: adding %q after Finish", p)
	}
	if err := b.conflict(p, segs); err != nil {
		return err // an entry added concurrently took the place
	}
	parent, err := b.dirAt(p, segs[:len(segs)-1])
	if err != nil {
		return err
	}
	parent.children[segs[len(segs)-1]] = n
	b.size += size
	b.blocks += blocks
	return nil
}

// dirAt returns the directory at segs, creating it and its parents.
// b.mu must be held.
func (b *DirBuilder) dirAt(p string, segs []string) (*buildNode, error) {
	cur := b.root
	for i, s := range segs {
		next, ok := cur.children[s]
		if !ok {
			next = &buildNode{children: map[string]*buildNode{}}
			cur.children[s] = next
		} else if next.children == nil {
			return nil, fmt.Errorf("%w: %q: %q is a file or symlink, not a directory", ErrPathConflict, p, strings.Join(segs[:i+1], "/"))
		}
		cur = next
	}
	return cur, nil
}

// Finish writes every directory block, children before parents, and
// returns the root: its CID, the content bytes of all files (Size), the
// cumulative size of the whole DAG (Tsize) and the number of blocks
// written by the builder and its file imports (Blocks, repeats included).
// The builder cannot be used afterwards.
func (b *DirBuilder) Finish(ctx context.Context) (ImportResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return ImportResult{}, fmt.Errorf("content: DirBuilder: Finish called twice")
	}
	b.finished = true
	sink := &blockSink{dst: b.dst}
	c, tsize, err := finishDir(ctx, "", b.root, sink)
	if err != nil {
		return ImportResult{}, err
	}
	return ImportResult{CID: c, Size: b.size, Tsize: tsize, Blocks: b.blocks + sink.blocks}, nil
}

// finishDir writes directory n (at path p) after its subdirectories.
func finishDir(ctx context.Context, p string, n *buildNode, sink *blockSink) (cid.Cid, uint64, error) {
	if err := ctx.Err(); err != nil {
		return cid.Undef, 0, err
	}
	links := make([]dirLink, 0, len(n.children))
	for name, child := range n.children {
		if child.children != nil {
			c, tsize, err := finishDir(ctx, p+"/"+name, child, sink)
			if err != nil {
				return cid.Undef, 0, err
			}
			child.c, child.tsize = c, tsize
		}
		links = append(links, dirLink{name: name, c: child.c, tsize: child.tsize})
	}
	c, tsize, err := encodeDir(ctx, links, sink)
	if err != nil {
		if p == "" {
			p = "/"
		}
		return cid.Undef, 0, fmt.Errorf("writing directory %q: %w", p, err)
	}
	return c, tsize, nil
}
