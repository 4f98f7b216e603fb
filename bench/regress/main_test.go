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
