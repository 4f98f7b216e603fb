package main

import (
	"bytes"
	"strings"
	"testing"
)

const baseline = `goos: linux
BenchmarkDaemonFetch/seeders=1-2   1   3930713529 ns/op   200.0 MB/s   0.40 of-raw   41.3 peak-RSS-MiB
BenchmarkDaemonFetch/seeders=1-2   1   3930713529 ns/op   220.0 MB/s   0.44 of-raw   41.3 peak-RSS-MiB
BenchmarkDaemonFetch/seeders=1-2   1   3930713529 ns/op   210.0 MB/s   0.42 of-raw   41.3 peak-RSS-MiB
    bench_e2e_test.go:190: 1 seeder(s): 56 MB/s = 0.09 of raw
BenchmarkGatewayTTFB-2   1   2644997666 ns/op   0.85 ms-TTFB-stored   3 widgets   0.5 ms-TTFB-net/http
BenchmarkExchange/raw/tcp-2   1   1 ns/op   700 MB/s
`

// ttfbOK is the baseline's gateway line, unchanged.
const ttfbOK = "BenchmarkGatewayTTFB-2 1 2644997666 ns/op 0.85 ms-TTFB-stored\n"

func TestCompareFlagsDrops(t *testing.T) {
	base, err := parse(strings.NewReader(baseline))
	if err != nil {
		t.Fatal(err)
	}
	if got := base[key{"BenchmarkDaemonFetch/seeders=1-2", "MB/s"}]; len(got) != 3 {
		t.Fatalf("parsed %v, want three MB/s samples", got)
	}
	tests := []struct {
		name string
		now  string
		bad  int
	}{
		{"same", baseline, 0},
		{"a benchmark that did not run is flagged", "BenchmarkDaemonFetch/seeders=1-2 1 3930713529 ns/op 210 MB/s 0.42 of-raw 41 peak-RSS-MiB\n", 2},
		{"throughput down 10% is tolerated", "BenchmarkDaemonFetch/seeders=1-2 1 3930713529 ns/op 189 MB/s 0.42 of-raw 41 peak-RSS-MiB\n" + ttfbOK, 0},
		{"throughput down 30%", "BenchmarkDaemonFetch/seeders=1-2 1 3930713529 ns/op 147 MB/s 0.42 of-raw 41 peak-RSS-MiB\n" + ttfbOK, 1},
		{"RSS up 50% and TTFB doubled", "BenchmarkDaemonFetch/seeders=1-2 1 3930713529 ns/op 210 MB/s 0.42 of-raw 62 peak-RSS-MiB\nBenchmarkGatewayTTFB-2 1 2644997666 ns/op 1.7 ms-TTFB-stored 1 widgets\n", 2},
		{"a slower reference is not shoal's regression", "BenchmarkDaemonFetch/seeders=1-2 1 3930713529 ns/op 210 MB/s 0.42 of-raw 41 peak-RSS-MiB\nBenchmarkExchange/raw/tcp-2 1 1 ns/op 10 MB/s\nBenchmarkGatewayTTFB-2 1 2644997666 ns/op 0.85 ms-TTFB-stored 9 ms-TTFB-net/http\n", 0},
		{"better is never flagged", "BenchmarkDaemonFetch/seeders=1-2 1 100 ns/op 900 MB/s 0.9 of-raw 10 peak-RSS-MiB\n" + ttfbOK, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cur, err := parse(strings.NewReader(tc.now))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if bad := compare(&out, base, cur, 0.2); bad != tc.bad {
				t.Errorf("compare flagged %d, want %d:\n%s", bad, tc.bad, out.String())
			}
		})
	}
}

func TestParseRejectsGarbledLine(t *testing.T) {
	if _, err := parse(strings.NewReader("BenchmarkX-2 1 12 ns/op 5\n")); err == nil {
		t.Error("a value without its unit was accepted")
	}
	if _, err := parse(strings.NewReader("BenchmarkX-2 1 abc ns/op\n")); err == nil {
		t.Error("a non-number value was accepted")
	}
}

// TestTable: the headline table judges each row against its goal — a
// ratio against the same run's reference where there is one — and says
// which measurements the run lacks.
func TestTable(t *testing.T) {
	run := `BenchmarkExchange/raw/tcp-2 1 1 ns/op 1000 MB/s 3.0 cpu-ms/MiB 2.0 sha256-cpu-ms/MiB 5.0 ref-cpu-ms/MiB 0.01 heap-B/B
BenchmarkExchange/shoal/tcp/seeders=1-2 1 1 ns/op 700 MB/s 1.0 dup-ratio 6.0 cpu-ms/MiB 0.05 heap-B/B
BenchmarkExchange/boxo/tcp/seeders=1-2 1 1 ns/op 500 MB/s 9.0 cpu-ms/MiB 1.5 heap-B/B
BenchmarkDaemonFetch/seeders=1-2 1 1 ns/op 400 MB/s 0.4 of-raw 60 peak-RSS-MiB 2.0 disk-B/B
BenchmarkGatewayRange-2 1 1 ns/op 4 blocks-fetched 1 extra-blocks 23 ms-TTFB-range
`
	m, err := parse(strings.NewReader(run))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	printTable(&out, m)
	lines := map[string]string{}
	for _, l := range strings.Split(out.String(), "\n") {
		if i := strings.Index(l, "  "); i > 0 {
			lines[l[:i]+"|"+strings.Join(strings.Fields(l[i:]), " ")] = l
		}
	}
	want := []string{
		"exchange in process, TCP, 1 seeder(s)|700 MB/s raw stream 1000 MB/s 0.7 ≥ 0.6 of raw met",
		"exchange in process, TCP, 1 seeder(s)|700 MB/s boxo Bitswap 500 MB/s 1.4 ≥ 1.5 × boxo missed",
		"exchange in process, TCP, 1 seeder(s), CPU both ends|6 ms/MiB raw + sha256 5 ms/MiB 1.2 ≤ 1.3 × met",
		"exchange in process, TCP, 1 seeder(s), heap allocated|0.05 B per B — — ≤ 0.1 met",
		"exchange in process, TCP, 3 seeder(s)|not in this run ≥ 0.8 of raw",
		"daemons, `shoal fetch -o`, 1 seeder(s)|400 MB/s raw TCP stream 1000 MB/s 0.4 ≥ 0.5 of raw missed",
		"daemons, `shoal fetch -o`, 1 seeder(s), disk written per byte fetched|2 B per B — — ≤ 1.05 missed",
		"gateway 1 MiB Range of a peer-held file, first byte|23 ms — — ≤ 50 ms met",
		"gateway 1 MiB Range, blocks fetched beyond the range|1 blocks — — ≤ 4 met",
	}
	for _, w := range want {
		if _, ok := lines[w]; !ok {
			t.Errorf("no row %q in:\n%s", w, out.String())
		}
	}
}

// TestDirection: which way each kind of unit counts as better; the
// references measured beside shoal (file-write-ref-MB/s) are not judged.
func TestDirection(t *testing.T) {
	for _, tc := range []struct {
		bench, unit string
		want        int
	}{
		{"BenchmarkDaemonFetch/seeders=1-2", "MB/s", 1},
		{"BenchmarkDaemonFetch/seeders=1-2", "of-raw", 1},
		{"BenchmarkDaemonFetch/seeders=1-2", "leech-cpu-ms/MiB", -1},
		{"BenchmarkDaemonFetch/seeders=1-2", "seeders-cpu-ms/MiB", -1},
		{"BenchmarkDaemonFetch/seeders=1-2", "file-write-ref-MB/s", 0},
		{"BenchmarkExchange/shoal/tcp/seeders=1-2", "cpu-ms/MiB", -1},
		{"BenchmarkExchange/raw/tcp-2", "ref-cpu-ms/MiB", 0},
		{"BenchmarkExchange/shoal/tcp/seeders=1-2", "x-ref-cpu", -1},
	} {
		if got := direction(key{tc.bench, tc.unit}); got != tc.want {
			t.Errorf("direction(%s %s) = %d, want %d", tc.bench, tc.unit, got, tc.want)
		}
	}
}
