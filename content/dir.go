package content

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
)

// Sentinel errors of the directory half of the package; they are wrapped
// with the path, name or CID they concern.
var (
	// ErrNoSuchPath is returned by Resolve when a path segment names no
	// entry of its directory.
	ErrNoSuchPath = errors.New("content: no such path")
	// ErrNotDirectory is returned when a path goes through something that
	// is not a UnixFS directory (a file, a symlink, a raw block), or when
	// List is given such a CID.
	ErrNotDirectory = errors.New("content: not a directory")
	// ErrInvalidPath is returned for a path or entry name that cannot be
	// stored in or looked up in a UnixFS directory: an empty name, ".",
	// "..", or (for a single name) one containing "/".
	ErrInvalidPath = errors.New("content: invalid path")
	// ErrPathConflict is returned by DirBuilder when an entry is added
	// twice, or below something that is not a directory.
	ErrPathConflict = errors.New("content: path conflict")
	// ErrUnsupportedFileType is returned by ImportPath for a file that is
	// neither a regular file, a directory nor a symlink (a socket, a
	// device, a named pipe).
	ErrUnsupportedFileType = errors.New("content: unsupported file type")
)

// DirEntry is one entry of a UnixFS directory, as List reports it.
type DirEntry struct {
	Name string
	CID  cid.Cid
	// Type is TFile (also for raw leaves), TDirectory (also for HAMT
	// shards) or TSymlink.
	Type FSType
	// Size is the file size for files, the target length for symlinks and
	// the link's Tsize (cumulative DAG bytes) for directories.
	Size uint64
}

// dirLink is a directory entry as it is written into a directory block.
type dirLink struct {
	name  string
	c     cid.Cid
	tsize uint64
}

const (
	// hamtShardingSize is the unixfs-v1-2025 threshold: a directory whose
	// basic (single block) form would be strictly larger than this many
	// bytes is written as a HAMT instead.
	hamtShardingSize = 256 << 10
	// dirDataSize is the size of the PBNode.Data field of a basic
	// directory without mode or mtime: tag, length, and the UnixFS message
	// {Type: Directory} (two bytes).
	dirDataSize = 4
)

// dirDataBytes is the UnixFS Data of a basic directory without mode or
// mtime; shoal never writes mode or mtime (Kubo writes them only with
// --preserve-mode / --preserve-mtime).
var dirDataBytes = (&FSData{Type: TDirectory}).Marshal()

// validName checks one directory entry name. Names are arbitrary bytes
// except that they must be usable as a path segment: not empty, not "."
// or "..", without "/".
func validName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty name", ErrInvalidPath)
	case name == "." || name == "..":
		return fmt.Errorf("%w: name %q is not allowed in a directory", ErrInvalidPath, name)
	case strings.IndexByte(name, '/') >= 0:
		return fmt.Errorf("%w: name %q contains '/'", ErrInvalidPath, name)
	}
	return nil
}

// pbVarintLen is the length of v as a protobuf varint.
func pbVarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// pbLinkBytes is the number of bytes one link adds to a dag-pb node: the
// PBNode.Links field wrapping Hash, Name and Tsize. Summed over the links
// and added to dirDataSize it is the exact size of a basic directory block,
// which is what Kubo's "block" HAMT size estimation computes.
func pbLinkBytes(l *dirLink) int {
	cl := l.c.ByteLen()
	inner := 1 + pbVarintLen(uint64(cl)) + cl +
		1 + pbVarintLen(uint64(len(l.name))) + len(l.name) +
		1 + pbVarintLen(l.tsize)
	return 1 + pbVarintLen(uint64(inner)) + inner
}

// basicDirSize is the serialized size of a basic directory holding links.
func basicDirSize(links []dirLink) int {
	n := dirDataSize
	for i := range links {
		n += pbLinkBytes(&links[i])
	}
	return n
}

// dagPBCID is the CIDv1 (dag-pb, sha2-256) of a block.
func dagPBCID(data []byte) cid.Cid {
	return sha256CID(cid.DagProtobuf, data)
}

// blockSink receives the blocks of a directory tree as they are built,
// children before parents.
type blockSink struct {
	dst    BlockPutter // nil: hash only
	blocks int
}

func (s *blockSink) put(ctx context.Context, data []byte) (cid.Cid, error) {
	c := dagPBCID(data)
	s.blocks++
	if err := putBlock(ctx, s.dst, c, data); err != nil {
		return cid.Undef, fmt.Errorf("content: storing directory block %s: %w", c, err)
	}
	return c, nil
}

// encodeDir writes one directory (links in any order, names unique) as a
// basic directory, or as a HAMT when the basic block would exceed
// hamtShardingSize, and returns the link to put in its parent.
func encodeDir(ctx context.Context, links []dirLink, sink *blockSink) (cid.Cid, uint64, error) {
	if basicDirSize(links) > hamtShardingSize {
		return buildHAMT(ctx, links, sink)
	}
	slices.SortFunc(links, func(a, b dirLink) int { return strings.Compare(a.name, b.name) })
	return encodeLinksNode(ctx, links, dirDataBytes, sink)
}

// encodeLinksNode writes a dag-pb node with the given links (already in
// order) and UnixFS data, returning its CID and cumulative size.
func encodeLinksNode(ctx context.Context, links []dirLink, data []byte, sink *blockSink) (cid.Cid, uint64, error) {
	n := PBNode{Links: make([]PBLink, len(links)), Data: data}
	tsize := uint64(0)
	for i, l := range links {
		n.Links[i] = PBLink{Hash: l.c, Name: l.name, Tsize: l.tsize}
		tsize += l.tsize
	}
	block := n.Marshal()
	c, err := sink.put(ctx, block)
	if err != nil {
		return cid.Undef, 0, err
	}
	return c, tsize + uint64(len(block)), nil
}

// symlinkBlock is the dag-pb block Kubo writes for a symlink: no links and
// UnixFS {Type: Symlink, Data: target}.
func symlinkBlock(target string) []byte {
	d := FSData{Type: TSymlink, Data: append([]byte{}, target...)} // present even when empty
	n := PBNode{Data: d.Marshal()}
	return n.Marshal()
}
