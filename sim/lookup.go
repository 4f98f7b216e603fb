package sim

import (
	"context"
	"errors"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
)

// lookup starts a lookup node and times how long its DHT takes to find a
// provider of the content, and over how many hops.
//
// Hops come from kad-dht's query events: peers from the node's own
// routing table are hop 1, a peer first learned from a hop-d peer's
// answer is hop d+1. The lookup's hops are the deepest hop queried before
// the first provider arrived, an upper bound on the depth of the peer
// that answered (queries run concurrently).
func (r *run) lookup(sn *simNode) {
	if sn.n == nil {
		if err := r.start(sn); err != nil {
			sn.failed(err)
			return
		}
	}
	// A fresh node needs its routing table before it can look anything up.
	deadline := time.Now().Add(30 * time.Second)
	for sn.n.Router().Size() == 0 && time.Now().Before(deadline) && r.ctx.Err() == nil {
		_ = sleepCtx(r.ctx, 100*time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(r.ctx, time.Minute)
	defer cancel()
	// A walk that ends without a provider is tried again, as a fetch
	// searches again: the provider's record may still be on its way to
	// the closest peers. Time runs from the first walk; hops are the
	// successful walk's.
	start := time.Now()
	errNone := errors.New("the DHT found no provider of the content within a minute of walks")
	for {
		found, hops, err := walk(ctx, sn, r.root)
		switch {
		case err != nil && r.ctx.Err() == nil:
			sn.failed(errNone)
			return
		case err != nil:
			sn.failed(err)
			return
		case found:
			sn.lookedUp(time.Since(start), hops)
			return
		}
		_ = sleepCtx(ctx, time.Second)
	}
}

// walk runs one FindProviders walk and reports whether it found a
// provider and the deepest hop it queried before the first one arrived.
func walk(ctx context.Context, sn *simNode, root cid.Cid) (found bool, hops int, err error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	qctx, events := routing.RegisterForQueryEvents(wctx)
	depth := map[peer.ID]int{}
	for _, p := range sn.n.Router().Peers() {
		depth[p] = 1
	}
	deepest := 0
	provs := sn.n.Router().FindProviders(qctx, root)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			d := depth[ev.ID]
			if d == 0 {
				d = 1
				depth[ev.ID] = 1
			}
			switch ev.Type {
			case routing.SendingQuery:
				deepest = max(deepest, d)
			case routing.PeerResponse:
				for _, ai := range ev.Responses {
					if _, seen := depth[ai.ID]; !seen {
						depth[ai.ID] = d + 1
					}
				}
			}
		case _, ok := <-provs:
			return ok, deepest, nil
		case <-ctx.Done():
			return false, 0, ctx.Err()
		}
	}
}

// sleepCtx waits d, or less if ctx ends first (then it returns ctx's
// error).
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
