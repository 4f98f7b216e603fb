package content_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	chunker "github.com/ipfs/boxo/chunker"
	mdtest "github.com/ipfs/boxo/ipld/merkledag/test"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	sha256simd "github.com/minio/sha256-simd"

	"github.com/shoalnet/shoal/content"
)

// benchData is 256 MiB of pseudo-random bytes, made once per process.
var benchData = sync.OnceValue(func() []byte {
	b := make([]byte, 256*mib)
	r := rand.NewChaCha8([32]byte{1})
	_, _ = r.Read(b)
	return b
})

// sha256Pass hashes data single-core in 1 MiB pieces and returns the time
// it took.
func sha256Pass(data []byte) time.Duration {
	start := time.Now()
	for off := 0; off < len(data); off += mib {
		sha256.Sum256(data[off:min(off+mib, len(data))])
	}
	return time.Since(start)
}

// cpuTime is the CPU time (user+system, all threads) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs f after a GC and returns its wall and CPU time.
func measure(f func()) (wall, cpu time.Duration) {
	runtime.GC()
	c0, w0 := cpuTime(), time.Now()
	f()
	return time.Since(w0), cpuTime() - c0
}

// BenchmarkSHA256 is the single-core reference: crypto/sha256 (SHA-NI on
// amd64) and minio/sha256-simd, 1 MiB at a time.
func BenchmarkSHA256(b *testing.B) {
	data := benchData()
	for _, impl := range []struct {
		name string
		sum  func([]byte) [32]byte
	}{{"crypto", sha256.Sum256}, {"simd", sha256simd.Sum256}} {
		b.Run(impl.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				for off := 0; off < len(data); off += mib {
					impl.sum(data[off : off+mib])
				}
			}
		})
	}
}

// BenchmarkImportHashOnly imports 256 MiB with no store and reports the
// throughput as a fraction of the ideal: single-core sha256, measured in
// the same iteration, times the workers that can run at once. It also
// reports CPU seconds per GiB, which load on the machine disturbs less.
func BenchmarkImportHashOnly(b *testing.B) {
	data := benchData()
	gib := float64(len(data)) / (1 << 30)
	for _, workers := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			var tImp, tSha, cImp, cSha time.Duration
			n := 0
			for b.Loop() {
				w, c := measure(func() { sha256Pass(data) })
				tSha, cSha = tSha+w, cSha+c
				w, c = measure(func() {
					if _, err := content.ImportFile(context.Background(), bytes.NewReader(data), nil, content.ImportOptions{Workers: workers}); err != nil {
						b.Fatal(err)
					}
				})
				tImp, cImp = tImp+w, cImp+c
				n++
			}
			par := float64(min(workers, runtime.GOMAXPROCS(0)))
			mb := float64(len(data)) * float64(n) / 1e6
			b.ReportMetric(mb/tImp.Seconds(), "import-MB/s")
			b.ReportMetric(mb/tSha.Seconds(), "sha256-1core-MB/s")
			b.ReportMetric(tSha.Seconds()/(tImp.Seconds()*par), "ratio-to-ideal")
			b.ReportMetric(cImp.Seconds()/(gib*float64(n)), "import-cpu-s/GiB")
			b.ReportMetric(cSha.Seconds()/(gib*float64(n)), "sha256-cpu-s/GiB")
		})
	}
}

// BenchmarkImportIntoMemory imports 256 MiB into an in-memory store:
// shoal into a map store that copies each block, boxo's balanced importer
// (same profile) into its mock DAG service (blockservice over a map
// datastore). Each iteration runs both, alternating which goes first, so
// that load on the machine hits both alike; it reports each one's MB/s
// and shoal's speedup.
func BenchmarkImportIntoMemory(b *testing.B) {
	data := benchData()
	prof := uio.UnixFS_v1_2025
	prof.ApplyGlobals()
	shoal := func() {
		if _, err := content.ImportFile(context.Background(), bytes.NewReader(data), newFileStore(), content.ImportOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	boxo := func() {
		params := helpers.DagBuilderParams{
			Dagserv:    mdtest.Mock(),
			Maxlinks:   prof.FileDAGWidth,
			RawLeaves:  prof.RawLeaves,
			CidBuilder: prof.CidBuilder(),
		}
		db, err := params.New(chunker.NewSizeSplitter(bytes.NewReader(data), prof.ChunkSize))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := balanced.Layout(db); err != nil {
			b.Fatal(err)
		}
	}
	// Warm up: the first import in a process pays page faults for memory
	// the later ones reuse.
	measure(shoal)
	measure(boxo)
	var ts, tb, cs, cb time.Duration
	i := 0
	for b.Loop() {
		for k := range 2 {
			if (i+k)%2 == 0 {
				w, c := measure(shoal)
				ts, cs = ts+w, cs+c
			} else {
				w, c := measure(boxo)
				tb, cb = tb+w, cb+c
			}
		}
		i++
	}
	mb := float64(len(data)) * float64(i) / 1e6
	gib := float64(len(data)) * float64(i) / (1 << 30)
	b.ReportMetric(mb/ts.Seconds(), "shoal-MB/s")
	b.ReportMetric(mb/tb.Seconds(), "boxo-MB/s")
	b.ReportMetric(tb.Seconds()/ts.Seconds(), "speedup")
	b.ReportMetric(cs.Seconds()/gib, "shoal-cpu-s/GiB")
	b.ReportMetric(cb.Seconds()/gib, "boxo-cpu-s/GiB")
}

// BenchmarkFileReader reads 256 MiB back sequentially from the map store.
func BenchmarkFileReader(b *testing.B) {
	data := benchData()
	st := newFileStore()
	res, err := content.ImportFile(context.Background(), bytes.NewReader(data), st, content.ImportOptions{})
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 256<<10)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r, err := content.NewFileReader(context.Background(), st, res.CID)
		if err != nil {
			b.Fatal(err)
		}
		for {
			n, err := r.Read(buf)
			if n == 0 || err != nil {
				break
			}
		}
	}
}

// BenchmarkImportSmallFile is the per-file overhead a directory import of
// many small files pays: 4 KiB, hash only.
func BenchmarkImportSmallFile(b *testing.B) {
	data := benchData()[:4<<10]
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := content.ImportFile(context.Background(), bytes.NewReader(data), nil, content.ImportOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
