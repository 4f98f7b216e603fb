package transfer

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
	"go.uber.org/goleak"

	"github.com/shoalnet/shoal/protocol"

	"github.com/shoalnet/shoal/internal/p2ptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// holding is a store of the given blocks for a protocol peer.
func holding(blocks map[cid.Cid][]byte) *p2ptest.Blocks {
	s := p2ptest.NewBlocks(len(blocks))
	for c, d := range blocks {
		s.Set(c, d)
	}
	return s
}

type fixedProviders []peer.AddrInfo

func (p fixedProviders) FindProviders(context.Context, cid.Cid) <-chan peer.AddrInfo {
	ch := make(chan peer.AddrInfo, len(p))
	for _, ai := range p {
		ch <- ai
	}
	close(ch)
	return ch
}

// peerNode starts a real block-exchange peer on loopback: host, network,
// server and client over blocks.
func peerNode(t *testing.T, blocks *p2ptest.Blocks, providers protocol.Providers) (*protocol.Client, peer.AddrInfo) {
	t.Helper()
	h := p2ptest.Host(t, libp2p.ResourceManager(nil), libp2p.NoSecurity)
	n, err := protocol.NewNetwork(h, protocol.DefaultNetworkConfig())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := protocol.NewServer(protocol.DefaultServerConfig(), blocks, n)
	if err != nil {
		t.Fatal(err)
	}
	ccfg := protocol.DefaultClientConfig()
	ccfg.Links = func(cid.Cid, []byte) ([]cid.Cid, error) { return nil, nil } // raw blocks only
	cl, err := protocol.NewClient(ccfg, protocol.HostNetwork(n, h), blocks, providers)
	if err != nil {
		t.Fatal(err)
	}
	n.SetReceivers(srv, cl)
	n.AddPeerListener(srv)
	n.AddPeerListener(cl)
	for _, start := range []func() error{n.Start, srv.Start, cl.Start} {
		if err := start(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_ = cl.Close()
		_ = srv.Close()
		_ = n.Close()
		_ = h.Close()
	})
	return cl, p2ptest.Info(h)
}

func rawCID(t *testing.T, data []byte) cid.Cid {
	t.Helper()
	h, err := mh.Sum(data, mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, h)
}

// announcer records what it was asked to provide.
type announcer struct {
	mu  sync.Mutex
	got []cid.Cid
}

func (a *announcer) Provide(_ context.Context, c cid.Cid) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, c)
	return nil
}

func (a *announcer) provided() []cid.Cid {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]cid.Cid(nil), a.got...)
}

// TestRegistryFetchJoinComplete: a fetch from a real seeder stores the
// block; a second Start of the same root joins the first and adds Pin;
// Complete sees the stored size and the pin once; the root is announced
// while fetching; List and Get find the transfer.
func TestRegistryFetchJoinComplete(t *testing.T) {
	data := []byte(strings.Repeat("shoal transfer ", 1000))
	root := rawCID(t, data)
	seedBlocks := holding(map[cid.Cid][]byte{root: data})
	_, seed := peerNode(t, seedBlocks, nil)
	leechBlocks := p2ptest.NewBlocks(0)
	leech, _ := peerNode(t, leechBlocks, fixedProviders{seed})

	var (
		mu        sync.Mutex
		completed []Status
	)
	ann := &announcer{}
	r := New(Config{
		SearchTimeout:         time.Minute,
		AnnounceWhileFetching: true,
		Size: func(ctx context.Context, c cid.Cid) uint64 {
			b, _ := leechBlocks.Get(ctx, c)
			return uint64(len(b))
		},
		Complete: func(_ context.Context, s Status, err error) error {
			mu.Lock()
			defer mu.Unlock()
			completed = append(completed, s)
			return err
		},
	}, leech, ann)
	defer r.Close()

	t1, err := r.Start(root, Options{Source: "api", Name: "data.txt"})
	if err != nil {
		t.Fatal(err)
	}
	t2, err := r.Start(root, Options{Source: "gateway", Pin: true})
	if err != nil {
		t.Fatal(err)
	}
	<-t1.Done()
	if err := t1.Err(); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if got, _ := leechBlocks.Get(context.Background(), root); string(got) != string(data) {
		t.Fatalf("stored %d bytes; want the seeder's %d", len(got), len(data))
	}
	s := t1.Status()
	mu.Lock()
	if len(completed) != 1 || !completed[0].Pin || completed[0].Size != uint64(len(data)) || completed[0].Name != "data.txt" {
		t.Errorf("Complete saw %+v; want one call, pinned, size %d, name data.txt", completed, len(data))
	}
	mu.Unlock()
	if t2 != t1 {
		t.Errorf("second Start made transfer %s; want it to join %s", t2.ID(), t1.ID())
	}
	if s.Running() || s.Source != "api" || s.Result.Blocks != 1 {
		t.Errorf("status = running %v, source %q, %d blocks; want ended, api, 1 block", s.Running(), s.Source, s.Result.Blocks)
	}
	if p := ann.provided(); len(p) != 1 || !p[0].Equals(root) {
		t.Errorf("announced %v while fetching; want %s once", p, root)
	}
	if l := r.List(); len(l) != 1 || l[0].ID() != t1.ID() {
		t.Errorf("List = %d transfers; want only %s", len(l), t1.ID())
	}
	if g, ok := r.Get(t1.ID()); !ok || g != t1 {
		t.Errorf("Get(%s) = %v, %v; want the transfer", t1.ID(), g, ok)
	}
	// Once it has ended, a new Start fetches again (locally, at once).
	t3, err := r.Start(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if t3.ID() == t1.ID() || t3.Err() != nil {
		t.Errorf("Start after the end = %s, %v; want a new transfer that succeeds", t3.ID(), t3.Err())
	}
}

// TestRegistryCancelAndKeep: Cancel ends a fetch that is still searching
// with ErrCancelled naming the root; the registry remembers at most Keep
// transfers, newest first; Close ends the rest.
func TestRegistryCancelAndKeep(t *testing.T) {
	leech, _ := peerNode(t, p2ptest.NewBlocks(0), fixedProviders{})
	var completeErrs []error
	var mu sync.Mutex
	r := New(Config{Keep: 2, Complete: func(_ context.Context, _ Status, err error) error {
		mu.Lock()
		defer mu.Unlock()
		completeErrs = append(completeErrs, err)
		return err
	}}, leech, &announcer{})
	var ts []*Transfer
	for _, s := range []string{"one", "two", "three"} {
		tr, err := r.Start(rawCID(t, []byte(s)), Options{}) // nobody has these: 0 searches until cancelled
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, tr)
	}
	ts[0].Cancel()
	err := ts[0].Err()
	want := "transfer: cancelled: fetch of " + rawCID(t, []byte("one")).String()
	if !errors.Is(err, ErrCancelled) || err.Error() != want {
		t.Errorf("cancelled fetch: %v; want %q", err, want)
	}
	if s := ts[0].Status(); s.Running() || !errors.Is(s.Err, ErrCancelled) {
		t.Errorf("status after Cancel: running %v, err %v; want ended with ErrCancelled", s.Running(), s.Err)
	}
	l := r.List()
	if len(l) != 2 || l[0] != ts[2] || l[1] != ts[1] {
		t.Errorf("List has %d; want the 2 newest, newest first", len(l))
	}
	r.Close()
	r.Close()
	for i, tr := range ts[1:] {
		select {
		case <-tr.Done():
		default:
			t.Errorf("transfer %d still running after Close", i+2)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(completeErrs) != 3 {
		t.Errorf("Complete called %d times; want once per transfer (3)", len(completeErrs))
	}
}

// gatedFetcher holds FetchWith of one root until gate closes, as a fetch
// whose resume walks a large DAG on a slow disk would.
type gatedFetcher struct {
	Fetcher
	root    cid.Cid
	gate    chan struct{}
	entered chan struct{}
}

func (g *gatedFetcher) FetchWith(ctx context.Context, c cid.Cid, o protocol.FetchOptions) (*protocol.Fetch, error) {
	if c.Equals(g.root) {
		close(g.entered)
		<-g.gate
	}
	return g.Fetcher.FetchWith(ctx, c, o)
}

// TestRegistryStartDoesNotHoldLock: while one Start sets up its fetch, the
// registry answers List and Get and starts other roots; a second Start of
// the same root waits for the first and joins it, adding its pin.
func TestRegistryStartDoesNotHoldLock(t *testing.T) {
	slowData := []byte(strings.Repeat("slow root ", 500))
	fastData := []byte(strings.Repeat("fast root ", 500))
	slow, fast := rawCID(t, slowData), rawCID(t, fastData)
	_, seed := peerNode(t, holding(map[cid.Cid][]byte{slow: slowData, fast: fastData}), nil)
	leech, _ := peerNode(t, p2ptest.NewBlocks(0), fixedProviders{seed})
	g := &gatedFetcher{Fetcher: leech, root: slow, gate: make(chan struct{}), entered: make(chan struct{})}
	r := New(Config{SearchTimeout: time.Minute}, g, &announcer{})
	defer r.Close()

	type result struct {
		tr  *Transfer
		err error
	}
	first, second := make(chan result, 1), make(chan result, 1)
	go func() { tr, err := r.Start(slow, Options{Source: "api"}); first <- result{tr, err} }()
	<-g.entered
	go func() { tr, err := r.Start(slow, Options{Source: "gateway", Pin: true}); second <- result{tr, err} }()

	// A failure bound, not a timing assertion: with the lock held these
	// would wait for the gate, which opens only after them.
	others := make(chan error, 1)
	go func() {
		_ = r.List()
		_, _ = r.Get("t999")
		tr, err := r.Start(fast, Options{})
		if err == nil {
			<-tr.Done()
			err = tr.Err()
		}
		others <- err
	}()
	select {
	case err := <-others:
		if err != nil {
			t.Fatalf("fetch of another root while one Start was setting up: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("List, Get and Start of another root waited for a Start setting up its fetch")
	}
	close(g.gate)
	a, b := <-first, <-second
	if a.err != nil || b.err != nil {
		t.Fatalf("Start errors: %v, %v", a.err, b.err)
	}
	if a.tr != b.tr {
		t.Fatalf("second Start made %s; want it to join %s", b.tr.ID(), a.tr.ID())
	}
	<-a.tr.Done()
	if s := a.tr.Status(); a.tr.Err() != nil || !s.Pin || s.Source != "api" {
		t.Errorf("joined transfer: err %v, pin %v, source %q; want success, pinned by the joiner, source api", a.tr.Err(), s.Pin, s.Source)
	}
}
