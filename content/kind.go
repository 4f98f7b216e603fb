package content

import (
	"context"
	"fmt"

	"github.com/ipfs/go-cid"
)

// KindOf tells whether c is a file, a directory or a symlink, reading its
// root block from g. A raw block is a file and needs no read; a HAMT shard
// is a directory; a UnixFS raw node is a file. Errors from g are returned
// as they are (the getter names c); a block that does not decode is
// ErrMalformed, named by c.
func KindOf(ctx context.Context, g BlockGetter, c cid.Cid) (FSType, error) {
	if c.Type() == cid.Raw {
		return TFile, nil
	}
	d, _, err := rootData(ctx, g, c)
	if err != nil {
		return 0, err
	}
	switch d.Type {
	case THAMTShard:
		return TDirectory, nil
	case TRaw:
		return TFile, nil
	}
	return d.Type, nil
}

// DAGSize is the content size of the DAG under c, read from its root block
// alone: a raw block's length, a file's recorded size, or else the sum of
// the root's link sizes (Tsize) — what a directory's blocks weigh. Errors
// are KindOf's.
func DAGSize(ctx context.Context, g BlockGetter, c cid.Cid) (uint64, error) {
	if c.Type() == cid.Raw {
		b, err := g.Get(ctx, c)
		if err != nil {
			return 0, err
		}
		return uint64(len(b)), nil
	}
	d, pn, err := rootData(ctx, g, c)
	if err == nil && d.HasFileSize {
		return d.FileSize, nil
	}
	if pn == nil {
		return 0, err
	}
	// A dag-pb node whose Data is not UnixFS still has links to count.
	var total uint64
	for _, l := range pn.Links {
		total += l.Tsize
	}
	return total, nil
}

// SymlinkTarget reads the target of the UnixFS symlink c from its block.
// A block of another type is ErrMalformed.
func SymlinkTarget(ctx context.Context, g BlockGetter, c cid.Cid) (string, error) {
	b, err := g.Get(ctx, c)
	if err != nil {
		return "", err
	}
	pb, err := DecodePBNode(b)
	if err != nil {
		return "", err
	}
	d, err := DecodeFSData(pb.Data)
	if err != nil {
		return "", err
	}
	if d.Type != TSymlink {
		return "", fmt.Errorf("%w: %s is a %s, not a symlink", ErrMalformed, c, d.Type)
	}
	return string(d.Data), nil
}

// rootData reads and decodes the dag-pb root block c and its UnixFS Data.
// When only the Data fails to decode, the decoded node is still returned.
func rootData(ctx context.Context, g BlockGetter, c cid.Cid) (*FSData, *PBNode, error) {
	b, err := g.Get(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	pn, err := DecodePBNode(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", c, err)
	}
	d, err := DecodeFSData(pn.Data)
	if err != nil {
		return nil, pn, fmt.Errorf("%s: %w", c, err)
	}
	return d, pn, nil
}
