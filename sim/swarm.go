package sim

import (
	"fmt"
	"html"
	"io"
	"slices"
	"sort"
	"strings"
)

// Swarm is how the content got around, in a few numbers: what the
// seeders carried, what the wire cost, and the largest flows between
// nodes. It is in results.json and heads the report.
type Swarm struct {
	// SeederCopies is the copies of the content the seeders sent, by the
	// block bytes the fetchers received from them (content bytes ÷ F);
	// SeederWireCopies the same by their wire bytes up.
	SeederCopies     float64 `json:"seeder_copies"`
	SeederWireCopies float64 `json:"seeder_wire_copies"`
	// PeerFraction is the share of the block bytes fetchers received
	// that came from other fetchers rather than seeders: near 0 when the
	// seeders carried the swarm alone.
	PeerFraction float64 `json:"peer_fraction"`
	// Delivered is the fetchers that completed: F × Delivered content
	// bytes reached fetchers.
	Delivered int `json:"delivered"`
	// WireOverContent is every node's wire bytes up ÷ (F × Delivered):
	// 1 is no overhead, no duplicate and no traffic of fetchers that
	// did not finish; nil when nothing was delivered.
	WireOverContent *float64 `json:"wire_over_content"`
	// BlockOverContent is the block bytes every fetcher received ÷ (F ×
	// Delivered): above 1 by duplicate blocks, late ones (after the fetch
	// closed) included, and by what churners fetched before they left.
	BlockOverContent *float64 `json:"block_over_content"`
	// TopFlows are the largest sender → receiver block flows, largest
	// first (at most maxFlows).
	TopFlows []Flow `json:"top_flows"`
	// FlowsTotal is how many sender → receiver pairs moved blocks.
	FlowsTotal int `json:"flows_total"`
	// GroupFlows is every sender group → receiver group block flow
	// (From and To name groups), largest first: all of them, where
	// TopFlows keeps twenty pairs of nodes. It says which part of a
	// swarm fed which (in the hetero plan, that the seeder sent the US
	// datacenter nodes nothing: bench/sim.md, "hetero").
	GroupFlows []Flow `json:"group_flows"`
	// Sources is how each completed fetcher's blocks were spread over the
	// nodes that sent them; nil when no fetcher completed.
	Sources *SourceSpread `json:"sources,omitempty"`
}

// SourceSpread is over the completed fetchers: how many nodes sent blocks
// to each (a node that sent none, though asked, does not count; one that
// sent only the DAG's small root does), and the share of its block bytes
// the largest of them sent. A swarm in which each fetcher took its file
// from one or two others has a top share near 1: its downlink was fed by
// whoever unchoked it first.
type SourceSpread struct {
	MeanSenders    float64 `json:"mean_senders"`
	MedianSenders  float64 `json:"median_senders"`
	MeanTopShare   float64 `json:"mean_top_share"`
	MedianTopShare float64 `json:"median_top_share"`
}

// Flow is block bytes one node received from another.
type Flow struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Bytes int64  `json:"bytes"`
}

// maxFlows is how many flows the report draws and results.json lists.
const maxFlows = 20

// swarm computes the Swarm of res.Nodes (whose BytesPerPeer are named by
// node).
func (res *Results) swarm() *Swarm {
	s := &Swarm{}
	f := float64(res.ContentBytes)
	seeder := map[string]bool{}
	group := make(map[string]string, len(res.Nodes))
	var seederWire, wire, blocks int64
	for _, n := range res.Nodes {
		group[n.ID] = n.Group
		wire += n.BytesUp
		if n.Role == RoleSeeder {
			seeder[n.ID] = true
			seederWire += n.BytesUp
		}
		if IsFetcherRole(n.Role) && n.Completed {
			s.Delivered++
		}
	}
	var seederBlocks, peerBlocks int64
	groupFlows := map[[2]string]int64{}
	var senders, topShares []float64
	for _, n := range res.Nodes {
		blocks += n.blockBytesDown()
		var got, top int64
		nsend := 0
		for from, b := range n.BytesPerPeer {
			peerBlocks += b
			if seeder[from] {
				seederBlocks += b
			}
			if b > 0 {
				s.TopFlows = append(s.TopFlows, Flow{From: from, To: n.ID, Bytes: b})
				g, ok := group[from]
				if !ok {
					g = from // a peer that is no node of the plan
				}
				groupFlows[[2]string{g, n.Group}] += b
				got, top, nsend = got+b, max(top, b), nsend+1
			}
		}
		if IsFetcherRole(n.Role) && n.Completed && got > 0 {
			senders = append(senders, float64(nsend))
			topShares = append(topShares, float64(top)/float64(got))
		}
	}
	for k, b := range groupFlows {
		s.GroupFlows = append(s.GroupFlows, Flow{From: k[0], To: k[1], Bytes: b})
	}
	sortFlows(s.GroupFlows)
	if len(senders) > 0 {
		s.Sources = &SourceSpread{
			MeanSenders: mean(senders), MedianSenders: median(senders),
			MeanTopShare: mean(topShares), MedianTopShare: median(topShares),
		}
	}
	if f > 0 {
		s.SeederCopies = float64(seederBlocks) / f
		s.SeederWireCopies = float64(seederWire) / f
	}
	if peerBlocks > 0 {
		s.PeerFraction = float64(peerBlocks-seederBlocks) / float64(peerBlocks)
	}
	if s.Delivered > 0 && f > 0 {
		w := float64(wire) / (f * float64(s.Delivered))
		b := float64(blocks) / (f * float64(s.Delivered))
		s.WireOverContent, s.BlockOverContent = &w, &b
	}
	sortFlows(s.TopFlows)
	s.FlowsTotal = len(s.TopFlows)
	if len(s.TopFlows) > maxFlows {
		s.TopFlows = s.TopFlows[:maxFlows]
	}
	return s
}

// sortFlows orders flows largest first, then by sender and receiver.
func sortFlows(fl []Flow) {
	sort.Slice(fl, func(i, j int) bool {
		a, b := fl[i], fl[j]
		if a.Bytes != b.Bytes {
			return a.Bytes > b.Bytes
		}
		if a.From != b.From {
			return a.From < b.From
		}
		return a.To < b.To
	})
}

func mean(v []float64) float64 {
	t := 0.0
	for _, x := range v {
		t += x
	}
	return t / float64(len(v))
}

// median of v (which it sorts) by the nearest rank, as the report's p50.
func median(v []float64) float64 {
	slices.Sort(v)
	return *percentile(v, 0.5)
}

// flowChart draws the top flows: senders in a column on the left,
// receivers on the right, a line from each sender to each receiver as
// wide as the bytes it moved.
func (s *Swarm) flowChart() string {
	if len(s.TopFlows) == 0 {
		return ""
	}
	var from, to []string
	seenF, seenT := map[string]bool{}, map[string]bool{}
	sent, got := map[string]int64{}, map[string]int64{}
	for _, fl := range s.TopFlows {
		sent[fl.From] += fl.Bytes
		got[fl.To] += fl.Bytes
		if !seenF[fl.From] {
			seenF[fl.From] = true
			from = append(from, fl.From)
		}
		if !seenT[fl.To] {
			seenT[fl.To] = true
			to = append(to, fl.To)
		}
	}
	sort.SliceStable(from, func(i, j int) bool { return sent[from[i]] > sent[from[j]] })
	sort.SliceStable(to, func(i, j int) bool { return got[to[i]] > got[to[j]] })
	const w, row, top, xl, xr = 640.0, 18.0, 24.0, 170.0, 470.0
	h := top + row*float64(max(len(from), len(to))) + 10
	yOf := func(names []string) map[string]float64 {
		m := map[string]float64{}
		for i, n := range names {
			m[n] = top + row*float64(i) + row/2
		}
		return m
	}
	yf, yt := yOf(from), yOf(to)
	maxB := s.TopFlows[0].Bytes
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="11">`, w, h, w, h)
	fmt.Fprintf(&b, `<text x="%.0f" y="14" text-anchor="end" font-weight="bold">sender</text><text x="%.0f" y="14" font-weight="bold">receiver</text>`, xl-6, xr+6)
	for _, fl := range s.TopFlows {
		width := 1 + 9*float64(fl.Bytes)/float64(maxB)
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="%s" stroke-opacity="0.6" stroke-width="%.1f"><title>%s → %s: %.1f MiB</title></line>`,
			xl, yf[fl.From], xr, yt[fl.To], color(max(slices.Index(from, fl.From), 0)), width,
			html.EscapeString(fl.From), html.EscapeString(fl.To), float64(fl.Bytes)/(1<<20))
	}
	for _, n := range from {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%s %.1f MiB</text>`, xl-6, yf[n]+4, html.EscapeString(n), float64(sent[n])/(1<<20))
	}
	for _, n := range to {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f">%s %.1f MiB</text>`, xr+6, yt[n]+4, html.EscapeString(n), float64(got[n])/(1<<20))
	}
	return b.String() + "</svg>"
}

// writeText prints the swarm's numbers and its top flows for the
// terminal summary.
func (s *Swarm) writeText(w io.Writer, flows int) {
	f2 := func(v *float64) string {
		if v == nil {
			return "n/a"
		}
		return fmt.Sprintf("%.2f", *v)
	}
	fmt.Fprintf(w, "swarm: seeders sent %.2f copies of the content (%.2f on the wire), fetchers %.0f %% of the blocks; wire bytes ÷ content delivered %s, block bytes ÷ content %s (%d fetchers completed)\n",
		s.SeederCopies, s.SeederWireCopies, 100*s.PeerFraction, f2(s.WireOverContent), f2(s.BlockOverContent), s.Delivered)
	if len(s.GroupFlows) > 0 {
		var parts []string
		for _, fl := range s.GroupFlows {
			parts = append(parts, fmt.Sprintf("%s→%s %.1f MiB", fl.From, fl.To, float64(fl.Bytes)/(1<<20)))
		}
		fmt.Fprintf(w, "group flows: %s\n", strings.Join(parts, ", "))
	}
	if sp := s.Sources; sp != nil {
		fmt.Fprintf(w, "sources per fetcher: %.1f senders (median %.0f); the largest sent %.0f %% of its blocks (median %.0f %%)\n",
			sp.MeanSenders, sp.MedianSenders, 100*sp.MeanTopShare, 100*sp.MedianTopShare)
	}
	if len(s.TopFlows) == 0 {
		return
	}
	var parts []string
	for _, fl := range s.TopFlows[:min(flows, len(s.TopFlows))] {
		parts = append(parts, fmt.Sprintf("%s→%s %.1f MiB", fl.From, fl.To, float64(fl.Bytes)/(1<<20)))
	}
	fmt.Fprintf(w, "top flows (of %d): %s\n", s.FlowsTotal, strings.Join(parts, ", "))
}
