package web

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoalnet/shoal/node"
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
	a, b := startRealNode(t), startRealNode(t)
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
	if _, ok := Node(a).(exchangeNode); ok {
		if ma["shoal_served_bytes_total"] < size || mb["shoal_received_block_bytes_total"] < size {
			t.Errorf("A served %v bytes, B received %v; want at least %v", ma["shoal_served_bytes_total"], mb["shoal_received_block_bytes_total"], size)
		}
	} else {
		t.Log("*node.Node has no ServerStats/Traffic yet: shoal_served_* and shoal_received_* are not reported")
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

// TestMetricsObserveOnce: each finished transfer counts once, failures
// count as failures, running ones not at all, and IDs that left the
// node's list are forgotten.
func TestMetricsObserveOnce(t *testing.T) {
	m := newMetricsCollector(newMemNode())
	t0 := time.Unix(100, 0)
	done := node.TransferInfo{ID: "t1", State: node.TransferDone, Size: 1000, BytesReceived: 1100, DuplicateRatio: 1.1, Blocks: 4, Started: t0, Finished: t0.Add(2 * time.Second)}
	failed := node.TransferInfo{ID: "t2", State: node.TransferFailed, Started: t0, Finished: t0.Add(time.Second)}
	running := node.TransferInfo{ID: "t3", State: node.TransferRunning, Started: t0}
	m.observe([]node.TransferInfo{running, failed, done})
	m.observe([]node.TransferInfo{running, failed, done})
	if m.fetches[node.TransferDone] != 1 || m.fetches[node.TransferFailed] != 1 || m.fetchB != 1000 || m.fetchBlk != 4 || m.fetchRecv != 1100 {
		t.Fatalf("after two observations: %+v %v %v %v", m.fetches, m.fetchB, m.fetchBlk, m.fetchRecv)
	}
	if r := m.fetchRecv / m.fetchUse; r < 1.0999 || r > 1.1001 {
		t.Fatalf("duplicate ratio %v, want 1.1", r)
	}
	m.observe([]node.TransferInfo{running})
	if len(m.seen) != 0 {
		t.Fatalf("seen keeps %v after the transfers left the list", m.seen)
	}
}

// TestPprofBehindTheGuard: the profiler answers the owner (with the
// token) and nobody without it.
func TestPprofBehindTheGuard(t *testing.T) {
	srv := startSite(t, startRealNode(t), "s3cret")
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
