package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkGatewayRange: a 1 MiB Range read from the middle of a 1 GiB
// file (SHOAL_BENCH_RANGE_MIB sets the size) held only by a connected
// peer, through the gateway of a daemon that holds none of it — both real
// daemon processes on loopback TCP, disk stores. Each sample reads a
// different 1 MiB, unaligned, from the middle half of the file, then
// `shoal gc` empties the gateway's daemon again. It reports the median
// time to the first byte of the body (ms-TTFB-range), the blocks the
// gateway's daemon received per read (shoal_received_blocks_total) and,
// of those, how many lie outside the range (extra-blocks: the root and
// the leaves holding the range are needed; the content-type sniff of the
// file's first bytes costs its first leaf). The goal (issue 13): first
// byte ≤ 50 ms, ≤ 4 blocks beyond the range.
//
//	go test -run '^$' -bench BenchmarkGatewayRange -benchtime 1x ./cmd/shoal/
func BenchmarkGatewayRange(b *testing.B) {
	size := 1024 << 20
	if s := os.Getenv("SHOAL_BENCH_RANGE_MIB"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 4 {
			b.Fatalf("SHOAL_BENCH_RANGE_MIB=%q: want a number of MiB, at least 4", s)
		}
		size = n << 20
	}
	const rangeLen = 1 << 20
	samples := 9
	dir := b.TempDir()
	path, _ := writeBenchFile(b, dir, size)
	seed := startDaemon(b, filepath.Join(dir, "seed"))
	gw := startDaemon(b, filepath.Join(dir, "gateway"))
	gw.cli("connect", seed.addr)
	if gw.gateway == "" {
		b.Fatal("the gateway daemon did not print its gateway address")
	}
	c := lastLine(seed.cli("share", path))
	file, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer file.Close()
	for range b.N {
		var ttfb []time.Duration
		var fetched, extra []int
		for i := range samples {
			gw.cli("gc")
			// Unaligned offsets spread over the middle half of the file.
			from := int64(size/4) + int64(i)*int64(size/2/samples) + 12345
			to := from + rangeLen // exclusive
			want := make([]byte, rangeLen)
			if _, err := file.ReadAt(want, from); err != nil {
				b.Fatal(err)
			}
			before := daemonMetric(b, gw, "shoal_received_blocks_total")
			req, err := http.NewRequest("GET", gw.gateway+"/ipfs/"+c, nil)
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", from, to-1))
			start := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			got := make([]byte, rangeLen)
			_, err = io.ReadFull(resp.Body, got[:1])
			el := time.Since(start)
			if err == nil {
				_, err = io.ReadFull(resp.Body, got[1:])
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusPartialContent || err != nil || !bytes.Equal(got, want) {
				b.Fatalf("GET %s bytes %d-%d: %s, %v, bytes equal %v", c, from, to-1, resp.Status, err, bytes.Equal(got, want))
			}
			n := int(daemonMetric(b, gw, "shoal_received_blocks_total") - before)
			ttfb = append(ttfb, el)
			fetched = append(fetched, n)
			extra = append(extra, n-coveringBlocks(uint64(size), uint64(from), uint64(to)))
		}
		slices.Sort(ttfb)
		med := ttfb[len(ttfb)/2]
		b.ReportMetric(float64(med.Microseconds())/1000, "ms-TTFB-range")
		b.ReportMetric(float64(slices.Max(fetched)), "blocks-fetched")
		b.ReportMetric(float64(slices.Max(extra)), "extra-blocks")
		b.Logf("1 MiB ranges of a %d MiB file held by a peer, %d samples: TTFB median %v (min %v, max %v); blocks received per read %v, of which outside the range %v",
			size>>20, samples, med, ttfb[0], ttfb[len(ttfb)-1], fetched, extra)
	}
}

// coveringBlocks is how many blocks a read of bytes [from, to) of a file of
// size bytes imported with the unixfs-v1-2025 profile needs: the leaves
// (1 MiB) holding them and the nodes above them (1024 links each), root
// included.
func coveringBlocks(size, from, to uint64) int {
	const leaf, fanout = 1 << 20, 1024
	first, last := from/leaf, (to-1)/leaf
	n := int(last - first + 1)
	for nodes := (size + leaf - 1) / leaf; nodes > 1; nodes = (nodes + fanout - 1) / fanout {
		first, last = first/fanout, last/fanout
		n += int(last - first + 1)
	}
	return n
}

// daemonMetric reads one unlabelled metric from d's /metrics.
func daemonMetric(tb testing.TB, d *daemon, name string) float64 {
	tb.Helper()
	api, err := os.ReadFile(filepath.Join(d.home, APIFile))
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := http.Get(strings.TrimSpace(string(api)) + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				tb.Fatalf("%s %q: %v", name, v, err)
			}
			return n
		}
	}
	tb.Fatalf("no %s in %s's metrics", name, d.home)
	return 0
}
