package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	apiv1 "github.com/shoalnet/shoal/api"
	"github.com/shoalnet/shoal/node"
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
	// Source says what they count: "bitswap", every Bitswap message
	// since start.
	Source string `json:"source"`
}

func totalsOf(x node.ExchangeStats) trafficTotals {
	return trafficTotals{In: x.BytesIn, Out: x.BytesOut, Source: "bitswap"}
}

// dashboardSnapshot is one event of GET /api/v1/dashboard/events: what
// GET /api/v1/events sends (api.Event) plus what only the dashboard
// shows, in package api's types. It is web's own, not the API's: its one
// reader is the dashboard's script (assets/app.js), served from here.
type dashboardSnapshot struct {
	Time          time.Time        `json:"time"`
	UptimeSeconds float64          `json:"uptime_s"`
	Info          apiv1.Info       `json:"info"`
	API           string           `json:"api"`
	Gateway       string           `json:"gateway,omitempty"`
	Peers         []apiv1.Peer     `json:"peers"`
	Transfers     []apiv1.Transfer `json:"transfers"`
	Roots         []apiv1.Root     `json:"roots"`
	RootsError    string           `json:"roots_error,omitempty"`
	// Buckets is the routing table by bucket; null when the node has no
	// DHT.
	Buckets []apiv1.RoutingBucket `json:"buckets"`
	Traffic trafficTotals         `json:"traffic"`
	// Bandwidth is the whole chart in the first event, then only the
	// samples taken since the previous event.
	Bandwidth []bandwidthSample `json:"bandwidth"`
	// WantList is how many blocks this node is asking peers for now.
	WantList int `json:"want_list"`
	// Swarm is GET /api/v1/swarm's answer: the swarm view.
	Swarm apiv1.Swarm `json:"swarm"`
	// Cluster is the IPFS Cluster peer's view of the roots listed (GET
	// /api/v1/cluster's pins, cut to those); null without a cluster.
	Cluster *apiv1.Cluster `json:"cluster"`
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
		Buckets:   s.n.RoutingTable(),
		WantList:  len(s.n.WantList()),
		Traffic:   totalsOf(s.n.Stats().Exchange),
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
	d.Swarm = s.n.Swarm(ctx)
	d.Cluster = s.cluster(ctx, roots)
	return d
}

// cluster is the cluster's view of roots, or nil without a cluster. A
// cluster that cannot be read is a note on the page (Error), never a
// failed snapshot.
func (s *site) cluster(ctx context.Context, roots []apiv1.Root) *apiv1.Cluster {
	cctx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	c, err := s.n.Cluster(cctx)
	if errors.Is(err, node.ErrNoCluster) {
		return nil
	}
	if err != nil && c.Error == "" {
		c.Error = err.Error()
	}
	local := make(map[string]bool, len(roots))
	for _, r := range roots {
		local[r.CID] = true
	}
	pins := []apiv1.ClusterPin{}
	for _, p := range c.Pins {
		if local[p.CID] {
			pins = append(pins, p)
		}
	}
	c.Pins = pins
	return &c
}

// handleDashboardEvents streams dashboard snapshots as server-sent events
// ("snapshot"), one at once and then every EventInterval. Each stream
// keeps when it last sent bandwidth samples, so it sends each sample once.
func (s *site) handleDashboardEvents(w http.ResponseWriter, r *http.Request) {
	interval := s.cfg.EventInterval
	var sent int64 // time of the last bandwidth sample sent
	serveEvents(w, r, interval, s.log, func(now time.Time) any {
		d := s.snapshot(r.Context(), now)
		s.bw.add(now, d.Traffic.In, d.Traffic.Out, interval/2)
		d.Bandwidth = s.bw.since(sent)
		if k := len(d.Bandwidth); k > 0 {
			sent = d.Bandwidth[k-1].Time
		}
		return d
	})
}
