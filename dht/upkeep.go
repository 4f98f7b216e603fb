package dht

import (
	"sync"
	"time"

	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Routing-table upkeep kad-dht would do at the worst moment for a node
// that joins to fetch: within its first second, while its link carries
// the content, it refreshes every bucket (a walk of the DHT for its own
// key, twice more after the join's, and one for a random key of each
// bucket: about ten lookups of 15-25 FIND_NODE each, every answer 20
// peers with their addresses), and it sends a FIND_NODE to every peer it
// connects to before that peer may enter the table, again for each peer
// whenever the table gains one while it holds ten or fewer, so a peer is
// asked four or five times over. In the simulated flash crowds the DHT
// was 4-7 % of the bytes a leecher received, half of it this
// (bench/sim.md, dhtjoin).

// refreshDelay is when the first routing-table refresh may run.
func (r *Router) refreshDelay() time.Duration {
	if r.cfg.RefreshDelay == 0 {
		return DefaultRefreshDelay
	}
	return r.cfg.RefreshDelay
}

// upkeepOptions are the kad-dht options for the upkeep above: no refresh
// of its own (runRefresh does it, later) unless RefreshDelay is negative,
// and the admission checks paced per peer.
func (r *Router) upkeepOptions() []kaddht.Option {
	opts := []kaddht.Option{kaddht.RoutingTableFilter(func(d any, p peer.ID) bool {
		in := false
		if d, ok := d.(*kaddht.IpfsDHT); ok {
			in = d.RoutingTable().Find(p) != ""
		}
		return r.checks.allow(p, in)
	})}
	if r.cfg.RefreshDelay >= 0 {
		opts = append(opts, kaddht.DisableAutoRefresh())
	}
	return opts
}

// runRefresh refreshes the routing table (kad-dht's refresh: its own key
// and every bucket not looked into for refreshInterval) RefreshDelay
// after Start, once the table has a peer to start from, then every
// refreshInterval, as kad-dht's own refresh does. By then the join's
// own-key lookup, the node's lookups and the peers that connected have
// filled most buckets, and a fetch that started with the join is over or
// well under way. The join itself stays as it is: one own-key lookup,
// which fills the table with the peers nearest to us and makes us known
// to them (a join that leaves lowTable peers or fewer refreshes at once).
func (r *Router) runRefresh() {
	defer r.wg.Done()
	wait := r.refreshDelay()
	for {
		select {
		case <-time.After(wait):
		case <-r.ctx.Done():
			return
		}
		if r.dht.RoutingTable().Size() == 0 {
			wait = r.refreshDelay()
			continue
		}
		select {
		case err := <-r.dht.RefreshRoutingTable():
			if err != nil && r.ctx.Err() == nil {
				r.log.Info("dht: routing table refresh incomplete", "err", err)
			}
		case <-r.ctx.Done():
			return
		}
		r.refreshes.Add(1)
		wait = refreshInterval
	}
}

// lowTable is kad-dht's own mark of a routing table that needs filling
// (minRTRefreshThreshold: at or under it, kad-dht adds every connected
// peer). A first join that leaves no more peers than this refreshes at
// once, as kad-dht would have.
const lowTable = 10

// refreshInterval is kad-dht's default refresh period.
const refreshInterval = 10 * time.Minute

// checkPacer lets kad-dht check a peer that is not in the routing table
// (a FIND_NODE before it may enter) once per checkPace. kad-dht asks
// whether a peer may enter (its routing-table filter) before each check
// and starts one for every connected peer each time the table gains a
// peer while small; a check either ends within checkPace (kad-dht's
// check timeout is its refresh query timeout, 10 s) with the peer in the
// table, or it failed and the next may wait as long. One event asks the
// filter twice in a row (identify's handler, then the check itself), so
// a grant stands for checkGrace.
type checkPacer struct {
	mu      sync.Mutex
	granted map[peer.ID]time.Time
	now     func() time.Time
}

const (
	checkPace  = 10 * time.Second
	checkGrace = 10 * time.Millisecond
	// checkSweep is the size past which expired grants are dropped.
	checkSweep = 1024
)

func newCheckPacer() *checkPacer {
	return &checkPacer{granted: map[peer.ID]time.Time{}, now: time.Now}
}

// allow reports whether p may be checked now; a peer in the table
// always may (kad-dht then does not check it, and must not take a "no"
// for a peer that left the DHT).
func (c *checkPacer) allow(p peer.ID, inTable bool) bool {
	if inTable {
		return true
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.granted[p]; ok {
		if d := now.Sub(t); d < checkPace {
			return d <= checkGrace
		}
	}
	if len(c.granted) >= checkSweep {
		for q, t := range c.granted {
			if now.Sub(t) >= checkPace {
				delete(c.granted, q)
			}
		}
	}
	c.granted[p] = now
	return true
}
