package sim

import (
	"fmt"
	"sort"
	"strings"
)

// evaluate checks one expectation against the results.
func evaluate(p *Plan, res *Results, e Expectation) ExpectResult {
	er := ExpectResult{Group: e.Group}
	inGroup := func(n NodeResult) bool { return e.Group == "" || n.Group == e.Group }
	switch {
	case e.AllComplete != nil:
		er = completeCheck(res, inGroup, "all_complete", *e.AllComplete, "all complete", "incomplete")
	case e.P50OverTminMax != nil:
		er = ratioCheck(res, e, "p50_over_tmin_max", 0.5, *e.P50OverTminMax)
	case e.P99OverTminMax != nil:
		er = ratioCheck(res, e, "p99_over_tmin_max", 0.99, *e.P99OverTminMax)
	case e.CompleteSMax != nil:
		er.Check, er.Want = "complete_s_max", fmt.Sprintf("≤ %.2f s", *e.CompleteSMax)
		worst := percentile(completionTimes(res.Nodes, e.Group), 1)
		er.Got = fmtPtr(worst, "%.2f s")
		er.Pass = worst != nil && *worst <= *e.CompleteSMax
	case e.ThroughputFracUplink != nil:
		er = throughputCheck(p, res, e)
	case e.ByzantineCutOff != nil:
		er = byzantineCheck(res, e, inGroup)
	case e.DHTMedianHopsMax != nil:
		hops := func(n NodeResult) (float64, bool) {
			if n.DHTHops == nil {
				return 0, false
			}
			return float64(*n.DHTHops), true
		}
		med, count := groupMedian(res.Nodes, inGroup, hops)
		er.Check, er.Want = "dht_median_hops_max", fmt.Sprintf("≤ %g", *e.DHTMedianHopsMax)
		er.Got = fmtPtr(med, "%g") + fmt.Sprintf(" (%d lookups)", count)
		er.Pass = med != nil && *med <= *e.DHTMedianHopsMax
	case e.DHTLookupP50MaxS != nil:
		lookup := func(n NodeResult) (float64, bool) {
			if n.DHTLookupS == nil {
				return 0, false
			}
			return *n.DHTLookupS, true
		}
		med, _ := groupMedian(res.Nodes, inGroup, lookup)
		er.Check, er.Want = "dht_lookup_p50_max_s", fmt.Sprintf("≤ %.2f s", *e.DHTLookupP50MaxS)
		er.Got = fmtPtr(med, "%.3f s")
		er.Pass = med != nil && *med <= *e.DHTLookupP50MaxS
	case e.PartitionHeals != nil:
		er = completeCheck(res, inGroup, "partition_heals", *e.PartitionHeals, "every fetcher completed after the split", "never completed")
	}
	er.Group = e.Group
	return er
}

// completeCheck passes when whether every fetcher of the group completed
// is want; got says done, or how many are not and which ("N missing: …").
func completeCheck(res *Results, in func(NodeResult) bool, check string, want bool, done, missingWord string) ExpectResult {
	missing := incomplete(res.Nodes, in)
	er := ExpectResult{Check: check, Want: fmt.Sprint(want), Got: done}
	if len(missing) > 0 {
		er.Got = fmt.Sprintf("%d %s: %s", len(missing), missingWord, short(missing))
	}
	er.Pass = (len(missing) == 0) == want
	return er
}

// groupMedian is the median (nearest rank) of what value reports for the
// nodes in the group, over those that report one, and their count; nil
// when none does.
func groupMedian(nodes []NodeResult, in func(NodeResult) bool, value func(NodeResult) (float64, bool)) (*float64, int) {
	var vs []float64
	for _, n := range nodes {
		if v, ok := value(n); ok && in(n) {
			vs = append(vs, v)
		}
	}
	sort.Float64s(vs)
	return percentile(vs, 0.5), len(vs)
}

// incomplete names the fetchers (and lookup nodes) that did not complete,
// leaving out churners that left before they could.
func incomplete(nodes []NodeResult, in func(NodeResult) bool) []string {
	var out []string
	for _, n := range nodes {
		if !in(n) || n.Completed || !(IsFetcherRole(n.Role) || n.Role == RoleLookup) {
			continue
		}
		if n.Role == RoleChurner && n.LeftS > 0 {
			continue
		}
		out = append(out, n.ID)
	}
	return out
}

func short(names []string) string {
	if len(names) > 5 {
		return strings.Join(names[:5], ", ") + ", …"
	}
	return strings.Join(names, ", ")
}

func fmtPtr(v *float64, format string) string {
	if v == nil {
		return "n/a (not every fetcher completed)"
	}
	return fmt.Sprintf(format, *v)
}

func ratioCheck(res *Results, e Expectation, name string, q, limit float64) ExpectResult {
	er := ExpectResult{Check: name, Want: fmt.Sprintf("≤ %.2f × T_min", limit)}
	if res.TMinS == nil {
		er.Got = "no T_min (the plan has no fetchers)"
		return er
	}
	v := percentile(completionTimes(res.Nodes, e.Group), q)
	r := ratio(v, *res.TMinS)
	er.Got = fmtPtr(r, "%.3f × T_min")
	if v != nil {
		er.Got += fmt.Sprintf(" (%.2f s; T_min %.2f s)", *v, *res.TMinS)
	}
	er.Pass = r != nil && *r <= limit
	return er
}

// throughputCheck compares each fetcher's content rate with the seeders'
// summed uplink; the slowest fetcher counts.
func throughputCheck(p *Plan, res *Results, e Expectation) ExpectResult {
	limit := *e.ThroughputFracUplink
	er := ExpectResult{Check: "leecher_throughput_min_fraction_of_seeder_uplink", Want: fmt.Sprintf("≥ %.2f", limit)}
	var up float64
	for _, g := range p.Groups {
		if g.Role == RoleSeeder {
			up += float64(g.Count) * g.UpMbit * 1e6 / 8
		}
	}
	worst := -1.0
	for _, n := range res.Nodes {
		if !IsFetcherRole(n.Role) || (e.Group != "" && n.Group != e.Group) {
			continue
		}
		frac := 0.0
		if n.Completed && n.CompleteS > 0 {
			frac = float64(res.ContentBytes) / n.CompleteS / up
		}
		if worst < 0 || frac < worst {
			worst = frac
		}
	}
	if worst < 0 {
		er.Got = "no fetchers"
		return er
	}
	er.Got = fmt.Sprintf("%.3f of %.1f Mbit/s", worst, up*8/1e6)
	er.Pass = worst >= limit
	return er
}

// byzantineCheck: every honest fetcher completed with the right bytes,
// and no byzantine node got more than a few corrupt blocks into any one
// fetcher before that fetcher cut it off.
func byzantineCheck(res *Results, e Expectation, in func(NodeResult) bool) ExpectResult {
	maxEach := int64(4)
	if e.ByzantineMaxBlocksEach != nil {
		maxEach = int64(*e.ByzantineMaxBlocksEach)
	}
	er := ExpectResult{Check: "byzantine_cut_off", Want: fmt.Sprintf("%v (≤ %d corrupt blocks from one byzantine peer to one fetcher, all complete)", *e.ByzantineCutOff, maxEach)}
	missing := incomplete(res.Nodes, in)
	fetcher := map[string]bool{}
	for _, n := range res.Nodes {
		fetcher[n.ID] = IsFetcherRole(n.Role) && in(n)
	}
	var worst, served int64
	pair := ""
	for _, n := range res.Nodes {
		served += n.CorruptServed
		for to, b := range n.CorruptTo {
			if fetcher[to] && b > worst {
				worst, pair = b, n.ID+" → "+to
			}
		}
	}
	er.Got = fmt.Sprintf("worst pair %d blocks (%s); %d corrupt blocks served in all; %d incomplete", worst, pair, served, len(missing))
	cut := worst <= maxEach && len(missing) == 0
	er.Pass = cut == *e.ByzantineCutOff
	return er
}
