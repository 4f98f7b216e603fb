// Command regress compares a run of `go test -bench` with a recorded
// baseline and fails when a metric got more than a threshold worse.
//
//	go run ./bench/regress [-max-drop 0.2] bench/baseline.txt new.txt
//	go run ./bench/regress -table new.txt
//
// With -table it prints instead the headline table of issue 13 from one
// run (table.go): each measurement beside its same-run reference and its
// goal, met or missed, and what the run lacks.
//
// Each benchmark line ("BenchmarkX-2  1  123 ns/op  45.6 MB/s ...") gives
// metrics by unit. Throughputs and ratios ("MB/s", "of-raw", "speedup",
// "ratio-to-ideal") are better when higher; times, sizes and costs
// ("ns/op", "ms-…", "…RSS…", "…cpu-s/…", "…cpu-ms/MiB", "x-ref-cpu",
// "dup-ratio", "…B/B" per byte moved, "extra-blocks") when lower. The
// references measured in the same run (raw stream, boxo, sha256,
// net/http, "…-ref-MB/s" such as the file-write reference) and other
// units are shown but not judged. A benchmark that
// appears several times is compared by its median.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

func main() {
	maxDrop := flag.Float64("max-drop", 0.2, "largest tolerated relative loss (0.2 = 20%)")
	table := flag.Bool("table", false, "print the headline table of one run (regress -table RUN)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: regress [-max-drop F] BASELINE NEW\n       regress -table RUN")
		flag.PrintDefaults()
	}
	flag.Parse()
	want := 2
	if *table {
		want = 1
	}
	if flag.NArg() != want {
		flag.Usage()
		os.Exit(2)
	}
	runs := make([]map[key][]float64, want)
	for i := range runs {
		m, err := parseFile(flag.Arg(i))
		if err != nil {
			fmt.Fprintln(os.Stderr, "regress:", err)
			os.Exit(2)
		}
		runs[i] = m
	}
	if *table {
		printTable(os.Stdout, runs[0])
		return
	}
	base, cur := runs[0], runs[1]
	bad := compare(os.Stdout, base, cur, *maxDrop)
	if bad > 0 {
		fmt.Printf("\n%d metric(s) worse than the baseline by more than %.0f%%, or missing\n", bad, *maxDrop*100)
		os.Exit(1)
	}
}

// key names one metric of one benchmark.
type key struct{ bench, unit string }

func parseFile(path string) (map[key][]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("%s: no benchmark results in it (want `go test -bench` output)", path)
	}
	return m, nil
}

// parse reads the result lines of `go test -bench` output.
func parse(r io.Reader) (map[key][]float64, error) {
	out := map[key][]float64{}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue // a log line that starts with a benchmark's name
		}
		if len(f)%2 != 0 {
			return nil, fmt.Errorf("line %d: value without unit: %q", line, sc.Text())
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: %q is not a number", line, f[i])
			}
			k := key{f[0], f[i+1]}
			out[k] = append(out[k], v)
		}
	}
	return out, sc.Err()
}

// direction is +1 when higher is better, -1 when lower is, 0 when the
// metric is not judged: references measured alongside shoal (the raw
// stream, boxo, bare sha256, net/http) describe the machine, not shoal.
func direction(k key) int {
	if strings.Contains(k.bench, "raw/") || strings.Contains(k.bench, "boxo/") ||
		strings.HasPrefix(k.unit, "sha256-") || strings.HasPrefix(k.unit, "boxo-") || strings.Contains(k.unit, "net/http") ||
		strings.HasSuffix(k.unit, "-ref-MB/s") {
		return 0
	}
	switch {
	case strings.Contains(k.unit, "MB/s"), strings.Contains(k.unit, "of-raw"),
		k.unit == "speedup", k.unit == "ratio-to-ideal":
		return 1
	case k.unit == "ns/op", strings.HasPrefix(k.unit, "ms-"), strings.Contains(k.unit, "RSS"),
		strings.Contains(k.unit, "cpu-s/"), k.unit == "dup-ratio", strings.HasSuffix(k.unit, "cpu-ms/MiB"), k.unit == "x-ref-cpu",
		strings.HasSuffix(k.unit, "B/B"), strings.HasSuffix(k.unit, "-blocks"):
		return -1
	}
	return 0
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// compare prints one row per metric present in both and returns how many
// got worse by more than maxDrop, plus the judged metrics of the baseline
// that this run lacks.
func compare(w io.Writer, base, cur map[key][]float64, maxDrop float64) int {
	keys := make([]key, 0, len(cur))
	for k := range cur {
		if _, ok := base[k]; ok {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].bench != keys[j].bench {
			return keys[i].bench < keys[j].bench
		}
		return keys[i].unit < keys[j].unit
	})
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "benchmark\tunit\tbaseline\tnow\tchange\t")
	bad := 0
	for _, k := range keys {
		b, c := median(base[k]), median(cur[k])
		change := "n/a"
		verdict := ""
		if b != 0 {
			rel := (c - b) / b
			change = fmt.Sprintf("%+.1f%%", rel*100)
			if d := direction(k); d != 0 && float64(d)*rel < -maxDrop {
				verdict = "WORSE"
				bad++
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%.4g\t%.4g\t%s\t%s\n", k.bench, k.unit, b, c, change, verdict)
	}
	tw.Flush()
	var missing []key
	for k := range base {
		if _, ok := cur[k]; !ok && direction(k) != 0 {
			missing = append(missing, k)
		}
	}
	sort.Slice(missing, func(i, j int) bool { return missing[i].bench+missing[i].unit < missing[j].bench+missing[j].unit })
	for _, k := range missing {
		// A benchmark that failed or was not run leaves no line: that is
		// not a pass.
		fmt.Fprintf(w, "MISSING: %s %s (in the baseline, not in this run)\n", k.bench, k.unit)
	}
	return bad + len(missing)
}
