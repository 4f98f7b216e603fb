package protocol

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Session is one read of the content under a root that is not a whole-DAG
// fetch: a reader (a Range request, a path walk, a CAR export) asks for
// the blocks it needs one after another, and every block the store lacks
// joins one fetch of the root — one provider search, one set of peers
// (with their swarm maps and choke state, as any fetch of the root) —
// instead of becoming a single-block fetch with a search of its own.
//
// The fetch starts at the first block the store lacks, not before: a
// session that reads only held blocks costs nothing. It is non-recursive:
// the root block is fetched without its links, and a block is wanted only
// when the reader asks for it (Get, urgent) or says it will (Want,
// read-ahead, in file order). If the fetch fails (no provider found in
// time, a block nobody holds), the next block the store lacks starts a
// new one. Safe for concurrent use.
//
// Bytes returned by Get are read from the store after the block is
// stored (Blocks.Get): they are the store's answer, owned as the store
// says (the client's pooled receive buffer is never handed out).
type Session struct {
	c    *Client
	root cid.Cid
	ctx  context.Context // the caller's: ending it ends the session

	mu     sync.Mutex // held while a fetch starts: never taken on the loop
	f      *Fetch
	closed atomic.Bool
}

// Session opens a read session of the DAG under root. Cancel ctx or call
// Close to end it; blocks it was fetching that no other fetch wants are
// then cancelled with the peers.
func (c *Client) Session(ctx context.Context, root cid.Cid) (*Session, error) {
	if !root.Defined() {
		return nil, ErrFetchConfig
	}
	if c.ctx.Err() != nil {
		return nil, ErrFetchClosed
	}
	return &Session{c: c, root: root, ctx: ctx}, nil
}

// Root is the CID the session reads under.
func (s *Session) Root() cid.Cid { return s.root }

// fetch returns the session's running fetch, starting one if none runs.
func (s *Session) fetch() (*Fetch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return nil, ErrFetchClosed
	}
	if err := s.ctx.Err(); err != nil {
		return nil, err
	}
	if s.f != nil {
		select {
		case <-s.f.Done():
		default:
			return s.f, nil
		}
	}
	f, err := s.c.startSessionFetch(s.ctx, s.root)
	if err != nil {
		return nil, err
	}
	s.f = f
	return f, nil
}

// Get returns block k: from the store if it is there, else fetched in the
// session's fetch ahead of every other block it wants (or prioritised in
// another running fetch that already wants it).
func (s *Session) Get(ctx context.Context, k cid.Cid) ([]byte, error) {
	for retried := false; ; retried = true {
		if data, ok, err := s.c.getLocal(ctx, k); ok {
			return data, err
		}
		f, err := s.fetch()
		if err != nil {
			return nil, err
		}
		ch := make(chan error, 1)
		if !s.c.post(func() { s.c.sessionGet(ctx, s, f, k, ch) }) {
			return nil, ErrFetchClosed
		}
		data, err := s.c.awaitBlock(ctx, k, ch)
		var fe *FetchError
		var npe *NoProvidersError
		switch {
		case err == nil || ctx.Err() != nil || s.closed.Load() || s.ctx.Err() != nil:
			return data, err
		case errors.As(err, &fe) && fe.Missing == k, errors.As(err, &npe):
			// No peer of the session's root has k (a block reused
			// from another DAG, say), or none was found: k gets a
			// fetch of its own, with a provider search for k.
			return s.c.Get(ctx, k)
		case errors.As(err, &fe) && !retried:
			// The session's fetch failed for another reader's block:
			// k is asked again in a new one.
			continue
		}
		return data, err
	}
}

// Want adds blocks the reader will need soon (its read-ahead, in file
// order) to the session's fetch, behind the blocks a reader waits for.
// Blocks the store holds, or another running fetch wants, are skipped.
func (s *Session) Want(ks ...cid.Cid) {
	var need []cid.Cid
	for _, k := range ks {
		s.c.storeInline(s.ctx, k)
		if has, err := s.c.store.Has(s.ctx, k); err != nil || !has {
			need = append(need, k)
		}
	}
	if len(need) == 0 {
		return
	}
	f, err := s.fetch()
	if err != nil {
		return
	}
	s.c.post(func() {
		now := time.Now()
		for _, k := range need {
			if !s.c.wantedElsewhere(k) {
				f.s.Want(k, false, now)
			}
		}
	})
}

// Close ends the session and its fetch. Safe to call twice.
func (s *Session) Close() error {
	s.mu.Lock()
	f := s.f
	s.f = nil
	s.closed.Store(true)
	s.mu.Unlock()
	if f != nil {
		f.Cancel()
	}
	return nil
}

// startSessionFetch starts the kept-open, non-recursive fetch of a session.
func (c *Client) startSessionFetch(ctx context.Context, root cid.Cid) (*Fetch, error) {
	return c.startFetchWith(ctx, root, false, FetchOptions{SearchTimeout: c.cfg.SearchTimeout}, (*Scheduler).KeepOpen)
}

// sessionGet runs on the loop: k joins f (a session's fetch) as wanted and
// urgent, unless another running fetch wants it already (it is
// prioritised there) or f has ended: then k gets a fetch of its own,
// unless the session has ended too.
func (c *Client) sessionGet(ctx context.Context, s *Session, f *Fetch, k cid.Cid, ch chan error) {
	if _, running := c.fetches[f]; !running {
		switch {
		case s.closed.Load():
			ch <- ErrFetchClosed
		case s.ctx.Err() != nil:
			ch <- s.ctx.Err()
		default:
			c.getBlock(ctx, k, ch)
		}
		return
	}
	if !c.awaitWanted(ctx, k, ch, f) {
		f.s.Want(k, true, time.Now())
	}
}

// heardMap is what a swarm peer said of a root: its last map, and the
// blocks it announced since.
type heardMap struct {
	m     PeerMap
	haves []cid.Cid
}

// hearMap keeps p's map of root while a fetch of root runs (on the loop).
func (c *Client) hearMap(p peer.ID, root cid.Cid, m PeerMap) {
	if c.fetching[root] == 0 {
		return
	}
	byPeer := c.heard[root]
	if byPeer == nil {
		byPeer = make(map[peer.ID]*heardMap)
		c.heard[root] = byPeer
	}
	byPeer[p] = &heardMap{m: m}
}

// hearHaves adds p's HAVE deltas for root to its kept map (on the loop).
func (c *Client) hearHaves(p peer.ID, root cid.Cid, cids []cid.Cid) {
	if h := c.heard[root][p]; h != nil {
		h.haves = append(h.haves, cids...)
	}
}

// forgetHeard drops what p said (it left, or left the extension).
func (c *Client) forgetHeard(p peer.ID) {
	for root, byPeer := range c.heard {
		delete(byPeer, p)
		if len(byPeer) == 0 {
			delete(c.heard, root)
		}
	}
}

// replayHeard tells a fetch starting now what the swarm peers said of its
// root to the fetches of it that run (on the loop).
func (c *Client) replayHeard(f *Fetch, now time.Time) {
	for p, h := range c.heard[f.root] {
		f.s.PeerMap(p, h.m, now)
		if len(h.haves) > 0 {
			f.s.PeerHaves(p, h.haves, now)
		}
	}
}
