package node

import (
	"context"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoalnet/shoal/content"
	"github.com/shoalnet/shoal/protocol"
	"github.com/shoalnet/shoal/swarm"
)

// The swarm extension's wiring: package swarm speaks the protocol; node
// answers its questions from the blockstore, hands what peers say to the
// fetch client, and lets the block server choke (when it can).

// maxMapSegments bounds the map of one root this node sends.
const maxMapSegments = 1 << 16

func (n *Node) newSwarm() (*swarm.Service, error) {
	cfg := swarm.DefaultConfig()
	cfg.Logger = n.log.With("part", "swarm")
	var choker swarm.Choker
	if n.server != nil {
		choker = &serverChoker{Server: n.server, interest: map[peer.ID]map[cid.Cid]bool{}}
	}
	return swarm.New(n.host, cfg, swarmLocal{n}, swarmEvents{n}, choker)
}

// serverChoker lets the block server choke swarm peers. The extension
// says interest per root (a peer that needs a block of root this node
// holds; swarm.InterestListener); the server's upload slots go to peers,
// so a peer is interested while it is interested in any root.
type serverChoker struct {
	*protocol.Server
	mu       sync.Mutex
	interest map[peer.ID]map[cid.Cid]bool
}

var (
	_ swarm.Choker           = (*serverChoker)(nil)
	_ swarm.HaveListener     = (*serverChoker)(nil)
	_ swarm.InterestListener = (*serverChoker)(nil)
)

func (c *serverChoker) PeerInterested(p peer.ID, root cid.Cid, yes bool) {
	c.mu.Lock()
	roots := c.interest[p]
	if yes {
		if roots == nil {
			roots = map[cid.Cid]bool{}
			c.interest[p] = roots
		}
		roots[root] = true
	} else {
		delete(roots, root)
		if len(roots) == 0 {
			delete(c.interest, p)
		}
	}
	interested := len(c.interest[p]) > 0
	c.mu.Unlock()
	c.Server.PeerInterested(p, interested)
}

func (c *serverChoker) SetSwarmPeer(p peer.ID, yes bool) {
	if !yes {
		c.mu.Lock()
		delete(c.interest, p)
		c.mu.Unlock()
	}
	c.Server.SetSwarmPeer(p, yes)
}

// swarmFetching and swarmVerified are the client's OnFetching and
// OnVerified hooks: they only queue (the client calls them on its loop).
func (n *Node) swarmFetching(root cid.Cid, active bool) {
	if n.swarm != nil {
		n.swarm.Fetching(root, active)
	}
}

// swarmWants is the client's OnInterest hook: this node's interest in a
// swarm peer for root (the peer holds a block a fetch still needs).
func (n *Node) swarmWants(p peer.ID, root cid.Cid, yes bool) {
	if n.swarm != nil {
		n.swarm.Wants(p, root, yes)
	}
}

func (n *Node) swarmVerified(root, c cid.Cid) {
	if n.swarm != nil {
		n.swarm.Verified(root, c)
	}
}

// swarmLocal builds this node's map of a root from the blockstore.
type swarmLocal struct{ n *Node }

// Map walks the DAG under root in walk order (depth-first pre-order,
// links in order): one segment per interior block held, naming which of
// its links are held; complete when every block is.
func (l swarmLocal) Map(ctx context.Context, root cid.Cid) (bool, []swarm.Segment) {
	w := mapWalk{ctx: ctx, n: l.n, seen: make(map[cid.Cid]bool)}
	complete := w.walk(root)
	return complete && !w.cut, w.segs
}

type mapWalk struct {
	ctx  context.Context
	n    *Node
	seen map[cid.Cid]bool
	segs []swarm.Segment
	cut  bool // stopped at maxMapSegments
}

func (w *mapWalk) has(c cid.Cid) bool {
	ok, err := w.n.store.Has(w.ctx, c)
	return err == nil && ok
}

// walk adds c's segment (and its subtree's) and reports whether the
// whole subtree is held.
func (w *mapWalk) walk(c cid.Cid) bool {
	if w.seen[c] {
		return true
	}
	w.seen[c] = true
	if !w.has(c) {
		return false
	}
	if c.Type() == cid.Raw {
		return true
	}
	data, err := w.n.store.Get(w.ctx, c)
	if err != nil {
		return false
	}
	links, err := content.Links(c, data)
	if err != nil || len(links) == 0 {
		return err == nil
	}
	if len(w.segs) >= maxMapSegments {
		w.cut = true
		return false
	}
	bits := make([]byte, (len(links)+7)/8)
	for i, k := range links {
		if w.has(k) {
			bits[i/8] |= 1 << (i % 8)
		}
	}
	w.segs = append(w.segs, swarm.Segment{Parent: c, Bits: bits})
	all := true
	for _, k := range links {
		all = w.walk(k) && all
	}
	return all
}

// swarmEvents hands what swarm peers say to the fetch client.
type swarmEvents struct{ n *Node }

func (e swarmEvents) SwarmPeer(p peer.ID, yes bool) { e.n.client.SetSwarmPeer(p, yes) }

func (e swarmEvents) PeerMap(p peer.ID, root cid.Cid, complete bool, segs []swarm.Segment) {
	m := protocol.PeerMap{Complete: complete, Segments: make([]protocol.MapSegment, len(segs))}
	for i, s := range segs {
		m.Segments[i] = protocol.MapSegment{Parent: s.Parent, Bits: s.Bits}
	}
	e.n.client.PeerMap(p, root, m)
}

func (e swarmEvents) PeerHaves(p peer.ID, root cid.Cid, cids []cid.Cid) {
	e.n.client.PeerHaves(p, root, cids)
}

func (e swarmEvents) PeerChoked(p peer.ID, choked bool) { e.n.client.PeerChoked(p, choked) }

// PeersFor: peers learned by peer exchange become candidate providers of
// the running fetch of root.
func (e swarmEvents) PeersFor(root cid.Cid, peers []peer.AddrInfo) {
	e.n.client.AddProviders(root, peers)
}
