package content

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
)

// Piece is one stretch of a file's bytes and the block that holds it.
// A raw leaf's bytes are its whole block, so only its CID and length are
// known until the block arrives (Data is nil); bytes carried inside a
// dag-pb node (a legacy leaf, or inline data of an internal node) are
// known once the layout is read, and Data holds them.
type Piece struct {
	C      cid.Cid
	Offset uint64
	Size   uint64
	Data   []byte // nil for a raw leaf; aliases the node's block otherwise
}

// Layout is where every byte of a file comes from: its pieces in file
// order, without gaps, adding up to Size.
type Layout struct {
	Size   uint64
	Pieces []Piece
}

// FileLayout reads the root and the internal nodes of the file DAG under
// root (every dag-pb block; no raw leaf below the root) and returns its
// layout; a root that is a raw block is one piece with its Data. Sizes are
// checked as FileReader checks them: a child whose size differs from its
// parent's blocksize gives ErrMalformed, a root that is not a file
// ErrNotFile. A raw leaf's length is the parent's word until the leaf
// arrives; the caller checks it then (Piece.PieceData).
func FileLayout(ctx context.Context, g BlockGetter, root cid.Cid) (Layout, error) {
	data, err := g.Get(ctx, root)
	if err != nil {
		return Layout{}, fmt.Errorf("content: reading the layout of %s: %w", root, err)
	}
	n, err := decodeFileNode(root, data)
	if err != nil {
		return Layout{}, fmt.Errorf("content: reading the layout of %s: %w", root, err)
	}
	l := Layout{Size: n.size}
	if err := l.add(ctx, g, n, 0, 0); err != nil {
		return Layout{}, fmt.Errorf("content: reading the layout of %s: %w", root, err)
	}
	return l, nil
}

// add appends the pieces of n, which starts at byte off of the file.
func (l *Layout) add(ctx context.Context, g BlockGetter, n *fileNode, off uint64, depth int) error {
	if len(n.inline) > 0 {
		l.Pieces = append(l.Pieces, Piece{C: n.c, Offset: off, Size: uint64(len(n.inline)), Data: n.inline})
	}
	off += uint64(len(n.inline))
	var start uint64
	for i, c := range n.links {
		size := n.ends[i] - start
		at := off + start
		start = n.ends[i]
		if c.Type() == cid.Raw {
			l.Pieces = append(l.Pieces, Piece{C: c, Offset: at, Size: size})
			continue
		}
		if depth+1 >= maxFileDepth {
			return fmt.Errorf("%w: file DAG deeper than %d levels at %s", ErrMalformed, maxFileDepth, c)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		data, err := g.Get(ctx, c)
		if err != nil {
			return fmt.Errorf("getting block %s: %w", c, err)
		}
		child, err := decodeFileNode(c, data)
		if errors.Is(err, ErrNotFile) {
			return fmt.Errorf("%w: inside file DAG: %w", ErrMalformed, err)
		}
		if err != nil {
			return err
		}
		if child.size != size {
			return fmt.Errorf("%w: block %s holds %d bytes but its parent %s says %d", ErrMalformed, c, child.size, n.c, size)
		}
		if err := l.add(ctx, g, child, at, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// PieceData checks that data, the verified block of piece p, holds
// exactly the bytes the layout expects there, and returns them.
func (p Piece) PieceData(data []byte) ([]byte, error) {
	if p.Data != nil {
		return p.Data, nil
	}
	if uint64(len(data)) != p.Size {
		return nil, fmt.Errorf("%w: block %s holds %d bytes but its parent says %d", ErrMalformed, p.C, len(data), p.Size)
	}
	return data, nil
}
