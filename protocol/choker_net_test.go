package protocol

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// slotWatch wraps the Network as the server's sender and records, at
// every block message, how many swarm peers were being served (a batch
// being built, waiting for upload budget or on the wire: the server's own
// ledgers say), how many had block messages on the wire, and how many the
// server had unchoked when a non-swarm peer got blocks.
type slotWatch struct {
	inner MessageSender
	srv   *Server
	swarm map[peer.ID]bool

	mu          sync.Mutex
	onWire      map[peer.ID]int
	maxOnWire   int
	maxServing  int
	plainBusy   int // blocks sent to non-swarm peers while all 2+1 slots were unchoked
	dontHaves   int
	blocksSent  int
	plainBlocks int
}

func (w *slotWatch) Send(ctx context.Context, p peer.ID, m *Message) error {
	for _, pr := range m.Presences {
		if pr.Type == DontHave {
			w.mu.Lock()
			w.dontHaves++
			w.mu.Unlock()
		}
	}
	if len(m.Blocks) == 0 {
		return w.inner.Send(ctx, p, m)
	}
	if !w.swarm[p] {
		busy := len(w.srv.Swarm().Unchoked) == 3
		w.mu.Lock()
		w.plainBlocks += len(m.Blocks)
		if busy {
			w.plainBusy += len(m.Blocks)
		}
		w.mu.Unlock()
		return w.inner.Send(ctx, p, m)
	}
	serving := w.serving()
	w.mu.Lock()
	w.maxServing = max(w.maxServing, serving)
	w.onWire[p]++
	w.maxOnWire = max(w.maxOnWire, len(w.onWire))
	w.blocksSent += len(m.Blocks)
	w.mu.Unlock()
	err := w.inner.Send(ctx, p, m)
	w.mu.Lock()
	if w.onWire[p]--; w.onWire[p] == 0 {
		delete(w.onWire, p)
	}
	w.mu.Unlock()
	return err
}

// serving counts the swarm peers with a batch being built or sent.
func (w *slotWatch) serving() int {
	w.srv.mu.Lock()
	defer w.srv.mu.Unlock()
	n := 0
	for p, l := range w.srv.ledgers {
		if w.swarm[p] && (l.building || l.sending > 0) {
			n++
		}
	}
	return n
}

// TestServerUploadSlotsLibp2p: a seeder on a real libp2p host with
// UploadSlots 2 and six swarm fetchers (raw Bitswap clients that ask for
// all 16 blocks once and never again): at no moment do more than 2+1 swarm
// peers have blocks on the wire, every fetcher completes (the optimistic
// rotation reaches the ones that give nothing back), no fetcher is told
// DONT_HAVE for a block the seeder has, and a seventh peer without the
// swarm extension is served while all slots are taken.
func TestServerUploadSlotsLibp2p(t *testing.T) {
	const fetchers, nblocks = 6, 16
	blks := seqBlocks(t, nblocks, 16<<10)
	h := bsTestHost(t)
	n := bsTestNetwork(t, h)
	cfg := DefaultServerConfig()
	cfg.Logger = bsTestLogger(t)
	cfg.UploadSlots = 2
	cfg.ChokeInterval = 200 * time.Millisecond
	cfg.OptimisticUnchokeInterval = 200 * time.Millisecond
	cfg.UploadBytesPerSecond = 512 << 10 // about 4 s for all: many rounds
	cfg.MaxBatchBytes = 32 << 10         // two blocks per message
	w := &slotWatch{inner: n, swarm: map[peer.ID]bool{}, onWire: map[peer.ID]int{}}
	srv, err := NewServer(cfg, newMemStore(blks...), w)
	if err != nil {
		t.Fatal(err)
	}
	w.srv = srv
	t.Cleanup(func() { _ = srv.Close() })
	n.SetReceivers(srv, nil)
	n.AddPeerListener(srv)
	var changesMu sync.Mutex
	changes := 0
	srv.OnChoke(func(peer.ID, bool) { changesMu.Lock(); changes++; changesMu.Unlock() })
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}

	clients := make([]*rawClient, fetchers+1)
	for i := range clients {
		clients[i] = newRawClient(t)
		bsConnect(t, clients[i].h, h)
		if i < fetchers {
			w.swarm[clients[i].h.ID()] = true
			srv.SetSwarmPeer(clients[i].h.ID(), true)
		}
	}
	plain := clients[fetchers]
	for _, c := range clients {
		c.send(t, h.ID(), wantAll(blks))
	}
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := map[cid.Cid]bool{}
			deadline := time.After(60 * time.Second)
			for len(got) < nblocks {
				select {
				case m := <-c.msgs:
					for _, b := range m.Blocks {
						got[b.CID] = true
					}
				case <-deadline:
					t.Errorf("client %d got %d of %d blocks", i, len(got), nblocks)
					return
				}
			}
		}()
	}
	wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.maxServing > 3 || w.maxOnWire > 3 {
		t.Errorf("%d swarm peers served at once, %d with blocks on the wire; want at most 2+1", w.maxServing, w.maxOnWire)
	}
	if w.maxServing < 2 {
		t.Errorf("at most %d swarm peer served at a time; the slots should be used", w.maxServing)
	}
	if w.dontHaves != 0 {
		t.Errorf("%d DONT_HAVE answers for blocks the seeder holds", w.dontHaves)
	}
	if w.plainBusy == 0 {
		t.Errorf("the non-swarm peer got none of its %d blocks while all 3 slots were unchoked", w.plainBlocks)
	}
	if srv.Choking(plain.h.ID()) {
		t.Error("a peer without the swarm extension is reported choked")
	}
	changesMu.Lock()
	defer changesMu.Unlock()
	// Six peers through three slots: at least three more unchokes and as
	// many chokes than the first three unchokes.
	if changes < 9 {
		t.Errorf("%d choke changes reported; want at least 9", changes)
	}
	t.Logf("max swarm peers served at once %d, on the wire %d; %d swarm blocks sent (%d needed); non-swarm peer got %d blocks while the slots were full; %d choke changes",
		w.maxServing, w.maxOnWire, w.blocksSent, fetchers*nblocks, w.plainBusy, changes)
}
