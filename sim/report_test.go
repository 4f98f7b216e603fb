package sim

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
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

// storyResults is a swarm of a seeder and three leechers over 4 MiB:
// the seeder sent 6 MiB of blocks (1.5 copies), l-0 passed 2 MiB on to
// each of l-1 and l-2, and l-2 got 1 MiB twice (a duplicate).
func storyResults() *Results {
	const mib = 1 << 20
	tmin, hops2, hops3 := 4.0, 2, 3
	return &Results{Plan: "story", ContentBytes: 4 * mib, TMinS: &tmin,
		Nodes: []NodeResult{
			{ID: "seeder-0", Group: "seeder", Role: RoleSeeder, Completed: true, BytesUp: 7 * mib},
			{ID: "l-0", Group: "l", Role: RoleLeecher, Completed: true, CompleteS: 4.4, BytesUp: 5 * mib, BytesDown: 5 * mib,
				BytesPerPeer: map[string]int64{"seeder-0": 4 * mib}},
			{ID: "l-1", Group: "l", Role: RoleLeecher, Completed: true, CompleteS: 6, BytesDown: 4 * mib,
				BytesPerPeer: map[string]int64{"seeder-0": 2 * mib, "l-0": 2 * mib}},
			{ID: "l-2", Group: "l", Role: RoleLeecher, Completed: true, CompleteS: 8, BytesDown: 5 * mib,
				BytesPerPeer: map[string]int64{"l-0": 3 * mib, "l-1": 2 * mib}},
			{ID: "look-0", Group: "look", Role: RoleLookup, Completed: true, DHTHops: &hops2},
			{ID: "look-1", Group: "look", Role: RoleLookup, Completed: true, DHTHops: &hops3},
			{ID: "look-2", Group: "look", Role: RoleLookup, Completed: true, DHTHops: &hops3},
		},
	}
}

// TestReportStory: the numbers that tell a run's story — seeder's copies,
// wire and block bytes over content, the top flows — are computed from
// the nodes' records, and every section is in the HTML report, the
// terminal summary and results.json.
func TestReportStory(t *testing.T) {
	res := storyResults()
	sw := res.swarm()
	// Seeder: 4 MiB to l-0 + 2 MiB to l-1 = 6 MiB of blocks = 1.5
	// copies; 7 MiB on the wire = 1.75.
	if sw.SeederCopies != 1.5 || sw.SeederWireCopies != 1.75 {
		t.Errorf("seeder copies = %v blocks, %v wire; want 1.5, 1.75", sw.SeederCopies, sw.SeederWireCopies)
	}
	// Wire up: 7 + 5 = 12 MiB over 3 × 4 MiB delivered = 1; blocks
	// received: 4 + 4 + 5 = 13 MiB over 12 = 13/12.
	if sw.Delivered != 3 || sw.WireOverContent == nil || *sw.WireOverContent != 1 || sw.BlockOverContent == nil || *sw.BlockOverContent != 13.0/12 {
		t.Errorf("delivered %d, wire ÷ content %v, blocks ÷ content %v; want 3, 1, 13/12", sw.Delivered, sw.WireOverContent, sw.BlockOverContent)
	}
	want := []Flow{{"seeder-0", "l-0", 4 << 20}, {"l-0", "l-2", 3 << 20}, {"l-0", "l-1", 2 << 20}, {"l-1", "l-2", 2 << 20}, {"seeder-0", "l-1", 2 << 20}}
	if len(sw.TopFlows) != len(want) || sw.FlowsTotal != 5 {
		t.Fatalf("flows = %v (total %d), want %v", sw.TopFlows, sw.FlowsTotal, want)
	}
	for i := range want {
		if sw.TopFlows[i] != want[i] {
			t.Errorf("flow %d = %v, want %v", i, sw.TopFlows[i], want[i])
		}
	}
	// Groups: seeder → l 6 MiB, l → l 7 MiB (3 + 2 + 2).
	wantG := []Flow{{"l", "l", 7 << 20}, {"seeder", "l", 6 << 20}}
	if !slices.Equal(sw.GroupFlows, wantG) {
		t.Errorf("group flows = %v, want %v", sw.GroupFlows, wantG)
	}
	// Senders per fetcher: l-0 1 (seeder, all of it), l-1 2 (half each),
	// l-2 2 (3 of 5 MiB from l-0); lookups fetch nothing.
	wantS := SourceSpread{MeanSenders: 5.0 / 3, MedianSenders: 2, MeanTopShare: (1 + 0.5 + 0.6) / 3, MedianTopShare: 0.6}
	if sp := sw.Sources; sp == nil || math.Abs(sp.MeanSenders-wantS.MeanSenders) > 1e-9 || sp.MedianSenders != wantS.MedianSenders ||
		math.Abs(sp.MeanTopShare-wantS.MeanTopShare) > 1e-9 || math.Abs(sp.MedianTopShare-wantS.MedianTopShare) > 1e-9 {
		t.Errorf("sources = %+v, want %+v", sw.Sources, wantS)
	}
	var text bytes.Buffer
	sw.writeText(&text, 5)
	for _, w := range []string{"group flows: l→l 7.0 MiB, seeder→l 6.0 MiB", "sources per fetcher: 1.7 senders (median 2); the largest sent 70 % of its blocks (median 60 %)"} {
		if !strings.Contains(text.String(), w) {
			t.Errorf("summary lacks %q:\n%s", w, text.String())
		}
	}
	// 13 MiB of blocks received, 6 of them from the seeder.
	if sw.PeerFraction != 7.0/13 {
		t.Errorf("peer fraction = %v, want 7/13", sw.PeerFraction)
	}
	counts, maxHops, maxCount := res.hops()
	if counts[2] != 1 || counts[3] != 2 || maxHops != 3 || maxCount != 2 {
		t.Errorf("hops = %v (max %d, most %d), want 2:1 3:2", counts, maxHops, maxCount)
	}

	html := reportHTML(t, res)
	for _, s := range []string{
		"At a glance", "1.50 (blocks) / 1.75 (wire)", "1.00 (blocks: 1.08)", "<td>54 %</td>",
		"completion time ÷ T_min", "T_min = 4.00 s", // the CDF against the bound
		"who carried the swarm", "l-0: 5.0 MiB", // bytes up per node, sorted
		"top 5 of 5 flows", "seeder-0 → l-0: 4.0 MiB", // the flow graph and its table
		"DHT lookup hops (histogram)", "3 hops: 2 lookups",
		"Group to group", "<td>seeder</td><td>l</td><td>6.0</td>", // every group flow
		"from 1.7 senders on average (median 2); the largest of them sent 70 % of its blocks (median 60 %)",
	} {
		if !strings.Contains(html, s) {
			t.Errorf("report lacks %q", s)
		}
	}
	// Bars of the served chart come largest first.
	if i, j := strings.Index(html, "seeder-0: 7.0 MiB"), strings.Index(html, "l-0: 5.0 MiB"); i < 0 || j < i {
		t.Errorf("bytes-up bars not sorted: seeder-0 at %d, l-0 at %d", i, j)
	}

	var sum bytes.Buffer
	res.WriteSummary(&sum)
	for _, s := range []string{"seeders sent 1.50 copies", "(1.75 on the wire), fetchers 54 % of the blocks", "wire bytes ÷ content delivered 1.00", "block bytes ÷ content 1.08",
		"top flows (of 5): seeder-0→l-0 4.0 MiB, l-0→l-2 3.0 MiB", "DHT lookup hops: 2 hops: 1, 3 hops: 2"} {
		if !strings.Contains(sum.String(), s) {
			t.Errorf("summary lacks %q:\n%s", s, sum.String())
		}
	}

	summarize(&Plan{}, res)
	dir := t.TempDir()
	if err := res.WriteJSON(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Swarm Swarm `json:"swarm"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.Swarm.SeederCopies != 1.5 || len(m.Swarm.TopFlows) != 5 || m.Swarm.TopFlows[0] != want[0] || !slices.Equal(m.Swarm.GroupFlows, wantG) || m.Swarm.Sources == nil {
		t.Errorf("results.json swarm = %+v", m.Swarm)
	}
}

// TestReportSlotUse: slot samples add up to the share of slots held, the
// holders by time (named by node), and the report and summary show them
// with the upload split.
func TestReportSlotUse(t *testing.T) {
	var tally slotTally
	// 4 samples of a node with 2+1 slots: all three held, one held, one
	// held, none.
	tally.add(2, []string{"A", "B", "C"}, []uint64{1, 0, 5}, true)
	tally.add(2, []string{"A"}, []uint64{1}, true)
	tally.add(2, []string{"A"}, []uint64{9}, false)
	tally.add(2, nil, nil, false)
	u := tally.use(map[string]string{"A": "l-1"})
	dt := slotSampleInterval.Seconds()
	want := (1 + 1.0/3 + 1.0/3) / 4
	// Served: A (3 samples held) and C (1) were sent bytes, B (1) not:
	// 4 of the 4 × 3 slot samples.
	if served := 4.0 / 12; abs(u.Served-served) > 1e-9 {
		t.Fatalf("served = %.3f, want %.3f", u.Served, served)
	}
	if u.Slots != 2 || abs(u.Used-want) > 1e-9 || u.Busy != 0.75 || u.OriginS != 2*dt || u.SampledS != 4*dt {
		t.Fatalf("use = %+v; want 2 slots, used %.3f, busy 0.75, origin %.2f s of %.2f", u, want, 2*dt, 4*dt)
	}
	if len(u.Holders) != 3 || u.Holders[0] != (SlotHolder{Peer: "l-1", Seconds: 3 * dt, SentMiB: 9.0 / (1 << 20)}) || u.Holders[1].Peer != "B" {
		t.Fatalf("holders = %+v; want l-1 (renamed) first with %.2f s, then B, C", u.Holders, 3*dt)
	}
	var none slotTally
	if none.use(nil) != nil {
		t.Fatal("a node never sampled has no slot use")
	}

	res := sampleResults()
	res.Nodes[0].Slots = u
	res.Nodes[0].Upload = &UploadSplit{BlockBytes: 6 << 20, BitswapBytes: 6<<20 + 1<<19, SwarmBytes: 1 << 19, LinkUse: 0.5}
	g := res.SlotSummaries()
	if len(g) != 1 || g[0].Name != "seeder" || g[0].Wire != 8<<20 || g[0].LinkUse != 0.5 {
		t.Fatalf("slot summaries = %+v; want the seeder group alone, 8 MiB up, link 0.5", g)
	}
	var sum bytes.Buffer
	res.WriteSummary(&sum)
	if !strings.Contains(sum.String(), "upload seeder: slots used 42 %") || !strings.Contains(sum.String(), "transport/DHT 1.0") {
		t.Fatalf("summary lacks the slot line with 42 %% used and 1.0 MiB transport:\n%s", sum.String())
	}
	dir := t.TempDir()
	if err := res.WriteReport(dir); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "report.html"))
	for _, w := range []string{"Upload slots", "2+1", "l-1 0.8", "42 %"} {
		if !strings.Contains(string(b), w) {
			t.Errorf("report lacks %q", w)
		}
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// TestReportContainers: a docker run's summary gives the spread of the
// containers' peak RSS and its report a row per node with its bytes and
// memory; an in-process run has neither.
func TestReportContainers(t *testing.T) {
	res := sampleResults()
	res.Mode = "docker"
	for i, m := range []uint64{60 << 20, 40 << 20, 50 << 20} {
		res.Nodes[i].PeakMemBytes = m
	}
	res.Nodes[1].FetchStartS = 3
	res.HostLoad = []float64{2.5, 9.25}
	res.Nodes[0].DelayLate = &DelayLate{Packets: 100, MeanMS: 1, MaxMS: 4}
	res.Nodes[1].DelayLate = &DelayLate{Packets: 300, MeanMS: 3, MaxMS: 9}
	var sum bytes.Buffer
	res.WriteSummary(&sum)
	if !strings.Contains(sum.String(), "memory per container (peak RSS): 40.0 min, 50.0 median, 60.0 max MiB of 3") {
		t.Errorf("summary lacks the containers' memory 40/50/60 MiB:\n%s", sum.String())
	}
	if !strings.Contains(sum.String(), "host load average 2.5 at the start, 9.2 at the end") {
		t.Errorf("summary lacks the host's load average 2.5 → 9.2:\n%s", sum.String())
	}
	if !strings.Contains(sum.String(), "2.50 ms on average, 9.0 ms at most, of 400 packets") {
		t.Errorf("summary lacks the delayers' lateness (2.50 ms mean of 400 packets, 9.0 max):\n%s", sum.String())
	}
	html := reportHTML(t, res)
	row := "<tr><td>l-0</td><td>l</td><td>1.0 / 5.0</td><td>40.0</td><td>3.00 / 9.0</td><td>3.00</td><td>2.50</td></tr>"
	if !strings.Contains(html, "Containers: bytes and memory per node") || !strings.Contains(html, row) {
		t.Errorf("report lacks the containers table with the row %s", row)
	}

	res = sampleResults()
	sum.Reset()
	res.WriteSummary(&sum)
	if strings.Contains(sum.String(), "memory per container") {
		t.Errorf("an in-process summary has a container memory line:\n%s", sum.String())
	}
}

// reportHTML writes res's report and returns it.
func reportHTML(t *testing.T, res *Results) string {
	t.Helper()
	dir := t.TempDir()
	if err := res.WriteReport(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReportCarried: a node's wire bytes split by the protocols that
// carried them (block bytes out of Bitswap's, transport the rest of the
// link) per group in the summary and per node in report.html.
func TestReportCarried(t *testing.T) {
	res := sampleResults()
	l := &res.Nodes[1]
	l.BytesUp, l.BytesDown = 300<<10, 5<<20
	l.BytesPerPeer = map[string]int64{"seeder-0": 4 << 20}
	l.Upload = &UploadSplit{BlockBytes: 100 << 10, BitswapBytes: 110 << 10}
	l.Protocols = map[string]ProtoBytes{
		"/ipfs/bitswap/1.2.0": {Up: 110 << 10, Down: 4<<20 + 64<<10},
		"/shoal/kad/1.0.0":    {Up: 90 << 10, Down: 512 << 10},
		"/ipfs/id/1.0.0":      {Up: 10 << 10, Down: 8 << 10},
		"/ipfs/id/push/1.0.0": {Down: 2 << 10},
		"/shoal/swarm/1.0.0":  {Up: 30 << 10, Down: 40 << 10},
		negotiationProtocol:   {Up: 1 << 10, Down: 1 << 10},
		"/ipfs/ping/1.0.0":    {Up: 1 << 10, Down: 1 << 10},
	}
	g := res.CarriedSummaries()
	if len(g) != 1 || g[0].Name != "l" || g[0].Nodes != 1 {
		t.Fatalf("carried summaries = %+v; want group l alone (the others have no protocol counts)", g)
	}
	wantDown := [numCarriers]int64{4 << 20, 64 << 10, 40 << 10, 512 << 10, 10 << 10, 2 << 10, 5<<20 - 4<<20 - 64<<10 - 40<<10 - 512<<10 - 10<<10 - 2<<10}
	wantUp := [numCarriers]int64{100 << 10, 10 << 10, 30 << 10, 90 << 10, 10 << 10, 2 << 10, 300<<10 - 242<<10}
	if g[0].Carried.Down != wantDown || g[0].Carried.Up != wantUp {
		t.Fatalf("carried = down %v up %v; want down %v up %v", g[0].Carried.Down, g[0].Carried.Up, wantDown, wantUp)
	}
	var sum bytes.Buffer
	res.WriteSummary(&sum)
	if !strings.Contains(sum.String(), "carried l, KiB down per node: 5120 = blocks 4096 + other Bitswap 64 + swarm ext 40 + DHT (kad) 512 + identify 10 + other streams 2 + transport 396") {
		t.Fatalf("summary lacks the split of l's bytes down:\n%s", sum.String())
	}
	dir := t.TempDir()
	if err := res.WriteReport(dir); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "report.html"))
	for _, w := range []string{"What the links carried", "DHT (kad)", "<td>l-0</td><td>down</td><td>5120</td><td>4096</td>"} {
		if !strings.Contains(string(b), w) {
			t.Errorf("report lacks %q", w)
		}
	}
}

// TestReportCarriedLateBlocks: block bytes received after the fetch closed
// (late endgame copies, absent from the transfers' per-peer sums) count as
// blocks, not as other Bitswap.
func TestReportCarriedLateBlocks(t *testing.T) {
	res := sampleResults()
	l := &res.Nodes[1]
	l.BytesUp, l.BytesDown = 300<<10, 6<<20
	l.BytesPerPeer = map[string]int64{"seeder-0": 4 << 20}
	l.Upload = &UploadSplit{BlockBytes: 100 << 10, BitswapBytes: 110 << 10, BlockBytesDown: 5 << 20}
	l.Protocols = map[string]ProtoBytes{"/ipfs/bitswap/1.2.0": {Up: 110 << 10, Down: 5<<20 + 20<<10}}
	g := res.CarriedSummaries()
	if len(g) != 1 || g[0].Carried.Down[carBlocks] != 5<<20 || g[0].Carried.Down[carBitswap] != 20<<10 {
		t.Fatalf("carried = %+v; want blocks down 5 MiB and other Bitswap 20 KiB", g)
	}
	// The swarm summary's block bytes ÷ content counts them too.
	var want int64
	for i := range res.Nodes {
		want += res.Nodes[i].blockBytesDown()
	}
	sw := res.swarm()
	if sw.Delivered == 0 || sw.BlockOverContent == nil {
		t.Fatalf("swarm = %+v; the sample needs a completed fetcher", sw)
	}
	if got, w := *sw.BlockOverContent, float64(want)/float64(res.ContentBytes*int64(sw.Delivered)); got != w || want < 5<<20 {
		t.Errorf("block bytes ÷ content = %v, want %v (late copies counted: %d bytes)", got, w, want)
	}
}
