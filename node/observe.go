package node

import (
	"math"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoalnet/shoal/protocol"
)

// What a running node reports about itself for metrics and the dashboard,
// in types web can read without another package: the routing table by
// bucket (api.RoutingBucket, the dashboard sends it), the want list, and
// counters kept since start.

// RoutingTable returns the non-empty buckets, by increasing index.
func (n *Node) RoutingTable() []RoutingBucket {
	bs := n.router.RoutingTable()
	out := make([]RoutingBucket, len(bs))
	for i, b := range bs {
		out[i] = RoutingBucket{Index: b.Index, Peers: b.Peers}
	}
	return out
}

// WantEntry is one block this node is asking peers for now.
type WantEntry struct {
	CID   string    `json:"cid"`
	Peers []string  `json:"peers"` // peers asked for it
	Since time.Time `json:"since"` // when the oldest of those wants was sent
}

// WantList returns the blocks running fetches are asking peers for, one
// entry per block, oldest want first.
func (n *Node) WantList() []WantEntry {
	ws := n.client.WantList()
	out := make([]WantEntry, len(ws))
	for i, w := range ws {
		e := WantEntry{CID: w.CID.String(), Since: w.Since, Peers: make([]string, len(w.Peers))}
		for j, p := range w.Peers {
			e.Peers[j] = p.String()
		}
		out[i] = e
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Since.Before(out[j].Since) })
	return out
}

// Stats are the node's counters since start (Counters never go down) and
// the gauges that go with them.
type Stats struct {
	Fetches  FetchStats
	Exchange ExchangeStats
	Reads    ReadStats
}

// ExchangeStats are Bitswap totals since start: what the server sent and
// what the wire carried both ways.
type ExchangeStats struct {
	BlocksServed       uint64 // blocks sent to peers
	BlockBytesServed   uint64
	WantsReceived      uint64 // want entries from peers, cancels not included
	QueuedWants        int    // peers' wants held now (gauge)
	BlocksReceived     uint64 // blocks received from peers, wanted or not
	BlockBytesReceived uint64
	BytesIn            uint64 // Bitswap message bytes read
	BytesOut           uint64 // Bitswap message bytes written
}

// FetchStats count fetches of whole DAGs (API, gateway and pin fetches)
// since start. Started − Done − Failed are running.
type FetchStats struct {
	Started uint64
	Done    uint64
	Failed  uint64
	// Of completed fetches: content bytes (the DAG's size), blocks, block
	// bytes received (duplicates included) and the useful share of those.
	Bytes         uint64
	Blocks        uint64
	BytesReceived uint64
	BytesUseful   float64
	// Durations of finished fetches, done or failed.
	Durations Histogram
}

// Histogram counts observations into buckets: Counts[i] are those at most
// Bounds[i] (and above Bounds[i-1]); the last count is those above every
// bound.
type Histogram struct {
	Bounds []float64
	Counts []uint64 // len(Bounds)+1
	Count  uint64
	Sum    float64
}

// FetchDurationBounds are the upper bounds, in seconds, of the fetch
// duration buckets: a small file on a LAN (10 ms) to a large one over a
// slow swarm (about 10 minutes), each 2.5 times the one before.
var FetchDurationBounds = func() []float64 {
	b := make([]float64, 13)
	for i := range b {
		b[i] = 0.01 * math.Pow(2.5, float64(i))
	}
	return b
}()

// Stats returns the node's counters now.
func (n *Node) Stats() Stats {
	srv, tr := n.server.Stats(), n.net.Traffic()
	return Stats{
		Fetches: n.fetchStats.snapshot(),
		Reads:   n.reads.stats(),
		Exchange: ExchangeStats{
			BlocksServed: srv.BlocksSent, BlockBytesServed: srv.BlockBytesSent,
			WantsReceived: srv.WantsReceived, QueuedWants: srv.QueuedWants,
			BlocksReceived: tr.BlocksReceived, BlockBytesReceived: tr.BlockBytesReceived,
			BytesIn: tr.BytesReceived, BytesOut: tr.BytesSent,
		},
	}
}

// fetchCounters keeps FetchStats as transfers start and finish; its zero
// value is ready.
type fetchCounters struct {
	mu sync.Mutex
	s  FetchStats
}

func (c *fetchCounters) started() {
	c.mu.Lock()
	c.s.Started++
	c.mu.Unlock()
}

// finished counts a transfer that has ended, from its final state.
func (c *fetchCounters) finished(t TransferInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.s.Durations.Counts == nil {
		c.s.Durations = Histogram{Bounds: FetchDurationBounds, Counts: make([]uint64, len(FetchDurationBounds)+1)}
	}
	secs := t.Finished.Sub(t.Started).Seconds()
	h := &c.s.Durations
	h.Counts[sort.SearchFloat64s(h.Bounds, secs)]++
	h.Count++
	h.Sum += secs
	if t.State != TransferDone {
		c.s.Failed++
		return
	}
	c.s.Done++
	c.s.Bytes += t.Size
	c.s.Blocks += uint64(t.Blocks)
	c.s.BytesReceived += t.BytesReceived
	if t.DuplicateRatio > 0 {
		c.s.BytesUseful += float64(t.BytesReceived) / t.DuplicateRatio
	}
}

func (c *fetchCounters) snapshot() FetchStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.s
	s.Durations.Counts = append([]uint64(nil), c.s.Durations.Counts...)
	if s.Durations.Bounds == nil {
		s.Durations = Histogram{Bounds: FetchDurationBounds, Counts: make([]uint64, len(FetchDurationBounds)+1)}
	}
	return s
}

// UploadSlots is the block server's upload-slot state now: how many
// regular slots it has, which swarm peers it unchokes (the optimistic
// one among them), and whether origin mode is on.
type UploadSlots struct {
	Slots    int      // regular slots (the optimistic one is extra)
	Unchoked []string // peer IDs of the swarm peers unchoked now
	// SentTo is the block bytes sent so far to each peer of Unchoked.
	SentTo     []uint64
	Optimistic string // the optimistic unchoke, or ""
	SwarmPeers int    // swarm peers known
	Origin     bool   // origin mode: least-sent blocks first
}

// UploadSlots returns the upload-slot state now.
func (n *Node) UploadSlots() UploadSlots {
	st := n.server.Swarm()
	u := UploadSlots{Slots: st.Slots, SwarmPeers: st.SwarmPeers, Origin: st.Origin, Optimistic: st.Optimistic.String()}
	if st.Optimistic == "" {
		u.Optimistic = ""
	}
	var ps map[peer.ID]protocol.PeerStats
	if len(st.Unchoked) > 0 {
		ps = n.server.PeerStats()
	}
	for _, p := range st.Unchoked {
		u.Unchoked = append(u.Unchoked, p.String())
		u.SentTo = append(u.SentTo, ps[p].BlockBytesSent)
	}
	return u
}

// Traffic splits the node's upload by protocol: Bitswap frames (blocks
// and the rest: wants, presences) and the swarm extension's messages.
// What a link carried beyond their sum is transport overhead, DHT and
// identify.
type Traffic struct {
	BitswapBytesOut  uint64 // Bitswap frames written, prefix included
	BlockBytesServed uint64 // block data in them
	// BlockBytesReceived is block data in the Bitswap frames read, late
	// duplicates (arriving after their fetch closed) included.
	BlockBytesReceived uint64
	SwarmBytesOut      uint64 // swarm extension frame bodies written
	SwarmMessagesOut   uint64
}

// Traffic returns the upload split since start.
func (n *Node) Traffic() Traffic {
	srv, tr := n.server.Stats(), n.net.Traffic()
	t := Traffic{BitswapBytesOut: tr.BytesSent, BlockBytesServed: srv.BlockBytesSent, BlockBytesReceived: tr.BlockBytesReceived}
	if n.swarm != nil {
		st := n.swarm.Stats()
		t.SwarmBytesOut, t.SwarmMessagesOut = st.BytesSent, st.MessagesSent
	}
	return t
}
