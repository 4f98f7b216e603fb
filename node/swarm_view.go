package node

import (
	"context"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoalnet/shoal/api"
	"github.com/shoalnet/shoal/content"
	"github.com/shoalnet/shoal/protocol"
	"github.com/shoalnet/shoal/swarm"
)

// The dashboard's swarm view (GET /api/v1/swarm): read-only, from what
// the swarm extension heard (swarm.Service.View), the block server's
// upload slots (protocol.Server.Swarm, Uploads) and this node's store.

const (
	// maxViewBlocks bounds the blocks of one root the view walks.
	maxViewBlocks = 1 << 16
	// maxSwarmCells bounds a bar's cells; a bigger DAG puts several
	// blocks in a cell.
	maxSwarmCells = 512
	// maxViewShared bounds the shared roots the view draws (running
	// transfers are always drawn): each costs a walk of its DAG.
	maxViewShared = 16
)

// walkTTL is how long a complete walk of a shared root serves the view:
// each open dashboard asks every second, and a DAG held whole changes
// only when it is collected.
const walkTTL = 10 * time.Second

// dashViews is what the dashboard's views keep between calls; its zero
// value is ready to use.
type dashViews struct {
	cluster clusterCache
	walks   walkCache
}

// walkCache keeps complete walks of shared roots for walkTTL.
type walkCache struct {
	mu sync.Mutex
	m  map[cid.Cid]walkEntry
}

type walkEntry struct {
	blocks []viewBlock
	at     time.Time
}

func (w *walkCache) get(root cid.Cid, now time.Time) ([]viewBlock, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e, ok := w.m[root]
	if !ok || now.Sub(e.at) >= walkTTL {
		return nil, false
	}
	return e.blocks, true
}

// put keeps a walk, dropping the expired ones first and then, past the
// roots the view draws, everything.
func (w *walkCache) put(root cid.Cid, blocks []viewBlock, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = make(map[cid.Cid]walkEntry)
	}
	for c, e := range w.m {
		if now.Sub(e.at) >= walkTTL {
			delete(w.m, c)
		}
	}
	if len(w.m) >= 2*maxViewShared {
		clear(w.m)
	}
	w.m[root] = walkEntry{blocks: blocks, at: now}
}

// Swarm reports the swarm state: each running transfer's and shared
// root's availability map, each connected peer's share and flags, and
// the upload slots.
func (n *Node) Swarm(ctx context.Context) api.Swarm {
	out := api.Swarm{Extension: n.swarm != nil, Roots: []api.SwarmRoot{}, Peers: []api.SwarmPeer{}}
	var uploads map[peer.ID]protocol.PeerUpload
	var optimistic peer.ID
	if n.server != nil {
		st := n.server.Swarm()
		optimistic = st.Optimistic
		out.Slots = api.UploadSlots{Used: len(st.Unchoked), Total: st.Slots + 1, Origin: st.Origin}
		if optimistic != "" {
			out.Slots.Optimistic = optimistic.String()
		}
		uploads = n.server.Uploads()
	}
	seen := map[cid.Cid]bool{}
	amInterested := map[peer.ID]bool{}
	for _, t := range n.Transfers() {
		c, err := cid.Decode(t.CID)
		if err != nil || t.State != TransferRunning || seen[c] {
			continue
		}
		seen[c] = true
		out.Roots = append(out.Roots, n.swarmRoot(ctx, c, api.SwarmRoot{
			CID: t.CID, Name: t.Name, Role: api.RoleFetching, TransferID: t.ID,
		}, amInterested))
	}
	roots, _ := n.Roots(ctx) // the dashboard shows a listing error itself
	shared := 0
	for _, r := range roots {
		c, err := cid.Decode(r.CID)
		if err != nil || seen[c] || shared == maxViewShared {
			continue
		}
		seen[c] = true
		shared++
		out.Roots = append(out.Roots, n.swarmRoot(ctx, c, api.SwarmRoot{CID: r.CID, Name: r.Name, Role: api.RoleSharing}, nil))
	}
	for _, p := range n.Peers() {
		id, err := peer.Decode(p.ID)
		if err != nil {
			continue
		}
		u, known := uploads[id]
		sp := api.SwarmPeer{
			Peer: p.ID, BytesIn: p.BytesIn, BytesOut: p.BytesOut,
			AmChoking: u.Choked, PeerInterested: u.Interested, AmInterested: amInterested[id],
			Optimistic: id == optimistic,
		}
		if n.swarm != nil {
			sp.Extension = n.swarm.IsSwarmPeer(id)
			sp.PeerChoking = sp.Extension && n.swarm.ChokesUs(id)
		}
		if !known {
			// Not yet in the server's upload table (just connected): a
			// swarm peer starts choked, a plain Bitswap peer never is.
			sp.AmChoking = sp.Extension
		}
		out.Peers = append(out.Peers, sp)
	}
	return out
}

// viewBlock is one block of a root's walk order: its parent's index in
// the order (-1 for the root) and its place among the parent's links.
type viewBlock struct {
	c      cid.Cid
	parent int
	link   int
	held   bool
}

// walkOrder lists the blocks of the DAG under root known here, in walk
// order; partial when blocks below one not held (or past maxViewBlocks)
// are not listed.
func (n *Node) walkOrder(ctx context.Context, root cid.Cid) ([]viewBlock, bool) {
	w := orderWalk{ctx: ctx, n: n, seen: map[cid.Cid]bool{}}
	w.visit(root, -1, 0)
	return w.out, w.partial
}

type orderWalk struct {
	ctx     context.Context
	n       *Node
	seen    map[cid.Cid]bool
	out     []viewBlock
	partial bool
}

func (w *orderWalk) visit(c cid.Cid, parent, link int) {
	if w.seen[c] {
		return
	}
	if len(w.out) >= maxViewBlocks {
		w.partial = true
		return
	}
	w.seen[c] = true
	held, err := w.n.store.Has(w.ctx, c)
	held = held && err == nil
	me := len(w.out)
	w.out = append(w.out, viewBlock{c: c, parent: parent, link: link, held: held})
	if c.Type() == cid.Raw {
		return
	}
	if !held {
		w.partial = true
		return
	}
	data, err := w.n.store.Get(w.ctx, c)
	if err != nil {
		w.partial = true
		return
	}
	links, err := content.Links(c, data)
	if err != nil {
		return
	}
	for i, k := range links {
		w.visit(k, me, i)
	}
}

// swarmRoot fills r's bar and peers. For a root this node fetches,
// amInterested (when not nil) gets the peers that hold a block it lacks.
func (n *Node) swarmRoot(ctx context.Context, root cid.Cid, r api.SwarmRoot, amInterested map[peer.ID]bool) api.SwarmRoot {
	var blocks []viewBlock
	partial := false
	now := time.Now()
	cached := false
	if r.Role == api.RoleSharing {
		blocks, cached = n.views.walks.get(root, now)
	}
	if !cached {
		blocks, partial = n.walkOrder(ctx, root)
		if r.Role == api.RoleSharing && !partial && allHeld(blocks) {
			n.views.walks.put(root, blocks, now)
		}
	}
	r.Blocks, r.Partial, r.Peers = len(blocks), partial, []api.SwarmRootPeer{}
	counts := make([]int, len(blocks))
	for _, b := range blocks {
		if b.held {
			r.Held++
		}
	}
	var views []swarm.PeerView
	if n.swarm != nil {
		views = n.swarm.View(root)
	}
	for _, v := range views {
		holds := peerHolds(v, blocks)
		rp := api.SwarmRootPeer{Peer: v.Peer.String(), Complete: v.Complete, Interested: v.Interested}
		for i, h := range holds {
			if !h {
				continue
			}
			rp.Blocks++
			counts[i]++
			if amInterested != nil && !blocks[i].held {
				amInterested[v.Peer] = true
			}
		}
		r.Peers = append(r.Peers, rp)
	}
	held := make([]bool, len(blocks))
	for i, b := range blocks {
		held[i] = b.held
	}
	r.BlocksPerCell, r.Avail, r.Local = cells(counts, held, maxSwarmCells)
	return r
}

// cells folds per-block peer counts and local holdings into at most
// limit cells of per blocks each: a cell's availability is its rarest
// block's, its local count the blocks held here.
func cells(counts []int, held []bool, limit int) (per int, avail, local []int) {
	per = max(1, (len(counts)+limit-1)/limit)
	n := (len(counts) + per - 1) / per
	avail, local = make([]int, n), make([]int, n)
	for i, k := range counts {
		cell := i / per
		if i%per == 0 || k < avail[cell] {
			avail[cell] = k
		}
		if held[i] {
			local[cell]++
		}
	}
	return per, avail, local
}

func allHeld(blocks []viewBlock) bool {
	for _, b := range blocks {
		if !b.held {
			return false
		}
	}
	return true
}

// peerHolds reports, for each block of the walk, whether v says its peer
// holds it: its map was complete, a HAVE named it, a segment is the
// block's own (the peer holds the parent of a segment) or the segment of
// its parent has its bit.
func peerHolds(v swarm.PeerView, blocks []viewBlock) []bool {
	out := make([]bool, len(blocks))
	if v.Complete {
		for i := range out {
			out[i] = true
		}
		return out
	}
	haves := make(map[cid.Cid]bool, len(v.Haves))
	for _, c := range v.Haves {
		haves[c] = true
	}
	segs := make(map[cid.Cid][]byte, len(v.Segments))
	for _, s := range v.Segments {
		segs[s.Parent] = s.Bits
	}
	for i, b := range blocks {
		_, own := segs[b.c]
		out[i] = haves[b.c] || own
		if !out[i] && b.parent >= 0 {
			bits := segs[blocks[b.parent].c]
			out[i] = b.link/8 < len(bits) && bits[b.link/8]&(1<<(b.link%8)) != 0
		}
	}
	return out
}
