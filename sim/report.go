package sim

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
)

// groups lists the group names in the order their nodes appear.
func (res *Results) groups() []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range res.Nodes {
		if !seen[n.Group] {
			seen[n.Group] = true
			out = append(out, n.Group)
		}
	}
	return out
}

// cdfChart: fraction of each fetcher group complete against its
// completion time in multiples of T_min (1 is the bound no scheme can
// beat), or in seconds for a plan without a bound.
func (res *Results) cdfChart() string {
	scale, xlabel := 1.0, "seconds from the start of the fetch"
	if res.TMinS != nil && *res.TMinS > 0 {
		scale, xlabel = 1 / *res.TMinS, "completion time ÷ T_min (from the start of each fetch)"
	}
	xmax := 0.0
	for _, n := range res.Nodes {
		if IsFetcherRole(n.Role) && n.Completed {
			xmax = max(xmax, n.CompleteS*scale)
		}
	}
	if res.TMinS != nil {
		xmax = max(xmax, 1)
	}
	c := newChart(xmax*1.05, 1, xlabel, "fraction complete")
	var names []string
	for _, g := range res.groups() {
		times := completionTimes(res.Nodes, g)
		if len(times) == 0 {
			continue
		}
		xs, ys := []float64{0}, []float64{0}
		for i, t := range times {
			if math.IsInf(t, 0) {
				break
			}
			xs = append(xs, t*scale)
			ys = append(ys, float64(i+1)/float64(len(times)))
		}
		c.line(xs, ys, color(len(names)), true)
		names = append(names, g)
	}
	if res.TMinS != nil {
		c.vline(*res.TMinS*scale, fmt.Sprintf("T_min = %.2f s", *res.TMinS))
	}
	c.legend(names)
	return c.svg()
}

// servedChart: wire bytes each node sent, largest first, coloured by group.
func (res *Results) servedChart() string {
	nodes := append([]NodeResult(nil), res.Nodes...)
	sort.SliceStable(nodes, func(i, j int) bool { return nodes[i].BytesUp > nodes[j].BytesUp })
	ymax := 0.0
	if len(nodes) > 0 {
		ymax = float64(nodes[0].BytesUp) / (1 << 20)
	}
	c := newChart(float64(len(nodes)), ymax, "nodes, by wire bytes sent (largest first)", "MiB sent")
	c.xmax = float64(max(len(nodes), 1))
	gi := map[string]int{}
	groups := res.groups()
	for i, g := range groups {
		gi[g] = i
	}
	for i, n := range nodes {
		c.bar(float64(i), 0.9, float64(n.BytesUp)/(1<<20), color(gi[n.Group]), fmt.Sprintf("%s: %.1f MiB", n.ID, float64(n.BytesUp)/(1<<20)))
	}
	c.legend(groups)
	return c.svg()
}

// bandwidthChart: each group's summed upload rate between samples.
func (res *Results) bandwidthChart() string {
	groups := res.groups()
	gi := map[string]int{}
	for i, g := range groups {
		gi[g] = i
	}
	s := res.Samples
	rates := make([][]float64, len(groups))
	var xs []float64
	ymax := 0.0
	for k := 1; k < len(s); k++ {
		dt := s[k].T - s[k-1].T
		if dt <= 0 {
			continue
		}
		xs = append(xs, s[k].T)
		sum := make([]float64, len(groups))
		for i, n := range res.Nodes {
			if i < len(s[k].Up) && i < len(s[k-1].Up) {
				sum[gi[n.Group]] += float64(s[k].Up[i]-s[k-1].Up[i]) * 8 / dt / 1e6
			}
		}
		for g := range groups {
			rates[g] = append(rates[g], sum[g])
			ymax = max(ymax, sum[g])
		}
	}
	xmax := 0.0
	if len(xs) > 0 {
		xmax = xs[len(xs)-1]
	}
	c := newChart(xmax, ymax, "seconds since the start", "upload, Mbit/s (group total)")
	for g := range groups {
		c.line(xs, rates[g], color(g), false)
	}
	c.legend(groups)
	return c.svg()
}

// hops counts the DHT lookups (of lookup nodes, which record kad-dht's
// query events) by their number of hops; nil when no node looked up.
func (res *Results) hops() (counts map[int]int, maxHops, maxCount int) {
	for _, n := range res.Nodes {
		if n.DHTHops != nil {
			if counts == nil {
				counts = map[int]int{}
			}
			counts[*n.DHTHops]++
			maxHops = max(maxHops, *n.DHTHops)
			maxCount = max(maxCount, counts[*n.DHTHops])
		}
	}
	return counts, maxHops, maxCount
}

// hopsChart: how many lookups took each number of hops.
func (res *Results) hopsChart() string {
	counts, maxHops, maxCount := res.hops()
	if len(counts) == 0 {
		return ""
	}
	c := newChart(float64(maxHops+1), float64(maxCount), "hops", "lookups")
	c.xmax = float64(maxHops + 1)
	for h, k := range counts {
		c.bar(float64(h)+0.1, 0.8, float64(k), color(0), fmt.Sprintf("%d hops: %d lookups", h, k))
	}
	return c.svg()
}

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"f2": func(v *float64) string {
		if v == nil {
			return "n/a"
		}
		return fmt.Sprintf("%.2f", *v)
	},
	// div is a / b for the ratios the page shows; nil when either is.
	"div": func(a, b *float64) *float64 {
		if a == nil || b == nil {
			return nil
		}
		return ratio(a, *b)
	},
	"mib":   func(b int64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) },
	"kib":   kib,
	"mibu":  func(b uint64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) },
	"pct":   func(v float64) string { return fmt.Sprintf("%.0f", 100*v) },
	"first": func(n int, fl []Flow) []Flow { return fl[:min(n, len(fl))] },
	"add":   func(a, b int64) int64 { return a + b },
	"sub":   func(a, b int64) int64 { return a - b },
}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>shoal sim: {{.R.Plan}}</title>
<style>
body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
.pass{color:#080;font-weight:bold}.fail{color:#c00;font-weight:bold}h2{margin-top:1.6em}
</style></head><body>
<h1>shoal sim: {{.R.Plan}} <span class="{{if .R.Pass}}pass{{else}}fail{{end}}">{{if .R.Pass}}PASS{{else}}FAIL{{end}}</span></h1>
<p>{{.R.Description}}</p>
<table>
<tr><th>plan file</th><td>{{.R.PlanFile}}</td><th>seed</th><td>{{.R.Seed}}</td></tr>
<tr><th>nodes</th><td>{{.R.NodeCount}}</td><th>content</th><td>{{mib .R.ContentBytes}} MiB ({{.R.Root}})</td></tr>
<tr><th>mode</th><td>{{if eq .R.Mode "docker"}}containers, shaped links (real time){{else}}{{.R.Mode}} time, {{if eq .R.Transport "light"}}light nodes (in-process streams, no QUIC/TLS){{else}}full nodes (QUIC + TLS){{end}}{{end}}</td><th>commit</th><td>{{.R.Commit}}</td></tr>
<tr><th>simulated</th><td>{{printf "%.1f" .R.SimulatedS}} s</td><th>wall</th><td>{{printf "%.1f" .R.WallS}} s</td></tr>
<tr><th>peak memory</th><td>{{mib (.PeakMem)}} MiB</td><th>per node</th><td>{{mib (.MemPerNode)}} MiB</td></tr>
<tr><th>T_min (Kumar–Ross)</th><td>{{f2 .R.TMinS}} s</td><th>p50 / p99</th><td>{{f2 .R.P50S}} s / {{f2 .R.P99S}} s = {{f2 .R.P50OverTmin}} / {{f2 .R.P99OverTmin}} × T_min</td></tr>
</table>
<p>T_min = max(F/u<sub>s</sub>, F/d<sub>min</sub>, N·F/(u<sub>s</sub>+Σu<sub>i</sub>)): the least time in which any scheme can deliver the content to every fetcher over these links.{{if .R.BlockBoundP50S}} A node may pass a block on only once it holds all of it (1 MiB, checked against its CID), so uplinks join as blocks complete: no schedule can then beat p50 {{f2 .R.BlockBoundP50S}} s / p99 {{f2 .R.BlockBoundP99S}} s (the whole-block bound, {{f2 (div .R.BlockBoundP50S .R.TMinS)}} / {{f2 (div .R.BlockBoundP99S .R.TMinS)}} × T_min).{{end}}</p>
<h2>At a glance</h2>
<table>
<tr><th>fetchers complete</th><td>{{.S.Delivered}}</td><th>p50 / p99 ÷ T_min</th><td>{{f2 .R.P50OverTmin}} / {{f2 .R.P99OverTmin}}</td></tr>
<tr><th>blocks from other fetchers</th><td>{{pct .S.PeerFraction}} %</td><th></th><td></td></tr>
<tr><th>seeders' copies of the file</th><td>{{printf "%.2f" .S.SeederCopies}} (blocks) / {{printf "%.2f" .S.SeederWireCopies}} (wire)</td><th>wire bytes ÷ content delivered</th><td>{{f2 .S.WireOverContent}} (blocks: {{f2 .S.BlockOverContent}})</td></tr>
</table>
<p>The seeders' copies say how much of the swarm the origin carried (1 is the least: every block left it once); wire bytes ÷ content is every node's upload over F × fetchers completed (1 is no overhead and no duplicate).</p>
<h2>Expectations</h2>
<table><tr><th>check</th><th>group</th><th>want</th><th>got</th><th>result</th></tr>
{{range .R.Expectations}}<tr><td>{{.Check}}</td><td>{{.Group}}</td><td>{{.Want}}</td><td>{{.Got}}</td><td class="{{if .Pass}}pass{{else}}fail{{end}}">{{if .Pass}}pass{{else}}FAIL{{end}}</td></tr>
{{end}}</table>
<h2>Completion time (CDF per group)</h2>{{.CDF}}
<h2>Bytes sent per node (who carried the swarm)</h2>{{.Served}}
<h2>Who sent how much to whom (top {{len .S.TopFlows}} of {{.S.FlowsTotal}} flows, block bytes)</h2>{{if .Flows}}{{.Flows}}
<table><tr><th>from</th><th>to</th><th>MiB</th></tr>
{{range first 10 .S.TopFlows}}<tr><td>{{.From}}</td><td>{{.To}}</td><td>{{mib .Bytes}}</td></tr>
{{end}}</table>{{else}}<p>No node recorded blocks received from a peer.</p>{{end}}
{{if .S.GroupFlows}}<h2>Group to group (all flows, block bytes)</h2>
<table><tr><th>from</th><th>to</th><th>MiB</th></tr>
{{range .S.GroupFlows}}<tr><td>{{.From}}</td><td>{{.To}}</td><td>{{mib .Bytes}}</td></tr>
{{end}}</table>{{end}}
{{with .S.Sources}}<p>Each completed fetcher took its blocks from {{printf "%.1f" .MeanSenders}} senders on average (median {{printf "%.0f" .MedianSenders}}); the largest of them sent {{pct .MeanTopShare}} % of its blocks (median {{pct .MedianTopShare}} %).</p>{{end}}
<h2>Bandwidth over time</h2>{{.BW}}
{{if .Hops}}<h2>DHT lookup hops (histogram)</h2>{{.Hops}}{{end}}
{{if .Slots}}<h2>Upload slots and what the uplinks carried</h2>
<table><tr><th>group</th><th>nodes</th><th>slots used</th><th>by peers served</th><th>some slot held</th><th>uplink busy</th><th>MiB up</th><th>blocks</th><th>other Bitswap</th><th>swarm ext</th><th>transport, DHT</th></tr>
{{range .Slots}}<tr><td>{{.Name}}</td><td>{{.Nodes}}</td><td>{{pct .Used}} %</td><td>{{pct .Served}} %</td><td>{{pct .Busy}} %</td><td>{{pct .LinkUse}} %</td><td>{{mib .Wire}}</td><td>{{mib .Blocks}}</td><td>{{mib (sub .Bitswap .Blocks)}}</td><td>{{mib .Swarm}}</td><td>{{mib (sub .Wire (add .Bitswap .Swarm))}}</td></tr>
{{end}}</table>
<p>Slots used: the mean share of a node's upload slots (regular + 1 optimistic) held by an unchoked swarm peer, sampled every {{.SlotEvery}} while the run lasted; by peers served: held by a peer that was sent block bytes since the sample before; uplink busy: its wire bytes up ÷ its uplink × that time.</p>
<table><tr><th>node</th><th>MiB up / down</th><th>blocks served MiB</th><th>slots</th><th>used</th><th>served</th><th>uplink busy</th><th>origin s</th><th>held a slot longest (time held, block bytes sent meanwhile)</th></tr>
{{range .R.Nodes}}{{if .Slots}}<tr><td>{{.ID}}</td><td>{{mib .BytesUp}} / {{mib .BytesDown}}</td><td>{{if .Upload}}{{mib .Upload.BlockBytes}}{{end}}</td><td>{{.Slots.Slots}}+1</td><td>{{pct .Slots.Used}} %</td><td>{{pct .Slots.Served}} %</td><td>{{if .Upload}}{{pct .Upload.LinkUse}} %{{end}}</td><td>{{printf "%.1f" .Slots.OriginS}}</td><td>{{range $i, $h := .Slots.Holders}}{{if $i}}, {{end}}{{$h.Peer}} {{printf "%.1f" $h.Seconds}} s ({{printf "%.1f" $h.SentMiB}} MiB){{end}}</td></tr>
{{end}}{{end}}</table>{{end}}
{{if .Carried}}<h2>What the links carried, by protocol</h2>
<p>KiB per node (mean of the group), down and up: the wire bytes of its link, split by the libp2p protocol of the streams that carried them; blocks are the block bytes inside the Bitswap frames, other Bitswap the rest of those frames (wants, presences, framing), other streams ping and multistream-select on inbound streams, transport what the link carried beyond every stream (QUIC headers, ACKs, handshakes; nothing for light nodes).</p>
<table><tr><th>group</th><th>nodes</th><th>dir</th><th>wire</th>{{range .CarrierNames}}<th>{{.}}</th>{{end}}</tr>
{{range .Carried}}<tr><td>{{.Name}}</td><td>{{.Nodes}}</td><td>down</td><td>{{kib .Down}}</td>{{range .Carried.Down}}<td>{{kib .}}</td>{{end}}</tr>
<tr><td>{{.Name}}</td><td>{{.Nodes}}</td><td>up</td><td>{{kib .Up}}</td>{{range .Carried.Up}}<td>{{kib .}}</td>{{end}}</tr>
{{end}}</table>
<details><summary>per node</summary>
<table><tr><th>node</th><th>dir</th><th>wire</th>{{range .CarrierNames}}<th>{{.}}</th>{{end}}</tr>
{{range .NodesCarried}}<tr><td>{{.ID}}</td><td>down</td><td>{{kib .Down}}</td>{{range .Carried.Down}}<td>{{kib .}}</td>{{end}}</tr>
<tr><td>{{.ID}}</td><td>up</td><td>{{kib .Up}}</td>{{range .Carried.Up}}<td>{{kib .}}</td>{{end}}</tr>
{{end}}</table></details>{{end}}
<h2>Groups</h2>
<table><tr><th>group</th><th>nodes</th><th>completed</th><th>p50 s</th><th>p99 s</th><th>MiB up</th><th>MiB down</th></tr>
{{range .Groups}}<tr><td>{{.Name}}</td><td>{{.Nodes}}</td><td>{{.Completed}}</td><td>{{f2 .P50}}</td><td>{{f2 .P99}}</td><td>{{mib .Up}}</td><td>{{mib .Down}}</td></tr>
{{end}}</table>
{{if eq .R.Mode "docker"}}<h2>Containers: bytes and memory per node</h2>
<table><tr><th>node</th><th>group</th><th>MiB up / down (its veth)</th><th>peak RSS MiB (its daemon)</th><th>held beyond latency, mean / max ms</th><th>fetch began s</th><th>done after s</th></tr>
{{range .R.Nodes}}<tr><td>{{.ID}}</td><td>{{.Group}}</td><td>{{mib .BytesUp}} / {{mib .BytesDown}}</td><td>{{mibu .PeakMemBytes}}</td><td>{{with .DelayLate}}{{printf "%.2f / %.1f" .MeanMS .MaxMS}}{{end}}</td><td>{{if .FetchStartS}}{{printf "%.2f" .FetchStartS}}{{end}}</td><td>{{if .Completed}}{{if .CompleteS}}{{printf "%.2f" .CompleteS}}{{end}}{{end}}</td></tr>
{{end}}</table>{{end}}
</body></html>
`))

// GroupSummary is one line of the per-group table.
type GroupSummary struct {
	Name      string
	Nodes     int
	Completed int
	P50, P99  *float64
	Up, Down  int64
}

// GroupSummaries sums the results up per group.
func (res *Results) GroupSummaries() []GroupSummary {
	var out []GroupSummary
	for _, g := range res.groups() {
		s := GroupSummary{Name: g}
		for _, n := range res.Nodes {
			if n.Group != g {
				continue
			}
			s.Nodes++
			if n.Completed {
				s.Completed++
			}
			s.Up += n.BytesUp
			s.Down += n.BytesDown
		}
		times := completionTimes(res.Nodes, g)
		s.P50, s.P99 = percentile(times, 0.5), percentile(times, 0.99)
		out = append(out, s)
	}
	return out
}

// WriteReport writes the self-contained report.html into dir.
func (res *Results) WriteReport(dir string) error {
	path := filepath.Join(dir, "report.html")
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("sim: writing %s: %w", path, err)
	}
	sw := res.Swarm
	if sw == nil {
		sw = res.swarm()
	}
	err = reportTmpl.Execute(f, map[string]any{
		"R": res, "S": sw, "Flows": template.HTML(sw.flowChart()),
		"PeakMem": int64(res.PeakMemBytes), "MemPerNode": int64(res.MemPerNode),
		"CDF": template.HTML(res.cdfChart()), "Served": template.HTML(res.servedChart()),
		"BW": template.HTML(res.bandwidthChart()), "Hops": template.HTML(res.hopsChart()),
		"Groups": res.GroupSummaries(), "Slots": res.SlotSummaries(), "SlotEvery": slotSampleInterval.String(),
		"Carried": res.CarriedSummaries(), "NodesCarried": res.nodesCarried(), "CarrierNames": carrierNames,
	})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sim: writing %s: %w", path, err)
	}
	return nil
}

// WriteSummary prints the terminal summary: a line per group, the bound
// and the expectations.
func (res *Results) WriteSummary(w io.Writer) {
	f2 := func(v *float64) string {
		if v == nil {
			return "n/a"
		}
		return fmt.Sprintf("%.2f", *v)
	}
	if res.Mode == "docker" {
		fmt.Fprintf(w, "plan %s (seed %d): %d nodes as containers on shaped links, %.1f MiB, %.1f s from the first fetch, peak RSS %.0f MiB summed (%.1f MiB/node)\n",
			res.Plan, res.Seed, res.NodeCount, float64(res.ContentBytes)/(1<<20), res.WallS,
			float64(res.PeakMemBytes)/(1<<20), float64(res.MemPerNode)/(1<<20))
	} else {
		nodes := "nodes"
		if res.Transport == TransportLight {
			nodes = "light nodes"
		}
		fmt.Fprintf(w, "plan %s (seed %d): %d %s, %.1f MiB, %.1f s simulated in %.1f s wall (%s time), peak memory %.0f MiB (%.1f MiB/node)\n",
			res.Plan, res.Seed, res.NodeCount, nodes, float64(res.ContentBytes)/(1<<20), res.SimulatedS, res.WallS, res.Mode,
			float64(res.PeakMemBytes)/(1<<20), float64(res.MemPerNode)/(1<<20))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tNODES\tCOMPLETE\tP50 s\tP99 s\tMiB UP\tMiB DOWN")
	for _, s := range res.GroupSummaries() {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%.1f\t%.1f\n", s.Name, s.Nodes, s.Completed, f2(s.P50), f2(s.P99),
			float64(s.Up)/(1<<20), float64(s.Down)/(1<<20))
	}
	tw.Flush()
	if res.Mode == "docker" {
		writeContainerMemory(w, res.Nodes)
		if len(res.HostLoad) == 2 {
			fmt.Fprintf(w, "host load average %.1f at the start, %.1f at the end (%d CPUs): a real-time run slows on a busy machine\n",
				res.HostLoad[0], res.HostLoad[1], runtime.NumCPU())
		}
	}
	if res.TMinS != nil {
		fmt.Fprintf(w, "T_min %.2f s; p50 %s s = %s × T_min; p99 %s s = %s × T_min\n",
			*res.TMinS, f2(res.P50S), f2(res.P50OverTmin), f2(res.P99S), f2(res.P99OverTmin))
		if res.BlockBoundP50S != nil && res.BlockBoundP99S != nil {
			fmt.Fprintf(w, "whole-block bound (any schedule): p50 ≥ %.2f s = %.2f × T_min; p99 ≥ %.2f s = %.2f × T_min\n",
				*res.BlockBoundP50S, *res.BlockBoundP50S / *res.TMinS, *res.BlockBoundP99S, *res.BlockBoundP99S / *res.TMinS)
		}
	}
	sw := res.Swarm
	if sw == nil {
		sw = res.swarm()
	}
	sw.writeText(w, 5)
	for _, g := range res.SlotSummaries() {
		fmt.Fprintf(w, "upload %s: slots used %.0f %%, by peers served %.0f %% (some slot held %.0f %% of the time, %.1f holders/node), uplink busy %.0f %%; up %.1f MiB = blocks %.1f + other Bitswap %.1f + swarm ext %.1f + transport/DHT %.1f\n",
			g.Name, 100*g.Used, 100*g.Served, 100*g.Busy, g.HoldersMean, 100*g.LinkUse, mib(g.Wire), mib(g.Blocks), mib(g.Bitswap-g.Blocks), mib(g.Swarm), mib(g.Wire-g.Bitswap-g.Swarm))
	}
	writeCarried(w, res.CarriedSummaries())
	if counts, maxHops, _ := res.hops(); counts != nil {
		var parts []string
		for h := 0; h <= maxHops; h++ {
			if counts[h] > 0 {
				parts = append(parts, fmt.Sprintf("%d hops: %d", h, counts[h]))
			}
		}
		fmt.Fprintf(w, "DHT lookup hops: %s\n", strings.Join(parts, ", "))
	}
	for _, e := range res.Expectations {
		mark := "pass"
		if !e.Pass {
			mark = "FAIL"
		}
		g := ""
		if e.Group != "" {
			g = " [" + e.Group + "]"
		}
		fmt.Fprintf(w, "  %s  %s%s: want %s, got %s\n", mark, e.Check, g, e.Want, e.Got)
	}
	verdict := "PASS"
	if !res.Pass {
		verdict = "FAIL"
	}
	fmt.Fprintln(w, strings.Repeat("-", 20), verdict)
}

// writeContainerMemory prints the spread of the containers' peak RSS,
// smallest, median and largest (each node's is in results.json).
func writeContainerMemory(w io.Writer, nodes []NodeResult) {
	var mem []uint64
	for _, n := range nodes {
		if n.PeakMemBytes > 0 {
			mem = append(mem, n.PeakMemBytes)
		}
	}
	if len(mem) > 0 {
		slices.Sort(mem)
		mib := func(b uint64) float64 { return float64(b) / (1 << 20) }
		fmt.Fprintf(w, "memory per container (peak RSS): %.1f min, %.1f median, %.1f max MiB of %d (results.json nodes[].peak_mem_bytes; report.html lists each)\n",
			mib(mem[0]), mib(mem[len(mem)/2]), mib(mem[len(mem)-1]), len(mem))
	}
	var late DelayLate
	var sum float64
	for _, n := range nodes {
		if l := n.DelayLate; l != nil {
			late.Packets += l.Packets
			sum += l.MeanMS * float64(l.Packets)
			late.MaxMS = max(late.MaxMS, l.MaxMS)
		}
	}
	if late.Packets > 0 {
		fmt.Fprintf(w, "packets held beyond their latency (the host's delayer): %.2f ms on average, %.1f ms at most, of %d packets\n",
			sum/float64(late.Packets), late.MaxMS, late.Packets)
	}
}

// What a node's link carried, by class of libp2p protocol (carrierOf),
// from NodeResult.Protocols; the first class, blocks, is the block bytes
// inside the Bitswap frames, and the last, transport, is the link's
// bytes beyond every stream's.
const (
	carBlocks = iota
	carBitswap
	carSwarm
	carKad
	carIdentify
	carOther
	carTransport
	numCarriers
)

// carrierNames head the report's columns, in the order of the classes.
var carrierNames = [numCarriers]string{"blocks", "other Bitswap", "swarm ext", "DHT (kad)", "identify", "other streams", "transport"}

// carrierOf is the class of a protocol ID's stream bytes.
func carrierOf(p string) int {
	switch {
	case strings.Contains(p, "/bitswap"):
		return carBitswap
	case strings.HasPrefix(p, "/shoal/swarm/"):
		return carSwarm
	case strings.Contains(p, "/kad/"):
		return carKad
	case strings.HasPrefix(p, "/ipfs/id/"):
		return carIdentify
	default:
		return carOther
	}
}

// Carried is a node's (or a group's mean) wire bytes up and down split
// by what they carried, indexed by the car* classes.
type Carried struct {
	Up, Down [numCarriers]int64
}

// carried splits n's wire bytes; false when the run did not count its
// streams (containers).
// blockBytesDown is the block bytes n received: the wire-level count,
// which includes copies that arrived after the fetch closed, or, from a
// results file without it, the transfers' per-peer sums, which miss those
// copies (bench/sim.md, "wire").
func (n *NodeResult) blockBytesDown() int64 {
	if n.Upload != nil && n.Upload.BlockBytesDown > 0 {
		return n.Upload.BlockBytesDown
	}
	var recv int64
	for _, b := range n.BytesPerPeer {
		recv += b
	}
	return recv
}

func (n *NodeResult) carried() (Carried, bool) {
	var c Carried
	if n.Protocols == nil {
		return c, false
	}
	for p, b := range n.Protocols {
		k := carrierOf(p)
		c.Up[k] += b.Up
		c.Down[k] += b.Down
	}
	// Block bytes are inside the Bitswap frames: the rest of them is
	// wants, presences and framing.
	recv := n.blockBytesDown()
	c.Down[carBlocks], c.Down[carBitswap] = recv, c.Down[carBitswap]-recv
	if n.Upload != nil {
		c.Up[carBlocks], c.Up[carBitswap] = n.Upload.BlockBytes, c.Up[carBitswap]-n.Upload.BlockBytes
	}
	c.Up[carTransport], c.Down[carTransport] = n.BytesUp, n.BytesDown
	for k := range carTransport {
		c.Up[carTransport] -= c.Up[k]
		c.Down[carTransport] -= c.Down[k]
	}
	return c, true
}

// GroupCarried is one group's mean per node of what its links carried.
type GroupCarried struct {
	Name     string
	Nodes    int // nodes with a split
	Up, Down int64
	Carried
}

// CarriedSummaries is the split per group (groups without one left out).
func (res *Results) CarriedSummaries() []GroupCarried {
	var out []GroupCarried
	for _, g := range res.groups() {
		s := GroupCarried{Name: g}
		for i := range res.Nodes {
			n := &res.Nodes[i]
			c, ok := n.carried()
			if n.Group != g || !ok {
				continue
			}
			s.Nodes++
			s.Up += n.BytesUp
			s.Down += n.BytesDown
			for k := range numCarriers {
				s.Carried.Up[k] += c.Up[k]
				s.Carried.Down[k] += c.Down[k]
			}
		}
		if s.Nodes == 0 {
			continue
		}
		k := int64(s.Nodes)
		s.Up, s.Down = s.Up/k, s.Down/k
		for i := range numCarriers {
			s.Carried.Up[i] /= k
			s.Carried.Down[i] /= k
		}
		out = append(out, s)
	}
	return out
}

// NodeCarried is one node's split, for the report's per-node table.
type NodeCarried struct {
	ID, Group string
	Up, Down  int64
	Carried
}

// nodesCarried lists every node's split, in the order of the nodes.
func (res *Results) nodesCarried() []NodeCarried {
	var out []NodeCarried
	for i := range res.Nodes {
		n := &res.Nodes[i]
		if c, ok := n.carried(); ok {
			out = append(out, NodeCarried{ID: n.ID, Group: n.Group, Up: n.BytesUp, Down: n.BytesDown, Carried: c})
		}
	}
	return out
}

// writeCarried prints, per group, the mean node's bytes down and up by
// what they carried.
func writeCarried(w io.Writer, groups []GroupCarried) {
	for _, g := range groups {
		for _, dir := range []struct {
			name  string
			total int64
			by    [numCarriers]int64
		}{{"down", g.Down, g.Carried.Down}, {"up", g.Up, g.Carried.Up}} {
			parts := make([]string, 0, numCarriers)
			for k, b := range dir.by {
				parts = append(parts, carrierNames[k]+" "+kib(b))
			}
			fmt.Fprintf(w, "carried %s, KiB %s per node: %s = %s\n", g.Name, dir.name, kib(dir.total), strings.Join(parts, " + "))
		}
	}
}

// kib formats bytes as whole KiB (the report's and summary's by-protocol
// tables).
func kib(b int64) string { return fmt.Sprintf("%.0f", float64(b)/(1<<10)) }
