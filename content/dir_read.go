package content

import (
	"context"
	"fmt"

	"github.com/ipfs/go-cid"
)

// dirBlock is a fetched and decoded directory block: a basic directory,
// or one shard of a HAMT directory (shard non-nil).
type dirBlock struct {
	c     cid.Cid
	node  *PBNode
	shard *hamtShard
}

// loadDir fetches c and decodes it as a UnixFS directory or HAMT shard.
// Anything else is ErrNotDirectory; undecodable bytes are ErrMalformed.
func loadDir(ctx context.Context, g BlockGetter, c cid.Cid) (*dirBlock, error) {
	switch c.Prefix().Codec {
	case cid.DagProtobuf:
	case cid.Raw:
		return nil, fmt.Errorf("%w: %s is a raw block (file data)", ErrNotDirectory, c)
	default:
		return nil, fmt.Errorf("%w: %s has codec %#x, not dag-pb", ErrNotDirectory, c, c.Prefix().Codec)
	}
	data, err := g.Get(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("content: fetching directory block %s: %w", c, err)
	}
	n, err := DecodePBNode(data)
	if err != nil {
		return nil, fmt.Errorf("block %s: %w", c, err)
	}
	if n.Data == nil {
		return nil, fmt.Errorf("%w: dag-pb node %s has no UnixFS data", ErrMalformed, c)
	}
	d, err := DecodeFSData(n.Data)
	if err != nil {
		return nil, fmt.Errorf("block %s: %w", c, err)
	}
	switch d.Type {
	case TDirectory:
		return &dirBlock{c: c, node: n}, nil
	case THAMTShard:
		s, err := decodeHAMTShard(c, n, d)
		if err != nil {
			return nil, err
		}
		return &dirBlock{c: c, node: n, shard: s}, nil
	}
	return nil, fmt.Errorf("%w: %s is a UnixFS %s", ErrNotDirectory, c, d.Type)
}

// loadSubShard loads a block that a HAMT link says is a sub-shard.
func loadSubShard(ctx context.Context, g BlockGetter, parent, c cid.Cid) (*dirBlock, error) {
	sub, err := loadDir(ctx, g, c)
	if err != nil {
		return nil, fmt.Errorf("%w: HAMT shard %s links to a sub-shard %s that is unusable: %v", ErrMalformed, parent, c, err)
	}
	if sub.shard == nil {
		return nil, fmt.Errorf("%w: HAMT shard %s links to %s, a basic directory, as a sub-shard", ErrMalformed, parent, c)
	}
	return sub, nil
}

// lookup finds the entry called name in a directory, walking HAMT
// sub-shards as needed. ok is false when there is no such entry.
func (d *dirBlock) lookup(ctx context.Context, g BlockGetter, name string) (c cid.Cid, ok bool, err error) {
	if d.shard == nil {
		for _, l := range d.node.Links {
			if l.Name == name {
				return l.Hash, true, nil
			}
		}
		return cid.Undef, false, nil
	}
	h := hamtHash(name)
	consumed := 0
	for cur := d; ; {
		s := cur.shard
		if consumed+s.bits > hamtHashBits {
			return cid.Undef, false, fmt.Errorf("%w: HAMT shard %s is deeper than the 64-bit hash allows", ErrMalformed, cur.c)
		}
		i, found := s.find(h, consumed)
		if !found {
			return cid.Undef, false, nil
		}
		if !s.isShard(i) {
			if s.entryName(i) != name {
				return cid.Undef, false, nil
			}
			return s.links[i].Hash, true, nil
		}
		consumed += s.bits
		if cur, err = loadSubShard(ctx, g, cur.c, s.links[i].Hash); err != nil {
			return cid.Undef, false, err
		}
	}
}
