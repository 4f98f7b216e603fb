package content

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"sync"

	"github.com/ipfs/go-cid"
)

// maxFileDepth bounds how deep the reader descends. A balanced DAG of 1024
// links per node is 7 levels deep at 2^64 bytes, and legacy layouts (174
// links of 256 KiB) are not much deeper; anything beyond this is hostile.
const maxFileDepth = 64

// FileReader streams the content of a UnixFS file (or a raw block) from
// its DAG. It reads any layout: balanced or trickle, raw or dag-pb leaves,
// inline data in internal nodes. A read fetches only the blocks that hold
// the requested bytes, finding them through each node's blocksizes, and
// keeps the blocks of the last path it read so sequential reads fetch
// every block once.
//
// It hashes nothing: the BlockGetter is trusted to return verified blocks.
// Structure is checked as it is read: a child whose size differs from its
// parent's blocksize, a node whose filesize disagrees with its blocksizes,
// a directory in the middle of a file all give errors wrapping
// ErrMalformed.
//
// Read and Seek share one position and must not be called concurrently;
// ReadAt may be called concurrently (calls are serialized).
type FileReader struct {
	ctx  context.Context
	g    BlockGetter
	root *fileNode
	pos  int64 // for Read and Seek

	mu     sync.Mutex
	path   []*fileNode // path[d] is the node at depth d+1 of the last read
	frames []frame     // the descent of the current readSome, reused
	ahead  readAhead   // blocks fetched ahead of the reader (readahead.go)
}

// frame is one step of a descent: node, the index of the child taken,
// and the file offset where node's children start.
type frame struct {
	n       *fileNode
	i       int
	linksAt uint64
}

// fileNode is one decoded block of a file: its own content bytes, then its
// children's.
type fileNode struct {
	c      cid.Cid
	inline []byte    // content carried by the block itself
	links  []cid.Cid // children, in file order
	ends   []uint64  // ends[i]: end of child i, counted from the end of inline
	size   uint64    // len(inline) + sum of blocksizes
}

// NewFileReader fetches root and returns a reader of the file it names.
// A CID of another kind (a directory, dag-cbor) gives ErrNotFile. ctx is
// used for every later block fetch.
func NewFileReader(ctx context.Context, g BlockGetter, root cid.Cid) (*FileReader, error) {
	data, err := g.Get(ctx, root)
	if err != nil {
		return nil, fmt.Errorf("content: opening file %s: %w", root, err)
	}
	n, err := decodeFileNode(root, data)
	if err != nil {
		return nil, fmt.Errorf("content: opening file %s: %w", root, err)
	}
	return &FileReader{ctx: ctx, g: g, root: n}, nil
}

// Size is the length of the file in bytes.
func (r *FileReader) Size() uint64 { return r.root.size }

// Read reads from the current position. It returns io.EOF only with 0
// bytes, at the end of the file.
func (r *FileReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := r.ReadAt(p, r.pos)
	r.pos += int64(n)
	if n > 0 && err == io.EOF {
		err = nil
	}
	return n, err
}

// Seek sets the position for the next Read. Positions past the end are
// allowed and read as end of file.
func (r *FileReader) Seek(offset int64, whence int) (int64, error) {
	var base int64
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		base = r.pos
	case io.SeekEnd:
		if r.root.size > math.MaxInt64 {
			return r.pos, fmt.Errorf("content: seeking in %s: size %d overflows int64", r.root.c, r.root.size)
		}
		base = int64(r.root.size)
	default:
		return r.pos, fmt.Errorf("content: seeking in %s: bad whence %d", r.root.c, whence)
	}
	if offset > 0 && base > math.MaxInt64-offset || base+offset < 0 {
		return r.pos, fmt.Errorf("content: seeking in %s: position %d%+d is out of range", r.root.c, base, offset)
	}
	r.pos = base + offset
	return r.pos, nil
}

// ReadAt reads len(p) bytes at off, or up to the end of the file with
// io.EOF.
func (r *FileReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("content: reading %s: negative offset %d", r.root.c, off)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if uint64(off) >= r.root.size {
		return 0, io.EOF
	}
	want := uint64(len(p))
	if rest := r.root.size - uint64(off); want > rest {
		want = rest
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	done := uint64(0)
	for done < want {
		n, err := r.readSome(p[done:want], uint64(off)+done)
		done += uint64(n)
		if err != nil {
			return int(done), err
		}
	}
	if want < uint64(len(p)) {
		return int(want), io.EOF
	}
	return int(want), nil
}

// readSome descends from the root to the block that holds byte off and
// copies what it can from that block into p.
func (r *FileReader) readSome(p []byte, off uint64) (int, error) {
	node, rel := r.root, off
	r.frames = r.frames[:0]
	for depth := 0; ; depth++ {
		if rel < uint64(len(node.inline)) {
			r.readAhead(r.frames, off)
			return copy(p, node.inline[rel:]), nil
		}
		rel -= uint64(len(node.inline))
		i := sort.Search(len(node.ends), func(i int) bool { return node.ends[i] > rel })
		if i == len(node.ends) {
			// Unreachable when sizes were checked on the way down.
			return 0, fmt.Errorf("%w: %s has no data at byte %d of file %s", ErrMalformed, node.c, off, r.root.c)
		}
		r.frames = append(r.frames, frame{n: node, i: i, linksAt: off - rel})
		if i > 0 {
			rel -= node.ends[i-1]
		}
		child, err := r.child(depth, node, i)
		if err != nil {
			return 0, fmt.Errorf("content: reading %s at byte %d: %w", r.root.c, off, err)
		}
		node = child
	}
}

// child returns child i of parent, which sits at depth; it reuses the
// node of the last read on that level when it is the same block.
func (r *FileReader) child(depth int, parent *fileNode, i int) (*fileNode, error) {
	c := parent.links[i]
	want := parent.ends[i]
	if i > 0 {
		want -= parent.ends[i-1]
	}
	var n *fileNode
	if depth < len(r.path) && r.path[depth].c == c {
		n = r.path[depth]
	} else {
		if depth >= maxFileDepth {
			return nil, fmt.Errorf("%w: file DAG deeper than %d levels at %s", ErrMalformed, maxFileDepth, c)
		}
		data, err := r.get(c)
		if err != nil {
			return nil, fmt.Errorf("getting block %s: %w", c, err)
		}
		n, err = decodeFileNode(c, data)
		if errors.Is(err, ErrNotFile) {
			return nil, fmt.Errorf("%w: inside file DAG: %w", ErrMalformed, err)
		}
		if err != nil {
			return nil, err
		}
		r.path = append(r.path[:depth], n)
	}
	if n.size != want {
		return nil, fmt.Errorf("%w: block %s holds %d bytes but its parent %s says %d",
			ErrMalformed, c, n.size, parent.c, want)
	}
	return n, nil
}

// decodeFileNode decodes a raw block or a dag-pb UnixFS File/Raw node.
// The result may alias data.
func decodeFileNode(c cid.Cid, data []byte) (*fileNode, error) {
	switch c.Type() {
	case cid.Raw:
		return &fileNode{c: c, inline: data, size: uint64(len(data))}, nil
	case cid.DagProtobuf:
	default:
		return nil, fmt.Errorf("%w: %s has codec 0x%x, not raw or dag-pb", ErrNotFile, c, c.Type())
	}
	pb, err := decodePBNode(data, false)
	if err != nil {
		return nil, fmt.Errorf("block %s: %w", c, err)
	}
	if pb.Data == nil {
		return nil, fmt.Errorf("%w: dag-pb block %s has no UnixFS data", ErrMalformed, c)
	}
	fs, err := DecodeFSData(pb.Data)
	if err != nil {
		return nil, fmt.Errorf("block %s: %w", c, err)
	}
	if fs.Type != TFile && fs.Type != TRaw {
		return nil, fmt.Errorf("%w: %s is a UnixFS %s", ErrNotFile, c, fs.Type)
	}
	if len(fs.BlockSizes) != len(pb.Links) {
		return nil, fmt.Errorf("%w: %s has %d links but %d blocksizes", ErrMalformed, c, len(pb.Links), len(fs.BlockSizes))
	}
	n := &fileNode{c: c, inline: fs.Data, size: uint64(len(fs.Data))}
	if len(pb.Links) > 0 {
		n.links = make([]cid.Cid, len(pb.Links))
		n.ends = make([]uint64, len(pb.Links))
	}
	var end uint64
	for i, l := range pb.Links {
		if end+fs.BlockSizes[i] < end {
			return nil, fmt.Errorf("%w: %s: blocksizes overflow", ErrMalformed, c)
		}
		end += fs.BlockSizes[i]
		n.links[i] = l.Hash
		n.ends[i] = end
	}
	if n.size+end < end {
		return nil, fmt.Errorf("%w: %s: size overflows", ErrMalformed, c)
	}
	n.size += end
	if fs.HasFileSize && fs.FileSize != n.size {
		return nil, fmt.Errorf("%w: %s has filesize %d but its data and blocksizes add up to %d",
			ErrMalformed, c, fs.FileSize, n.size)
	}
	return n, nil
}

var _ interface {
	io.ReadSeeker
	io.ReaderAt
} = (*FileReader)(nil)
