package dht

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
)

// BenchmarkProvideSweep measures how long one node of a 20-node network takes
// to announce a batch of fresh roots with the sweeping provider: from the
// first Provide call until every root has had a provider record delivered to
// a DHT server. As a reference in the same network it then announces a
// smaller batch the classic way, one DHT lookup + ADD_PROVIDER round per
// root (kad-dht IpfsDHT.Provide), with as many concurrent workers as the
// sweep has, and reports both rates.
//
//	go test -run '^$' -bench ProvideSweep -benchtime 1x ./dht/
//
// SHOAL_DHT_BENCH_ROOTS (default 10000) and SHOAL_DHT_BENCH_VANILLA (default
// 500) set the batch sizes, SHOAL_DHT_BENCH_NODES (default 20) the network.
func BenchmarkProvideSweep(b *testing.B) {
	n := envInt("SHOAL_DHT_BENCH_NODES", 20)
	roots := envInt("SHOAL_DHT_BENCH_ROOTS", 10000)
	vanilla := envInt("SHOAL_DHT_BENCH_VANILLA", 500)
	nodes := newNetwork(b, n, 5, nil)
	p, z := nodes[1], nodes[n-1]

	var sweep time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		batch := benchRoots(b, fmt.Sprintf("sweep %d", i), roots)
		want := p.r.ProvideStatus().Announced + roots
		b.StartTimer()
		start := time.Now()
		for _, c := range batch {
			if err := p.r.Provide(context.Background(), c); err != nil {
				b.Fatal(err)
			}
		}
		queued := time.Since(start)
		waitFor(b, 10*time.Minute, "batch announced", func() bool {
			return p.r.ProvideStatus().Announced >= want
		})
		sweep += time.Since(start)
		b.StopTimer()
		st := p.r.ProvideStatus()
		b.Logf("sweep: %d roots queued in %v, all announced after %v; %d records sent in total, %d regions",
			roots, queued.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), st.RecordsSent, st.Regions)
		found := 0
		for _, c := range batch[:20] {
			if findProvider(b, z.r, c, p.h.ID()) {
				found++
			}
		}
		b.Logf("sweep: %d/20 sampled roots found from another node", found)
		b.StartTimer()
	}
	b.StopTimer()
	sweepRate := float64(roots*b.N) / sweep.Seconds()
	b.ReportMetric(sweepRate, "roots/s")

	vanillaRate := benchVanillaProvide(b, p, vanilla, DefaultProvideWorkers)
	b.ReportMetric(vanillaRate, "vanilla-roots/s")
	b.ReportMetric(sweepRate/vanillaRate, "sweep/vanilla")
}

// benchVanillaProvide announces m roots one lookup each with w workers and
// returns roots per second.
func benchVanillaProvide(b *testing.B, p testNode, m, w int) float64 {
	batch := benchRoots(b, "vanilla", m)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range w {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(m); i = next.Add(1) - 1 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				if err := p.r.dht.Provide(ctx, batch[i], true); err != nil {
					b.Errorf("vanilla provide: %v", err)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	d := time.Since(start)
	b.Logf("vanilla: %d roots with %d workers in %v", m, w, d.Round(time.Millisecond))
	return float64(m) / d.Seconds()
}

func benchRoots(tb testing.TB, prefix string, n int) []cid.Cid {
	out := make([]cid.Cid, n)
	for i := range out {
		out[i] = testCID(tb, fmt.Sprintf("%s root %d", prefix, i))
	}
	return out
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
