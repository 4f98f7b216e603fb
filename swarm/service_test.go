package swarm

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/libp2p/go-libp2p/p2p/transport/quicreuse.(*reuse).gc"),
		goleak.IgnoreTopFunction("github.com/libp2p/go-libp2p/p2p/host/resource-manager.(*resourceManager).background"),
		goleak.IgnoreAnyFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
	)
}

// staticLocal holds a fixed map per root.
type staticLocal map[cid.Cid][]Segment

func (l staticLocal) Map(_ context.Context, root cid.Cid) (bool, []Segment) {
	segs, ok := l[root]
	return ok && segs == nil, segs
}

// recorder keeps what Events hears.
type recorder struct {
	mu     sync.Mutex
	swarm  map[peer.ID]bool
	maps   map[cid.Cid][]Segment
	full   map[cid.Cid]bool
	haves  []cid.Cid
	choked map[peer.ID]bool
	peers  []peer.AddrInfo
	wake   chan struct{}
}

func newRecorder() *recorder {
	return &recorder{swarm: map[peer.ID]bool{}, maps: map[cid.Cid][]Segment{}, full: map[cid.Cid]bool{},
		choked: map[peer.ID]bool{}, wake: make(chan struct{}, 1)}
}

func (r *recorder) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *recorder) SwarmPeer(p peer.ID, yes bool) {
	r.mu.Lock()
	r.swarm[p] = yes
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) PeerMap(_ peer.ID, root cid.Cid, complete bool, segs []Segment) {
	r.mu.Lock()
	r.maps[root] = segs
	r.full[root] = complete
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) PeerHaves(_ peer.ID, _ cid.Cid, cids []cid.Cid) {
	r.mu.Lock()
	r.haves = append(r.haves, cids...)
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) PeerChoked(p peer.ID, choked bool) {
	r.mu.Lock()
	r.choked[p] = choked
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) PeersFor(_ cid.Cid, peers []peer.AddrInfo) {
	r.mu.Lock()
	r.peers = append(r.peers, peers...)
	r.mu.Unlock()
	r.poke()
}

// waitFor polls cond (under r.mu) until it holds.
func (r *recorder) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.wake:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// fakeChoker is a Choker whose decisions the test makes.
type fakeChoker struct {
	mu    sync.Mutex
	peers map[peer.ID]bool
	fn    func(peer.ID, bool)
}

func (c *fakeChoker) SetSwarmPeer(p peer.ID, yes bool) {
	c.mu.Lock()
	c.peers[p] = yes
	c.mu.Unlock()
}
func (c *fakeChoker) OnChoke(fn func(peer.ID, bool)) { c.fn = fn }
func (c *fakeChoker) Choking(peer.ID) bool           { return false }

func newTestHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func newTestService(t *testing.T, h host.Host, l Local, ev Events, ch Choker) *Service {
	t.Helper()
	s, err := New(h, DefaultConfig(), l, ev, ch)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { s.Close() })
	return s
}

// TestServiceMapsHavesChokeAndExchange: a fetcher asks two holders for
// their maps, gets one HAVE batch for many verified blocks, hears a choke,
// and learns of the other holder by peer exchange from the first.
func TestServiceMapsHavesChokeAndExchange(t *testing.T) {
	root := testCID(t, "svc-root")
	seg := []Segment{{Parent: root, Bits: []byte{0x05}}}
	hs, hp, hf := newTestHost(t), newTestHost(t), newTestHost(t)
	seedRec, partRec, fetchRec := newRecorder(), newRecorder(), newRecorder()
	choker := &fakeChoker{peers: map[peer.ID]bool{}}
	seed := newTestService(t, hs, staticLocal{root: nil}, seedRec, choker)
	part := newTestService(t, hp, staticLocal{root: seg}, partRec, nil)
	fetch := newTestService(t, hf, staticLocal{}, fetchRec, nil)
	ctx := context.Background()
	// The partial holder fetches root too, and knows the seeder.
	part.Fetching(root, true)
	if err := hp.Connect(ctx, peer.AddrInfo{ID: hs.ID(), Addrs: hs.Addrs()}); err != nil {
		t.Fatal(err)
	}
	seedRec.waitFor(t, "the seeder to hear the partial holder's map", func() bool { return seedRec.maps[root] != nil })

	fetch.Fetching(root, true)
	if err := hf.Connect(ctx, peer.AddrInfo{ID: hs.ID(), Addrs: hs.Addrs()}); err != nil {
		t.Fatal(err)
	}
	fetchRec.waitFor(t, "the seeder's complete map", func() bool { return fetchRec.full[root] })
	fetchRec.waitFor(t, "the partial holder named by peer exchange", func() bool {
		for _, ai := range fetchRec.peers {
			if ai.ID == hp.ID() && len(ai.Addrs) > 0 {
				return true
			}
		}
		return false
	})
	if err := hf.Connect(ctx, peer.AddrInfo{ID: hp.ID(), Addrs: hp.Addrs()}); err != nil {
		t.Fatal(err)
	}
	fetchRec.waitFor(t, "the partial holder's map", func() bool {
		s := fetchRec.maps[root]
		return len(s) == 1 && s[0].Parent.Equals(root) && s[0].Has(0) && !s[0].Has(1) && s[0].Has(2)
	})

	// 100 blocks verified at the seeder reach the fetcher in few messages.
	before := seed.Stats().HaveMessagesSent
	for i := range 100 {
		seed.Verified(root, testCID(t, fmt.Sprintf("svc-block-%d", i)))
	}
	fetchRec.waitFor(t, "100 HAVEs", func() bool { return len(fetchRec.haves) >= 100 })
	sent := seed.Stats().HaveMessagesSent - before
	if sent > 4 {
		t.Fatalf("100 HAVEs took %d messages to one peer, want a batch", sent)
	}

	choker.mu.Lock()
	up := choker.peers[hf.ID()]
	choker.mu.Unlock()
	if !up {
		t.Fatal("the choker was not told the fetcher speaks the extension")
	}
	choker.fn(hf.ID(), true)
	fetchRec.waitFor(t, "the choke", func() bool { return fetchRec.choked[hs.ID()] })
	choker.fn(hf.ID(), false)
	fetchRec.waitFor(t, "the unchoke", func() bool { return !fetchRec.choked[hs.ID()] })
}

// TestServicePlainPeer: a host without the protocol is never a swarm peer.
func TestServicePlainPeer(t *testing.T) {
	ha, hb := newTestHost(t), newTestHost(t)
	rec := newRecorder()
	s := newTestService(t, ha, staticLocal{}, rec, nil)
	if err := ha.Connect(context.Background(), peer.AddrInfo{ID: hb.ID(), Addrs: hb.Addrs()}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		_, pending := s.peers[hb.ID()]
		s.mu.Unlock()
		if !pending {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s.IsSwarmPeer(hb.ID()) {
		t.Fatal("a peer without /shoal/swarm/1.0.0 counts as a swarm peer")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.swarm) != 0 {
		t.Fatalf("SwarmPeer events for a plain peer: %v", rec.swarm)
	}
}

// interestChoker is a fakeChoker that records what it hears of each
// peer's interest (InterestListener), in order.
type interestChoker struct {
	fakeChoker
	said []string
	wake chan struct{}
}

func (c *interestChoker) PeerInterested(p peer.ID, _ cid.Cid, yes bool) {
	c.mu.Lock()
	c.said = append(c.said, fmt.Sprintf("%s=%v", p.ShortString(), yes))
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// waitSaid waits until the choker has heard want (and nothing else) since
// the last call.
func (c *interestChoker) waitSaid(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		c.mu.Lock()
		got := append([]string(nil), c.said...)
		c.mu.Unlock()
		if len(got) >= len(want) {
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("choker heard %v, want %v", got, want)
			}
			c.mu.Lock()
			c.said = c.said[len(want):]
			c.mu.Unlock()
			return
		}
		select {
		case <-c.wake:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("choker heard %v, waiting for %v", got, want)
		}
	}
}

// TestServiceWantIsPerPeer: a holder's choker hears a fetcher as
// interested only while the fetcher says it wants the holder's blocks
// (KindWant, BitTorrent's interest), not because it fetches the root;
// the fetcher's completion (it stops fetching) ends the interest. A peer
// whose map does not say SaysWant (an older shoal) is heard as before:
// interested while it fetches the root.
func TestServiceWantIsPerPeer(t *testing.T) {
	root := testCID(t, "want-root")
	hh, hf, ho := newTestHost(t), newTestHost(t), newTestHost(t)
	choker := &interestChoker{fakeChoker: fakeChoker{peers: map[peer.ID]bool{}}, wake: make(chan struct{}, 1)}
	newTestService(t, hh, staticLocal{root: []Segment{{Parent: root, Bits: []byte{0x01}}}}, newRecorder(), choker)
	fetchRec := newRecorder()
	fetch := newTestService(t, hf, staticLocal{}, fetchRec, nil)
	ctx := context.Background()
	fetch.Fetching(root, true)
	if err := hf.Connect(ctx, peer.AddrInfo{ID: hh.ID(), Addrs: hh.Addrs()}); err != nil {
		t.Fatal(err)
	}
	fetchRec.waitFor(t, "the holder's map", func() bool { return fetchRec.maps[root] != nil })
	f := hf.ID().ShortString()
	choker.waitSaid(t, f+"=false") // its map: fetching, wanting nothing yet

	fetch.Wants(hh.ID(), root, true)
	choker.waitSaid(t, f+"=true")
	fetch.Wants(hh.ID(), root, true) // unchanged: not sent again
	fetch.Wants(hh.ID(), root, false)
	choker.waitSaid(t, f+"=false")
	fetch.Wants(hh.ID(), root, true)
	choker.waitSaid(t, f+"=true")
	fetch.Fetching(root, false) // complete
	choker.waitSaid(t, f+"=false")
	fetch.Wants(hh.ID(), root, true) // not fetching root: nothing to want
	fetch.Fetching(root, true)       // a new fetch: its map says it wants nothing yet
	fetch.Wants(hh.ID(), root, true)
	choker.waitSaid(t, f+"=true")

	// An older peer: a map with Interested and without SaysWant.
	if err := ho.Connect(ctx, peer.AddrInfo{ID: hh.ID(), Addrs: hh.Addrs()}); err != nil {
		t.Fatal(err)
	}
	str, err := ho.NewStream(ctx, hh.ID(), ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	defer str.Reset()
	if err := WriteMessage(str, &Message{Kind: KindMap, Root: root, Interested: true}); err != nil {
		t.Fatal(err)
	}
	choker.waitSaid(t, ho.ID().ShortString()+"=true")
}

// TestServiceSeederTakesFetcherInterest: a node that holds the whole DAG
// hears a fetcher of the root as interested as soon as it answers the
// fetcher's map (every block the fetcher lacks is here), without waiting
// for the fetcher's KindWant; the fetcher's end of the fetch ends it.
func TestServiceSeederTakesFetcherInterest(t *testing.T) {
	root := testCID(t, "seed-root")
	hs, hf := newTestHost(t), newTestHost(t)
	choker := &interestChoker{fakeChoker: fakeChoker{peers: map[peer.ID]bool{}}, wake: make(chan struct{}, 1)}
	newTestService(t, hs, staticLocal{root: nil}, newRecorder(), choker) // complete
	fetchRec := newRecorder()
	fetch := newTestService(t, hf, staticLocal{}, fetchRec, nil)
	fetch.Fetching(root, true)
	if err := hf.Connect(context.Background(), peer.AddrInfo{ID: hs.ID(), Addrs: hs.Addrs()}); err != nil {
		t.Fatal(err)
	}
	fetchRec.waitFor(t, "the seeder's map", func() bool { return fetchRec.full[root] })
	f := hf.ID().ShortString()
	// Its map: fetching, no KindWant yet; the seeder's reply: interested.
	choker.waitSaid(t, f+"=false", f+"=true")
	fetch.Wants(hs.ID(), root, true) // what the scheduler says next: no change
	fetch.Fetching(root, false)
	choker.waitSaid(t, f+"=false")
}
