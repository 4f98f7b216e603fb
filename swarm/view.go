package swarm

import (
	"slices"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// What swarm peers told this node, kept for the dashboard's swarm view
// (Service.View): each peer's maps and HAVEs per root, and whether it
// chokes this node. The fetch scheduler keeps its own copy for the blocks
// it still needs; this one keeps what a peer holds of roots this node
// already has too (a seeder's view of its leechers). It is bounded per
// peer, so a peer naming many roots or CIDs cannot make it grow.

const (
	// maxViewRoots bounds the roots kept per peer.
	maxViewRoots = 256
	// maxViewEntries bounds the segments and HAVEs kept per peer.
	maxViewEntries = 1 << 16
)

// PeerView is what one swarm peer told this node about one root.
type PeerView struct {
	Peer       peer.ID
	Interested bool // it fetches the root
	Complete   bool // its map said it holds the whole DAG
	// Segments are its maps' segments (bits OR'ed over its maps), HAVEs
	// the blocks it announced since; both in arrival order.
	Segments []Segment
	Haves    []cid.Cid
}

type rootView struct {
	interested bool
	complete   bool
	segIdx     map[cid.Cid]int // parent → index in segs
	segs       []Segment
	haveSet    map[cid.Cid]bool
	haves      []cid.Cid
}

type peerView struct {
	chokesUs bool
	entries  int
	roots    map[cid.Cid]*rootView
}

// views is the service's record; its zero value is ready to use.
type views struct {
	mu    sync.Mutex
	peers map[peer.ID]*peerView
}

// peer returns p's record, creating it; v.mu is held.
func (v *views) peer(p peer.ID) *peerView {
	if v.peers == nil {
		v.peers = make(map[peer.ID]*peerView)
	}
	pv := v.peers[p]
	if pv == nil {
		pv = &peerView{roots: make(map[cid.Cid]*rootView)}
		v.peers[p] = pv
	}
	return pv
}

// root returns p's record of root, creating it, or nil past
// maxViewRoots; v.mu is held.
func (v *views) root(p peer.ID, root cid.Cid) *rootView {
	pv := v.peer(p)
	rv := pv.roots[root]
	if rv == nil {
		if len(pv.roots) >= maxViewRoots {
			return nil
		}
		rv = &rootView{segIdx: make(map[cid.Cid]int), haveSet: make(map[cid.Cid]bool)}
		pv.roots[root] = rv
	}
	return rv
}

// gotMap records a map message (one of the messages a map is split into).
func (v *views) gotMap(p peer.ID, m *Message) {
	v.mu.Lock()
	defer v.mu.Unlock()
	rv := v.root(p, m.Root)
	if rv == nil {
		return
	}
	pv := v.peers[p]
	rv.interested = m.Interested
	rv.complete = rv.complete || m.Complete
	for _, s := range m.Segments {
		if i, ok := rv.segIdx[s.Parent]; ok {
			old := rv.segs[i].Bits
			bits := slices.Clone(old)
			if len(s.Bits) > len(bits) {
				bits = append(bits, make([]byte, len(s.Bits)-len(bits))...)
			}
			for j, b := range s.Bits {
				bits[j] |= b
			}
			rv.segs[i].Bits = bits
			continue
		}
		if pv.entries >= maxViewEntries {
			return
		}
		pv.entries++
		rv.segIdx[s.Parent] = len(rv.segs)
		rv.segs = append(rv.segs, Segment{Parent: s.Parent, Bits: slices.Clone(s.Bits)})
	}
}

func (v *views) gotHaves(p peer.ID, root cid.Cid, cs []cid.Cid) {
	v.mu.Lock()
	defer v.mu.Unlock()
	rv := v.root(p, root)
	if rv == nil {
		return
	}
	pv := v.peers[p]
	for _, c := range cs {
		if rv.haveSet[c] {
			continue
		}
		if pv.entries >= maxViewEntries {
			return
		}
		pv.entries++
		rv.haveSet[c] = true
		rv.haves = append(rv.haves, c)
	}
}

func (v *views) gotInterest(p peer.ID, root cid.Cid, yes bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if rv := v.root(p, root); rv != nil {
		rv.interested = yes
	}
}

func (v *views) gotChoke(p peer.ID, choked bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.peer(p).chokesUs = choked
}

// forget drops what p said: the extension with it ended.
func (v *views) forget(p peer.ID) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.peers, p)
}

// View returns what each swarm peer told this node about root, sorted by
// peer ID. The slices are copies the caller may keep. What a peer said
// goes with it: a peer the service no longer knows (its connection
// closed; a message read after the end raced forget) is dropped here.
func (s *Service) View(root cid.Cid) []PeerView {
	s.mu.Lock()
	known := make(map[peer.ID]bool, len(s.peers))
	for p := range s.peers {
		known[p] = true
	}
	s.mu.Unlock()
	s.view.mu.Lock()
	defer s.view.mu.Unlock()
	var out []PeerView
	for p, pv := range s.view.peers {
		if !known[p] {
			delete(s.view.peers, p)
			continue
		}
		rv := pv.roots[root]
		if rv == nil {
			continue
		}
		segs := make([]Segment, len(rv.segs))
		for i, sg := range rv.segs {
			segs[i] = Segment{Parent: sg.Parent, Bits: slices.Clone(sg.Bits)}
		}
		out = append(out, PeerView{Peer: p, Interested: rv.interested, Complete: rv.complete,
			Segments: segs, Haves: slices.Clone(rv.haves)})
	}
	slices.SortFunc(out, func(a, b PeerView) int {
		switch {
		case a.Peer < b.Peer:
			return -1
		case a.Peer > b.Peer:
			return 1
		}
		return 0
	})
	return out
}

// ChokesUs reports whether swarm peer p said it chokes this node (its
// last choke message); false for a peer that never sent one.
func (s *Service) ChokesUs(p peer.ID) bool {
	s.view.mu.Lock()
	defer s.view.mu.Unlock()
	pv := s.view.peers[p]
	return pv != nil && pv.chokesUs
}

// IsFetching reports whether this node told its swarm peers it fetches
// root.
func (s *Service) IsFetching(root cid.Cid) bool { return s.isFetching(root) }
