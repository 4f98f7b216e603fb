package web

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoalnet/shoal/node"
	"github.com/shoalnet/shoal/sim"
)

// scrape reads /metrics into "name{labels}" -> value.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %s %q: %s", resp.Status, resp.Header.Get("Content-Type"), body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func hasPrefix(m map[string]float64, prefix string) bool {
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// TestMetricsAfterShareAndFetch: after A shares a file and B fetches it,
// both nodes' /metrics report what each holds and did, and libp2p's own
// metrics are there too.
func TestMetricsAfterShareAndFetch(t *testing.T) {
	c := sim.NewCluster(t, 2, sim.ClusterOptions{})
	a, b := c.Node(0), c.Node(1)
	aSite, bSite := startSite(t, a, ""), startSite(t, b, "")
	data := randomData(2<<20+5, 11)
	shareAndFetch(t, a, b, bSite.URL, data)

	mb := scrape(t, bSite.URL)
	info := b.Info()
	size := float64(len(data))
	for name, want := range map[string]float64{
		`shoal_info{dht_mode="` + info.DHTMode + `",network="` + info.Network + `",peer_id="` + info.ID + `"}`: 1,
		"shoal_peers":                          1,
		"shoal_store_bytes":                    float64(info.StoreBytes),
		"shoal_store_blocks":                   float64(info.StoreBlocks),
		"shoal_store_capacity_bytes":           float64(info.CapacityBytes),
		`shoal_roots{pinned="false"}`:          1, // fetched, not pinned
		`shoal_roots{pinned="true"}`:           0,
		"shoal_transfers_running":              0,
		"shoal_fetches_started_total":          1,
		"shoal_want_list_entries":              0,
		`shoal_fetches_total{result="done"}`:   1,
		`shoal_fetches_total{result="failed"}`: 0,
		"shoal_fetched_bytes_total":            size,
		"shoal_fetched_blocks_total":           float64(b.Transfers()[0].Blocks),
		"shoal_fetch_duration_seconds_count":   1,
		"shoal_dht_routing_table_peers":        float64(info.RoutingTableSize),
		"shoal_provide_queue_keys":             float64(info.ProvideQueue),
	} {
		got, ok := mb[name]
		if !ok {
			t.Errorf("B's /metrics lacks %s", name)
		} else if got != want {
			t.Errorf("B's %s = %v, want %v", name, got, want)
		}
	}
	if mb["shoal_fetch_received_bytes_total"] < size {
		t.Errorf("B received %v bytes for a %v-byte fetch", mb["shoal_fetch_received_bytes_total"], size)
	}
	if r := mb["shoal_fetch_duplicate_ratio"]; r < 1 || r > 1.5 {
		t.Errorf("duplicate ratio %v for a fetch from one peer", r)
	}
	if info.StoreBytes < int64(len(data)) {
		t.Errorf("B stores %d bytes, less than the file", info.StoreBytes)
	}

	ma := scrape(t, aSite.URL)
	if ma[`shoal_roots{pinned="true"}`] != 1 || ma["shoal_peers"] != 1 || ma[`shoal_fetches_total{result="done"}`] != 0 {
		t.Errorf("A's metrics: roots %v, peers %v, fetches %v", ma[`shoal_roots{pinned="true"}`], ma["shoal_peers"], ma[`shoal_fetches_total{result="done"}`])
	}
	if ma["shoal_served_bytes_total"] < size || mb["shoal_received_block_bytes_total"] < size {
		t.Errorf("A served %v bytes, B received %v; want at least %v", ma["shoal_served_bytes_total"], mb["shoal_received_block_bytes_total"], size)
	}
	// libp2p registers its host and resource-manager metrics with the
	// default registry, which /metrics includes.
	for _, prefix := range []string{"libp2p_rcmgr_", "libp2p_swarm_", "go_goroutines"} {
		if !hasPrefix(mb, prefix) {
			t.Errorf("/metrics has no %s series", prefix)
		}
	}

	// A second scrape does not count the same transfer twice.
	if again := scrape(t, bSite.URL); again[`shoal_fetches_total{result="done"}`] != 1 || again["shoal_fetch_duration_seconds_count"] != 1 {
		t.Errorf("second scrape: fetches %v, durations %v", again[`shoal_fetches_total{result="done"}`], again["shoal_fetch_duration_seconds_count"])
	}
}

// TestMetricsCountEveryFetch: the node keeps its last 50 transfers, but
// the fetch counters count all of them: 60 fetches finished between two
// scrapes are 60 in /metrics (sampling the transfer list counted 50).
func TestMetricsCountEveryFetch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := sim.NewCluster(t, 2, sim.ClusterOptions{})
	a, b := c.Node(0), c.Node(1)
	bSite := startSite(t, b, "")
	if err := b.Connect(ctx, a.Info().Addresses[0]); err != nil {
		t.Fatal(err)
	}
	const fetches = 60
	var bytes float64
	for i := range fetches {
		data := randomData(1000+i, uint64(100+i))
		res, err := a.AddFile(ctx, strings.NewReader(string(data)))
		if err != nil {
			t.Fatal(err)
		}
		tr, err := b.Fetch(ctx, res.CID, "test")
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Err(); err != nil {
			t.Fatalf("fetch %d: %v", i, err)
		}
		bytes += float64(len(data))
	}
	if n := len(b.Transfers()); n >= fetches {
		t.Fatalf("the node lists %d transfers; this test needs more fetches than it keeps", n)
	}
	m := scrape(t, bSite.URL)
	for name, want := range map[string]float64{
		`shoal_fetches_total{result="done"}`:   fetches,
		`shoal_fetches_total{result="failed"}`: 0,
		"shoal_fetches_started_total":          fetches,
		"shoal_transfers_running":              0,
		"shoal_fetched_bytes_total":            bytes,
		"shoal_fetched_blocks_total":           fetches, // one raw leaf each
		"shoal_fetch_duration_seconds_count":   fetches,
	} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
}

// TestMetricsAndDashboardShowWantList: while B fetches from a seeder
// whose upload is limited, the blocks B is asking for are in B's want
// list: in /metrics, in the dashboard's snapshot and, with the seeder
// named, from the node.
func TestMetricsAndDashboardShowWantList(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := sim.NewCluster(t, 2, sim.ClusterOptions{Config: func(i int, c *node.Config) {
		if i == 0 {
			c.Transfer.UploadLimit = 64 << 10 // the seeder
		}
	}})
	a, b := c.Node(0), c.Node(1)
	bSite := startSite(t, b, "")
	res, err := a.AddFile(ctx, strings.NewReader(string(randomData(4<<20, 21))))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Connect(ctx, a.Info().Addresses[0]); err != nil {
		t.Fatal(err)
	}
	tr, err := b.Fetch(ctx, res.CID, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = b.CancelTransfer(tr.Info().ID) }()
	var m map[string]float64
	for {
		m = scrape(t, bSite.URL)
		if m["shoal_want_list_entries"] > 0 {
			break
		}
		select {
		case <-tr.Done():
			t.Fatalf("the fetch ended (%v) before /metrics showed a want list: %v", tr.Err(), m["shoal_want_list_entries"])
		case <-ctx.Done():
			t.Fatalf("/metrics never showed a want list while fetching: shoal_want_list_entries = %v", m["shoal_want_list_entries"])
		case <-time.After(50 * time.Millisecond):
		}
	}
	if m["shoal_transfers_running"] != 1 {
		t.Errorf("shoal_transfers_running = %v during the fetch, want 1", m["shoal_transfers_running"])
	}
	d := readSnapshot(t, http.DefaultClient, bSite.URL, func(d dashboardSnapshot) bool { return d.WantList > 0 })
	if len(d.Transfers) != 1 || d.Transfers[0].State != node.TransferRunning {
		t.Errorf("snapshot with want list %d has transfers %+v, want the running fetch", d.WantList, d.Transfers)
	}
	ws := b.WantList()
	if len(ws) == 0 || len(ws[0].Peers) != 1 || ws[0].Peers[0] != a.Info().ID || ws[0].Since.IsZero() {
		t.Fatalf("B's want list %+v, want blocks asked of A (%s)", ws, a.Info().ID)
	}
}

// TestPprofBehindTheGuard: the profiler answers the owner (with the
// token) and nobody without it.
func TestPprofBehindTheGuard(t *testing.T) {
	srv := startSite(t, startLoopbackNode(t), "s3cret")
	get := func(auth string) (int, string) {
		req, err := http.NewRequest("GET", srv.URL+"/debug/pprof/goroutine?debug=1", nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("s3cret"); code != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
		t.Fatalf("with the token: %d %.200q, want 200 and a goroutine profile", code, body)
	}
	if code, _ := get(""); code != http.StatusUnauthorized {
		t.Fatalf("without the token: %d, want 401", code)
	}
}
