package content

import (
	"context"
	"fmt"

	"github.com/ipfs/go-cid"
)

// fileLink is a finished subtree of a file DAG.
type fileLink struct {
	c     cid.Cid
	size  uint64 // content bytes under c (the parent's blocksize entry)
	tsize uint64 // encoded bytes under c (the parent's link Tsize)
}

// treeBuilder assembles a balanced file DAG from leaves given in file
// order, holding only the open node of each level (at most maxLinks links
// each).
//
// It yields the same DAG as boxo's balanced.Layout: that builder grows the
// tree one level deeper only when a full tree has more data after it, and
// fills each new subtree from the left, so every node but the rightmost
// on each level is full and every leaf sits at the same depth. Here, a
// level is sealed into a parent node only when a link arrives for it while
// it is full, and at the end the open nodes are sealed bottom-up.
type treeBuilder struct {
	ctx      context.Context
	maxLinks int
	dst      BlockPutter
	levels   [][]fileLink // levels[0] holds leaves
	leaves   int
	blocks   int
	offset   uint64 // content bytes added so far, for error messages
}

func newTreeBuilder(ctx context.Context, maxLinks int, dst BlockPutter) *treeBuilder {
	return &treeBuilder{ctx: ctx, maxLinks: maxLinks, dst: dst}
}

// addLeaf appends a leaf that has already been stored.
func (t *treeBuilder) addLeaf(c cid.Cid, size uint64) error {
	t.leaves++
	t.blocks++
	err := t.add(0, fileLink{c: c, size: size, tsize: size})
	t.offset += size
	return err
}

func (t *treeBuilder) add(h int, l fileLink) error {
	if h == len(t.levels) {
		t.levels = append(t.levels, nil) // grows to maxLinks, then is reused
	}
	if len(t.levels[h]) == t.maxLinks {
		parent, err := t.seal(t.levels[h])
		if err != nil {
			return err
		}
		t.levels[h] = t.levels[h][:0]
		if err := t.add(h+1, parent); err != nil {
			return err
		}
	}
	t.levels[h] = append(t.levels[h], l)
	return nil
}

// finish seals the open nodes bottom-up and returns the root. A file of
// one chunk is its leaf, as in boxo.
func (t *treeBuilder) finish() (fileLink, error) {
	for h := 0; h < len(t.levels); h++ {
		if h == len(t.levels)-1 {
			if h == 0 && len(t.levels[0]) == 1 {
				return t.levels[0][0], nil
			}
			return t.seal(t.levels[h])
		}
		parent, err := t.seal(t.levels[h])
		if err != nil {
			return fileLink{}, err
		}
		t.levels[h] = t.levels[h][:0]
		if err := t.add(h+1, parent); err != nil {
			return fileLink{}, err
		}
	}
	return fileLink{}, fmt.Errorf("content: file DAG has no leaves")
}

// seal encodes an internal node over links, as boxo does: a dag-pb node
// whose links have empty names and cumulative Tsize, and whose Data is
// UnixFS File with filesize and one blocksize per link.
func (t *treeBuilder) seal(links []fileLink) (fileLink, error) {
	pb := PBNode{Links: make([]PBLink, len(links))}
	fs := FSData{Type: TFile, HasFileSize: true, BlockSizes: make([]uint64, len(links))}
	var tsize uint64
	for i, l := range links {
		pb.Links[i] = PBLink{Hash: l.c, Tsize: l.tsize}
		fs.BlockSizes[i] = l.size
		fs.FileSize += l.size
		tsize += l.tsize
	}
	pb.Data = fs.Marshal()
	enc := pb.Marshal()
	c := sha256CID(cid.DagProtobuf, enc)
	if err := putBlock(t.ctx, t.dst, c, enc); err != nil {
		return fileLink{}, fmt.Errorf("content: storing file node %s (covering up to byte %d): %w", c, t.offset, err)
	}
	t.blocks++
	return fileLink{c: c, size: fs.FileSize, tsize: tsize + uint64(len(enc))}, nil
}
