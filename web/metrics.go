package web

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shoalnet/shoal/node"
)

// gathererNode lets a node name the Prometheus registry its libp2p host
// reports to. Without it, /metrics adds prometheus.DefaultGatherer, which
// is where libp2p registers its host and resource-manager metrics unless
// told otherwise (and where the Go runtime and process collectors live).
type gathererNode interface {
	MetricsGatherer() prometheus.Gatherer
}

// fetchDurationBuckets span a small file on a LAN (10 ms) to a large one
// over a slow swarm (about 10 minutes).
var fetchDurationBuckets = prometheus.ExponentialBuckets(0.01, 2.5, 13)

// metricsCollector is shoal's Prometheus collector. Most values are read
// from the node at scrape time; fetch counters and the duration histogram
// are fed from finished transfers, observed on each scrape and each
// dashboard event (the node keeps its last 50 transfers, so more than 50
// fetches finishing between two observations are partly missed).
type metricsCollector struct {
	n    Node
	hist prometheus.Histogram

	mu        sync.Mutex
	seen      map[string]bool // finished transfer IDs already counted
	fetches   map[string]float64
	fetchB    float64 // DAG bytes of finished fetches
	fetchRecv float64 // bytes received for them, duplicates included
	fetchUse  float64 // useful bytes among those
	fetchBlk  float64
}

func newMetricsCollector(n Node) *metricsCollector {
	return &metricsCollector{
		n: n,
		hist: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "shoal_fetch_duration_seconds",
			Help:    "Time from start to end of finished fetches of whole DAGs (API, gateway and pin fetches).",
			Buckets: fetchDurationBuckets,
		}),
		seen:    map[string]bool{},
		fetches: map[string]float64{node.TransferDone: 0, node.TransferFailed: 0},
	}
}

// observe counts the finished transfers of ts not counted yet.
func (m *metricsCollector) observe(ts []node.TransferInfo) {
	m.mu.Lock()
	defer m.mu.Unlock()
	present := make(map[string]bool, len(ts))
	for _, t := range ts {
		present[t.ID] = true
		if t.State == node.TransferRunning || m.seen[t.ID] {
			continue
		}
		m.seen[t.ID] = true
		m.fetches[t.State]++
		if !t.Finished.IsZero() {
			m.hist.Observe(t.Finished.Sub(t.Started).Seconds())
		}
		if t.State != node.TransferDone {
			continue
		}
		m.fetchB += float64(t.Size)
		m.fetchBlk += float64(t.Blocks)
		m.fetchRecv += float64(t.BytesReceived)
		if t.DuplicateRatio > 0 {
			m.fetchUse += float64(t.BytesReceived) / t.DuplicateRatio
		}
	}
	for id := range m.seen {
		if !present[id] {
			delete(m.seen, id) // gone from the node's list, never to return
		}
	}
}

// Metric descriptions. Counters are totals since the node started.
var (
	descInfo          = prometheus.NewDesc("shoal_info", "This node: peer ID, network name and DHT mode (value 1).", []string{"peer_id", "network", "dht_mode"}, nil)
	descStart         = prometheus.NewDesc("shoal_start_time_seconds", "When the node started, Unix seconds.", nil, nil)
	descPeers         = prometheus.NewDesc("shoal_peers", "Connected peers.", nil, nil)
	descRT            = prometheus.NewDesc("shoal_dht_routing_table_peers", "Peers in the DHT routing table.", nil, nil)
	descStoreBytes    = prometheus.NewDesc("shoal_store_bytes", "Bytes of blocks in the store.", nil, nil)
	descStoreBlocks   = prometheus.NewDesc("shoal_store_blocks", "Blocks in the store.", nil, nil)
	descStoreCap      = prometheus.NewDesc("shoal_store_capacity_bytes", "Store capacity in bytes; 0 means unlimited.", nil, nil)
	descProvideQueue  = prometheus.NewDesc("shoal_provide_queue_keys", "Keys waiting to be announced to the DHT.", nil, nil)
	descRoots         = prometheus.NewDesc("shoal_roots", "Content roots held, by pin state.", []string{"pinned"}, nil)
	descAnnounced     = prometheus.NewDesc("shoal_roots_announced", "Content roots announced to the DHT at least once.", nil, nil)
	descRunning       = prometheus.NewDesc("shoal_transfers_running", "Fetches in progress.", nil, nil)
	descFetches       = prometheus.NewDesc("shoal_fetches_total", "Finished fetches of whole DAGs, by result.", []string{"result"}, nil)
	descFetchBytes    = prometheus.NewDesc("shoal_fetched_bytes_total", "Content bytes of completed fetches.", nil, nil)
	descFetchBlocks   = prometheus.NewDesc("shoal_fetched_blocks_total", "Blocks of completed fetches.", nil, nil)
	descFetchRecv     = prometheus.NewDesc("shoal_fetch_received_bytes_total", "Block bytes received for completed fetches, duplicates included.", nil, nil)
	descFetchDup      = prometheus.NewDesc("shoal_fetch_duplicate_ratio", "Bytes received per useful byte over completed fetches (1 = no duplicates).", nil, nil)
	descServedBlocks  = prometheus.NewDesc("shoal_served_blocks_total", "Blocks sent to peers.", nil, nil)
	descServedBytes   = prometheus.NewDesc("shoal_served_bytes_total", "Block bytes sent to peers.", nil, nil)
	descRecvBlocks    = prometheus.NewDesc("shoal_received_blocks_total", "Blocks received from peers, wanted or not.", nil, nil)
	descRecvBytes     = prometheus.NewDesc("shoal_received_block_bytes_total", "Block bytes received from peers, wanted or not.", nil, nil)
	descWireBytes     = prometheus.NewDesc("shoal_bitswap_bytes_total", "Bitswap message bytes on the wire, by direction.", []string{"direction"}, nil)
	descWantsReceived = prometheus.NewDesc("shoal_peer_wants_received_total", "Want entries received from peers.", nil, nil)
	descPeerWants     = prometheus.NewDesc("shoal_peer_want_list_entries", "Wants of peers this node holds now (queued or waiting for the block).", nil, nil)
	descWantList      = prometheus.NewDesc("shoal_want_list_entries", "Blocks this node is asking peers for now.", nil, nil)
)

// Describe sends every description; series that need an optional node
// capability are simply absent when the node lacks it.
func (m *metricsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInfo, descStart, descPeers, descRT, descStoreBytes, descStoreBlocks,
		descStoreCap, descProvideQueue, descRoots, descAnnounced, descRunning, descFetches, descFetchBytes,
		descFetchBlocks, descFetchRecv, descFetchDup, descServedBlocks, descServedBytes, descRecvBlocks,
		descRecvBytes, descWireBytes, descWantsReceived, descPeerWants, descWantList} {
		ch <- d
	}
	m.hist.Describe(ch)
}

// Collect reads the node.
func (m *metricsCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	info := m.n.Info()
	gauge(descInfo, 1, info.ID, info.Network, info.DHTMode)
	if !info.Started.IsZero() {
		gauge(descStart, float64(info.Started.UnixNano())/1e9)
	}
	gauge(descPeers, float64(len(m.n.Peers())))
	gauge(descRT, float64(info.RoutingTableSize))
	gauge(descStoreBytes, float64(info.StoreBytes))
	gauge(descStoreBlocks, float64(info.StoreBlocks))
	gauge(descStoreCap, float64(info.CapacityBytes))
	gauge(descProvideQueue, float64(info.ProvideQueue))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if roots, err := m.n.Roots(ctx); err == nil {
		var pinned, cached, announced float64
		for _, r := range roots {
			if r.Pinned {
				pinned++
			} else {
				cached++
			}
			if !r.LastProvided.IsZero() {
				announced++
			}
		}
		gauge(descRoots, pinned, "true")
		gauge(descRoots, cached, "false")
		gauge(descAnnounced, announced)
	}

	ts := m.n.Transfers()
	running := 0
	for _, t := range ts {
		if t.State == node.TransferRunning {
			running++
		}
	}
	gauge(descRunning, float64(running))
	m.observe(ts)
	m.mu.Lock()
	for _, result := range []string{node.TransferDone, node.TransferFailed} {
		counter(descFetches, m.fetches[result], result)
	}
	counter(descFetchBytes, m.fetchB)
	counter(descFetchBlocks, m.fetchBlk)
	counter(descFetchRecv, m.fetchRecv)
	if m.fetchUse > 0 {
		gauge(descFetchDup, m.fetchRecv/m.fetchUse)
	}
	m.mu.Unlock()
	m.hist.Collect(ch)

	if x, ok := m.n.(exchangeNode); ok {
		srv, tr := x.ServerStats(), x.Traffic()
		counter(descServedBlocks, float64(srv.BlocksSent))
		counter(descServedBytes, float64(srv.BlockBytesSent))
		counter(descRecvBlocks, float64(tr.BlocksReceived))
		counter(descRecvBytes, float64(tr.BlockBytesReceived))
		counter(descWireBytes, float64(tr.BytesReceived), "in")
		counter(descWireBytes, float64(tr.BytesSent), "out")
		counter(descWantsReceived, float64(srv.WantsReceived))
		gauge(descPeerWants, float64(srv.QueuedWants))
	}
	if w, ok := m.n.(wantListNode); ok {
		gauge(descWantList, float64(w.WantListSize()))
	}
}

// metricsHandler serves shoal's collector together with libp2p's metrics
// (see gathererNode).
func (s *site) metricsHandler() (http.Handler, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(s.metrics); err != nil {
		return nil, err
	}
	var libp2p prometheus.Gatherer = prometheus.DefaultGatherer
	if g, ok := s.n.(gathererNode); ok {
		libp2p = g.MetricsGatherer()
	}
	return promhttp.HandlerFor(prometheus.Gatherers{reg, libp2p}, promhttp.HandlerOpts{
		ErrorLog:      slogPromLogger{s},
		ErrorHandling: promhttp.ContinueOnError,
	}), nil
}

// slogPromLogger routes promhttp's errors to the site's logger.
type slogPromLogger struct{ s *site }

func (l slogPromLogger) Println(v ...any) { l.s.log.Warn("serving metrics", "err", v) }
