package sim

import (
	"context"
	"sync/atomic"

	"github.com/ipfs/go-cid"

	"github.com/shoalnet/shoal/blockstore"
)

// corruptStore is a byzantine node's store: it holds the real blocks (so
// the node announces and answers HAVE truthfully) but every raw leaf it
// reads back has one byte flipped. The protocol server reads the blocks
// it sends through the store, so every leaf it serves is corrupt; DAG
// nodes stay intact so the node can still walk its own DAG.
type corruptStore struct {
	blockstore.Store
	served atomic.Int64 // corrupt blocks handed out
}

func (s *corruptStore) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	b, err := s.Store.Get(ctx, c)
	if err != nil || c.Type() != cid.Raw || len(b) == 0 {
		return b, err
	}
	b[len(b)/2] ^= 0xff // Get returns a copy: the stored block stays whole
	s.served.Add(1)
	return b, nil
}
