package protocol

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The client's side of shoal's swarm extension. The extension itself (its
// wire format and streams) lives outside this package; the node feeds
// what it hears into these methods, and hears from the client through
// ClientConfig.OnFetching and OnVerified. Each method hands its event to
// the loop and returns; events for a root go to the fetch of that root.

// WantCounts counts the wantlist entries a client has sent.
type WantCounts struct {
	WantBlocks, WantHaves, Cancels uint64
}

type wantCounters struct {
	wantBlocks, wantHaves, cancels atomic.Uint64
}

func (w *wantCounters) count(k ActionKind) {
	switch k {
	case ActWantBlock:
		w.wantBlocks.Add(1)
	case ActWantHave:
		w.wantHaves.Add(1)
	case ActCancel:
		w.cancels.Add(1)
	}
}

// WantCounts returns the wantlist entries sent since the client started.
func (c *Client) WantCounts() WantCounts {
	return WantCounts{
		WantBlocks: c.sentWants.wantBlocks.Load(),
		WantHaves:  c.sentWants.wantHaves.Load(),
		Cancels:    c.sentWants.cancels.Load(),
	}
}

// SetSwarmPeer records that p speaks the swarm extension (yes), or that
// it ended; every fetch then takes p's availability from its maps
// instead of probing it.
func (c *Client) SetSwarmPeer(p peer.ID, yes bool) {
	c.post(func() {
		now := time.Now()
		if yes {
			c.swarm[p] = true
		} else {
			delete(c.swarm, p)
			delete(c.choked, p)
			c.forgetHeard(p)
		}
		for f := range c.fetches {
			f.s.SetSwarmPeer(p, yes, now)
		}
	})
}

// PeerMap gives the fetch of root swarm peer p's availability map.
func (c *Client) PeerMap(p peer.ID, root cid.Cid, m PeerMap) {
	c.post(func() {
		now := time.Now()
		c.hearMap(p, root, m)
		for f := range c.fetches {
			if f.root == root {
				c.ensurePeer(p, now)
				f.s.PeerMap(p, m, now)
			}
		}
	})
}

// PeerHaves gives the fetch of root the blocks swarm peer p has verified
// since its map.
func (c *Client) PeerHaves(p peer.ID, root cid.Cid, cids []cid.Cid) {
	c.post(func() {
		now := time.Now()
		c.hearHaves(p, root, cids)
		for f := range c.fetches {
			if f.root == root {
				c.ensurePeer(p, now)
				f.s.PeerHaves(p, cids, now)
			}
		}
	})
}

// PeerChoked records that p choked us (it serves none of our wants until
// it unchokes us) or unchoked us, in every fetch.
func (c *Client) PeerChoked(p peer.ID, choked bool) {
	c.post(func() {
		now := time.Now()
		if choked {
			c.choked[p] = true
		} else {
			delete(c.choked, p)
		}
		for f := range c.fetches {
			f.s.PeerChoked(p, choked, now)
		}
	})
}

// AddProviders dials peers said to hold or fetch root (peer exchange) and
// adds those reached to the fetch of root, as a provider search would.
//
// Exchange dials are bounded client-wide, not per message: a peer already
// connected or being dialled is skipped, at most DialConcurrency run at
// once across every root (the rest wait in a queue of at most
// maxExchangeQueue, oldest dropped first), and none start while
// MaxExchangePeers swarm peers are connected — BitTorrent's peer limit per
// torrent. Without the bound a crowd's exchange messages made every node
// dial every peer named (211 dials in flight per node in a 1 + 199 sim).
func (c *Client) AddProviders(root cid.Cid, ais []peer.AddrInfo) {
	if len(ais) == 0 {
		return
	}
	c.post(func() {
		for _, ai := range ais {
			if ai.ID == "" || ai.ID == c.net.Self() || c.peers[ai.ID] || c.exchDialing[ai.ID] || c.exchQueued[ai.ID] {
				continue
			}
			if len(c.exchQueue) == maxExchangeQueue {
				delete(c.exchQueued, c.exchQueue[0].ai.ID)
				c.exchQueue = c.exchQueue[1:]
			}
			c.exchQueue = append(c.exchQueue, exchangeDial{root: root, ai: ai})
			c.exchQueued[ai.ID] = true
		}
		c.startExchangeDials()
	})
}

// maxExchangeQueue bounds the exchanged peers waiting for a dial slot: two
// exchange messages' worth (swarm.MaxPeers each).
const maxExchangeQueue = 128

// exchangeDial is a peer named by peer exchange for root, not yet dialled.
type exchangeDial struct {
	root cid.Cid
	ai   peer.AddrInfo
}

// startExchangeDials starts queued exchange dials while the bounds allow
// (on the loop).
func (c *Client) startExchangeDials() {
	for len(c.exchQueue) > 0 && len(c.exchDialing) < c.cfg.DialConcurrency &&
		len(c.swarm)+len(c.exchDialing) < c.cfg.MaxExchangePeers && c.ctx.Err() == nil {
		d := c.exchQueue[0]
		c.exchQueue = c.exchQueue[1:]
		delete(c.exchQueued, d.ai.ID)
		if c.peers[d.ai.ID] {
			continue // connected meanwhile (PeerConnected added it)
		}
		c.exchDialing[d.ai.ID] = true
		c.exchangeDials.Add(1)
		c.wg.Add(1)
		go c.dialExchanged(d)
	}
}

// dialExchanged connects to one exchanged peer and, reached, adds it to
// the running fetches of its root.
func (c *Client) dialExchanged(d exchangeDial) {
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.DialTimeout)
	err := c.net.Connect(ctx, d.ai)
	cancel()
	if err != nil {
		c.log.Debug("bitswap client: exchanged peer unreachable", "peer", d.ai.ID, "err", err)
	}
	c.post(func() {
		delete(c.exchDialing, d.ai.ID)
		if err == nil {
			now := time.Now()
			c.peers[d.ai.ID] = true
			for f := range c.fetches {
				if f.root == d.root {
					c.addPeerTo(f, d.ai.ID, now)
				}
			}
		}
		c.startExchangeDials()
	})
}

// ensurePeer adds p, from which a swarm message just came, to every fetch
// if the connection notice has not done so yet (on the loop).
func (c *Client) ensurePeer(p peer.ID, now time.Time) {
	if c.peers[p] || p == c.net.Self() {
		return
	}
	c.peers[p] = true
	for f := range c.fetches {
		c.addPeerTo(f, p, now)
	}
}

// addPeerTo makes p a candidate of f with what the client knows of its
// swarm state (on the loop). A peer added again after it left keeps the
// choke state it had then; what it said since is in c.choked.
func (c *Client) addPeerTo(f *Fetch, p peer.ID, now time.Time) {
	if c.swarm[p] {
		f.s.SetSwarmPeer(p, true, now)
	}
	if f.s.AddPeer(p, now) {
		f.s.PeerChoked(p, c.choked[p], now)
	}
}

// fetchingChanged tells OnFetching that a fetch of f's root started
// (delta +1) or ended (-1), once per root (on the loop). Single-block
// fetches count too: a swarm peer that chokes this node learns of its
// interest only from the extension, and without it would never unchoke it.
func (c *Client) fetchingChanged(f *Fetch, delta int) {
	n := c.fetching[f.root] + delta
	if n <= 0 {
		delete(c.fetching, f.root)
		delete(c.heard, f.root)
	} else {
		c.fetching[f.root] = n
	}
	if c.cfg.OnFetching == nil {
		return
	}
	if delta > 0 && n == 1 {
		c.cfg.OnFetching(f.root, true)
	} else if delta < 0 && n <= 0 {
		c.cfg.OnFetching(f.root, false)
	}
}

// takeInterest applies f's interest changes to the per-root counts and
// tells OnInterest when a peer's count leaves or reaches zero (on the
// loop). ended: f is over, so every peer it was interested in is dropped.
func (c *Client) takeInterest(f *Fetch, ended bool) {
	changes := f.s.Interest()
	if ended {
		for _, p := range f.s.InterestedPeers() {
			changes = append(changes, PeerInterest{Peer: p, Interested: false})
		}
	}
	for _, ch := range changes {
		counts := c.interest[f.root]
		if counts == nil {
			counts = make(map[peer.ID]int)
			c.interest[f.root] = counts
		}
		n := counts[ch.Peer]
		switch {
		case ch.Interested:
			counts[ch.Peer] = n + 1
		case n > 1:
			counts[ch.Peer] = n - 1
		case n == 1:
			delete(counts, ch.Peer)
		default:
			continue // not counted: nothing was said
		}
		if len(counts) == 0 {
			delete(c.interest, f.root)
		}
		if c.cfg.OnInterest != nil && (ch.Interested && n == 0 || !ch.Interested && n == 1) {
			c.cfg.OnInterest(ch.Peer, f.root, ch.Interested)
		}
	}
}
