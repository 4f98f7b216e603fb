package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// benchSize is the file size of the end-to-end benchmarks: 256 MiB, or
// SHOAL_BENCH_MIB.
func benchSize(b *testing.B) int {
	return positiveEnv(b, "SHOAL_BENCH_MIB", 256) << 20
}

// writeBenchFile writes size random-looking bytes (cheap to make: a
// counter hashed per 32 bytes) and returns the path and their sha256.
func writeBenchFile(b *testing.B, dir string, size int) (string, [32]byte) {
	b.Helper()
	path := filepath.Join(dir, "big.bin")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for off := 0; off < size; off += len(buf) {
		for i := 0; i < len(buf); i += 32 {
			sum := sha256.Sum256([]byte(strconv.Itoa(off + i)))
			copy(buf[i:], sum[:])
		}
		n := min(len(buf), size-off)
		if _, err := f.Write(buf[:n]); err != nil {
			b.Fatal(err)
		}
		h.Write(buf[:n])
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path, [32]byte(h.Sum(nil))
}

// rawStreamMBps is the reference: size bytes over one libp2p TCP stream
// between two in-process hosts on loopback (the transport shoal's daemons
// use, without Bitswap, store or API).
func rawStreamMBps(b *testing.B, size int) float64 {
	b.Helper()
	mk := func() host.Host {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = h.Close() })
		return h
	}
	src, dst := mk(), mk()
	done := make(chan int64, 1)
	dst.SetStreamHandler("/shoal-bench/raw", func(s network.Stream) {
		n, _ := io.Copy(io.Discard, s)
		_ = s.Close()
		done <- n
	})
	ctx := context.Background()
	if err := src.Connect(ctx, peer.AddrInfo{ID: dst.ID(), Addrs: dst.Addrs()}); err != nil {
		b.Fatal(err)
	}
	s, err := src.NewStream(ctx, dst.ID(), "/shoal-bench/raw")
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	start := time.Now()
	for sent := 0; sent < size; sent += len(buf) {
		if _, err := s.Write(buf[:min(len(buf), size-sent)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.CloseWrite(); err != nil {
		b.Fatal(err)
	}
	if n := <-done; n != int64(size) {
		b.Fatalf("raw stream carried %d bytes, want %d", n, size)
	}
	return float64(size) / 1e6 / time.Since(start).Seconds()
}

// peakRSSMiB is the daemon process's peak resident set (VmHWM).
func peakRSSMiB(b *testing.B, d *daemon) float64 {
	b.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		b.Fatalf("reading the daemon's peak RSS: %v", err)
	}
	for line := range strings.SplitSeq(string(st), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				b.Fatalf("VmHWM %q: %v", v, err)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmHWM in /proc status")
	return 0
}

// diskUsage is the bytes of the files under dir.
func diskUsage(b testing.TB, dir string) int64 {
	b.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, de os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := de.Info()
		if err != nil {
			return err
		}
		n += fi.Size()
		return nil
	})
	if err != nil {
		b.Fatalf("measuring %s: %v", dir, err)
	}
	return n
}

// ioWriteBytes is write_bytes of /proc/PID/io (0: this process, with the
// children it has waited for): bytes the process caused to be written to
// storage.
func ioWriteBytes(b *testing.B, pid int) int64 {
	b.Helper()
	p := "/proc/self/io"
	if pid != 0 {
		p = fmt.Sprintf("/proc/%d/io", pid)
	}
	st, err := os.ReadFile(p)
	if err != nil {
		b.Fatalf("reading disk writes: %v", err)
	}
	for line := range strings.SplitSeq(string(st), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				b.Fatalf("write_bytes %q: %v", v, err)
			}
			return n
		}
	}
	b.Fatalf("no write_bytes in %s", p)
	return 0
}

// fetchFile runs `shoal fetch CID -o out` on d and checks the bytes.
func fetchFile(b *testing.B, d *daemon, c, out string, want [32]byte) time.Duration {
	b.Helper()
	start := time.Now()
	d.cli("fetch", c, "-o", out)
	el := time.Since(start)
	f, err := os.Open(out)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		b.Fatal(err)
	}
	if [32]byte(h.Sum(nil)) != want {
		b.Fatalf("%s fetched into %s differs from what was shared", c, out)
	}
	return el
}

// BenchmarkDaemonFetch: end to end through real daemon processes and the
// CLI — `shoal fetch -o` of a 256 MiB file from 1 and from 3 seeding
// daemons over loopback TCP and QUIC, disk-backed stores, the API path and
// file writing included — against a raw libp2p TCP stream measured in the
// same run. It reports the leecher daemon's peak RSS too.
//
//	go test -run '^$' -bench BenchmarkDaemonFetch -benchtime 1x ./cmd/shoal/
func BenchmarkDaemonFetch(b *testing.B) {
	size := benchSize(b)
	dir := b.TempDir()
	path, want := writeBenchFile(b, dir, size)
	raw := rawStreamMBps(b, size)
	b.Logf("raw libp2p TCP stream: %.0f MB/s", raw)
	for _, seeders := range []int{1, 3} {
		b.Run(fmt.Sprintf("seeders=%d", seeders), func(b *testing.B) {
			var seeds []*daemon
			var c string
			for i := range seeders {
				d := startBenchDaemon(b, filepath.Join(b.TempDir(), fmt.Sprintf("seed%d", i)))
				c = lastLine(d.cli("share", path))
				seeds = append(seeds, d)
			}
			for range b.N {
				b.StopTimer()
				leech := startBenchDaemon(b, filepath.Join(b.TempDir(), "leech"))
				for _, s := range seeds {
					leech.cli("connect", s.addr)
				}
				out := filepath.Join(b.TempDir(), "got.bin")
				daemonW, cliW := ioWriteBytes(b, leech.cmd.Process.Pid), ioWriteBytes(b, 0)
				home0 := diskUsage(b, leech.home)
				roles := map[string]*daemon{"leech": leech}
				for i, s := range seeds {
					roles[fmt.Sprintf("seed%d", i)] = s
				}
				cpu0 := daemonsCPU(b, roles)
				wait := profileDaemons(b, roles)
				b.StartTimer()
				el := fetchFile(b, leech, c, out, want)
				b.StopTimer()
				cpu := daemonsCPU(b, roles)
				for r := range cpu {
					cpu[r] -= cpu0[r]
				}
				wait()
				// The CLI is reaped by now, so its writes are in this
				// process's counts (Linux adds a waited-for child's I/O).
				daemonW, cliW = ioWriteBytes(b, leech.cmd.Process.Pid)-daemonW, ioWriteBytes(b, 0)-cliW
				disk := float64(daemonW+cliW) / float64(size)
				homeMiB := float64(diskUsage(b, leech.home)-home0) / (1 << 20)
				mbps := float64(size) / 1e6 / el.Seconds()
				rss := peakRSSMiB(b, leech)
				b.ReportMetric(mbps, "MB/s")
				b.ReportMetric(mbps/raw, "of-raw")
				b.ReportMetric(rss, "peak-RSS-MiB")
				b.ReportMetric(disk, "disk-B/B")
				b.ReportMetric(homeMiB, "home-growth-MiB")
				mib := float64(size) / (1 << 20)
				seedCPU := 0.0
				for r, s := range cpu {
					if r != "leech" {
						seedCPU += s
					}
				}
				b.ReportMetric(1000*cpu["leech"]/mib, "leech-cpu-ms/MiB")
				b.ReportMetric(1000*seedCPU/mib, "seeders-cpu-ms/MiB")
				// What writing the file alone costs here, measured beside
				// it while it still holds its pages (after the timed part,
				// so it takes no pages the fetch could have reused).
				wref, wcpu := fileWriteRef(b, filepath.Dir(out), size)
				b.ReportMetric(wref, "file-write-ref-MB/s")
				b.Logf("CPU during the fetch (s): %s; writing %d MiB into a new file alone here: %.0f MB/s, %.2f cpu-ms/MiB",
					formatCPU(cpu, el), size>>20, wref, 1000*wcpu/mib)
				b.Logf("%d seeder(s): %.0f MB/s = %.2f of raw; leecher peak RSS %.0f MiB; disk written per byte fetched %.2f (daemon %d, CLI %d bytes); the leecher's home grew %.1f MiB",
					seeders, mbps, mbps/raw, rss, disk, daemonW, cliW, homeMiB)
				leech.stop()
				b.StartTimer()
			}
		})
	}
}

// BenchmarkDaemonServeThree: one seeding daemon serves the 256 MiB file to
// three leeching daemons at once; reports the aggregate rate and the
// seeder's peak RSS (which includes importing the file).
//
//	go test -run '^$' -bench BenchmarkDaemonServeThree -benchtime 1x ./cmd/shoal/
func BenchmarkDaemonServeThree(b *testing.B) {
	size := benchSize(b)
	path, want := writeBenchFile(b, b.TempDir(), size)
	seed := startBenchDaemon(b, filepath.Join(b.TempDir(), "seed"))
	c := lastLine(seed.cli("share", path))
	for range b.N {
		b.StopTimer()
		var leeches []*daemon
		for i := range 3 {
			l := startBenchDaemon(b, filepath.Join(b.TempDir(), fmt.Sprintf("leech%d", i)))
			l.cli("connect", seed.addr)
			leeches = append(leeches, l)
		}
		roles := map[string]*daemon{"seed": seed}
		for i, l := range leeches {
			roles[fmt.Sprintf("leech%d", i)] = l
		}
		cpu0 := daemonsCPU(b, roles)
		wait := profileDaemons(b, roles)
		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		for i, l := range leeches {
			wg.Go(func() { fetchFile(b, l, c, filepath.Join(b.TempDir(), fmt.Sprintf("got%d", i)), want) })
		}
		wg.Wait()
		el := time.Since(start)
		b.StopTimer()
		cpu := daemonsCPU(b, roles)
		for r := range cpu {
			cpu[r] -= cpu0[r]
		}
		wait()
		b.Logf("CPU during the fetches (s): %s", formatCPU(cpu, el))
		b.Logf("MiB served / received: %s", servedReceived(b, roles))
		agg := 3 * float64(size) / 1e6 / el.Seconds()
		rss := peakRSSMiB(b, seed)
		b.ReportMetric(agg, "MB/s-aggregate")
		b.ReportMetric(rss, "seeder-peak-RSS-MiB")
		b.Logf("served 3 × %d MiB in %v: %.0f MB/s aggregate; seeder peak RSS %.0f MiB", size>>20, el.Round(time.Millisecond), agg, rss)
		for _, l := range leeches {
			l.stop()
		}
		b.StartTimer()
	}
}

// BenchmarkGatewayTTFB: time to the first byte of a gateway response, for
// a file the daemon stores and for one held only by a connected peer,
// against the time to the first byte of a static file from net/http on
// the same loopback (the floor of any HTTP answer here).
// SHOAL_BENCH_TTFB_SAMPLES sets the samples (30); with SHOAL_BENCH_PPROF
// both daemons are profiled over them.
//
//	go test -run '^$' -bench BenchmarkGatewayTTFB -benchtime 1x ./cmd/shoal/
func BenchmarkGatewayTTFB(b *testing.B) {
	dir := b.TempDir()
	seed := startBenchDaemon(b, filepath.Join(dir, "seed"))
	leech := startBenchDaemon(b, filepath.Join(dir, "leech"))
	leech.cli("connect", seed.addr)
	if seed.gateway == "" || leech.gateway == "" {
		b.Fatal("a daemon did not print its gateway address")
	}
	file := func(name string, n int) string {
		p := filepath.Join(dir, name)
		data := bytes.Repeat([]byte(name), n/len(name))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
		return p
	}
	stored := lastLine(seed.cli("share", file("stored", 4<<20)))

	ttfb := func(url string) time.Duration {
		start := time.Now()
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		one := make([]byte, 1)
		if _, err := io.ReadFull(resp.Body, one); err != nil {
			b.Fatalf("GET %s: %s, %v", url, resp.Status, err)
		}
		el := time.Since(start)
		_, _ = io.Copy(io.Discard, resp.Body)
		return el
	}
	median := func(ds []time.Duration) time.Duration {
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	static := httpFloor(b, file("static", 4<<20))

	samples := positiveEnv(b, "SHOAL_BENCH_TTFB_SAMPLES", 30)
	for range b.N {
		wait := profileDaemons(b, map[string]*daemon{"seed": seed, "leech": leech})
		var floor, local, remote []time.Duration
		for i := range samples {
			floor = append(floor, ttfb(static))
			local = append(local, ttfb(seed.gateway+"/ipfs/"+stored))
			// Each remote sample is content the leecher has never seen.
			c := lastLine(seed.cli("share", file(fmt.Sprintf("remote%03d", i), 1<<20)))
			remote = append(remote, ttfb(leech.gateway+"/ipfs/"+c))
		}
		wait()
		f, l, r := median(floor), median(local), median(remote)
		b.ReportMetric(float64(l.Microseconds())/1000, "ms-TTFB-stored")
		b.ReportMetric(float64(r.Microseconds())/1000, "ms-TTFB-peer")
		b.ReportMetric(float64(f.Microseconds())/1000, "ms-TTFB-net/http")
		b.Logf("median TTFB over %d: stored %v, held by a connected peer %v, net/http static file %v",
			samples, l, r, f)
	}
}

// httpFloor serves path with net/http's file server and returns its URL.
func httpFloor(b *testing.B, path string) string {
	b.Helper()
	srv := &http.Server{Handler: http.FileServer(http.Dir(filepath.Dir(path)))}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + "/" + filepath.Base(path)
}
