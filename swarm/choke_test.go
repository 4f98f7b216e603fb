package swarm

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// racingChoker is a Choker that behaves as protocol's server does when
// its choke round runs while a session starts: a new swarm peer starts
// choked, and the round unchokes it (calling the OnChoke function from
// the round's goroutine) after Choking has read "choked" and before the
// caller acted on it. The interleaving is forced, not hoped for.
type racingChoker struct {
	mu       sync.Mutex
	fn       func(peer.ID, bool)
	unchoked map[peer.ID]bool
	raced    chan struct{}
}

func (c *racingChoker) SetSwarmPeer(p peer.ID, yes bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !yes {
		delete(c.unchoked, p)
	}
}

func (c *racingChoker) OnChoke(fn func(peer.ID, bool)) {
	c.mu.Lock()
	c.fn = fn
	c.mu.Unlock()
}

func (c *racingChoker) Choking(p peer.ID) bool {
	c.mu.Lock()
	choking := !c.unchoked[p]
	fn := c.fn
	c.mu.Unlock()
	if choking {
		// The round: decide, then tell (on its own goroutine, in order).
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.mu.Lock()
			c.unchoked[p] = true
			c.mu.Unlock()
			fn(p, false)
		}()
		<-done
		close(c.raced)
	}
	return choking
}

func (c *racingChoker) choking(p peer.ID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.unchoked[p]
}

// TestChokeStateAfterRoundAtSessionStart: the server unchokes a new swarm
// peer while the session with it starts. The peer must end up believing
// what the server decided (unchoked): with the initial "you are choked"
// sent after the round's "unchoked" it believed itself choked while the
// server kept its slot for it, and it never asked again (issue #12's
// docker hang: a leecher whose peers it never asked, "no provider").
func TestChokeStateAfterRoundAtSessionStart(t *testing.T) {
	hs, hf := newTestHost(t), newTestHost(t)
	choker := &racingChoker{unchoked: map[peer.ID]bool{}, raced: make(chan struct{})}
	newTestService(t, hs, staticLocal{}, newRecorder(), choker)
	fetchRec := newRecorder()
	fetch := newTestService(t, hf, staticLocal{}, fetchRec, nil)
	if err := hf.Connect(context.Background(), peer.AddrInfo{ID: hs.ID(), Addrs: hs.Addrs()}); err != nil {
		t.Fatal(err)
	}
	<-choker.raced
	if choker.choking(hf.ID()) {
		t.Fatal("the choker still chokes the fetcher")
	}
	// What the seeder sends arrives in order on one stream: once its
	// answer to a map asked after the round has arrived, every choke
	// message of the session start has too.
	root := testCID(t, "choke-probe")
	fetch.Fetching(root, true)
	fetchRec.waitFor(t, "the seeder's map", func() bool { _, ok := fetchRec.maps[root]; return ok })
	fetchRec.mu.Lock()
	defer fetchRec.mu.Unlock()
	if fetchRec.choked[hs.ID()] {
		t.Fatal("the fetcher believes the seeder chokes it, but the seeder unchoked it: the round's unchoke was overtaken by the session's initial choke")
	}
}

// TestChokeEndsWithTheSession: a server's session with a fetcher ends
// (its stream to the fetcher failed) while the fetcher's own stream to it
// stays up. The server no longer chokes the fetcher and will not say so;
// the fetcher, told "choked" earlier, must stop believing it, or it never
// asks that server again.
func TestChokeEndsWithTheSession(t *testing.T) {
	x := newSessionPair(t)
	hs, hf, choker, seed, fetch, fetchRec := x.hs, x.hf, x.choker, x.seed, x.fetch, x.fetchRec
	choker.fn(hf.ID(), true)
	fetchRec.waitFor(t, "the choke", func() bool { return fetchRec.choked[hs.ID()] })

	seed.mu.Lock()
	pc := seed.peers[hf.ID()]
	seed.mu.Unlock()
	pc.stop() // as a failed write ends it
	fetchRec.waitFor(t, "the fetcher to stop believing it is choked", func() bool { return !fetchRec.choked[hs.ID()] })
	if !fetch.IsSwarmPeer(hs.ID()) {
		t.Fatal("the fetcher's own session with the server ended too; the test wants it up")
	}
}

// TestSessionReopensWhenThePeerTalks: a fetcher's stream to a server
// ended (a failed send) while the server's stream to it stays up and is
// being read. The fetcher can no longer say it is interested, so a server
// that chokes it would never unchoke it. When the server next talks to
// it, the fetcher opens its stream again.
func TestSessionReopensWhenThePeerTalks(t *testing.T) {
	x := newSessionPair(t)
	hs, hf, choker, fetch, fetchRec := x.hs, x.hf, x.choker, x.fetch, x.fetchRec
	// A first message, so the server's stream is open at the fetcher
	// (libp2p negotiates a stream's protocol with its first write).
	choker.fn(hf.ID(), false)
	fetchRec.waitFor(t, "the unchoke", func() bool { _, ok := fetchRec.choked[hs.ID()]; return ok })
	fetch.mu.Lock()
	pc := fetch.peers[hs.ID()]
	fetch.mu.Unlock()
	pc.stop() // as a failed write ends it
	fetchRec.waitFor(t, "the fetcher's stream to end", func() bool { return !fetch.IsSwarmPeer(hs.ID()) })
	time.Sleep(reopenAfter)
	choker.fn(hf.ID(), true)
	fetchRec.waitFor(t, "the choke", func() bool { return fetchRec.choked[hs.ID()] })
	fetchRec.waitFor(t, "the fetcher's stream to the server open again", func() bool { return fetch.IsSwarmPeer(hs.ID()) })
}

// sessionPair is a server (with a choker the test drives) and a fetcher,
// connected, the extension up both ways.
type sessionPair struct {
	hs, hf      host.Host
	choker      *fakeChoker
	seed, fetch *Service
	fetchRec    *recorder
}

func newSessionPair(t *testing.T) sessionPair {
	t.Helper()
	x := sessionPair{hs: newTestHost(t), hf: newTestHost(t), choker: &fakeChoker{peers: map[peer.ID]bool{}}, fetchRec: newRecorder()}
	x.seed = newTestService(t, x.hs, staticLocal{}, newRecorder(), x.choker)
	x.fetch = newTestService(t, x.hf, staticLocal{}, x.fetchRec, nil)
	if err := x.hf.Connect(context.Background(), peer.AddrInfo{ID: x.hs.ID(), Addrs: x.hs.Addrs()}); err != nil {
		t.Fatal(err)
	}
	x.fetchRec.waitFor(t, "the session both ways", func() bool {
		return x.fetch.IsSwarmPeer(x.hs.ID()) && x.seed.IsSwarmPeer(x.hf.ID())
	})
	return x
}
