package protocol

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// countingProviders counts the provider searches a client makes.
type countingProviders struct {
	Providers
	n atomic.Int64
}

func (p *countingProviders) FindProviders(ctx context.Context, c cid.Cid) <-chan peer.AddrInfo {
	p.n.Add(1)
	return p.Providers.FindProviders(ctx, c)
}

// sessionFetch reads, on the loop, the session's running fetch's progress
// and how many fetches the client runs.
func sessionFetch(t *testing.T, s *Session) (Progress, int) {
	t.Helper()
	s.mu.Lock()
	f := s.f
	s.mu.Unlock()
	type out struct {
		pr Progress
		n  int
	}
	ch := make(chan out, 1)
	if !s.c.post(func() {
		var o out
		if f != nil {
			o.pr = f.s.Progress()
		}
		o.n = len(s.c.fetches)
		ch <- o
	}) {
		t.Fatal("client closed")
	}
	o := <-ch
	return o.pr, o.n
}

// A session reads a DAG block by block, in file order, as a reader
// would: one fetch and one provider search for every block, its blocks
// served by more than one seeder, a seeder that sends corrupt blocks
// cut off and banned, and Close ends the fetch (its search and waits
// with it).
func TestSessionReadsBlocksInOneFetch(t *testing.T) {
	d := makeClDAG(t, 24, 64<<10, 21)
	// Each seeder's uplink is 4 MB/s, so the 1.5 MiB take a few hundred
	// milliseconds: unlimited, one loopback seeder could serve the whole
	// session before the second had answered its first want-have (7 and
	// 8 of 60 runs under -race on an idle machine counted 0 bytes from it).
	seeds, _ := clSwarm(t, d, 3, 4<<20)
	seeds[1].store.corrupt = true
	var infos []peer.AddrInfo
	for _, s := range seeds {
		infos = append(infos, s.info())
	}
	provs := &countingProviders{Providers: clProviders{infos}}
	leech := newClNode(t, newClientStore(), 0, provs)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := leech.cl.Session(ctx, d.root)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range append([]cid.Cid{d.root}, d.leaves...) {
		got, err := s.Get(ctx, k)
		if err != nil || !bytes.Equal(got, d.blocks[k]) {
			t.Fatalf("Session.Get(%s) = %d bytes, %v", k, len(got), err)
		}
		if k == d.root {
			s.Want(d.leaves[:4]...) // read-ahead of the first leaves
		}
	}
	pr, fetches := sessionFetch(t, s)
	if fetches != 1 {
		t.Errorf("the client ran %d fetches for the session's reads, want 1", fetches)
	}
	if n := provs.n.Load(); n != 1 {
		t.Errorf("%d provider searches, want 1 (the session's)", n)
	}
	if pr.BlocksDone != len(d.blocks) {
		t.Errorf("the session's fetch holds %d blocks done, want %d", pr.BlocksDone, len(d.blocks))
	}
	// A seeder served if it sent block bytes: under load one loopback
	// seeder can win every race, so the other's only block arrives second
	// (DupBytes) — it was still asked and answered (1 of 80 runs with two
	// busy loops beside the test counted 0 blocks from it).
	served := 0
	for _, pp := range pr.Peers {
		if pp.Bytes > 0 && pp.Peer != seeds[1].h.ID() {
			served++
		}
	}
	if served < 2 {
		t.Errorf("%d honest seeders served the session, want 2: %+v", served, pr.Peers)
	}
	if bad := seeds[1].h.ID(); !leech.cl.Scores().Banned(bad, time.Now()) {
		t.Error("the seeder that sent corrupt blocks is not banned")
	}
	s.mu.Lock()
	f := s.f
	s.mu.Unlock()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.Done():
	case <-ctx.Done():
		t.Fatal("Close left the session's fetch running")
	}
	if _, n := sessionFetch(t, s); n != 0 {
		t.Errorf("%d fetches run after Close, want 0", n)
	}
	if _, err := s.Get(ctx, clCID(t, 0x55, []byte("never held"))); !errors.Is(err, ErrFetchClosed) {
		t.Errorf("Get after Close: %v, want ErrFetchClosed", err)
	}
}

// Cancelling a session's context ends its fetch, and a Get waiting for a
// block nobody has returns.
func TestSessionCancelEndsFetch(t *testing.T) {
	d := makeClDAG(t, 4, 16<<10, 22)
	_, leech := clSwarm(t, d, 1, 0)
	sctx, scancel := context.WithCancel(context.Background())
	s, err := leech.cl.Session(sctx, d.root)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Get(ctx, d.leaves[0]); err != nil {
		t.Fatal(err)
	}
	missing := clCID(t, cid.Raw, []byte("no seeder holds this"))
	errc := make(chan error, 1)
	go func() {
		_, err := s.Get(ctx, missing)
		errc <- err
	}()
	scancel()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("Get of a block nobody has succeeded")
		}
	case <-ctx.Done():
		t.Fatal("a Get waiting in a cancelled session never returned")
	}
	for {
		if _, n := sessionFetch(t, s); n == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the cancelled session's fetch still runs")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// A kept-open scheduler (a session's) is never done: a block wanted after
// the root is asked of the peer that sent the root, and asked again when
// it is wanted after it arrived (the store dropped it).
func TestSchedulerWantKeptOpen(t *testing.T) {
	root := clCID(t, cid.DagProtobuf, []byte("root"))
	leaf := clCID(t, cid.Raw, []byte("leaf"))
	s, err := NewScheduler(DefaultSchedulerConfig(), root)
	if err != nil {
		t.Fatal(err)
	}
	s.KeepOpen()
	now := time.Now()
	p := peer.ID("seeder")
	s.AddPeer(p, now)
	s.SetSearching(false, now)
	if err := s.BlockReceived(p, root, 4, nil, now); err != nil {
		t.Fatal(err)
	}
	s.Ready()
	if s.Done() {
		t.Fatal("a kept-open scheduler is done")
	}
	wantBlock := func() bool {
		for _, a := range s.Ready() {
			if a.Kind == ActWantBlock && a.CID == leaf && a.Peer == p && a.Urgent {
				return true
			}
		}
		return false
	}
	for i := range 2 {
		if !s.Want(leaf, true, now) {
			t.Fatal("Want on a running kept-open fetch returned false")
		}
		if !wantBlock() {
			t.Fatalf("want %d: no urgent want-block of the leaf to the root's sender", i)
		}
		if err := s.BlockReceived(p, leaf, 4, nil, now); err != nil {
			t.Fatal(err)
		}
		if s.Done() || s.Wanted(leaf) {
			t.Fatalf("after the leaf: done=%v wanted=%v, want neither", s.Done(), s.Wanted(leaf))
		}
	}
	s.Close()
	if s.Want(leaf, true, now) {
		t.Error("Want on a closed fetch returned true")
	}
}
