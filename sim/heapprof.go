package sim

import (
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"time"
)

// HeapProfileEnv names a file that a run writes a heap profile to at its
// peak (re-written each time heap + stacks in use grow by 5 %), for
// finding where a simulated node's memory goes (bench/sim.md):
//
//	SHOAL_SIM_HEAPPROF=/tmp/fc.heap shoal sim PLAN --out DIR
//	go tool pprof -sample_index=inuse_space -top shoal /tmp/fc.heap
//
// With it set, each profile written is also summed up on stderr:
// heap, stacks, goroutines and connections, in all and per node, and a
// goroutine profile of the same moment goes to the path + ".goroutine"
// (go tool pprof -top shoal PATH.goroutine: who owns the stacks).
const HeapProfileEnv = "SHOAL_SIM_HEAPPROF"

// writeHeapProfile writes the profile HeapProfileEnv asks for, if any.
func (r *run) writeHeapProfile() {
	path := os.Getenv(HeapProfileEnv)
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sim: heap profile: %v\n", err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		fmt.Fprintf(os.Stderr, "sim: heap profile %s: %v\n", path, err)
		return
	}
	if g, err := os.Create(path + ".goroutine"); err == nil {
		if err := pprof.Lookup("goroutine").WriteTo(g, 0); err != nil {
			fmt.Fprintf(os.Stderr, "sim: goroutine profile %s.goroutine: %v\n", path, err)
		}
		_ = g.Close()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(live)
	conns, nodes := 0, 0
	for _, sn := range r.nodes {
		sn.mu.Lock()
		if sn.sh != nil && !sn.left {
			nodes++
			conns += len(sn.sh.host.Network().Conns())
		}
		sn.mu.Unlock()
	}
	per := func(v uint64) float64 { return float64(v) / float64(max(nodes, 1)) / (1 << 20) }
	g := runtime.NumGoroutine()
	fmt.Fprintf(os.Stderr, "heap profile %s at t=%.0fs: %d nodes up; heap in use %d MiB (%.1f/node), live after last GC %d MiB, stacks %d MiB (%.1f/node); %d goroutines (%d/node), %d connections (%.1f/node)\n",
		path, time.Since(r.t0).Seconds(), nodes, ms.HeapInuse>>20, per(ms.HeapInuse), live[0].Value.Uint64()>>20, ms.StackInuse>>20, per(ms.StackInuse),
		g, g/max(nodes, 1), conns, float64(conns)/float64(max(nodes, 1)))
}
