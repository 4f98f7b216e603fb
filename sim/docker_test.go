package sim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalnet/shoal/internal/dockercli"
	"github.com/shoalnet/shoal/node"
)

// TestDockerRunnerRefuses: what the docker runner cannot do is refused
// up front, naming it — no container is started.
func TestDockerRunnerRefuses(t *testing.T) {
	for plan, want := range map[string]string{"byzantine.toml": "byzantine nodes", "dht-lookup.toml": "lookup nodes"} {
		p := loadTestPlan(t, plan)
		_, err := RunDocker(context.Background(), p, DockerOptions{Image: "unused"})
		if !errors.Is(err, ErrPlan) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want ErrPlan naming %q", plan, err, want)
		}
	}
	p := loadTestPlan(t, "dht-lookup.toml")
	for i := range p.Groups {
		p.Groups[i].Role = RoleLeecher
	}
	p.Groups[0].Role = RoleSeeder
	if _, err := RunDocker(context.Background(), p, DockerOptions{Image: "unused"}); !errors.Is(err, ErrPlan) || !strings.Contains(err.Error(), "latency matrix") {
		t.Errorf("a latency matrix: err = %v, want ErrPlan naming it", err)
	}
}

// TestDaemonConfigMatchesProcess: the config.toml the docker runner
// gives every daemon loads (no unknown key, valid) and sets what the
// in-process runner sets on its nodes: the swarm extension (off only
// with PlainBitswap), the same number of sends in flight, QUIC only, no
// mDNS, no fsync, the simulated hosts' connection limits.
func TestDaemonConfigMatchesProcess(t *testing.T) {
	for _, opts := range []DockerOptions{{}, {PlainBitswap: true, SwarmAllPeers: true, MaxInflightSends: 32}} {
		home := t.TempDir()
		if err := os.WriteFile(filepath.Join(home, node.ConfigFile), []byte(daemonConfig(opts)), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := node.LoadConfig(home)
		if err != nil {
			t.Fatalf("%+v: the daemon would refuse its config: %v", opts, err)
		}
		want := simInflightSends
		if opts.MaxInflightSends > 0 {
			want = opts.MaxInflightSends
		}
		// What the same options give an in-process node.
		proc := node.DefaultConfig("")
		Options{PlainBitswap: opts.PlainBitswap, MaxInflightSends: opts.MaxInflightSends}.nodeEdit(&proc)
		if cfg.Transfer.MaxInflightSends != want || proc.Transfer.MaxInflightSends != want {
			t.Errorf("%+v: max_inflight_sends %d in the container, %d in process, want %d", opts, cfg.Transfer.MaxInflightSends, proc.Transfer.MaxInflightSends, want)
		}
		if proc.Network.SwarmExtension != cfg.Network.SwarmExtension {
			t.Errorf("%+v: swarm_extension %v in the container, %v in process", opts, cfg.Network.SwarmExtension, proc.Network.SwarmExtension)
		}
		if cfg.Network.SwarmExtension == opts.PlainBitswap {
			t.Errorf("%+v: swarm_extension = %v", opts, cfg.Network.SwarmExtension)
		}
		if cfg.Transfer.SwarmAllPeers != opts.SwarmAllPeers {
			t.Errorf("%+v: swarm_all_peers = %v", opts, cfg.Transfer.SwarmAllPeers)
		}
		if len(cfg.Network.Listen) != 1 || !strings.HasSuffix(cfg.Network.Listen[0], "/quic-v1") {
			t.Errorf("%+v: listen %v, want QUIC only, as the simulated hosts", opts, cfg.Network.Listen)
		}
		if cfg.Network.MDNS || cfg.Store.Sync {
			t.Errorf("%+v: mdns %v, sync %v: want both off", opts, cfg.Network.MDNS, cfg.Store.Sync)
		}
		if cfg.Resources.ConnsLow != simConnsLow || cfg.Resources.ConnsHigh != simConnsHigh {
			t.Errorf("%+v: conns %d/%d, want %d/%d", opts, cfg.Resources.ConnsLow, cfg.Resources.ConnsHigh, simConnsLow, simConnsHigh)
		}
	}
}

// dockerImage is the shoal image for the docker tests, built once per
// content; the test is skipped, saying why, where no Docker engine
// answers or links cannot be shaped (not root, no tc).
func dockerImage(t *testing.T, ctx context.Context) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds an image and starts containers; skipped with -short")
	}
	if err := dockercli.Available(ctx); err != nil {
		t.Skipf("skipping the docker runner test: %v", err)
	}
	if err := shapingAvailable(); err != nil {
		t.Skipf("skipping the docker runner test: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// The image the deploy tests use too.
	image, _, err := dockercli.CachedImage(ctx, root, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	return image
}

// TestDockerRunnerChurn runs the churn plan, shrunk, as containers: a
// seeder that leaves, leechers, churners killed mid-run, late joiners.
// Every fetcher that stays completes with the right bytes, the leaving
// nodes were killed, and the results are written as the in-process
// runner writes them. Skipped when no Docker engine answers.
func TestDockerRunnerChurn(t *testing.T) {
	ctx := testContext(t)
	image := dockerImage(t, ctx)

	p := loadTestPlan(t, "churn.toml").Scale(2, 4)
	var res *Results
	var prefix string
	err := runDocker(ctx, p, DockerOptions{Image: image, Logger: testLogger(t)}, func(d *dockerRun) {
		res = d.results()
		prefix = d.prefix
		// Every container, late joiners included, was up before the
		// plan's clock started, so no fetch begins late by a container's
		// start-up (it did by 3.5-6 s when late joiners started at their
		// join time); and none began before its join time.
		for _, n := range d.nodes {
			if n.upAt.IsZero() || !n.upAt.Before(d.start) {
				t.Errorf("%s: container up at %v, the plan's clock started at %v: want it up before", n.name, n.upAt, d.start)
			}
			if n.fetches() && n.res.FetchStartS < n.joinAt.Seconds() {
				t.Errorf("%s: fetch began at %.2f s, before its join time %.2f s", n.name, n.res.FetchStartS, n.joinAt.Seconds())
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range res.Nodes {
		t.Logf("%-18s %-12s completed=%-5v ok=%-5v %.2fs left=%.1fs up=%d down=%d err=%s", n.ID, n.Role, n.Completed, n.BytesOK, n.CompleteS, n.LeftS, n.BytesUp, n.BytesDown, n.Error)
		switch {
		case n.Role == RoleLeecher || n.Role == RoleLateJoiner:
			if !n.Completed || !n.BytesOK {
				t.Errorf("%s did not complete with the right bytes: %s", n.ID, n.Error)
			}
		}
		if n.Group == "seeder-leaving" || n.Role == RoleChurner {
			if n.LeftS == 0 {
				t.Errorf("%s should have been killed at its leave time", n.ID)
			}
		}
	}
	if res.Mode != "docker" || res.Root == "" || res.TMinS == nil {
		t.Errorf("results: mode %q, root %q, T_min %v", res.Mode, res.Root, res.TMinS)
	}
	out := t.TempDir()
	if err := res.WriteJSON(out); err != nil {
		t.Fatal(err)
	}
	if err := res.WriteReport(out); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"results.json", "report.html"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	// This run's containers only: another docker run (a second test
	// binary, a user's `shoal sim --runner docker`) may be going on.
	if left, _ := dockercli.Run(ctx, nil, "ps", "-a", "-q", "--filter", "name="+prefix+"-"); left != "" {
		t.Errorf("containers of run %s left behind: %s", prefix, left)
	}
}

// testContext is t's context, ending a minute before the test binary's
// deadline (-timeout): a docker run out of time then fails with what it
// waited for and still removes its containers, rather than the binary
// panicking with them left running.
func testContext(t *testing.T) context.Context {
	ctx := t.Context()
	if dl, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-time.Minute))
		t.Cleanup(cancel)
	}
	return ctx
}

// TestDockerLinkShaping shapes one container's link and checks, from the
// host, that the latency, the token buckets, the partition rules and the
// counters took effect. The latency check uses the real clock only as a
// lower bound that physics sets: a TCP handshake with the container
// cannot finish before its SYN and SYN-ACK have each been held for the
// link's latency, however slow the machine is (a slow machine only makes
// it longer), so the check cannot flake; without the delay it takes well
// under a millisecond here.
func TestDockerLinkShaping(t *testing.T) {
	ctx := testContext(t)
	image := dockerImage(t, ctx)
	name := fmt.Sprintf("shoalsim-linktest-%d", time.Now().UnixNano()%1e9)
	if _, err := dockercli.Run(ctx, nil, "network", "create", "--internal", name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = dockercli.Run(context.Background(), nil, "rm", "-f", "-v", name)
		_, _ = dockercli.Run(context.Background(), nil, "network", "rm", name)
	})
	if _, err := dockercli.Run(ctx, nil, "run", "-d", "--name", name, "--network", name, image, "daemon", "--no-mdns", "--log-level", "warn"); err != nil {
		t.Fatal(err)
	}
	l, err := attachLink(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	const latency = 40 * time.Millisecond
	if err := l.shape(ctx, 20, 30, latency); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = dockercli.Run(context.Background(), nil, "rm", "-f", "-v", name)
		if err := l.close(); err != nil {
			t.Errorf("the delayer failed: %v", err)
		}
	})
	// Both token buckets are in place with the link's rates.
	down, err := hostCmd(ctx, nil, "tc", "qdisc", "show", "dev", l.veth)
	if err != nil {
		t.Fatal(err)
	}
	up, err := l.inNetns(ctx, nil, "tc", "qdisc", "show", "dev", "eth0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(down, "tbf") || !strings.Contains(down, "rate 30Mbit") || !strings.Contains(up, "tbf") || !strings.Contains(up, "rate 20Mbit") {
		t.Errorf("qdiscs: host end %q, container end %q; want tbf at 30 and 20 Mbit/s", down, up)
	}

	gw, err := dockercli.Run(ctx, nil, "network", "inspect", "--format", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", name)
	if err != nil || gw == "" {
		t.Fatalf("the network's gateway (the host's address on it): %q, %v", gw, err)
	}
	addr := net.JoinHostPort(l.ip, "4040")
	handshake := func(timeout time.Duration) (time.Duration, error) {
		t0 := time.Now()
		c, err := net.DialTimeout("tcp", addr, timeout)
		if err != nil {
			return 0, err
		}
		took := time.Since(t0)
		c.Close()
		return took, nil
	}
	// The daemon listens once it has started.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := handshake(2 * time.Second); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the daemon in %s does not accept on %s: %v", name, addr, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	fastest := time.Hour
	for range 3 {
		took, err := handshake(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		fastest = min(fastest, took)
	}
	if fastest < 2*latency {
		t.Errorf("fastest TCP handshake with the container took %v: below 2 × %v, so its packets were not held", fastest, latency)
	}
	t.Logf("fastest handshake %v (2 × latency = %v)", fastest, 2*latency)
	// Every packet of those handshakes went through the delayer, which
	// counts how much later than the latency it let them go.
	if pk, mean, most := l.delay.Late(); pk < 3*4 || mean < 0 || most < mean {
		t.Errorf("delayer lateness: %d packets (want ≥ 12: 4 handshakes of ≥ 3 packets), mean %v, max %v", pk, mean, most)
	} else {
		t.Logf("delayer: %d packets held %v longer than the latency on average, %v at most", pk, mean, most)
	}

	// Partitioned from the host's address, the container answers nothing.
	if err := l.block(ctx, []string{gw}); err != nil {
		t.Fatal(err)
	}
	if _, err := handshake(time.Second); err == nil {
		t.Errorf("a handshake with %s got through the partition", addr)
	}
	if err := l.unblock(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := handshake(5 * time.Second); err != nil {
		t.Errorf("after the partition healed: %v", err)
	}

	sent, rcvd, err := l.counters()
	if err != nil || sent <= 0 || rcvd <= 0 {
		t.Errorf("counters: %d sent, %d received, %v", sent, rcvd, err)
	}
	rss, err := l.peakRSS()
	if err != nil || rss < 1<<20 {
		t.Errorf("peak RSS of the daemon: %d, %v", rss, err)
	}
}

// TestDockerRunnerShaped runs testdata/docker-shaped.toml as containers:
// every leecher completes with the right bytes, no sooner than its
// shaped 20 Mbit/s download allows, and the side split off from the
// seeder finishes only after the split heals. Both are lower bounds on
// the run's own (real) clock that physics sets, which a slow machine
// cannot break: without shaping 8 MiB cross the bridge in a fraction of
// a second, and without the partition side b finishes with the others.
func TestDockerRunnerShaped(t *testing.T) {
	ctx := testContext(t)
	image := dockerImage(t, ctx)
	p, err := LoadPlan(filepath.Join("testdata", "docker-shaped.toml"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := RunDocker(ctx, p, DockerOptions{Image: image, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	f := p.ContentBytes()
	// The download's token bucket starts full: its burst arrives at once.
	burst := int64(16 << 10)
	bound := float64(f-burst) * 8 / 20e6
	for _, n := range res.Nodes {
		t.Logf("%-10s %-7s completed=%-5v ok=%-5v start=%.2fs took=%.2fs up=%d down=%d mem=%d MiB err=%s",
			n.ID, n.Group, n.Completed, n.BytesOK, n.FetchStartS, n.CompleteS, n.BytesUp, n.BytesDown, n.PeakMemBytes>>20, n.Error)
		if n.PeakMemBytes < 1<<20 {
			t.Errorf("%s: peak memory %d bytes not recorded", n.ID, n.PeakMemBytes)
		}
		if n.Role != RoleLeecher {
			continue
		}
		if !n.Completed || !n.BytesOK {
			t.Errorf("%s did not complete with the right bytes: %s", n.ID, n.Error)
			continue
		}
		if n.CompleteS < bound {
			t.Errorf("%s fetched %d bytes in %.2f s: faster than its 20 Mbit/s link allows (%.2f s)", n.ID, f, n.CompleteS, bound)
		}
		if n.BytesDown < f {
			t.Errorf("%s: %d bytes down on its link, less than the %d bytes of content", n.ID, n.BytesDown, f)
		}
		if n.Group == "side-b" && n.FetchStartS+n.CompleteS < p.Partition.HealS {
			t.Errorf("%s finished %.2f s after the start, before the partition healed at %.0f s", n.ID, n.FetchStartS+n.CompleteS, p.Partition.HealS)
		}
	}
	if !res.Pass || res.Swarm == nil || res.Swarm.SeederCopies <= 0 || len(res.Samples) == 0 {
		t.Errorf("pass %v, swarm %+v, %d samples", res.Pass, res.Swarm, len(res.Samples))
	}
}
