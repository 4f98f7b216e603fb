package dht

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// ownKeyReuse is how long the result of an own-key lookup stands in for
// another one asked for by the provider's connectivity check: the check
// only wants to know that a lookup through the network succeeds, and
// kad-dht's provider itself re-checks no more often than once a minute
// while online (provider.DefaultConnectivityCheckOnlineInterval).
const ownKeyReuse = time.Minute

// ownKeyResult is the last successful own-key lookup.
type ownKeyResult struct {
	mu    sync.Mutex
	peers []peer.ID
	at    time.Time
}

// ownKeyLookup looks up this node's own key and keeps the result for the
// provider.
func (r *Router) ownKeyLookup(ctx context.Context) ([]peer.ID, error) {
	peers, err := r.dht.GetClosestPeers(ctx, string(r.host.ID()))
	if err == nil {
		r.ownKey.mu.Lock()
		r.ownKey.peers, r.ownKey.at = peers, time.Now()
		r.ownKey.mu.Unlock()
	}
	return peers, err
}

// recentOwnKey returns the last own-key lookup's peers if it ended less
// than ownKeyReuse ago.
func (r *Router) recentOwnKey() ([]peer.ID, bool) {
	r.ownKey.mu.Lock()
	defer r.ownKey.mu.Unlock()
	if r.ownKey.at.IsZero() || time.Since(r.ownKey.at) >= ownKeyReuse {
		return nil, false
	}
	return slices.Clone(r.ownKey.peers), true
}

// providerRouter is the DHT as kad-dht's sweeping provider sees it. The
// provider starts probing as soon as it is built: a connectivity check
// (a lookup of the node's own key, retried with backoff until one
// succeeds) and, once online, four lookups of random keys to estimate the
// network's prefix length. On a joining node that is a second walk of the
// DHT for the answer the join's own-key lookup just got, and four more
// for a node that may never provide anything. So:
//
//   - an own-key lookup while a Bootstrap is in progress waits for it, and
//     one within ownKeyReuse of the last successful own-key lookup is
//     answered with its result;
//   - every other lookup (the prefix-length probes, region sweeps) waits
//     until the router has a root to provide. A router that restarts with
//     roots in its keystore has them from New on.
type providerRouter struct{ r *Router }

func (p providerRouter) GetClosestPeers(ctx context.Context, key string) ([]peer.ID, error) {
	r := p.r
	if key == string(r.host.ID()) {
		r.mu.Lock()
		f := r.joining
		r.mu.Unlock()
		if f != nil {
			select {
			case <-f.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if peers, ok := r.recentOwnKey(); ok {
			return peers, nil
		}
		return r.ownKeyLookup(ctx)
	}
	select {
	case <-r.roots.nonEmpty():
	case <-ctx.Done():
		// The provider is closing. No peers and no error, because on an
		// error its prefix-length probe sleeps a second before it looks
		// at whether it is closed, which would hold up Close by as much.
		return nil, nil
	case <-r.ctx.Done():
		return nil, nil
	}
	return r.dht.GetClosestPeers(ctx, key)
}
