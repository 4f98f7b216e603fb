package main

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoalnet/shoal/node"
)

// The end-to-end benchmarks' daemons are separate processes; with
//
//	SHOAL_BENCH_PPROF=DIR
//
// each timed fetch is profiled in every daemon that takes part, through
// the daemon's own /debug/pprof/ endpoint (web.NewSite), into
// DIR/<benchmark>-<role>.<kind>. SHOAL_BENCH_PPROF_KIND picks the
// profile: "profile" (CPU, the default) or "trace" (the execution
// tracer: blocking, syscalls, scheduling); SHOAL_BENCH_PPROF_SECONDS how
// long it runs (default 5: longer than a 256 MiB fetch here, and a CPU
// profile gains no samples while the daemon idles afterwards).
//
//	SHOAL_BENCH_PPROF=/tmp/prof go test -run '^$' -bench 'BenchmarkDaemonFetch/seeders=1' -benchtime 1x ./cmd/shoal/
//	go tool pprof -top /tmp/prof/DaemonFetch_seeders=1-leech.profile
//	go tool trace /tmp/prof/DaemonFetch_seeders=1-leech.trace
const benchPprofEnv = "SHOAL_BENCH_PPROF"

// profileDaemons starts a profile of each daemon (by role name) when
// SHOAL_BENCH_PPROF is set; the returned func waits for them to be
// written. Without the variable it does nothing.
func profileDaemons(b *testing.B, ds map[string]*daemon) (wait func()) {
	b.Helper()
	dir := os.Getenv(benchPprofEnv)
	if dir == "" {
		return func() {}
	}
	kind := os.Getenv(benchPprofEnv + "_KIND")
	if kind == "" {
		kind = "profile"
	}
	if kind != "profile" && kind != "trace" {
		b.Fatalf("%s_KIND=%q: want profile or trace", benchPprofEnv, kind)
	}
	secs := positiveEnv(b, benchPprofEnv+"_SECONDS", 5)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	name := strings.NewReplacer("/", "_", "Benchmark", "").Replace(b.Name())
	var wg sync.WaitGroup
	errs := make(chan error, len(ds))
	for role, d := range ds {
		api, err := os.ReadFile(filepath.Join(d.home, APIFile))
		if err != nil {
			b.Fatalf("the %s daemon's API address: %v", role, err)
		}
		url := fmt.Sprintf("%s/debug/pprof/%s?seconds=%d", strings.TrimSpace(string(api)), kind, secs)
		out := filepath.Join(dir, fmt.Sprintf("%s-%s.%s", name, role, kind))
		wg.Go(func() {
			errs <- fetchProfile(url, out)
		})
	}
	return func() {
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				b.Error(err)
			}
		}
	}
}

func fetchProfile(url, out string) error {
	resp, err := http.Get(url)
	if err != nil {
		return fmt.Errorf("profiling: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("profiling: GET %s: %s: %s", url, resp.Status, msg)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("profiling into %s: %w", out, err)
	}
	return f.Close()
}

// daemonsCPU is each daemon's CPU time so far (user + system, from
// /proc/PID/stat), in seconds.
func daemonsCPU(b *testing.B, ds map[string]*daemon) map[string]float64 {
	b.Helper()
	cpu := make(map[string]float64, len(ds))
	for role, d := range ds {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.cmd.Process.Pid))
		if err != nil {
			b.Fatalf("reading the %s daemon's CPU time: %v", role, err)
		}
		// Fields after the command name (which may hold spaces) in ")".
		i := strings.LastIndexByte(string(st), ')')
		f := strings.Fields(string(st[i+1:]))
		if len(f) < 13 {
			b.Fatalf("/proc/%d/stat: %q", d.cmd.Process.Pid, st)
		}
		utime, err1 := strconv.ParseFloat(f[11], 64)
		stime, err2 := strconv.ParseFloat(f[12], 64)
		if err1 != nil || err2 != nil {
			b.Fatalf("/proc/%d/stat: utime %q stime %q", d.cmd.Process.Pid, f[11], f[12])
		}
		cpu[role] = (utime + stime) / clockTicks
	}
	return cpu
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on
// every Linux this runs on.
const clockTicks = 100

// formatCPU lists each role's CPU seconds and its share of one core over el.
func formatCPU(cpu map[string]float64, el time.Duration) string {
	roles := slices.Sorted(maps.Keys(cpu))
	var parts []string
	for _, r := range roles {
		parts = append(parts, fmt.Sprintf("%s %.2f (%.0f %% of a core)", r, cpu[r], 100*cpu[r]/el.Seconds()))
	}
	return strings.Join(parts, ", ")
}

// startBenchDaemon is startDaemon for the benchmarks, with
// SHOAL_BENCH_SWARM_EXTENSION=false (or true) writing
// network.swarm_extension into the new home's config first: whether the
// extension is what a number depends on; and SHOAL_BENCH_CACHE_FETCHED=true
// (or false) writing transfer.cache_fetched_files: whether dropping a
// fetched file's pages from the page cache is.
func startBenchDaemon(b *testing.B, home string) *daemon {
	b.Helper()
	ext, extSet := benchBool(b, "SHOAL_BENCH_SWARM_EXTENSION")
	keep, keepSet := benchBool(b, "SHOAL_BENCH_CACHE_FETCHED")
	if extSet || keepSet {
		if err := ensureHome(home, io.Discard); err != nil {
			b.Fatal(err)
		}
		cfg, err := node.LoadConfig(home)
		if err != nil {
			b.Fatal(err)
		}
		if extSet {
			cfg.Network.SwarmExtension = ext
		}
		if keepSet {
			cfg.Transfer.CacheFetchedFiles = keep
		}
		if err := node.WriteConfig(cfg); err != nil {
			b.Fatal(err)
		}
	}
	return startDaemon(b, home)
}

// benchBool is the environment variable name as a bool, and whether it is set.
func benchBool(b *testing.B, name string) (v, set bool) {
	b.Helper()
	s := os.Getenv(name)
	if s == "" {
		return false, false
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		b.Fatalf("%s=%q: want true or false", name, s)
	}
	return v, true
}

// servedReceived lists the block MiB each daemon sent to peers and
// received from them (duplicates included), from its metrics.
func servedReceived(b *testing.B, ds map[string]*daemon) string {
	b.Helper()
	var parts []string
	for _, r := range slices.Sorted(maps.Keys(ds)) {
		d := ds[r]
		parts = append(parts, fmt.Sprintf("%s %.0f / %.0f", r,
			daemonMetric(b, d, "shoal_served_bytes_total")/(1<<20),
			daemonMetric(b, d, "shoal_received_block_bytes_total")/(1<<20)))
	}
	return strings.Join(parts, ", ")
}

// fileWriteRef writes size bytes into a new file in dir as WriteFile
// does (sized first, 1 MiB at their offsets, synced at the end) and
// returns the rate and the CPU seconds it took, then removes the file.
// On a virtual machine whose memory the host backs on first touch, page
// cache never used before costs far more CPU than recycled pages, and a
// fetch into a file pays it as this does; the raw-stream reference
// writes nothing.
func fileWriteRef(b *testing.B, dir string, size int) (mbps, cpuSec float64) {
	b.Helper()
	f, err := os.CreateTemp(dir, "write-ref-*")
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	cpu0 := selfCPU(b)
	start := time.Now()
	if err := f.Truncate(int64(size)); err != nil {
		b.Fatal(err)
	}
	for off := 0; off < size; off += len(buf) {
		if _, err := f.WriteAt(buf[:min(len(buf), size-off)], int64(off)); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	el := time.Since(start)
	return float64(size) / 1e6 / el.Seconds(), selfCPU(b) - cpu0
}

// selfCPU is this process's CPU time so far, in seconds.
func selfCPU(b *testing.B) float64 {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// positiveEnv is the positive whole number in the environment variable
// name, def when it is unset.
func positiveEnv(b *testing.B, name string, def int) int {
	b.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive whole number", name, s)
	}
	return n
}
