package protocol

import (
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Origin mode (super-seeding, after BitTorrent's BEP 16). When several swarm
// peers fetch from this node at once, its uplink is worth most if it carries
// blocks nobody has yet: a block sent once can be passed on by the peer that
// got it, a block sent twice used the uplink for a copy. So while two or
// more swarm peers are interested, a swarm peer's want-blocks are served
// least-sent first (a block never sent to anyone before any block sent
// once), its priorities only breaking ties. The protocol package does not
// know DAGs; "holds the whole DAG" is not checked — a node that holds only
// part of one serves the blocks it has in the same order, which spreads the
// rare ones.
//
// The peer that first received a block is remembered; when another peer is
// later reported to hold it (Server.PeerHas, fed by the swarm extension's
// HAVEs), the first recipient passed it on, and that counts for it in the
// seeding rank (choker.go): the seeder prefers peers that pass blocks on.

// maxSentCounts bounds the blocks whose sends are remembered (about 40
// bytes each: the CID's bytes are shared with the want that asked for it).
// Past it the counts start over; the order is then "least sent since".
const maxSentCounts = 1 << 16

type sentEntry struct {
	n        uint32
	size     uint32  // the block's size, once sent
	credited bool    // a pass-on was counted for first
	first    peer.ID // the first peer it was sent to
}

// sentCounts counts, per block, how often it was picked for a send. Guarded
// by the Server's mutex.
type sentCounts struct {
	m map[cid.Cid]*sentEntry
}

func newSentCounts() *sentCounts { return &sentCounts{m: make(map[cid.Cid]*sentEntry)} }

func (s *sentCounts) count(c cid.Cid) uint32 {
	if e := s.m[c]; e != nil {
		return e.n
	}
	return 0
}

// take books one send of c to p (picked, not yet sent; see untake).
func (s *sentCounts) take(c cid.Cid, p peer.ID) {
	e := s.m[c]
	if e == nil {
		if len(s.m) >= maxSentCounts {
			clear(s.m)
		}
		e = &sentEntry{first: p}
		s.m[c] = e
	}
	e.n++
}

// untake returns a take whose block was not sent after all.
func (s *sentCounts) untake(c cid.Cid) {
	if e := s.m[c]; e != nil && e.n > 0 {
		e.n--
		if e.n == 0 {
			delete(s.m, c)
		}
	}
}

// sized records the size of c, now in a batch.
func (s *sentCounts) sized(c cid.Cid, n int) {
	if e := s.m[c]; e != nil {
		e.size = uint32(n)
	}
}

// least returns the queued want whose block was sent least often, the
// most urgent one among equals. q must not be empty.
func (s *sentCounts) least(q wantHeap) *want {
	best, bestN := q[0], s.count(q[0].e.CID)
	for _, w := range q[1:] {
		if bestN == 0 && !before(w, best) {
			continue // cannot beat a never-sent block of higher priority
		}
		if n := s.count(w.e.CID); n < bestN || (n == bestN && before(w, best)) {
			best, bestN = w, n
		}
	}
	return best
}
