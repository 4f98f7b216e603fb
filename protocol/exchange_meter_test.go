package protocol

import (
	"context"
	"crypto/sha256"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoalnet/shoal/internal/p2ptest"
)

// exchangeMeter measures what one side of BenchmarkExchange costs while the
// transfer runs, and only then: wall time, the process's CPU time (user +
// system, from getrusage, so both ends of the exchange and every goroutine
// of the transport count) and the bytes the Go heap handed out. Setup
// (hosts, stores, connecting) happens between stop and the next start and
// is not counted; start runs a GC first, so garbage left by an earlier
// sub-benchmark is not collected on this one's account.
type exchangeMeter struct {
	wall      time.Duration
	cpu       time.Duration
	heapBytes uint64
	moved     int64 // payload bytes transferred

	t0   time.Time
	cpu0 time.Duration
	mem0 uint64
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(fmt.Sprintf("getrusage: %v", err))
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func heapAllocated() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

func (m *exchangeMeter) start() {
	runtime.GC()
	m.mem0 = heapAllocated()
	m.cpu0 = processCPU()
	m.t0 = time.Now()
}

func (m *exchangeMeter) stop(moved int64) {
	m.wall += time.Since(m.t0)
	m.cpu += processCPU() - m.cpu0
	m.heapBytes += heapAllocated() - m.mem0
	m.moved += moved
}

func (m *exchangeMeter) mbPerSec() float64 {
	return float64(m.moved) / 1e6 / m.wall.Seconds()
}

// cpuMsPerMiB is CPU milliseconds (both ends) per MiB moved.
func (m *exchangeMeter) cpuMsPerMiB() float64 {
	return float64(m.cpu) / 1e6 / (float64(m.moved) / (1 << 20))
}

// heapPerByte is bytes allocated on the Go heap per byte moved.
func (m *exchangeMeter) heapPerByte() float64 {
	return float64(m.heapBytes) / float64(m.moved)
}

// exchangeRefs holds the references measured earlier in the same run of
// BenchmarkExchange, per transport: every raw stream sample's throughput
// and CPU (with -count 3 the three raw samples run before the shoal ones;
// rows compare against their median), and the CPU of one sha256 over the
// same bytes.
type exchangeRefs struct {
	mu      sync.Mutex
	rawMBs  map[string][]float64
	rawCPU  map[string][]float64 // ms per MiB
	sha256  float64              // ms per MiB, one core
	haveSha bool
}

func newExchangeRefs() *exchangeRefs {
	return &exchangeRefs{rawMBs: map[string][]float64{}, rawCPU: map[string][]float64{}}
}

func medianOf(vs []float64) (float64, bool) {
	if len(vs) == 0 {
		return 0, false
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2], true
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2, true
}

// measureSha256 hashes size bytes, 1 MiB at a time as the exchange hashes
// its blocks, and returns CPU ms per MiB.
func measureSha256(size int) float64 {
	buf := benchData(1<<20, 3)
	var m exchangeMeter
	m.start()
	for done := 0; done < size; done += len(buf) {
		sum := sha256.Sum256(buf)
		buf[0] ^= sum[0] // keep the compiler from skipping the loop
	}
	m.stop(int64(size))
	return m.cpuMsPerMiB()
}

// reportRaw records and prints the raw stream's numbers, and the
// reference the issue sets for shoal: raw stream + one sha256 per byte.
func (r *exchangeRefs) reportRaw(b *testing.B, tr string, m *exchangeMeter) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.haveSha {
		r.sha256, r.haveSha = measureSha256(int(m.moved/int64(max(b.N, 1)))), true
	}
	r.rawMBs[tr] = append(r.rawMBs[tr], m.mbPerSec())
	r.rawCPU[tr] = append(r.rawCPU[tr], m.cpuMsPerMiB())
	b.ReportMetric(m.cpuMsPerMiB(), "cpu-ms/MiB")
	b.ReportMetric(r.sha256, "sha256-cpu-ms/MiB")
	b.ReportMetric(m.cpuMsPerMiB()+r.sha256, "ref-cpu-ms/MiB")
	b.ReportMetric(m.heapPerByte(), "heap-B/B")
}

// reportExchange prints a shoal or boxo row: CPU per MiB and heap bytes
// per byte moved, and, when the raw stream of this transport ran earlier
// in the same run, throughput as a fraction of raw's median and CPU as a
// multiple of the reference (raw's median CPU + sha256).
func (r *exchangeRefs) reportExchange(b *testing.B, tr string, m *exchangeMeter) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b.ReportMetric(m.cpuMsPerMiB(), "cpu-ms/MiB")
	b.ReportMetric(m.heapPerByte(), "heap-B/B")
	if raw, ok := medianOf(r.rawMBs[tr]); ok && raw > 0 {
		b.ReportMetric(m.mbPerSec()/raw, "x-raw-MB/s")
	}
	if raw, ok := medianOf(r.rawCPU[tr]); ok && r.haveSha {
		b.ReportMetric(m.cpuMsPerMiB()/(raw+r.sha256), "x-ref-cpu")
	}
}

// arenaStore is the leecher's store in BenchmarkExchange: it copies each
// block it is given into one arena allocated (and its pages touched)
// before the fetch, as a disk store copies each block into the page cache.
// So the fetch pays for one copy of every byte into the store, like a real
// store, but the Go heap allocates nothing per block on the store's side
// and what the benchmark's heap-B/B shows is the exchange's own
// allocation. The network reuses its frame buffers, so a store that kept
// the slice it is given would see it overwritten.
type arenaStore struct {
	*p2ptest.Blocks // Has, Get and GetSize; the bytes live in arena

	mu    sync.Mutex // serializes Put: the check, the copy into arena, Set
	arena []byte
}

func newArenaStore(capacity int64, blocks int) *arenaStore {
	a := make([]byte, capacity)
	for i := 0; i < len(a); i += 4096 {
		a[i] = 1 // fault the pages in now, not during the fetch
	}
	return &arenaStore{Blocks: p2ptest.NewBlocks(blocks), arena: a[:0]}
}

func (s *arenaStore) Put(ctx context.Context, c cid.Cid, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok, _ := s.Has(ctx, c); ok {
		return nil
	}
	if len(s.arena)+len(data) > cap(s.arena) {
		return fmt.Errorf("bench arena store full: %d of %d bytes used, block %s has %d", len(s.arena), cap(s.arena), c, len(data))
	}
	off := len(s.arena)
	s.arena = append(s.arena, data...)
	s.Set(c, s.arena[off:len(s.arena):len(s.arena)])
	return nil
}
