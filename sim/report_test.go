package sim

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sampleResults() *Results {
	tmin, p50, hops := 2.0, 2.5, 3
	res := &Results{Plan: "t", Seed: 1, NodeCount: 3, ContentBytes: 4 << 20, TMinS: &tmin, P50S: &p50,
		Expectations: []ExpectResult{{Check: "all_complete", Want: "true", Got: "all complete", Pass: true}, {Check: "p99_over_tmin_max", Want: "≤ 1.5", Got: "<script>", Pass: false}},
		Nodes: []NodeResult{
			{ID: "seeder-0", Group: "seeder", Role: RoleSeeder, Completed: true, BytesUp: 8 << 20},
			{ID: "l-0", Group: "l", Role: RoleLeecher, Completed: true, CompleteS: 2.5, BytesUp: 1 << 20, BytesDown: 5 << 20, DHTHops: &hops},
			{ID: "l-1", Group: "l", Role: RoleLeecher, Completed: false},
		},
		Samples: []Sample{{T: 0, Up: []int64{0, 0, 0}, Down: []int64{0, 0, 0}}, {T: 1, Up: []int64{4 << 20, 0, 0}, Down: []int64{0, 4 << 20, 0}}},
	}
	return res
}

func TestReportIsSelfContained(t *testing.T) {
	dir := t.TempDir()
	res := sampleResults()
	if err := res.WriteReport(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{"<svg", "T_min", "all_complete", "FAIL", "DHT lookup hops", "seeder-0"} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, bad := range []string{"src=", "href=", "<script>", "@import"} {
		if strings.Contains(s, bad) {
			t.Errorf("report contains %q: it must be self-contained and escape what it shows", bad)
		}
	}
}

func TestResultsJSONShape(t *testing.T) {
	dir := t.TempDir()
	if err := sampleResults().WriteJSON(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["t_min_s"] != 2.0 {
		t.Errorf("t_min_s = %v", m["t_min_s"])
	}
	nodes, _ := m["nodes"].([]any)
	if len(nodes) != 3 {
		t.Fatalf("nodes = %v", m["nodes"])
	}
	n0 := nodes[0].(map[string]any)
	for _, k := range []string{"id", "group", "completed", "bytes_up", "bytes_down", "blocks_rejected", "dht_lookup_s", "dht_hops"} {
		if _, ok := n0[k]; !ok {
			t.Errorf("node lacks %q: %v", k, n0)
		}
	}
	var sum bytes.Buffer
	sampleResults().WriteSummary(&sum)
	if !strings.Contains(sum.String(), "T_min 2.00 s") || !strings.Contains(sum.String(), "FAIL") {
		t.Errorf("summary:\n%s", sum.String())
	}
}
