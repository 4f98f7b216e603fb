package protocol

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/test"
	"github.com/shoalnet/shoal/internal/p2ptest"
)

// dialGate is a ClientNetwork whose Connect blocks until the test lets it
// fail, counting dials per peer and the most in flight at once.
type dialGate struct {
	self peer.ID

	mu       sync.Mutex
	dials    map[peer.ID]int
	inFlight int
	maxIn    int
	waiting  []chan struct{}
	arrived  chan struct{}
}

var errGateRefused = errors.New("gate: refused")

func (g *dialGate) Send(context.Context, peer.ID, *Message) error { return nil }
func (g *dialGate) ConnectedPeers() []peer.ID                     { return nil }
func (g *dialGate) Self() peer.ID                                 { return g.self }

func (g *dialGate) Connect(ctx context.Context, ai peer.AddrInfo) error {
	release := make(chan struct{})
	g.mu.Lock()
	g.dials[ai.ID]++
	g.inFlight++
	g.maxIn = max(g.maxIn, g.inFlight)
	g.waiting = append(g.waiting, release)
	g.mu.Unlock()
	g.arrived <- struct{}{}
	select {
	case <-release:
	case <-ctx.Done():
	}
	g.mu.Lock()
	g.inFlight--
	g.mu.Unlock()
	return errGateRefused
}

// releaseOne lets the oldest waiting dial fail.
func (g *dialGate) releaseOne() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.waiting) == 0 {
		return false
	}
	close(g.waiting[0])
	g.waiting = g.waiting[1:]
	return true
}

func randomPeers(t *testing.T, n int) []peer.AddrInfo {
	t.Helper()
	out := make([]peer.AddrInfo, n)
	for i := range out {
		id, err := test.RandPeerID()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = peer.AddrInfo{ID: id}
	}
	return out
}

func startGatedClient(t *testing.T, cfg ClientConfig) (*Client, *dialGate) {
	t.Helper()
	self, err := test.RandPeerID()
	if err != nil {
		t.Fatal(err)
	}
	g := &dialGate{self: self, dials: map[peer.ID]int{}, arrived: make(chan struct{}, 1024)}
	cfg.Links = clLinks
	c, err := NewClient(cfg, g, p2ptest.NewBlocks(0), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for g.releaseOne() {
		}
		c.Close()
	})
	return c, g
}

// syncLoop waits until the loop has run everything posted before it.
func (c *Client) syncLoop() {
	done := make(chan struct{})
	if c.post(func() { close(done) }) {
		<-done
	}
}

func testRoot(t *testing.T) cid.Cid {
	t.Helper()
	c, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: 0x12, MhLength: -1}.Sum([]byte("exchange root"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPeerExchangeDialsBounded: peer exchange dials at most DialConcurrency
// peers at once across messages, never a connected peer, each named peer
// once, and at most maxExchangeQueue waiting (oldest dropped).
func TestPeerExchangeDialsBounded(t *testing.T) {
	cfg := DefaultClientConfig()
	cfg.DialConcurrency = 4
	cfg.MaxExchangePeers = 1000
	c, g := startGatedClient(t, cfg)
	root := testRoot(t)

	connected := randomPeers(t, 10)
	for _, ai := range connected {
		c.PeerConnected(ai.ID)
	}
	first := append(randomPeers(t, 90), connected...)
	fresh := randomPeers(t, 60)
	second := append(append([]peer.AddrInfo{}, first[:30]...), fresh...) // 30 named twice
	c.AddProviders(root, first)
	c.AddProviders(root, second)
	c.syncLoop()

	// 90 + 60 distinct unconnected peers: 4 dial, 146 queue, the 18 oldest
	// are dropped past the queue's 128.
	want := 4 + maxExchangeQueue
	for i := 0; i < want; i++ {
		<-g.arrived
		if !g.releaseOne() {
			t.Fatalf("dial %d: none waiting", i)
		}
	}
	c.syncLoop()
	for g.releaseOne() {
	}
	c.syncLoop()

	g.mu.Lock()
	defer g.mu.Unlock()
	if g.maxIn > cfg.DialConcurrency {
		t.Errorf("%d exchange dials in flight at once, want <= DialConcurrency %d", g.maxIn, cfg.DialConcurrency)
	}
	total := 0
	for p, n := range g.dials {
		total += n
		if n != 1 {
			t.Errorf("peer %s dialled %d times, want once", p, n)
		}
	}
	for _, ai := range connected {
		if g.dials[ai.ID] != 0 {
			t.Errorf("connected peer %s was dialled", ai.ID)
		}
	}
	if total != want {
		t.Errorf("%d dials, want %d (DialConcurrency + maxExchangeQueue)", total, want)
	}
	for _, ai := range fresh[len(fresh)-10:] {
		if g.dials[ai.ID] != 1 {
			t.Errorf("newest exchanged peer %s not dialled (the oldest must be dropped first)", ai.ID)
		}
	}
	if got := c.exchangeDials.Load(); got != uint64(want) {
		t.Errorf("exchangeDials = %d, want %d", got, want)
	}
}

// TestPeerExchangeStopsAtMaxPeers: with MaxExchangePeers swarm peers
// connected, peer exchange dials no one.
func TestPeerExchangeStopsAtMaxPeers(t *testing.T) {
	for _, swarmPeers := range []int{2, 3} {
		t.Run(fmt.Sprint("swarm=", swarmPeers), func(t *testing.T) {
			cfg := DefaultClientConfig()
			cfg.MaxExchangePeers = 3
			c, g := startGatedClient(t, cfg)
			for _, ai := range randomPeers(t, swarmPeers) {
				c.PeerConnected(ai.ID)
				c.SetSwarmPeer(ai.ID, true)
			}
			c.AddProviders(testRoot(t), randomPeers(t, 20))
			c.syncLoop()
			wantDials := cfg.MaxExchangePeers - swarmPeers
			for i := 0; i < wantDials; i++ {
				<-g.arrived
			}
			c.syncLoop()
			if got := c.exchangeDials.Load(); got != uint64(wantDials) {
				t.Fatalf("%d swarm peers of MaxExchangePeers %d: %d exchange dials started, want %d", swarmPeers, cfg.MaxExchangePeers, got, wantDials)
			}
		})
	}
}
