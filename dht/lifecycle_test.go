package dht

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func TestNewRejectsBadInput(t *testing.T) {
	if _, err := New(nil, DefaultConfig()); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New(nil host) = %v, want ErrInvalidConfig", err)
	}
	cfg := testConfig(t)
	cfg.Network = "kademlia"
	if _, err := New(newHost(t), cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New(bad network) = %v, want ErrInvalidConfig", err)
	}
}

func TestProvideSetPersists(t *testing.T) {
	ds := dssync.MutexWrap(datastore.NewMapDatastore())
	cfg := testConfig(t)
	cfg.Datastore = ds
	h := newHost(t)
	roots := []cid.Cid{testCID(t, "kept 1"), testCID(t, "kept 2"), testCID(t, "dropped")}

	r1, err := New(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Offline (never bootstrapped): roots are recorded, announced later.
	for _, c := range roots {
		if err := r1.Provide(context.Background(), c); err != nil {
			t.Fatalf("provide %s: %v", c, err)
		}
	}
	r1.StopProviding(roots[2])
	if st := r1.ProvideStatus(); st.Roots != 2 || st.Announced != 0 {
		t.Fatalf("status %+v, want 2 roots, none announced", st)
	}
	if err := r1.Close(); err != nil {
		t.Fatal(err)
	}

	r2, err := New(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	for i, want := range []bool{true, true, false} {
		if got := r2.IsProviding(roots[i]); got != want {
			t.Errorf("after restart IsProviding(root %d) = %v, want %v", i, got, want)
		}
	}
	if st := r2.ProvideStatus(); st.Roots != 2 {
		t.Fatalf("after restart %d roots, want 2", st.Roots)
	}
}

func TestClosedRouter(t *testing.T) {
	nd := newNode(t, testConfig(t))
	r := nd.r
	// First node of a fleet: nothing to bootstrap from, not an error.
	if err := r.Bootstrap(context.Background()); err != nil {
		t.Fatalf("bootstrap without peers: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	c := testCID(t, "after close")
	if err := r.Provide(context.Background(), c); !errors.Is(err, ErrClosed) {
		t.Fatalf("Provide after Close = %v, want ErrClosed", err)
	}
	if err := r.Start(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close = %v, want ErrClosed", err)
	}
	if err := r.Bootstrap(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Bootstrap after Close = %v, want ErrClosed", err)
	}
	if _, ok := <-r.FindProviders(context.Background(), c); ok {
		t.Fatal("FindProviders after Close returned a provider")
	}
	if st := r.ProvideStatus(); st.Connectivity != "closed" {
		t.Fatalf("status after Close: %+v", st)
	}
	r.StopProviding(c) // no panic, no effect
}

func TestProvideUndefinedCID(t *testing.T) {
	r := newUnstartedNode(t, testConfig(t)).r
	if err := r.Provide(context.Background(), cid.Undef); !errors.Is(err, ErrInvalidCID) {
		t.Fatalf("Provide(Undef) = %v, want ErrInvalidCID", err)
	}
	if _, ok := <-r.FindProviders(context.Background(), cid.Undef); ok {
		t.Fatal("FindProviders(Undef) returned a provider")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Provide(ctx, testCID(t, "x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Provide(cancelled ctx) = %v, want context.Canceled", err)
	}
}

func TestBootstrapUnreachable(t *testing.T) {
	dead := newHost(t)
	addr := addrString(t, dead)
	if err := dead.Close(); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.BootstrapPeers = []string{addr}
	r := newUnstartedNode(t, cfg).r
	if err := r.Bootstrap(context.Background()); !errors.Is(err, ErrNoBootstrapPeer) {
		t.Fatalf("Bootstrap to a closed peer = %v, want ErrNoBootstrapPeer", err)
	}
}

// TestIPFSNetworkConfig builds (but does not start) a router for the public
// IPFS DHT: kad-dht accepts the /ipfs settings and nothing is dialled.
func TestIPFSNetworkConfig(t *testing.T) {
	cfg := testConfig(t)
	cfg.Network = NetworkIPFS
	nd := newUnstartedNode(t, cfg)
	if nd.r.Network() != NetworkIPFS || len(nd.r.bootstrap) != 6 {
		t.Fatalf("network %q with %d bootstrap peers", nd.r.Network(), len(nd.r.bootstrap))
	}
	if got := nd.h.Network().Peers(); len(got) != 0 {
		t.Fatalf("unstarted router connected to %v", got)
	}
}

func TestRunClosesOnCancel(t *testing.T) {
	r := newUnstartedNode(t, testConfig(t)).r
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	if err := r.Provide(context.Background(), testCID(t, "run")); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil after cancel", err)
	}
	if err := r.Provide(context.Background(), testCID(t, "after run")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Provide after Run returned = %v, want ErrClosed", err)
	}
}

// TestBootstrapFromSelf: the bootstrap node of a fleet sharing one list
// finds itself in it and bootstraps as the first node, without waiting.
func TestBootstrapFromSelf(t *testing.T) {
	h := newHost(t)
	cfg := testConfig(t)
	cfg.BootstrapPeers = []string{addrString(t, h)}
	r, err := New(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Bootstrap(ctx); err != nil {
		t.Fatalf("Bootstrap from own address = %v, want nil", err)
	}
}

// TestBootstrapRetriesUntilPeerListens: a node whose bootstrap peer is not
// listening yet keeps retrying in the background and joins once it is.
func TestBootstrapRetriesUntilPeerListens(t *testing.T) {
	first := newNode(t, testConfig(t))
	addrs := first.h.Network().ListenAddresses()
	bootstrap := addrString(t, first.h)
	lc, ok := first.h.Network().(interface{ ListenClose(...ma.Multiaddr) })
	if !ok {
		t.Skip("the swarm cannot close its listeners")
	}
	lc.ListenClose(addrs...)
	cfg := testConfig(t)
	cfg.BootstrapPeers = []string{bootstrap}
	late := newNode(t, cfg)

	deadline := time.Now().Add(30 * time.Second)
	for late.r.bootstrapFailures.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no failed bootstrap attempt while the bootstrap peer was not listening")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if late.r.dht.RoutingTable().Size() != 0 {
		t.Fatal("routing table filled while the bootstrap peer was not listening")
	}
	if err := first.h.Network().Listen(addrs...); err != nil {
		t.Fatal(err)
	}
	for late.r.dht.RoutingTable().Find(first.h.ID()) == "" {
		if time.Now().After(deadline) {
			t.Fatalf("bootstrap peer not in the routing table 30 s after it listened again (%d failed attempts)",
				late.r.bootstrapFailures.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRejoinAfterBootstrapPeerLeftTable: two nodes whose routing tables
// still hold each other but no bootstrap peer (as after a network split,
// when lookups across it failed and kad-dht evicted the far side) bootstrap
// again. kad-dht alone re-dials bootstrap peers only when its table is
// empty, so without the rejoin check they would stay an island.
func TestRejoinAfterBootstrapPeerLeftTable(t *testing.T) {
	// No table refresh anywhere: a refresh's lookups would cross the split
	// by chance, and the test is about the time between refreshes (10 min
	// by default).
	noRefresh := []kaddht.Option{kaddht.DisableAutoRefresh()}
	bootCfg := testConfig(t)
	bootCfg.extraDHTOptions = noRefresh
	boot := newNode(t, bootCfg)
	cfg := testConfig(t)
	cfg.BootstrapPeers = []string{addrString(t, boot.h)}
	cfg.RejoinInterval = 200 * time.Millisecond
	cfg.extraDHTOptions = noRefresh
	island := []testNode{newNode(t, cfg), newNode(t, cfg)}
	for _, nd := range island {
		waitFor(t, 30*time.Second, "joined through the bootstrap peer", func() bool {
			return nd.r.dht.RoutingTable().Find(boot.h.ID()) != ""
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := island[0], island[1]
	if err := a.h.Connect(ctx, peer.AddrInfo{ID: b.h.ID(), Addrs: b.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the island's nodes in each other's tables", func() bool {
		return a.r.dht.RoutingTable().Find(b.h.ID()) != "" && b.r.dht.RoutingTable().Find(a.h.ID()) != ""
	})

	// The split: connections across it close and each side evicts the
	// other (closed first: removing a peer makes kad-dht re-add every peer
	// it is still connected to). A lookup still running from start-up (the
	// own-key lookup, the sweeping provider's network-size probes) may hold
	// the bootstrap peer as a candidate and dial it across the split; then
	// it came back without the rejoin, and the split is made again. A
	// rejoin check that does not work leaves the island alone once those
	// lookups end, and the wait below fails.
	const splits = 8
	for attempt := 1; ; attempt++ {
		before := a.r.rejoins.Load() + b.r.rejoins.Load()
		// Closed again at each check: such a lookup can dial the
		// bootstrap peer again right after a close.
		waitFor(t, 30*time.Second, "the split", func() bool {
			for _, nd := range island {
				if err := nd.h.Network().ClosePeer(boot.h.ID()); err != nil {
					t.Fatal(err)
				}
			}
			return a.h.Network().Connectedness(boot.h.ID()) != network.Connected &&
				b.h.Network().Connectedness(boot.h.ID()) != network.Connected
		})
		for _, nd := range island {
			nd.r.dht.RoutingTable().RemovePeer(boot.h.ID())
			boot.r.dht.RoutingTable().RemovePeer(nd.h.ID())
			// The bootstrap side cannot reach across either.
			boot.h.Peerstore().ClearAddrs(nd.h.ID())
		}
		if a.r.dht.RoutingTable().Size() == 0 {
			t.Fatal("the island's table is empty: kad-dht would re-dial on its own, the test proves nothing")
		}
		waitFor(t, 30*time.Second, "the bootstrap peer back in the island's tables", func() bool {
			return a.r.dht.RoutingTable().Find(boot.h.ID()) != "" && b.r.dht.RoutingTable().Find(boot.h.ID()) != ""
		})
		if a.r.rejoins.Load()+b.r.rejoins.Load() > before {
			return
		}
		if attempt == splits {
			t.Fatalf("the bootstrap peer came back without a rejoin after each of %d splits", splits)
		}
		t.Logf("split %d: the bootstrap peer came back without a rejoin (a lookup crossed the split); splitting again", attempt)
	}
}
