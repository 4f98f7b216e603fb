package node

import (
	"context"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/shoalnet/shoal/content"
)

// The operations in this file exist for the Kubo-compatible RPC (package
// kuborpc), whose commands see more of the store than shoal's own API:
// single blocks, the pin set, what a collection removed.

// PublicKey is this node's libp2p public key in its protobuf encoding
// (what Kubo's `id` shows, base64-encoded).
func (n *Node) PublicKey() ([]byte, error) {
	pk := n.host.Peerstore().PubKey(n.host.ID())
	if pk == nil {
		return nil, fmt.Errorf("node: the peerstore holds no public key for this node's own ID %s", n.host.ID())
	}
	return crypto.MarshalPublicKey(pk)
}

// Protocols lists the libp2p protocols this node's host answers.
func (n *Node) Protocols() []string {
	ps := n.host.Mux().Protocols()
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return out
}

// PutBlock stores one block after checking that data hashes to c, and
// offers it to peers waiting for it. The block is not pinned: it is cache
// until a pin reaches it.
func (n *Node) PutBlock(ctx context.Context, c cid.Cid, data []byte) error {
	if err := (notifyingPutter{n}).Put(ctx, c, data); err != nil {
		return fmt.Errorf("storing block %s: %w", c, err)
	}
	return nil
}

// HasBlock reports whether block c is stored here (it fetches nothing).
func (n *Node) HasBlock(ctx context.Context, c cid.Cid) (bool, error) {
	return n.store.Has(ctx, c)
}

// PinRoots lists the recursive pins (shoal has no other kind).
func (n *Node) PinRoots(ctx context.Context) ([]cid.Cid, error) {
	return n.store.Pins(ctx)
}

// DAGStat is what a walk of a DAG over the blocks held here found.
type DAGStat struct {
	Blocks int    // blocks visited, the root included (a block linked twice counts twice)
	Bytes  uint64 // their bytes
}

// WalkLocal visits every block of the DAG under root that is held here,
// root first, without fetching; fn may be nil. A block missing from the
// store ends the walk with an error that wraps ErrNotFound.
func (n *Node) WalkLocal(ctx context.Context, root cid.Cid, fn func(c cid.Cid) error) (DAGStat, error) {
	var st DAGStat
	err := content.Walk(ctx, n.store, root, func(c cid.Cid, data []byte) error {
		st.Blocks++
		st.Bytes += uint64(len(data))
		if fn != nil {
			return fn(c)
		}
		return nil
	})
	if err != nil {
		return st, classify(err)
	}
	return st, nil
}

// GCKeys is GC that also says which blocks it removed, as CIDv1 raw CIDs
// (the store keeps multihashes, as Kubo's does). A block stored while the
// collection runs and removed by it is counted in the result but may be
// missing from the list.
func (n *Node) GCKeys(ctx context.Context) ([]cid.Cid, GCResult, error) {
	var before []cid.Cid
	for c, err := range n.store.AllKeys(ctx) {
		if err != nil {
			return nil, GCResult{}, fmt.Errorf("listing blocks before collecting: %w", err)
		}
		before = append(before, c)
	}
	res, err := n.GC(ctx)
	if err != nil {
		return nil, res, err
	}
	var removed []cid.Cid
	for _, c := range before {
		if has, err := n.store.Has(ctx, c); err == nil && !has {
			removed = append(removed, c)
		}
	}
	return removed, res, nil
}
