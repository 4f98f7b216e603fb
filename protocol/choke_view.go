package protocol

import "github.com/libp2p/go-libp2p/core/peer"

// PeerUpload is the upload side's view of one peer, for the dashboard:
// read-only, it changes no choke decision.
type PeerUpload struct {
	// Swarm: the peer negotiated the swarm extension, so it takes an
	// upload slot when unchoked; Choked: this node does not upload to it
	// now (always false for a peer without the extension).
	Swarm  bool
	Choked bool
	// Interested: it said it is interested (a swarm peer's interest
	// message) or has want-blocks queued here.
	Interested bool
}

// Uploads returns the upload state of every peer the server knows: each
// swarm peer, and each peer with a ledger here.
func (s *Server) Uploads() map[peer.ID]PeerUpload {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[peer.ID]PeerUpload, len(s.ledgers)+len(s.swarm))
	for p, l := range s.ledgers {
		if !l.gone {
			out[p] = PeerUpload{Interested: len(l.blocks) > 0}
		}
	}
	for p, sp := range s.swarm {
		u := out[p]
		u.Swarm, u.Choked = true, !sp.unchoked
		u.Interested = u.Interested || sp.declared
		out[p] = u
	}
	for p := range s.declared {
		u := out[p]
		u.Interested = true
		out[p] = u
	}
	return out
}
