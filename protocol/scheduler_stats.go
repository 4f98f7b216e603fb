package protocol

import (
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// PeerProgress is one peer's share of a fetch.
type PeerProgress struct {
	Peer     peer.ID
	Bytes    int64         // block bytes received from the peer, duplicates included
	Blocks   int           // blocks the peer delivered first
	DupBytes int64         // bytes of blocks that had already arrived
	InFlight int           // want-blocks outstanding
	Window   int           // current request window, in blocks
	Rate     float64       // estimated delivery rate, bytes per second
	SRTT     time.Duration // smoothed request→block latency
	Active   bool
	Err      error // why the peer left the fetch, if it did
	// Swarm: the peer speaks shoal's swarm extension; Choked: it chokes us.
	Swarm, Choked bool
}

// Progress is a snapshot of a fetch's accounting.
type Progress struct {
	Root          cid.Cid
	BlocksKnown   int   // blocks of the DAG discovered so far
	BlocksDone    int   // blocks received or found locally
	BlocksLocal   int   // blocks found locally (never requested)
	BytesReceived int64 // all block bytes received, duplicates included
	BytesUseful   int64 // bytes of blocks received for the first time
	BytesLocal    int64
	InFlight      int
	Endgame       bool
	Peers         []PeerProgress // every peer that took part, in arrival order
}

// DuplicateRatio is bytes received ÷ bytes needed (1 means no waste).
func (p Progress) DuplicateRatio() float64 {
	if p.BytesUseful == 0 {
		return 1
	}
	return float64(p.BytesReceived) / float64(p.BytesUseful)
}

// Progress returns the fetch's accounting.
func (s *Scheduler) Progress() Progress {
	pr := Progress{
		Root:          s.root.c,
		BlocksKnown:   len(s.blocks),
		BlocksDone:    s.stats.blocksDone,
		BlocksLocal:   s.stats.blocksLocal,
		BytesReceived: s.stats.bytesReceived,
		BytesUseful:   s.stats.bytesUseful,
		BytesLocal:    s.stats.bytesLocal,
		Endgame:       s.queued == 0 && !s.finished(),
	}
	for _, p := range s.all {
		pr.InFlight += len(p.reqs)
		pr.Peers = append(pr.Peers, PeerProgress{
			Peer: p.id, Bytes: p.bytes, Blocks: p.blocks, DupBytes: p.dupBytes,
			InFlight: len(p.reqs), Window: p.w.size(), Rate: p.w.rate, SRTT: p.w.srtt,
			Active: p.active, Err: p.reason, Swarm: p.swarm, Choked: p.choked,
		})
	}
	return pr
}

// NextNeeded returns up to n blocks not yet received, in file order: what a
// streaming reader of the file will ask for next.
func (s *Scheduler) NextNeeded(n int) []cid.Cid {
	var out []cid.Cid
	for _, b := range s.order[s.head:] {
		if len(out) >= n {
			break
		}
		if !b.done {
			out = append(out, b.c)
		}
	}
	return out
}

// Wanted reports whether c is a block of this fetch not yet received.
func (s *Scheduler) Wanted(c cid.Cid) bool {
	b := s.blocks[c]
	return b != nil && !b.done
}

// Known reports whether c is a discovered block of this fetch.
func (s *Scheduler) Known(c cid.Cid) bool { return s.blocks[c] != nil }
