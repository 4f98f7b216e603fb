package protocol

import (
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The scheduler's inputs from shoal's swarm extension. A swarm peer tells
// us what it holds instead of being probed: a map once (PeerMap), then
// the blocks it verifies (PeerHaves), and whether it chokes us
// (PeerChoked). For such a peer the map is the truth: it is never sent
// want-have probes, never assumed to hold the whole DAG because it holds
// the root, and asked want-block only for blocks its map or a delta
// names (or every block, when its map says it is complete). A peer that
// chokes us is asked nothing, and what it owed us goes back to the queue.

// PeerMap is a swarm peer's availability map for the DAG being fetched.
type PeerMap struct {
	// Complete: the peer holds every block of the DAG.
	Complete bool
	// Segments list, for each interior block the peer holds, which of its
	// links the peer holds too. A segment for a block not yet discovered
	// here is kept until the block arrives.
	Segments []MapSegment
}

// MapSegment is one interior block's part of a map: the peer holds Parent,
// and the block of its i-th link when bit i of Bits is set (byte i/8,
// mask 1<<(i%8)).
type MapSegment struct {
	Parent cid.Cid
	Bits   []byte
}

// Has reports whether bit i is set.
func (m MapSegment) Has(i int) bool {
	return i >= 0 && i/8 < len(m.Bits) && m.Bits[i/8]&(1<<(i%8)) != 0
}

// maxPending bounds the availability kept for blocks not yet discovered
// (segments plus HAVE entries, over all peers), so a peer cannot make a
// fetch hold unbounded state for CIDs that are not in the DAG.
const maxPending = 1 << 16

type pendingSeg struct {
	p    peer.ID
	bits []byte
}

// SetSwarmPeer records that p speaks the swarm extension (yes) or no
// longer does. p need not have been added yet.
func (s *Scheduler) SetSwarmPeer(p peer.ID, yes bool, now time.Time) {
	if s.finished() {
		return
	}
	if yes {
		s.swarmIDs[p] = true
	} else {
		delete(s.swarmIDs, p)
	}
	ps := s.byID[p]
	if ps == nil {
		return
	}
	if yes {
		ps.swarm = true
		ps.claimsRoot = false // its map says what it holds
	} else {
		ps.swarm, ps.mapped, ps.complete, ps.choked = false, false, false, false
	}
	s.schedule(now)
}

// PeerMap records swarm peer p's availability map.
func (s *Scheduler) PeerMap(p peer.ID, m PeerMap, now time.Time) {
	ps := s.byID[p]
	if ps == nil || !ps.active || s.finished() {
		return
	}
	ps.swarm, ps.mapped, ps.answered = true, true, true
	ps.claimsRoot = false
	if m.Complete {
		ps.complete = true
	}
	if m.Complete || len(m.Segments) > 0 {
		ps.gained(now)
	}
	for _, seg := range m.Segments {
		s.applySegment(ps, seg.Parent, seg.Bits)
	}
	s.schedule(now)
}

// applySegment marks what ps holds under parent, or keeps it until parent
// has arrived here (its links are then known).
func (s *Scheduler) applySegment(ps *peerState, parent cid.Cid, bits []byte) {
	b := s.blocks[parent]
	if b != nil && !b.done {
		s.peerHas(ps, b)
	}
	if b == nil || !b.done {
		if s.pendN < maxPending {
			s.pendSeg[parent] = append(s.pendSeg[parent], pendingSeg{ps.id, bits})
			s.pendN++
		}
		return
	}
	seg := MapSegment{Bits: bits}
	for i, k := range b.kids {
		if seg.Has(i) && !k.done {
			s.peerHas(ps, k)
		}
	}
}

// peerHas records that ps holds b (not done).
func (s *Scheduler) peerHas(ps *peerState, b *block) {
	if b.state(ps) == availHave {
		return
	}
	ps.asks, _ = removeReq(ps.asks, b)
	b.setState(ps, availHave)
}

// PeerHaves records the blocks swarm peer p has verified since its map.
func (s *Scheduler) PeerHaves(p peer.ID, cids []cid.Cid, now time.Time) {
	ps := s.byID[p]
	if ps == nil || !ps.active || s.finished() {
		return
	}
	ps.swarm, ps.answered = true, true
	if len(cids) > 0 {
		ps.gained(now)
	}
	for _, c := range cids {
		b := s.blocks[c]
		switch {
		case b == nil:
			if s.pendN < maxPending {
				s.pendHave[c] = append(s.pendHave[c], p)
				s.pendN++
			}
		case !b.done:
			s.peerHas(ps, b)
		}
	}
	s.schedule(now)
}

// PeerChoked records that p choked us (it will not serve our wants) or
// unchoked us. Choking withdraws every want-block outstanding to p; the
// blocks go back to the queue for other peers.
func (s *Scheduler) PeerChoked(p peer.ID, choked bool, now time.Time) {
	ps := s.byID[p]
	if ps == nil || !ps.active || s.finished() || ps.choked == choked {
		return
	}
	ps.choked = choked
	if choked {
		for _, r := range ps.reqs {
			s.emit(ActCancel, ps, r.b.c)
			r.b.dropInflight(ps)
			s.requeue(r.b)
		}
		ps.reqs = nil
	}
	s.schedule(now)
}

// applyPendingSegments hands the map segments kept for b to their peers
// once b is done (its links are known).
func (s *Scheduler) applyPendingSegments(b *block) {
	for _, seg := range takePending(s, s.pendSeg, b.c) {
		if q := s.activePeer(seg.p); q != nil {
			s.applySegment(q, b.c, seg.bits)
		}
	}
}

// applyPendingHaves hands the HAVE deltas kept for b to their peers once
// b is discovered.
func (s *Scheduler) applyPendingHaves(b *block) {
	for _, p := range takePending(s, s.pendHave, b.c) {
		if q := s.activePeer(p); q != nil && !b.done {
			s.peerHas(q, b)
		}
	}
}

// takePending removes and returns what was kept for c in one of the
// pending tables (pendSeg, pendHave), releasing its share of maxPending.
func takePending[T any](s *Scheduler, kept map[cid.Cid][]T, c cid.Cid) []T {
	v, ok := kept[c]
	if !ok {
		return nil
	}
	delete(kept, c)
	s.pendN -= len(v)
	return v
}

// activePeer returns p's state if p is a candidate of the fetch now.
func (s *Scheduler) activePeer(p peer.ID) *peerState {
	if q := s.byID[p]; q != nil && q.active {
		return q
	}
	return nil
}

// swarmMayHave is mayHave for a swarm peer: what its map and deltas say,
// or anything (but what it denied) until its map has arrived.
func (s *Scheduler) swarmMayHave(q *peerState, b *block) bool {
	switch b.state(q) {
	case availDontHave:
		return false
	case availHave:
		return true
	}
	return q.complete || (!q.mapped && s.root.state(q) != availDontHave)
}

// PeerInterest is a change of this fetch's interest in a swarm peer, in
// BitTorrent's meaning: Interested while the peer is known (from its map
// and HAVE deltas) to hold a block of the DAG this node has not received.
type PeerInterest struct {
	Peer       peer.ID
	Interested bool
}

// Interest returns the interest changes since the last call, in the
// order they happened: a peer becomes interesting when its map or a HAVE
// names a block still needed here, and stops being so when the last such
// block arrives (from anyone), when it leaves the fetch or the extension,
// and when the fetch ends.
func (s *Scheduler) Interest() []PeerInterest {
	out := s.interest
	s.interest = nil
	return out
}

// interestedIn reports whether p holds a block this fetch still needs.
func (s *Scheduler) interestedIn(p *peerState) bool {
	return !s.finished() && p.active && p.swarm && (p.needs > 0 || p.complete)
}

// updateInterest records the peers whose interest changed (after every
// event, from schedule).
func (s *Scheduler) updateInterest() {
	for _, p := range s.all {
		if want := s.interestedIn(p); want != p.wantSaid {
			p.wantSaid = want
			s.interest = append(s.interest, PeerInterest{Peer: p.id, Interested: want})
		}
	}
}

// InterestedPeers returns the peers whose last reported interest
// (Interest) is true, and forgets it: the caller is ending the fetch.
func (s *Scheduler) InterestedPeers() []peer.ID {
	var out []peer.ID
	for _, p := range s.all {
		if p.wantSaid {
			p.wantSaid = false
			out = append(out, p.id)
		}
	}
	return out
}
