package content

import (
	"context"
	"errors"

	"github.com/ipfs/go-cid"
)

// BlockPutter stores blocks. The importer calls Put from several goroutines
// at once, so implementations must be safe for concurrent use. data is only
// valid for the duration of the call (the importer reuses its chunk
// buffers): an implementation that keeps it must copy it.
type BlockPutter interface {
	Put(ctx context.Context, c cid.Cid, data []byte) error
}

// VerifiedPutter is a BlockPutter that can also store a block without
// hashing it (a blockstore's PutVerified). The importer computes every
// CID from the bytes it puts, so when dst is one it stores through
// PutVerified and each block is hashed once, by the importer, not again by
// the store. data is only valid for the duration of the call, as for Put.
type VerifiedPutter interface {
	PutVerified(ctx context.Context, c cid.Cid, data []byte) error
}

// BlockGetter fetches blocks. The reader and walker hash nothing: a getter
// backed by untrusted peers must verify each block against its CID before
// returning it. This package never modifies the returned slice and a
// FileReader keeps referring to it, so the getter must not reuse it.
type BlockGetter interface {
	Get(ctx context.Context, c cid.Cid) ([]byte, error)
}

// ImportOptions tunes ImportFile. The DAG layout is not configurable: it is
// fixed to the unixfs-v1-2025 profile (IPIP-499) so that the same bytes
// always give the same CID as Kubo with that profile.
type ImportOptions struct {
	// Workers is the number of goroutines hashing chunks; 0 means
	// runtime.GOMAXPROCS(0).
	Workers int
	// Leaf, when set, is given every raw leaf of a file ImportFile
	// imports (its CID, the byte offset of its chunk in the input and
	// its length) instead of the leaf being put into the putter: the
	// caller keeps the input as the leaves' home (`share --no-copy`).
	// Internal nodes are put as always. Directory builders ignore it:
	// their files' offsets are not offsets of one input.
	Leaf func(ctx context.Context, c cid.Cid, offset uint64, size int) error
}

// ImportResult describes an imported file.
type ImportResult struct {
	CID    cid.Cid
	Size   uint64 // content bytes
	Tsize  uint64 // cumulative DAG bytes: what a parent link's Tsize must be
	Blocks int    // blocks produced (and put, when there is a putter), repeats included
}

// Sentinel errors of the file half of the package; they are wrapped with
// the CID or offset they concern.
var (
	// ErrNotFile is returned when a CID names something other than a
	// UnixFS file or raw block (a directory, a symlink, a dag-cbor node).
	ErrNotFile = errors.New("content: not a file")
	// ErrUnsupportedCodec is returned by Links for a CID whose codec is
	// neither raw nor dag-pb.
	ErrUnsupportedCodec = errors.New("content: unsupported codec")
)
