package protocol

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// wantAll asks for every block, most urgent first in the same order for
// every peer (the worst case for a seeder: all want block 0 first).
func wantAll(blks []Block) *Message {
	m := &Message{}
	for i, b := range blks {
		m.Wants = append(m.Wants, Entry{CID: b.CID, WantType: WantBlock, Priority: int32(len(blks) - i)})
	}
	return m
}

// TestServerOriginSendsEachBlockOnceFirst: four swarm fetchers all want
// the same 20 blocks in the same priority order; the seeder (origin mode)
// sends each block once before it sends any block twice, so its first 20
// block sends are 20 distinct blocks. Without origin mode the first four
// sends would all be block 0.
func TestServerOriginSendsEachBlockOnceFirst(t *testing.T) {
	const fetchers, nblocks = 4, 20
	blks := seqBlocks(t, nblocks, 1000)
	cfg := DefaultServerConfig()
	cfg.Workers, cfg.MaxInflightSends = 1, 1 // sends in order
	cfg.MaxBatchBytes = 1                    // one block per message
	cfg.UploadSlots = fetchers               // all unchoked: only the order is tested
	snd := newChanSender()
	s := bsTestServer(t, cfg, newMemStore(blks...), snd)
	peers := make([]peer.ID, fetchers)
	for i := range peers {
		peers[i] = peer.ID(fmt.Sprintf("fetcher-%d", i))
		s.SetSwarmPeer(peers[i], true)
		s.ReceiveMessage(context.Background(), peers[i], wantAll(blks))
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	count := map[cid.Cid]int{}
	got := map[peer.ID]int{}
	for n := 0; n < fetchers*nblocks; {
		x := snd.next(t)
		for _, b := range x.m.Blocks {
			least := nblocks * fetchers
			for _, bb := range blks {
				least = min(least, count[bb.CID])
			}
			if count[b.CID] != least {
				t.Fatalf("send %d: block %s sent a %d. time while another was sent only %d times", n, b.CID, count[b.CID]+1, least)
			}
			count[b.CID]++
			got[x.to]++
			n++
		}
		for _, p := range x.m.Presences {
			t.Fatalf("unexpected presence %v for %s", p.Type, p.CID)
		}
	}
	for _, p := range peers {
		if got[p] != nblocks {
			t.Fatalf("%s got %d blocks, want %d", p, got[p], nblocks)
		}
	}
	if st := s.Swarm(); !st.Origin || st.SwarmPeers != fetchers {
		t.Fatalf("swarm state %+v: want origin mode on over %d peers", st, fetchers)
	}
}

// TestServerNonSwarmPriorityOrder: a peer without the swarm extension is
// served in its own priority order even while origin mode is on for others.
func TestServerNonSwarmPriorityOrder(t *testing.T) {
	blks := seqBlocks(t, 6, 1000)
	cfg := DefaultServerConfig()
	cfg.Workers, cfg.MaxInflightSends, cfg.MaxBatchBytes = 1, 1, 1
	snd := newChanSender()
	s := bsTestServer(t, cfg, newMemStore(blks...), snd)
	ctx := context.Background()
	s.SetSwarmPeer("s1", true)
	s.SetSwarmPeer("s2", true)
	s.ReceiveMessage(ctx, "s1", wantAll(blks))
	s.ReceiveMessage(ctx, "s2", wantAll(blks))
	s.ReceiveMessage(ctx, "kubo", wantAll(blks))
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	var kubo []cid.Cid
	for n := 0; n < 3*len(blks); {
		x := snd.next(t)
		n += len(x.m.Blocks)
		if x.to == "kubo" {
			for _, b := range x.m.Blocks {
				kubo = append(kubo, b.CID)
			}
		}
	}
	for i, b := range blks {
		if kubo[i] != b.CID {
			t.Fatalf("kubo peer got block %d out of priority order: %v", i, kubo)
		}
	}
}

// gatedSender holds the sends to the peers in hold until release is
// closed; others go to the chanSender at once.
type gatedSender struct {
	*chanSender
	hold    map[peer.ID]bool
	release chan struct{}
}

func (g *gatedSender) Send(ctx context.Context, p peer.ID, m *Message) error {
	if g.hold[p] {
		select {
		case <-g.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return g.chanSender.Send(ctx, p, m)
}

// TestServerChokedWantsWait: with both slots (1 regular + 1 optimistic)
// held by peers whose batches are on their way, a third swarm peer stays
// choked: its want-block is neither served nor answered DONT_HAVE, its
// want-have is answered. Once it is a plain peer again (SetSwarmPeer
// false) its block goes.
func TestServerChokedWantsWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		blks := seqBlocks(t, 40, 1000)
		cfg := DefaultServerConfig()
		cfg.UploadSlots = 1
		cfg.MaxBatchBytes = 2000
		snd := &gatedSender{chanSender: newChanSender(), hold: map[peer.ID]bool{"busy": true, "opt": true}, release: make(chan struct{})}
		s := bsTestServer(t, cfg, newMemStore(blks...), snd)
		defer close(snd.release) // before Close (deferred in cleanup) waits for the sends
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for _, p := range []peer.ID{"busy", "opt", "late"} {
			s.SetSwarmPeer(p, true)
			if !s.Choking(p) {
				t.Fatalf("new swarm peer %s not choked", p)
			}
		}
		s.ReceiveMessage(ctx, "busy", wantAll(blks[2:]))
		s.ReceiveMessage(ctx, "opt", wantAll(blks[2:]))
		synctest.Wait()
		if s.Choking("busy") || s.Choking("opt") {
			t.Fatalf("busy choked %v, opt choked %v: both should hold a slot", s.Choking("busy"), s.Choking("opt"))
		}
		s.ReceiveMessage(ctx, "late", &Message{Wants: []Entry{
			{CID: blks[0].CID, WantType: WantBlock, SendDontHave: true},
			{CID: blks[1].CID, WantType: WantHave, SendDontHave: true},
		}})
		time.Sleep(3 * chokeFillInterval) // fill rounds come and go
		synctest.Wait()
		if !s.Choking("late") {
			t.Fatal("late was unchoked with both slots held")
		}
		late := drain(snd.chanSender)
		if len(late) != 1 || late[0].to != "late" || len(late[0].m.Blocks) != 0 ||
			!slices.Equal(late[0].m.Presences, []Presence{{CID: blks[1].CID, Type: Have}}) {
			t.Fatalf("sent %+v; want only late's HAVE for its want-have", late)
		}
		s.SetSwarmPeer("late", false)
		synctest.Wait()
		got := drain(snd.chanSender)
		if len(got) != 1 || got[0].to != "late" || len(got[0].m.Blocks) != 1 || got[0].m.Blocks[0].CID != blks[0].CID {
			t.Fatalf("after SetSwarmPeer(false) sent %+v; want block 0 to late", got)
		}
		if st := s.Swarm(); len(st.Unchoked) != 2 || st.SwarmPeers != 2 {
			t.Fatalf("swarm state %+v: want 2 swarm peers, both unchoked", st)
		}
	})
}

// drain takes every message sent so far.
func drain(s *chanSender) []sent {
	var out []sent
	for {
		select {
		case x := <-s.ch:
			out = append(out, x)
		default:
			return out
		}
	}
}

// TestServerChokeRanks: the rates the choker feeds the decision. A seeder
// (receives from nobody) ranks by bytes taken plus bytes passed on (a block
// it sent first to B that PeerHas then reports at another peer counts for
// B, once); a leecher ranks by bytes received (tit-for-tat).
func TestServerChokeRanks(t *testing.T) {
	blks := seqBlocks(t, 2, 8000)
	s := bsTestServer(t, DefaultServerConfig(), newMemStore(blks...), newChanSender())
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.mu.Lock()
	for _, p := range []peer.ID{"A", "B", "C"} {
		s.addSwarm(p)
		s.newLedger(p).add(Entry{CID: blks[1].CID, WantType: WantBlock}, 10)
	}
	s.measure(t0, map[peer.ID]uint64{"A": 0, "B": 0, "C": 0})
	s.mu.Unlock()
	// B got block 0 first; C and A report holding it; B reports it too.
	s.mu.Lock()
	s.origin.take(blks[0].CID, "B")
	s.origin.sized(blks[0].CID, 8000)
	s.mu.Unlock()
	s.PeerHas("B", blks[0].CID)
	s.PeerHas("C", blks[0].CID)
	s.PeerHas("A", blks[0].CID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if got := s.swarm["B"].pass; got != 8000 {
		t.Fatalf("B passed on %d bytes; want 8000 (one block, credited once)", got)
	}
	regular := func(now time.Time, recv map[peer.ID]uint64) string {
		s.measure(now, recv)
		par, cands := s.chokeInputs(now, true)
		par.Slots = 1
		return string(decideChoke(par, chokeState{}, cands).Unchoked[0])
	}
	s.swarm["A"].sent = 10000 // A took twice what B took
	s.swarm["B"].sent = 5000
	if got := regular(t0.Add(10*time.Second), map[peer.ID]uint64{"A": 0, "B": 0, "C": 0}); got != "B" {
		t.Fatalf("seeding: regular slot to %s; want B, which passes blocks on", got)
	}
	if !s.originOn {
		t.Fatal("origin mode off with three interested swarm peers")
	}
	if got := regular(t0.Add(20*time.Second), map[peer.ID]uint64{"A": 0, "B": 0, "C": 50000}); got != "C" {
		t.Fatalf("leeching: regular slot to %s; want C, the only one that gave back", got)
	}
}

// TestServerPeerInterested: a swarm peer that declares interest (the
// extension's message) but queues no want-block while choked still gets a
// slot; when it withdraws interest and has nothing queued, it loses it.
func TestServerPeerInterested(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultServerConfig()
		cfg.UploadSlots = 1
		var mu sync.Mutex
		var changes []string
		s := bsTestServer(t, cfg, newMemStore(), newChanSender())
		s.OnChoke(func(p peer.ID, choked bool) {
			mu.Lock()
			changes = append(changes, fmt.Sprintf("%s choked=%v", string(p), choked))
			mu.Unlock()
		})
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		s.SetSwarmPeer("quiet", true)
		time.Sleep(2 * chokeFillInterval)
		synctest.Wait()
		if !s.Choking("quiet") {
			t.Fatal("a swarm peer that wants nothing was unchoked")
		}
		s.PeerInterested("quiet", true)
		synctest.Wait()
		if s.Choking("quiet") {
			t.Fatal("a peer that declared interest is still choked with a slot free")
		}
		s.PeerInterested("quiet", false)
		time.Sleep(2 * chokeFillInterval)
		synctest.Wait()
		if !s.Choking("quiet") {
			t.Fatal("a peer that withdrew interest keeps its slot")
		}
		mu.Lock()
		defer mu.Unlock()
		if want := []string{"quiet choked=false", "quiet choked=true"}; !slices.Equal(changes, want) {
			t.Fatalf("OnChoke calls %v, want %v", changes, want)
		}
	})
}

// TestServerIdleUnchokeGivesSlotBack: swarm peers that declared interest
// in a root but ask this node for nothing (they need none of its blocks)
// hold its two slots (1 regular + the optimistic); a third that asks for
// blocks waits. Within idleUnchoke plus a fill round — long before the
// next full round — the idle two give their slots back, the asker is
// unchoked and sent its blocks, and the idle two are not unchoked again
// during idleCooldown on their declared interest alone (the asker, served,
// may lose its slot too: it asks for nothing more).
func TestServerIdleUnchokeGivesSlotBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		blks := seqBlocks(t, 4, 1000)
		cfg := DefaultServerConfig()
		cfg.UploadSlots = 1
		snd := newChanSender()
		s := bsTestServer(t, cfg, newMemStore(blks...), snd)
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		for _, p := range []peer.ID{"idle1", "idle2", "asker"} {
			s.SetSwarmPeer(p, true)
		}
		s.PeerInterested("idle1", true)
		s.PeerInterested("idle2", true)
		synctest.Wait()
		if s.Choking("idle1") || s.Choking("idle2") {
			t.Fatalf("idle1 choked %v, idle2 choked %v: both should hold a slot at first", s.Choking("idle1"), s.Choking("idle2"))
		}
		s.PeerInterested("asker", true)
		s.ReceiveMessage(context.Background(), "asker", wantAll(blks))
		time.Sleep(idleUnchoke + 2*chokeFillInterval)
		synctest.Wait()
		if cfg.ChokeInterval <= idleUnchoke+2*chokeFillInterval {
			t.Fatalf("ChokeInterval %v: the test needs it longer than %v", cfg.ChokeInterval, idleUnchoke+2*chokeFillInterval)
		}
		if !s.Choking("idle1") || !s.Choking("idle2") {
			t.Fatalf("after %v: idle1 choked %v, idle2 choked %v; want both choked", idleUnchoke+2*chokeFillInterval, s.Choking("idle1"), s.Choking("idle2"))
		}
		got := map[cid.Cid]bool{}
		for _, m := range drain(snd) {
			if m.to != "asker" && len(m.m.Blocks) > 0 {
				t.Fatalf("sent %d blocks to %s, which asked for none", len(m.m.Blocks), m.to)
			}
			for _, b := range m.m.Blocks {
				got[b.CID] = true
			}
		}
		if len(got) != len(blks) {
			t.Fatalf("the asker got %d of its %d blocks", len(got), len(blks))
		}
		time.Sleep(idleCooldown - idleUnchoke - 3*chokeFillInterval)
		synctest.Wait()
		if !s.Choking("idle1") || !s.Choking("idle2") {
			t.Fatalf("idle1 choked %v, idle2 choked %v: re-unchoked within idleCooldown on declared interest alone", s.Choking("idle1"), s.Choking("idle2"))
		}
	})
}

// TestServerRetellsChoke: a choked swarm peer that asks for blocks does
// not know it is choked (its choke message was lost or overtaken); it is
// told again at the next round. At a full round every swarm peer is told
// its state again, so a peer that thinks itself choked while it holds a
// slot, or unchoked while it waits, believes the server within a round.
func TestServerRetellsChoke(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		blks := seqBlocks(t, 4, 1000)
		cfg := DefaultServerConfig()
		cfg.UploadSlots = 1
		var mu sync.Mutex
		told := map[peer.ID][]bool{}
		s := bsTestServer(t, cfg, newMemStore(blks...), newChanSender())
		s.OnChoke(func(p peer.ID, choked bool) {
			mu.Lock()
			told[p] = append(told[p], choked)
			mu.Unlock()
		})
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		peers := []peer.ID{"a", "b", "c"}
		for _, p := range peers {
			s.SetSwarmPeer(p, true)
			s.PeerInterested(p, true)
		}
		time.Sleep(chokeFillInterval)
		synctest.Wait()
		var choked peer.ID
		for _, p := range peers {
			if s.Choking(p) {
				choked = p
			}
		}
		if choked == "" || len(s.Swarm().Unchoked) != 2 {
			t.Fatalf("swarm state %+v: want 1+1 of 3 interested peers unchoked", s.Swarm())
		}
		mu.Lock()
		clear(told)
		mu.Unlock()

		s.ReceiveMessage(context.Background(), choked, wantAll(blks))
		synctest.Wait()
		mu.Lock()
		if got := told[choked]; !slices.Equal(got, []bool{true}) {
			t.Fatalf("choked peer %s asked for blocks; told %v, want [true] (choked, again)", choked, got)
		}
		clear(told)
		mu.Unlock()

		time.Sleep(cfg.ChokeInterval)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, p := range peers {
			got := told[p]
			if len(got) == 0 || got[len(got)-1] != s.Choking(p) {
				t.Fatalf("after a full round %s was told %v; want its state (choked=%v) said again", p, got, s.Choking(p))
			}
		}
	})
}

// TestAutoSlots: with UploadSlots 0 a node gets one regular slot per
// 10 Mbit/s of uplink (the limit if set, else the measured peak), at
// least 2 and at most 16; a set UploadSlots wins.
func TestAutoSlots(t *testing.T) {
	mbit := func(m float64) float64 { return m * 1e6 / 8 }
	for _, tc := range []struct {
		limit int64   // UploadBytesPerSecond
		peak  float64 // measured
		set   int     // UploadSlots
		want  int
	}{
		{peak: 0, want: 2},
		{peak: mbit(5), want: 2},
		{peak: mbit(20), want: 2},
		{peak: mbit(35), want: 3},
		{peak: mbit(100), want: 10},
		{peak: mbit(1000), want: 16},
		{limit: int64(mbit(40)), peak: mbit(1000), want: 4},
		{set: 7, peak: mbit(1000), want: 7},
	} {
		s := &Server{cfg: ServerConfig{UploadBytesPerSecond: tc.limit, UploadSlots: tc.set}, upPeak: tc.peak}
		if got := s.slots(); got != tc.want {
			t.Errorf("limit %d B/s, peak %.0f B/s, UploadSlots %d: %d slots, want %d", tc.limit, tc.peak, tc.set, got, tc.want)
		}
	}
}

// TestSamplePeak: the uplink peak behind the automatic slot count is
// sampled over a second at every choke round, fill rounds included, so a
// 100 Mbit/s node has its 10 slots a second into a flash crowd rather
// than at the first full round (ten seconds in, when a crowd may be
// done); a burst over less than a second is not taken for the uplink's
// rate, and a slower second does not lower the peak.
func TestSamplePeak(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := &Server{}
	send := func(b uint64) { s.total.BytesSent += b }
	s.samplePeak(t0)
	send(4 << 20)
	s.samplePeak(t0.Add(100 * time.Millisecond)) // a fill round soon after: too short a sample
	if got := s.slots(); got != minAutoSlots {
		t.Fatalf("after 4 MiB in 0.1 s: %d slots (peak %.0f B/s), want %d: a sample under %v must not count", got, s.upPeak, minAutoSlots, peakSample)
	}
	send(12_500_000 - 4<<20)
	s.samplePeak(t0.Add(peakSample)) // 12.5 MB in 1 s: 100 Mbit/s
	if got := s.slots(); got != 10 {
		t.Fatalf("after 100 Mbit/s for 1 s: %d slots (peak %.0f B/s), want 10", got, s.upPeak)
	}
	send(2_500_000)
	s.samplePeak(t0.Add(2 * peakSample)) // 20 Mbit/s: the peak stays
	if got := s.slots(); got != 10 {
		t.Fatalf("after a slower second: %d slots (peak %.0f B/s), want 10 (the peak is kept)", got, s.upPeak)
	}
}
