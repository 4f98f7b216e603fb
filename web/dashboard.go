package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/shoalnet/shoal/dht"
	"github.com/shoalnet/shoal/node"
	"github.com/shoalnet/shoal/protocol"
)

// Optional node capabilities the dashboard and metrics use when the Node
// has them (*node.Node does, or will); each is checked with a type
// assertion so a Node without them still gets a working page.
type (
	// routerNode exposes the DHT router, for the routing table by bucket.
	routerNode interface{ Router() *dht.Router }
	// exchangeNode exposes Bitswap totals since start: what the server
	// sent (blocks served) and what the wire carried both ways.
	exchangeNode interface {
		ServerStats() protocol.PeerStats
		Traffic() protocol.TrafficStats
	}
	// wantListNode reports how many blocks this node is asking peers for.
	wantListNode interface{ WantListSize() int }
)

// bandwidthHistoryLen is how many samples the bandwidth chart keeps: ten
// minutes at the default one-second event interval.
const bandwidthHistoryLen = 600

// bandwidthSample is one point of the bandwidth chart.
type bandwidthSample struct {
	Time   int64   `json:"t"` // Unix milliseconds
	InBps  float64 `json:"in"`
	OutBps float64 `json:"out"`
}

// bandwidthHistory turns traffic totals sampled by the dashboard's event
// streams into rates, shared by every open page so a reload keeps the
// chart. It samples only while a page is open.
type bandwidthHistory struct {
	mu      sync.Mutex
	samples []bandwidthSample // ring, oldest at next when full
	next    int
	last    time.Time
	lastIn  uint64
	lastOut uint64
	max     int
}

func newBandwidthHistory(max int) *bandwidthHistory {
	return &bandwidthHistory{max: max}
}

// add records totals at now unless a sample was taken less than minGap
// ago (two open pages sample once).
func (h *bandwidthHistory) add(now time.Time, in, out uint64, minGap time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last.IsZero() || in < h.lastIn || out < h.lastOut {
		// First sample, or totals that went down (peers whose counters
		// left with them): a new baseline, no rate yet.
		h.last, h.lastIn, h.lastOut = now, in, out
		return
	}
	dt := now.Sub(h.last)
	if dt < minGap {
		return
	}
	s := bandwidthSample{
		Time:   now.UnixMilli(),
		InBps:  float64(in-h.lastIn) / dt.Seconds(),
		OutBps: float64(out-h.lastOut) / dt.Seconds(),
	}
	h.last, h.lastIn, h.lastOut = now, in, out
	if len(h.samples) < h.max {
		h.samples = append(h.samples, s)
	} else {
		h.samples[h.next] = s
		h.next = (h.next + 1) % h.max
	}
}

// since returns the samples taken after the Unix millisecond after,
// oldest first.
func (h *bandwidthHistory) since(after int64) []bandwidthSample {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []bandwidthSample
	for _, part := range [][]bandwidthSample{h.samples[h.next:], h.samples[:h.next]} {
		for _, s := range part {
			if s.Time > after {
				out = append(out, s)
			}
		}
	}
	return out
}

// trafficTotals are the byte counters the bandwidth chart follows.
type trafficTotals struct {
	In  uint64 `json:"in"`
	Out uint64 `json:"out"`
	// Source says what they count: "bitswap" (every Bitswap message since
	// start) or "peers" (block bytes of connected peers only).
	Source string `json:"source"`
}

func totalsOf(n Node, peers []node.PeerInfo) trafficTotals {
	if x, ok := n.(exchangeNode); ok {
		t := x.Traffic()
		return trafficTotals{In: t.BytesReceived, Out: t.BytesSent, Source: "bitswap"}
	}
	var t trafficTotals
	for _, p := range peers {
		t.In += p.BytesIn
		t.Out += p.BytesOut
	}
	t.Source = "peers"
	return t
}

// dashboardSnapshot is one event of GET /api/v1/dashboard/events: what
// GET /api/v1/events sends plus what only the dashboard shows.
type dashboardSnapshot struct {
	Time          time.Time           `json:"time"`
	UptimeSeconds float64             `json:"uptime_s"`
	Info          node.Info           `json:"info"`
	API           string              `json:"api"`
	Gateway       string              `json:"gateway,omitempty"`
	Peers         []node.PeerInfo     `json:"peers"`
	Transfers     []node.TransferInfo `json:"transfers"`
	Roots         []node.RootInfo     `json:"roots"`
	RootsError    string              `json:"roots_error,omitempty"`
	// Buckets is the routing table by bucket; null when the node does not
	// expose its router.
	Buckets []dht.BucketInfo `json:"buckets"`
	Traffic trafficTotals    `json:"traffic"`
	// Bandwidth is the whole chart in the first event, then only the
	// samples taken since the previous event.
	Bandwidth []bandwidthSample `json:"bandwidth"`
	// WantList is how many blocks this node is asking for; -1 when
	// unknown.
	WantList int `json:"want_list"`
}

// snapshot reads the node. Roots come from the store, so they get a
// deadline: a slow disk shows as an error on the page, not a stalled
// stream.
func (s *site) snapshot(ctx context.Context, now time.Time) dashboardSnapshot {
	info := s.n.Info()
	d := dashboardSnapshot{
		Time:      now.UTC(),
		Info:      info,
		API:       s.cfg.URL(),
		Gateway:   s.cfg.GatewayURL,
		Peers:     s.n.Peers(),
		Transfers: s.n.Transfers(),
		WantList:  -1,
	}
	if !info.Started.IsZero() {
		d.UptimeSeconds = now.Sub(info.Started).Seconds()
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	roots, err := s.n.Roots(rctx)
	if err != nil {
		d.RootsError = fmt.Sprintf("listing content: %v", err)
	}
	d.Roots = roots
	if r, ok := s.n.(routerNode); ok && r.Router() != nil {
		d.Buckets = r.Router().RoutingTable()
	}
	if w, ok := s.n.(wantListNode); ok {
		d.WantList = w.WantListSize()
	}
	d.Traffic = totalsOf(s.n, d.Peers)
	s.metrics.observe(d.Transfers)
	return d
}

// handleDashboardEvents streams dashboard snapshots as server-sent events
// ("snapshot"), one at once and then every EventInterval.
func (s *site) handleDashboardEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	interval := s.cfg.EventInterval
	if _, err := fmt.Fprintf(w, "retry: %d\n\n", interval.Milliseconds()); err != nil {
		return
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var sent int64 // time of the last bandwidth sample sent
	for {
		now := time.Now()
		d := s.snapshot(r.Context(), now)
		s.bw.add(now, d.Traffic.In, d.Traffic.Out, interval/2)
		d.Bandwidth = s.bw.since(sent)
		if k := len(d.Bandwidth); k > 0 {
			sent = d.Bandwidth[k-1].Time
		}
		b, err := json.Marshal(d)
		if err != nil {
			s.log.Warn("encoding dashboard event", "err", err)
			return
		}
		if _, err := fmt.Fprintf(w, "event: snapshot\ndata: %s\n\n", b); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}
