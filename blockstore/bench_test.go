package blockstore

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Run: go test -run '^$' -bench . -benchtime 2s ./blockstore/
// (BenchmarkOpen builds 100k blocks first: SHOAL_BENCH_OPEN_BLOCKS overrides.)

var benchSizes = []int{4 << 10, 1 << 20}

func sizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}

// benchBlocks makes n distinct random blocks of one size, cheaply: one
// random buffer with a counter stamped in front.
func benchBlocks(n, size int) []block {
	base := make([]byte, size)
	rand.NewChaCha8([32]byte{1}).Read(base)
	out := make([]block, n)
	for i := range out {
		data := append([]byte(nil), base...)
		copy(data, strconv.Itoa(i)+"/")
		out[i] = rawBlock(data)
	}
	return out
}

type benchStore struct {
	name string
	open func(b *testing.B) Store
}

func benchStores(verify bool) []benchStore {
	disk := func(sync bool) func(b *testing.B) Store {
		return func(b *testing.B) Store {
			d, err := Open(Config{Dir: b.TempDir(), Sync: sync, VerifyOnRead: verify})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { d.Close() })
			return d
		}
	}
	return []benchStore{
		{"Memory", func(b *testing.B) Store { return NewMemory(Config{VerifyOnRead: verify}) }},
		{"Disk", disk(false)},
		{"DiskSync", disk(true)},
	}
}

// BenchmarkPut measures Put of new blocks, hash check included.
func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	for _, size := range benchSizes {
		for _, bs := range benchStores(false) {
			b.Run(sizeName(size)+"/"+bs.name, func(b *testing.B) {
				s := bs.open(b)
				n := min(b.N, 2000)
				blocks := benchBlocks(n, size)
				b.SetBytes(int64(size))
				b.ResetTimer()
				for i := range b.N {
					if i > 0 && i%n == 0 {
						b.StopTimer()
						if _, err := s.GC(ctx); err != nil {
							b.Fatal(err)
						}
						b.StartTimer()
					}
					blk := blocks[i%n]
					if err := s.Put(ctx, blk.c, blk.data); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkGet measures Get of stored blocks (page cache warm), with and
// without VerifyOnRead, and GetInto one reused buffer ("Into": how the
// block exchange's server reads the blocks it sends).
func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	for _, size := range benchSizes {
		for _, verify := range []bool{false, true} {
			for _, bs := range benchStores(verify)[:2] {
				for _, into := range []bool{false, true} {
					name := sizeName(size) + "/" + bs.name
					if verify {
						name += "Verify"
					}
					if into {
						name += "/Into"
					}
					b.Run(name, func(b *testing.B) {
						s := bs.open(b)
						blocks := benchBlocks(256, size)
						put(b, s, blocks...)
						dst := make([]byte, 0, size)
						b.SetBytes(int64(size))
						b.ResetTimer()
						for i := range b.N {
							var err error
							if c := blocks[i%len(blocks)].c; into {
								_, err = s.(getIntoer).GetInto(ctx, c, dst)
							} else {
								_, err = s.Get(ctx, c)
							}
							if err != nil {
								b.Fatal(err)
							}
						}
					})
				}
			}
		}
	}
}

// BenchmarkSHA256 is the reference: hashing is the floor of Put's cost.
func BenchmarkSHA256(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			data := make([]byte, size)
			b.SetBytes(int64(size))
			for range b.N {
				sha256.Sum256(data)
			}
		})
	}
}

// BenchmarkWriteFile is the reference for Disk.Put: a bare os.WriteFile
// of the same bytes, no temp file, rename or hash.
func BenchmarkWriteFile(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			dir := b.TempDir()
			data := make([]byte, size)
			b.SetBytes(int64(size))
			for i := range b.N {
				if err := os.WriteFile(filepath.Join(dir, strconv.Itoa(i%2000)), data, 0o600); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpen measures Disk's startup scan (index build) over a store
// of 100k 1 KiB blocks, built once. The scan reads every shard directory
// and stats every file; the page cache is warm, as after a quick restart.
// workers=1 against the default shows what listing shards in parallel
// buys (little when warm; it hides latency when the cache is cold).
func BenchmarkOpen(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("SHOAL_BENCH_OPEN_BLOCKS")); err == nil {
		n = v
	}
	dir := b.TempDir()
	s, err := Open(Config{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for _, blk := range benchBlocks(n, 1<<10) {
		put(b, s, blk)
	}
	b.Logf("built %d blocks in %v", n, time.Since(start))
	s.Close()
	for _, workers := range []int{1, scanWorkers} {
		b.Run(fmt.Sprintf("%dk/workers=%d", n/1000, workers), func(b *testing.B) {
			defer func(w int) { scanWorkers = w }(scanWorkers)
			scanWorkers = workers
			for range b.N {
				s, err := Open(Config{Dir: dir})
				if err != nil {
					b.Fatal(err)
				}
				if s.Stat().Blocks != n {
					b.Fatalf("opened %d blocks, want %d", s.Stat().Blocks, n)
				}
				s.Close()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/block")
		})
	}
}
