package protocol

import (
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Outstanding is one block the client is asking peers for now: a want-block
// sent and not yet answered with the block.
type Outstanding struct {
	CID   cid.Cid
	Peers []peer.ID // peers asked for it (more than one in the endgame)
	Since time.Time // when the oldest of those wants was sent
}

// Wants returns the blocks in flight to some peer, in file order.
func (s *Scheduler) Wants() []Outstanding {
	var out []Outstanding
	for _, b := range s.order[s.head:] {
		if b.done || len(b.inflight) == 0 {
			continue
		}
		w := Outstanding{CID: b.c}
		for _, p := range b.inflight {
			w.Peers = append(w.Peers, p.id)
			if i := findReq(p.reqs, b); i >= 0 && (w.Since.IsZero() || p.reqs[i].sent.Before(w.Since)) {
				w.Since = p.reqs[i].sent
			}
		}
		out = append(out, w)
	}
	return out
}

// WantList returns the blocks every running fetch is asking peers for
// now, one entry per CID (fetches that share a block merge their peers).
// It is empty before Start and after Close.
func (c *Client) WantList() []Outstanding {
	select {
	case <-c.started:
	default:
		return nil // not started: post would wait for Start
	}
	res := make(chan []Outstanding, 1)
	if !c.post(func() { res <- c.wants() }) {
		return nil
	}
	return <-res // post returned true: the loop runs the function
}

// wants runs on the loop.
func (c *Client) wants() []Outstanding {
	var out []Outstanding
	at := map[cid.Cid]int{}
	for f := range c.fetches {
		for _, w := range f.s.Wants() {
			i, ok := at[w.CID]
			if !ok {
				at[w.CID] = len(out)
				out = append(out, w)
				continue
			}
			m := &out[i]
			for _, p := range w.Peers {
				if !slices.Contains(m.Peers, p) {
					m.Peers = append(m.Peers, p)
				}
			}
			if w.Since.Before(m.Since) {
				m.Since = w.Since
			}
		}
	}
	return out
}
