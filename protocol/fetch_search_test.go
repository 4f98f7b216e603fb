package protocol

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The provider-search tests run the real Client in a synctest bubble, on
// an in-memory network: lookups are instant, and virtual time moves only
// through the search's backoff and timeout, so "2 minutes" is exact.

// memNet is a ClientNetwork whose peers are in memory: a seeder answers
// want-haves and want-blocks from its blocks; a silent peer reads and
// never answers.
type memNet struct {
	cl      *Client
	mu      sync.Mutex
	seeders map[peer.ID]map[cid.Cid][]byte
}

func (n *memNet) Self() peer.ID             { return "self" }
func (n *memNet) ConnectedPeers() []peer.ID { return nil }
func (n *memNet) Connect(_ context.Context, ai peer.AddrInfo) error {
	go n.cl.PeerConnected(ai.ID) // as Network's peer events would
	return nil
}

func (n *memNet) Send(ctx context.Context, p peer.ID, m *Message) error {
	n.mu.Lock()
	blocks := n.seeders[p]
	n.mu.Unlock()
	if blocks == nil {
		return nil // silent
	}
	var reply Message
	for _, e := range m.Wants {
		data, ok := blocks[e.CID]
		switch {
		case e.Cancel:
		case !ok:
			reply.Presences = append(reply.Presences, Presence{CID: e.CID, Type: DontHave})
		case e.WantType == WantHave:
			reply.Presences = append(reply.Presences, Presence{CID: e.CID, Type: Have})
		default:
			reply.Blocks = append(reply.Blocks, Block{CID: e.CID, Data: data})
		}
	}
	go n.cl.ReceiveMessage(context.Background(), p, &reply)
	return nil
}

// lateProviders finds nobody for the first appearAt-1 lookups, then peer p.
type lateProviders struct {
	calls    atomic.Int64
	appearAt int64 // 0: never
	p        peer.ID
}

func (l *lateProviders) FindProviders(ctx context.Context, _ cid.Cid) <-chan peer.AddrInfo {
	ch := make(chan peer.AddrInfo, 1)
	if n := l.calls.Add(1); l.appearAt > 0 && n >= l.appearAt {
		ch <- peer.AddrInfo{ID: l.p}
	}
	close(ch)
	return ch
}

func newSearchClient(t *testing.T, provs Providers, seeders map[peer.ID]map[cid.Cid][]byte) (*Client, *clientStore) {
	t.Helper()
	cfg := DefaultClientConfig()
	cfg.Links = clLinks
	cfg.Logger = clTestLogger(t)
	net := &memNet{seeders: seeders}
	store := newClientStore()
	cl, err := NewClient(cfg, net, store, provs)
	if err != nil {
		t.Fatal(err)
	}
	net.cl = cl
	if err := cl.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl, store
}

// TestSearchNoProviderFailsAtTimeoutNamingCIDOnce: with nobody holding the
// content, the fetch keeps looking up providers until its timeout, then
// fails with one sentence that names the CID once and matches both
// ErrNoProviders and context.DeadlineExceeded.
func TestSearchNoProviderFailsAtTimeoutNamingCIDOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := makeClDAG(t, 4, 1024, 31)
		provs := &lateProviders{}
		cl, _ := newSearchClient(t, provs, nil)
		start := time.Now()
		f, err := cl.FetchWith(context.Background(), d.root, FetchOptions{SearchTimeout: 2 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.Wait()
		if took := time.Since(start); took != 2*time.Minute {
			t.Errorf("fetch ended after %v of virtual time, want its 2m search timeout", took)
		}
		var npe *NoProvidersError
		if !errors.As(err, &npe) || !errors.Is(err, ErrNoProviders) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v (%T), want a *NoProvidersError matching ErrNoProviders and DeadlineExceeded", err, err)
		}
		msg := err.Error()
		if n := strings.Count(msg, d.root.String()); n != 1 {
			t.Errorf("error names the CID %d times, want once: %q", n, msg)
		}
		if !strings.Contains(msg, "in 2m0s") {
			t.Errorf("error %q does not say how long it searched", msg)
		}
		if got := provs.calls.Load(); got < 4 || int(got) != npe.Lookups {
			t.Errorf("%d lookups made, error reports %d; want several, reported exactly", got, npe.Lookups)
		}
		t.Log(msg)
	})
}

// TestSearchSucceedsWhenProviderAppears: the provider shows up in the DHT
// only at the fifth lookup; the fetch, still searching, finds it and
// completes.
func TestSearchSucceedsWhenProviderAppears(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := makeClDAG(t, 8, 4096, 32)
		provs := &lateProviders{appearAt: 5, p: "seeder"}
		cl, store := newSearchClient(t, provs, map[peer.ID]map[cid.Cid][]byte{"seeder": d.blocks})
		f, err := cl.FetchWith(context.Background(), d.root, FetchOptions{SearchTimeout: 2 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		sawSearching := false
		for done := false; !done; {
			select {
			case u := <-f.Updates():
				if u.Searching && u.Lookups >= 1 && u.Providers == 0 {
					sawSearching = true
				}
			case <-f.Done():
				done = true
			}
		}
		res, err := f.Wait()
		if err != nil {
			t.Fatalf("fetch with a provider appearing at lookup 5: %v", err)
		}
		if provs.calls.Load() < 5 || res.Blocks != len(d.blocks) {
			t.Errorf("%d lookups, %d blocks; want >= 5 lookups and all %d blocks", provs.calls.Load(), res.Blocks, len(d.blocks))
		}
		if !sawSearching {
			t.Error("no progress update said the fetch was searching with 0 providers found")
		}
		clCheckStored(t, d, store)
	})
}

// TestSearchTimeoutZeroKeepsWaiting: SearchTimeout 0 never gives up: after
// an hour of virtual time the fetch is still searching, still making
// lookups, and ends only when its context is cancelled.
func TestSearchTimeoutZeroKeepsWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := makeClDAG(t, 2, 1024, 33)
		provs := &lateProviders{}
		cl, _ := newSearchClient(t, provs, nil)
		ctx, cancel := context.WithCancel(context.Background())
		f, err := cl.FetchWith(ctx, d.root, FetchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		select {
		case <-f.Done():
			_, err := f.Wait()
			t.Fatalf("fetch with timeout 0 ended after an hour: %v", err)
		default:
		}
		before := provs.calls.Load()
		time.Sleep(5 * time.Minute)
		if after := provs.calls.Load(); after <= before || before < 100 {
			t.Errorf("lookups: %d after an hour, %d five minutes later; want the search to go on", before, after)
		}
		cancel()
		if _, err := f.Wait(); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled fetch: %v, want context.Canceled", err)
		}
	})
}

// TestSearchSilentProvider: the only provider connects and never answers;
// at the timeout the error says so, naming that peer.
func TestSearchSilentProvider(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := makeClDAG(t, 2, 1024, 34)
		provs := &lateProviders{appearAt: 1, p: "quiet"}
		cl, _ := newSearchClient(t, provs, nil)
		f, err := cl.FetchWith(context.Background(), d.root, FetchOptions{SearchTimeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.Wait()
		var npe *NoProvidersError
		if !errors.As(err, &npe) || !npe.Silent() {
			t.Fatalf("err = %v, want a *NoProvidersError with a silent peer", err)
		}
		if msg := err.Error(); !strings.Contains(msg, peer.ID("quiet").String()+" accepted the request and never answered") || strings.Count(msg, d.root.String()) != 1 {
			t.Errorf("error %q does not name the silent peer once and the CID once", msg)
		}
	})
}

// TestSearchAsksConnectedPeerAgain: the only provider says DONT_HAVE at
// first and gets the content 20 s later (it is fetching it too); the
// searching fetch asks it again after later lookups and completes.
func TestSearchAsksConnectedPeerAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := makeClDAG(t, 4, 2048, 35)
		provs := &lateProviders{appearAt: 1, p: "late"}
		cl, store := newSearchClient(t, provs, map[peer.ID]map[cid.Cid][]byte{"late": {}})
		net := cl.net.(*memNet)
		f, err := cl.FetchWith(context.Background(), d.root, FetchOptions{SearchTimeout: 2 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Second)
		net.mu.Lock()
		net.seeders["late"] = d.blocks
		net.mu.Unlock()
		if _, err := f.Wait(); err != nil {
			t.Fatalf("fetch from a peer that got the content after saying DONT_HAVE: %v", err)
		}
		clCheckStored(t, d, store)
	})
}
