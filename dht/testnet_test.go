package dht

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	mh "github.com/multiformats/go-multihash"

	"github.com/shoalnet/shoal/internal/p2ptest"
)

// newHost starts a libp2p host on 127.0.0.1 over TCP only; the test closes it
// after the router (t.Cleanup runs last-registered first).
func newHost(tb testing.TB) host.Host {
	tb.Helper()
	return p2ptest.Host(tb, libp2p.Transport(tcp.NewTCPTransport), libp2p.DisableMetrics(),
		libp2p.ResourceManager(&network.NullResourceManager{}))
}

// addrString is h's first address with its peer ID, as a bootstrap entry.
func addrString(tb testing.TB, h host.Host) string {
	tb.Helper()
	return p2ptest.Addr(h)
}

// testLogger routes router logs to tb.Log.
func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) { w.tb.Log(string(p)); return len(p), nil }

// testConfig is DefaultConfig without mDNS, with a test logger.
func testConfig(tb testing.TB) Config {
	cfg := DefaultConfig()
	cfg.MDNS = false
	cfg.Logger = testLogger(tb)
	return cfg
}

// testNode is a host and its router.
type testNode struct {
	h host.Host
	r *Router
}

// newNode builds and starts a router on a fresh host; cleanup closes the
// router, then the host.
func newNode(tb testing.TB, cfg Config) testNode {
	tb.Helper()
	nd := newUnstartedNode(tb, cfg)
	if err := nd.r.Start(); err != nil {
		tb.Fatalf("start router: %v", err)
	}
	return nd
}

// newUnstartedNode is newNode without Start.
func newUnstartedNode(tb testing.TB, cfg Config) testNode {
	tb.Helper()
	h := newHost(tb)
	r, err := New(h, cfg)
	if err != nil {
		tb.Fatalf("new router: %v", err)
	}
	tb.Cleanup(func() {
		if err := r.Close(); err != nil {
			tb.Errorf("close router: %v", err)
		}
	})
	return testNode{h: h, r: r}
}

// newNetwork builds n server nodes that all bootstrap from node 0 and waits
// until each has at least minRT peers in its routing table. The nodes are
// not Started: the test calls Bootstrap itself, a few at a time, because the
// box running the tests may be loaded and a crowd of simultaneous handshakes
// to node 0 times out.
func newNetwork(tb testing.TB, n, minRT int, tweak func(*Config)) []testNode {
	tb.Helper()
	base := testConfig(tb)
	if tweak != nil {
		tweak(&base)
	}
	nodes := []testNode{newNode(tb, base)}
	cfg := base
	cfg.BootstrapPeers = []string{addrString(tb, nodes[0].h)}
	for range n - 1 {
		nodes = append(nodes, newUnstartedNode(tb, cfg))
	}
	start := time.Now()
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, nd := range nodes[1:] {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			var err error
			for range 3 {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err = nd.r.Bootstrap(ctx)
				cancel()
				if err == nil {
					return
				}
			}
			tb.Errorf("bootstrap %s: %v", nd.h.ID(), err)
		})
	}
	wg.Wait()
	tb.Logf("bootstrapped %d nodes in %v", n, time.Since(start))
	for i, nd := range nodes {
		waitFor(tb, time.Minute, fmt.Sprintf("node %d routing table ≥ %d", i, minRT), func() bool {
			return nd.r.Size() >= minRT
		})
	}
	tb.Logf("routing tables ≥ %d after %v", minRT, time.Since(start))
	return nodes
}

// waitFor polls cond until it holds or the deadline passes. Deadlines are
// generous failure bounds, not timing assertions.
func waitFor(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testCID is a CIDv1 raw of a sha2-256 over s.
func testCID(tb testing.TB, s string) cid.Cid {
	tb.Helper()
	h, err := mh.Sum([]byte(s), mh.SHA2_256, -1)
	if err != nil {
		tb.Fatal(err)
	}
	return cid.NewCidV1(cid.DagProtobuf, h)
}

// findProvider reports whether want arrives on a FindProviders stream of c.
func findProvider(tb testing.TB, r *Router, c cid.Cid, want peer.ID) bool {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for ai := range r.FindProviders(ctx, c) {
		if ai.ID == want {
			return true
		}
	}
	return false
}
