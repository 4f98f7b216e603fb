package dht

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Every goroutine of routers and hosts must be gone once all are closed;
	// no libp2p internals needed an exception.
	goleak.VerifyTestMain(m)
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	tests := []struct {
		name   string
		modify func(*Config)
		valid  bool
	}{
		{"default", func(*Config) {}, true},
		{"ipfs", func(c *Config) { c.Network = NetworkIPFS }, true},
		{"client", func(c *Config) { c.Mode = ModeClient }, true},
		{"bootstrap", func(c *Config) {
			c.BootstrapPeers = []string{"/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8"}
		}, true},
		{"unknown network", func(c *Config) { c.Network = "" }, false},
		{"unknown mode", func(c *Config) { c.Mode = 7 }, false},
		{"bootstrap without peer id", func(c *Config) { c.BootstrapPeers = []string{"/ip4/127.0.0.1/tcp/4001"} }, false},
		{"bootstrap garbage", func(c *Config) { c.BootstrapPeers = []string{"not an addr"} }, false},
		{"zero reprovide", func(c *Config) { c.ReprovideInterval = 0 }, false},
		{"one worker", func(c *Config) { c.ProvideWorkers = 1 }, false},
		{"zero conns", func(c *Config) { c.ProvideConnsPerWorker = 0 }, false},
		{"zero bucket", func(c *Config) { c.BucketSize = 0 }, false},
		{"ipfs small bucket", func(c *Config) { c.Network = NetworkIPFS; c.BucketSize = 8 }, false},
		{"shoal small bucket", func(c *Config) { c.BucketSize = 8 }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.modify(&c)
			err := c.Validate()
			if tt.valid && err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
			if !tt.valid && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestConfigNetworkDefaults(t *testing.T) {
	c := DefaultConfig()
	if c.protocolPrefix() != "/shoal" || c.mdnsServiceName() != DefaultShoalMDNSService || len(c.bootstrapPeers()) != 0 {
		t.Fatalf("shoal defaults: prefix %s, mdns %s, %d bootstrap peers", c.protocolPrefix(), c.mdnsServiceName(), len(c.bootstrapPeers()))
	}
	c.Network = NetworkIPFS
	if c.protocolPrefix() != "/ipfs" || c.mdnsServiceName() != DefaultIPFSMDNSService {
		t.Fatalf("ipfs defaults: prefix %s, mdns %s", c.protocolPrefix(), c.mdnsServiceName())
	}
	// The public list has 5 distinct peers (one with two addresses).
	if got := len(c.bootstrapPeers()); got != 6 {
		t.Fatalf("ipfs bootstrap peers = %d, want 6", got)
	}
	c.BootstrapPeers = []string{"/ip4/127.0.0.1/tcp/1/p2p/12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8"}
	if got := c.bootstrapPeers(); len(got) != 1 {
		t.Fatalf("explicit bootstrap peers replaced by %d", len(got))
	}
}

func TestParseAddrInfosMergesPeer(t *testing.T) {
	const id = "12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8"
	ais, err := ParseAddrInfos([]string{"/ip4/127.0.0.1/tcp/1/p2p/" + id, "/ip4/127.0.0.1/udp/1/quic-v1/p2p/" + id})
	if err != nil {
		t.Fatal(err)
	}
	if len(ais) != 1 || ais[0].ID.String() != id || len(ais[0].Addrs) != 2 {
		t.Fatalf("got %v, want one peer %s with 2 addrs", ais, id)
	}
}

// TestNetwork runs one in-process network of 16 servers bootstrapped from
// node 0, plus a client, and checks routing, providing and finding.
func TestNetwork(t *testing.T) {
	const n = 16
	// A short reprovide interval lets the test watch a reprovide happen.
	const reprovide = 12 * time.Second
	nodes := newNetwork(t, n, 5, func(c *Config) { c.ReprovideInterval = reprovide })

	t.Run("routing tables", func(t *testing.T) {
		for i, nd := range nodes {
			sum := 0
			for _, b := range nd.r.RoutingTable() {
				sum += b.Peers
			}
			if sum != nd.r.Size() {
				t.Errorf("node %d: buckets sum to %d, Size() = %d", i, sum, nd.r.Size())
			}
			if nd.r.Mode() != ModeServer {
				t.Errorf("node %d mode %v", i, nd.r.Mode())
			}
		}
		// Servers learn about each other beyond the bootstrap node.
		if got := nodes[n-1].r.Size(); got < n/3 {
			t.Errorf("last node knows %d peers, want ≥ %d", got, n/3)
		}
	})

	a, z := nodes[3], nodes[n-1]
	root := testCID(t, "root provided by A")

	t.Run("provide and find", func(t *testing.T) {
		if err := a.r.Provide(context.Background(), root); err != nil {
			t.Fatal(err)
		}
		if !a.r.IsProviding(root) {
			t.Fatal("root not in provide set after Provide")
		}
		waitFor(t, time.Minute, "A's root announced", func() bool {
			_, ok := a.r.LastProvided(root)
			return ok
		})
		at, _ := a.r.LastProvided(root)
		st := a.r.ProvideStatus()
		if st.Roots != 1 || st.Announced != 1 || !st.OldestAnnouncement.Equal(at) || st.Connectivity != "online" {
			t.Fatalf("status %+v, want 1 root announced at %v, online", st, at)
		}
		if st.RecordsSent < 1 {
			t.Fatalf("status %+v: no records sent", st)
		}
		if !findProvider(t, z.r, root, a.h.ID()) {
			t.Fatalf("Z did not find A (%s) as provider of %s", a.h.ID(), root)
		}
		// A does not report itself.
		if findProvider(t, a.r, root, a.h.ID()) {
			t.Fatal("FindProviders on A returned A itself")
		}
		// Providing again keeps the first announcement time.
		if err := a.r.Provide(context.Background(), root); err != nil {
			t.Fatal(err)
		}
		if again, _ := a.r.LastProvided(root); !again.Equal(at) && again.Before(at) {
			t.Fatalf("re-Provide moved last announcement back: %v → %v", at, again)
		}
	})

	t.Run("reprovide", func(t *testing.T) {
		first, ok := a.r.LastProvided(root)
		if !ok {
			t.Fatal("root not announced")
		}
		waitFor(t, 4*reprovide, "reprovide of A's root", func() bool {
			last, _ := a.r.LastProvided(root)
			return last.After(first)
		})
		if st := a.r.ProvideStatus(); st.Regions < 1 || st.NextReprovide.IsZero() {
			t.Fatalf("status %+v: no reprovide schedule", st)
		}
	})

	t.Run("stop providing", func(t *testing.T) {
		a.r.StopProviding(root)
		if a.r.IsProviding(root) {
			t.Fatal("root still in provide set")
		}
		if _, ok := a.r.LastProvided(root); ok {
			t.Fatal("LastProvided still reports a stopped root")
		}
		if st := a.r.ProvideStatus(); st.Roots != 0 || st.Announced != 0 {
			t.Fatalf("status %+v after StopProviding, want 0 roots", st)
		}
		// Gone from the keystore too, so the reprovide sweep skips it.
		keys, err := a.r.keys.Get(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if string(k) == string(root.Hash()) {
				t.Fatal("stopped root still in the reprovide keystore")
			}
		}
	})

	t.Run("many roots", func(t *testing.T) {
		b := nodes[5]
		const m = 50
		var roots []cid.Cid
		for i := range m {
			c := testCID(t, fmt.Sprintf("batch root %d", i))
			if err := b.r.Provide(context.Background(), c); err != nil {
				t.Fatal(err)
			}
			roots = append(roots, c)
		}
		waitFor(t, time.Minute, "all roots announced", func() bool {
			return b.r.ProvideStatus().Announced == m
		})
		for _, i := range []int{0, m / 2, m - 1} {
			if !findProvider(t, z.r, roots[i], b.h.ID()) {
				t.Fatalf("Z did not find B as provider of root %d", i)
			}
		}
	})

	t.Run("client mode", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.Mode = ModeClient
		cfg.BootstrapPeers = []string{addrString(t, nodes[0].h)}
		// Start alone bootstraps (in the background).
		c := newNode(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		waitFor(t, time.Minute, "client routing table", func() bool { return c.r.Size() >= 4 })
		b := nodes[7]
		croot := testCID(t, "root for the client")
		if err := b.r.Provide(ctx, croot); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "B's root announced", func() bool {
			_, ok := b.r.LastProvided(croot)
			return ok
		})
		if !findProvider(t, c.r, croot, b.h.ID()) {
			t.Fatal("client did not find B")
		}
		if c.r.Mode() != ModeClient {
			t.Fatalf("mode %v", c.r.Mode())
		}
		// Servers were connected to by the client, yet none keeps it.
		connected := 0
		for i, nd := range nodes {
			if nd.h.Network().Connectedness(c.h.ID()) == network.Connected {
				connected++
			}
			if slices.Contains(nd.r.Peers(), c.h.ID()) {
				t.Errorf("server %d has the client in its routing table", i)
			}
		}
		if connected == 0 {
			t.Fatal("client is connected to no server; the check above proves nothing")
		}
	})
}
