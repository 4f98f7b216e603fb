package web

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shoalnet/shoal/node"
)

// metricsCollector is shoal's Prometheus collector. Every value is read
// from the node at scrape time: counters are the node's own (Node.Stats),
// kept as transfers start and finish, so none is lost however many
// fetches finish between two scrapes.
type metricsCollector struct{ n Node }

func newMetricsCollector(n Node) *metricsCollector { return &metricsCollector{n: n} }

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
	descStarted       = prometheus.NewDesc("shoal_fetches_started_total", "Fetches of whole DAGs started (API, gateway and pin fetches).", nil, nil)
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
	descDuration      = prometheus.NewDesc("shoal_fetch_duration_seconds", "Time from start to end of finished fetches of whole DAGs (API, gateway and pin fetches).", nil, nil)
)

// Describe sends every description.
func (m *metricsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInfo, descStart, descPeers, descRT, descStoreBytes, descStoreBlocks,
		descStoreCap, descProvideQueue, descRoots, descAnnounced, descRunning, descStarted, descFetches, descFetchBytes,
		descFetchBlocks, descFetchRecv, descFetchDup, descServedBlocks, descServedBytes, descRecvBlocks,
		descRecvBytes, descWireBytes, descWantsReceived, descPeerWants, descWantList, descDuration} {
		ch <- d
	}
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

	st := m.n.Stats()
	f, x := st.Fetches, st.Exchange
	gauge(descRunning, float64(f.Started-f.Done-f.Failed))
	counter(descStarted, float64(f.Started))
	counter(descFetches, float64(f.Done), node.TransferDone)
	counter(descFetches, float64(f.Failed), node.TransferFailed)
	counter(descFetchBytes, float64(f.Bytes))
	counter(descFetchBlocks, float64(f.Blocks))
	counter(descFetchRecv, float64(f.BytesReceived))
	if f.BytesUseful > 0 {
		gauge(descFetchDup, float64(f.BytesReceived)/f.BytesUseful)
	}
	ch <- durationHistogram(f.Durations)
	counter(descServedBlocks, float64(x.BlocksServed))
	counter(descServedBytes, float64(x.BlockBytesServed))
	counter(descRecvBlocks, float64(x.BlocksReceived))
	counter(descRecvBytes, float64(x.BlockBytesReceived))
	counter(descWireBytes, float64(x.BytesIn), "in")
	counter(descWireBytes, float64(x.BytesOut), "out")
	counter(descWantsReceived, float64(x.WantsReceived))
	gauge(descPeerWants, float64(x.QueuedWants))
	gauge(descWantList, float64(len(m.n.WantList())))
}

// durationHistogram turns the node's per-bucket counts into Prometheus's
// cumulative ones.
func durationHistogram(h node.Histogram) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.Bounds))
	var below uint64
	for i, b := range h.Bounds {
		if i < len(h.Counts) {
			below += h.Counts[i]
		}
		buckets[b] = below
	}
	return prometheus.MustNewConstHistogram(descDuration, h.Count, h.Sum, buckets)
}

// metricsHandler serves shoal's collector together with
// prometheus.DefaultGatherer, where libp2p registers its host and
// resource-manager metrics (and where the Go runtime and process
// collectors live).
func (s *site) metricsHandler() (http.Handler, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(s.metrics); err != nil {
		return nil, err
	}
	return promhttp.HandlerFor(prometheus.Gatherers{reg, prometheus.DefaultGatherer}, promhttp.HandlerOpts{
		ErrorLog:      slogPromLogger{s},
		ErrorHandling: promhttp.ContinueOnError,
	}), nil
}

// slogPromLogger routes promhttp's errors to the site's logger.
type slogPromLogger struct{ s *site }

func (l slogPromLogger) Println(v ...any) { l.s.log.Warn("serving metrics", "err", v) }
