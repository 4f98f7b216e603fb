package main

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"
)

// The headline table of `make bench` (regress -table RUN): issue 13's
// measurements from one run, each beside the reference measured in the
// same run and the goal it is held to.

// procSuffix is the -GOMAXPROCS suffix go test adds to benchmark names.
var procSuffix = regexp.MustCompile(`-\d+$`)

// run is one bench output by benchmark name without that suffix.
type run map[key][]float64

func byName(m map[key][]float64) run {
	out := run{}
	for k, vs := range m {
		k.bench = procSuffix.ReplaceAllString(k.bench, "")
		out[k] = append(out[k], vs...)
	}
	return out
}

// get is the median of bench's unit, false when the run lacks it.
func (r run) get(bench, unit string) (float64, bool) {
	vs := r[key{bench, unit}]
	if len(vs) == 0 {
		return 0, false
	}
	return median(vs), true
}

// goal is a bound on a value (or on a ratio when the row has one).
type goal struct {
	text string // as the issue states it; "" for rows shown without one
	ok   func(float64) bool
}

func atLeast(v float64, text string) goal {
	return goal{text, func(x float64) bool { return x >= v }}
}

func atMost(v float64, text string) goal {
	return goal{text, func(x float64) bool { return x <= v }}
}

// row is one line of the table. ref > 0 adds a reference and the ratio
// value/ref, which the goal then judges; otherwise it judges value.
type row struct {
	what        string
	value, ref  float64
	unit        string
	have, ratio bool
	refWhat     string
	goal        goal
}

func headline(r run) []row {
	var rows []row
	add := func(what string, v float64, have bool, unit string, g goal) {
		rows = append(rows, row{what: what, value: v, have: have, unit: unit, goal: g})
	}
	addRatio := func(what string, v float64, have bool, unit string, ref float64, refOK bool, refWhat string, g goal) {
		rows = append(rows, row{what: what, value: v, have: have && refOK && ref > 0, unit: unit, ref: ref, ratio: true, refWhat: refWhat, goal: g})
	}

	const ex = "BenchmarkExchange/"
	for _, tr := range []string{"tcp", "quic"} {
		raw, rawOK := r.get(ex+"raw/"+tr, "MB/s")
		refCPU, refOK := r.get(ex+"raw/"+tr, "ref-cpu-ms/MiB")
		for _, s := range []int{1, 3} {
			name := fmt.Sprintf("%s/seeders=%d", tr, s)
			shoal, ok := r.get(ex+"shoal/"+name, "MB/s")
			boxo, boxoOK := r.get(ex+"boxo/"+name, "MB/s")
			var rawGoal, boxoGoal goal
			switch {
			case tr == "tcp" && s == 1:
				rawGoal, boxoGoal = atLeast(0.6, "≥ 0.6 of raw"), atLeast(1.5, "≥ 1.5 × boxo")
			case tr == "tcp":
				rawGoal = atLeast(0.8, "≥ 0.8 of raw")
			}
			what := fmt.Sprintf("exchange in process, %s, %d seeder(s)", strings.ToUpper(tr), s)
			addRatio(what, shoal, ok, "MB/s", raw, rawOK, "raw stream", rawGoal)
			addRatio(what, shoal, ok, "MB/s", boxo, boxoOK, "boxo Bitswap", boxoGoal)
			cpu, cpuOK := r.get(ex+"shoal/"+name, "cpu-ms/MiB")
			addRatio(what+", CPU both ends", cpu, cpuOK, "ms/MiB", refCPU, refOK, "raw + sha256", atMost(1.3, "≤ 1.3 ×"))
			heap, heapOK := r.get(ex+"shoal/"+name, "heap-B/B")
			add(what+", heap allocated", heap, heapOK, "B per B", atMost(0.1, "≤ 0.1"))
		}
	}

	const fetch = "BenchmarkDaemonFetch/"
	for _, s := range []int{1, 3} {
		name := fmt.Sprintf("%sseeders=%d", fetch, s)
		what := fmt.Sprintf("daemons, `shoal fetch -o`, %d seeder(s)", s)
		mbs, ok := r.get(name, "MB/s")
		// The raw TCP stream of the same run, from each sample's ratio.
		var raws []float64
		for i, v := range r[key{name, "MB/s"}] {
			if of := r[key{name, "of-raw"}]; i < len(of) && of[i] > 0 {
				raws = append(raws, v/of[i])
			}
		}
		raw := 0.0
		if len(raws) > 0 {
			raw = median(raws)
		}
		addRatio(what, mbs, ok, "MB/s", raw, len(raws) > 0, "raw TCP stream", atLeast(0.5, "≥ 0.5 of raw"))
		rss, rssOK := r.get(name, "peak-RSS-MiB")
		add(what+", leecher peak RSS", rss, rssOK, "MiB", atMost(150, "≤ 150 MiB (for 4 GiB)"))
		disk, diskOK := r.get(name, "disk-B/B")
		add(what+", disk written per byte fetched", disk, diskOK, "B per B", atMost(1.05, "≤ 1.05"))
	}

	const rng = "BenchmarkGatewayRange"
	v, ok := r.get(rng, "ms-TTFB-range")
	add("gateway 1 MiB Range of a peer-held file, first byte", v, ok, "ms", atMost(50, "≤ 50 ms"))
	v, ok = r.get(rng, "extra-blocks")
	add("gateway 1 MiB Range, blocks fetched beyond the range", v, ok, "blocks", atMost(4, "≤ 4"))
	v, ok = r.get(rng, "blocks-fetched")
	add("gateway 1 MiB Range, blocks fetched in all", v, ok, "blocks", goal{})

	const ttfb = "BenchmarkGatewayTTFB"
	stored, ok := r.get(ttfb, "ms-TTFB-stored")
	floor, floorOK := r.get(ttfb, "ms-TTFB-net/http")
	addRatio("gateway first byte, file stored on the daemon", stored, ok, "ms", floor, floorOK, "net/http static file", goal{})
	v, ok = r.get(ttfb, "ms-TTFB-peer")
	add("gateway first byte, 1 MiB file held by a peer", v, ok, "ms", goal{})
	return rows
}

// printTable writes the headline rows; measurements the run lacks say so.
func printTable(w io.Writer, m map[key][]float64) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "measurement\tshoal\treference (same run)\tratio\tgoal\t")
	for _, rw := range headline(byName(m)) {
		if !rw.have {
			fmt.Fprintf(tw, "%s\tnot in this run\t\t\t%s\t\n", rw.what, rw.goal.text)
			continue
		}
		ref, ratio, judged := "—", "—", rw.value
		if rw.ratio {
			ref = fmt.Sprintf("%s %.4g %s", rw.refWhat, rw.ref, rw.unit)
			judged = rw.value / rw.ref
			ratio = fmt.Sprintf("%.3g", judged)
		}
		verdict := ""
		if rw.goal.ok != nil {
			verdict = "missed"
			if rw.goal.ok(judged) {
				verdict = "met"
			}
		}
		fmt.Fprintf(tw, "%s\t%.4g %s\t%s\t%s\t%s %s\t\n", rw.what, rw.value, rw.unit, ref, ratio, rw.goal.text, verdict)
	}
	tw.Flush()
}
