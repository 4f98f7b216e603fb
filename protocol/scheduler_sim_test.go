package protocol

import (
	"container/heap"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

// testDAG is a two-level DAG: a root linking to leaves (a UnixFS file of
// len(leaves) chunks), or with fanout < len(leaves), root → internal → leaves.
type testDAG struct {
	root   cid.Cid
	links  map[cid.Cid][]cid.Cid
	size   map[cid.Cid]int
	leaves []cid.Cid
	all    []cid.Cid // every block, root first
}

func testCID(s string) cid.Cid {
	h, err := mh.Sum([]byte(s), mh.SHA2_256, -1)
	if err != nil {
		panic(err)
	}
	return cid.NewCidV1(cid.Raw, h)
}

func makeDAG(name string, leaves, leafSize, fanout int) *testDAG {
	d := &testDAG{links: map[cid.Cid][]cid.Cid{}, size: map[cid.Cid]int{}}
	for i := range leaves {
		c := testCID(fmt.Sprintf("%s/leaf/%d", name, i))
		d.leaves = append(d.leaves, c)
		d.size[c] = leafSize
	}
	d.root = testCID(name + "/root")
	d.size[d.root] = 1024
	d.all = append(d.all, d.root)
	if fanout >= leaves {
		d.links[d.root] = d.leaves
		d.all = append(d.all, d.leaves...)
		return d
	}
	for i := 0; i < leaves; i += fanout {
		mid := testCID(fmt.Sprintf("%s/mid/%d", name, i))
		d.size[mid] = 1024
		d.links[mid] = d.leaves[i:min(i+fanout, leaves)]
		d.links[d.root] = append(d.links[d.root], mid)
		d.all = append(d.all, mid)
		d.all = append(d.all, d.links[mid]...)
	}
	return d
}

// simPeer plays one seeder: a FIFO of want-blocks served at bw bytes/s, with
// lat one-way latency. Presence answers are not queued behind blocks.
type simPeer struct {
	id      peer.ID
	bw      float64
	lat     time.Duration
	has     func(c cid.Cid) bool
	corrupt bool
	dead    bool // never answers again
	queue   []cid.Cid
	busy    bool
}

type simEventKind int

const (
	evAtPeer simEventKind = iota // an action arrives at the peer
	evPeerSent
	evBlock // a block arrives at the client
	evHave
	evDontHave
	evTick
	evCall // run fn
)

type simEvent struct {
	at   time.Time
	seq  int
	kind simEventKind
	act  Action
	peer *simPeer
	c    cid.Cid
	fn   func()
}

type eventQueue []*simEvent

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*simEvent)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// sim drives a Scheduler against simulated peers in virtual time.
type sim struct {
	t     testing.TB
	s     *Scheduler
	dag   *testDAG
	peers map[peer.ID]*simPeer
	q     eventQueue
	seq   int
	now   time.Time
	tick  time.Duration

	wantBlocks []simWant // every want-block sent, in order
	cancels    map[peer.ID][]cid.Cid
	onAction   func(a Action)
}

type simWant struct {
	at      time.Time
	peer    peer.ID
	c       cid.Cid
	dup     bool // another copy was in flight
	endgame bool // no block was unrequested at the time
}

var simEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newSim(t testing.TB, cfg SchedulerConfig, d *testDAG) *sim {
	s, err := NewScheduler(cfg, d.root)
	if err != nil {
		t.Fatal(err)
	}
	return &sim{t: t, s: s, dag: d, peers: map[peer.ID]*simPeer{}, now: simEpoch,
		tick: 50 * time.Millisecond, cancels: map[peer.ID][]cid.Cid{}}
}

func (m *sim) at(d time.Duration, kind simEventKind, fill func(e *simEvent)) {
	m.seq++
	e := &simEvent{at: m.now.Add(d), seq: m.seq, kind: kind}
	fill(e)
	heap.Push(&m.q, e)
}

// addPeer joins a seeder at virtual time `when` after start.
func (m *sim) addPeer(name string, bw float64, lat time.Duration, when time.Duration) *simPeer {
	p := &simPeer{id: peer.ID(name), bw: bw, lat: lat, has: func(cid.Cid) bool { return true }}
	m.peers[p.id] = p
	m.at(when, evCall, func(e *simEvent) {
		e.fn = func() { m.s.AddPeer(p.id, m.now) }
	})
	return p
}

func (m *sim) drain() {
	for _, a := range m.s.Ready() {
		if m.onAction != nil {
			m.onAction(a)
		}
		p := m.peers[a.Peer]
		switch a.Kind {
		case ActWantBlock:
			b := m.s.blocks[a.CID]
			m.wantBlocks = append(m.wantBlocks, simWant{at: m.now, peer: a.Peer, c: a.CID,
				dup: b != nil && len(b.inflight) > 1, endgame: m.s.queued == 0})
		case ActCancel:
			m.cancels[a.Peer] = append(m.cancels[a.Peer], a.CID)
		}
		if p == nil || p.dead {
			continue
		}
		m.at(p.lat, evAtPeer, func(e *simEvent) { e.peer, e.act = p, a })
	}
}

func (m *sim) atPeer(p *simPeer, a Action) {
	switch a.Kind {
	case ActCancel:
		p.queue = slices.DeleteFunc(p.queue, func(c cid.Cid) bool { return c == a.CID })
	case ActWantHave:
		kind := evDontHave
		if p.has(a.CID) {
			kind = evHave
		}
		m.at(p.lat, kind, func(e *simEvent) { e.peer, e.c = p, a.CID })
	case ActWantBlock:
		if !p.has(a.CID) {
			m.at(p.lat, evDontHave, func(e *simEvent) { e.peer, e.c = p, a.CID })
			return
		}
		p.queue = append(p.queue, a.CID)
		m.serveNext(p)
	}
}

func (m *sim) serveNext(p *simPeer) {
	if p.busy || len(p.queue) == 0 {
		return
	}
	c := p.queue[0]
	p.queue = p.queue[1:]
	p.busy = true
	d := time.Duration(float64(m.dag.size[c]) / p.bw * float64(time.Second))
	m.at(d, evPeerSent, func(e *simEvent) { e.peer, e.c = p, c })
}

func (m *sim) handle(e *simEvent) {
	p := e.peer
	if p != nil && p.dead {
		return
	}
	switch e.kind {
	case evCall:
		e.fn()
	case evTick:
		m.s.Tick(m.now)
		m.at(m.tick, evTick, func(*simEvent) {})
	case evAtPeer:
		m.atPeer(p, e.act)
	case evPeerSent:
		p.busy = false
		m.at(p.lat, evBlock, func(x *simEvent) { x.peer, x.c = p, e.c })
		m.serveNext(p)
	case evBlock:
		if p.corrupt {
			m.s.BadBlock(p.id, nil, m.now)
			break
		}
		if err := m.s.BlockReceived(p.id, e.c, m.dag.size[e.c], m.dag.links[e.c], m.now); err != nil {
			m.t.Fatalf("BlockReceived(%s, %s): %v", p.id, e.c, err)
		}
	case evHave:
		m.s.Have(p.id, e.c, m.now)
	case evDontHave:
		m.s.DontHave(p.id, e.c, m.now)
	}
	m.drain()
}

// run plays events until the fetch ends or limit virtual time passes and
// returns the virtual duration.
func (m *sim) run(limit time.Duration) time.Duration {
	m.at(m.tick, evTick, func(*simEvent) {})
	for m.q.Len() > 0 && !m.s.Done() && m.s.Err() == nil {
		e := heap.Pop(&m.q).(*simEvent)
		m.now = e.at
		if m.now.Sub(simEpoch) > limit {
			m.t.Fatalf("fetch not done after %v virtual: %+v", limit, m.s.Progress())
		}
		m.handle(e)
	}
	return m.now.Sub(simEpoch)
}

func share(pr Progress, p peer.ID) float64 {
	for _, pp := range pr.Peers {
		if pp.Peer == p {
			return float64(pp.Bytes) / float64(pr.BytesUseful)
		}
	}
	return 0
}

const (
	mbps = 1e6 / 8 // bytes per second in one Mbit/s
)

func TestSimFourEqualPeers(t *testing.T) {
	d := makeDAG("eq4", 256, 256<<10, 1024) // 64 MiB
	m := newSim(t, DefaultSchedulerConfig(), d)
	for i := range 4 {
		m.addPeer(fmt.Sprintf("seed%d", i), 100*mbps, 10*time.Millisecond, 0)
	}
	took := m.run(time.Hour)
	pr := m.s.Progress()
	ideal := time.Duration(float64(64<<20) / (400 * mbps) * float64(time.Second))
	t.Logf("took %v (ideal %v), dup ratio %.4f", took, ideal, pr.DuplicateRatio())
	for _, pp := range pr.Peers {
		t.Logf("%s: %d bytes (%.1f%%) window %d rate %.1f Mbit/s", pp.Peer, pp.Bytes,
			100*share(pr, pp.Peer), pp.Window, pp.Rate/mbps)
		if sh := share(pr, pp.Peer); sh < 0.15 {
			t.Errorf("%s served %.1f%% of bytes, want ≥ 15%%", pp.Peer, 100*sh)
		}
	}
	if r := pr.DuplicateRatio(); r > 1.05 {
		t.Errorf("duplicate ratio %.3f > 1.05", r)
	}
	if took > ideal*13/10 {
		t.Errorf("took %v, more than 1.3× the ideal %v", took, ideal)
	}
	if pr.BlocksDone != len(d.all) {
		t.Errorf("BlocksDone = %d, want %d", pr.BlocksDone, len(d.all))
	}
}

func TestSimSlowPeerDoesNotDelay(t *testing.T) {
	d := makeDAG("slow", 256, 256<<10, 1024)
	run := func(withSlow bool) (time.Duration, Progress) {
		m := newSim(t, DefaultSchedulerConfig(), d)
		for i := range 3 {
			m.addPeer(fmt.Sprintf("fast%d", i), 100*mbps, 10*time.Millisecond, 0)
		}
		if withSlow {
			m.addPeer("slow", 5*mbps, 10*time.Millisecond, 0)
		}
		return m.run(time.Hour), m.s.Progress()
	}
	base, _ := run(false)
	took, pr := run(true)
	t.Logf("3 fast: %v; 3 fast + 20× slower: %v; slow share %.1f%%; dup ratio %.4f",
		base, took, 100*share(pr, "slow"), pr.DuplicateRatio())
	if took > base*13/10 {
		t.Errorf("slow peer delayed completion to %v, more than 1.3× %v", took, base)
	}
	if sh := share(pr, "slow"); sh > 0.06 {
		t.Errorf("slow peer served %.1f%%, want a small share (≤ 6%%)", 100*sh)
	}
	if r := pr.DuplicateRatio(); r > 1.05 {
		t.Errorf("duplicate ratio %.3f > 1.05", r)
	}
}

func TestSimEndgameDuplicatesOnlyAtTail(t *testing.T) {
	d := makeDAG("tail", 128, 256<<10, 1024)
	m := newSim(t, DefaultSchedulerConfig(), d)
	m.addPeer("fast0", 100*mbps, 5*time.Millisecond, 0)
	m.addPeer("fast1", 100*mbps, 5*time.Millisecond, 0)
	m.addPeer("slow", 4*mbps, 5*time.Millisecond, 0)
	m.run(time.Hour)
	dups := 0
	holders := map[cid.Cid][]peer.ID{}
	for _, w := range m.wantBlocks {
		holders[w.c] = append(holders[w.c], w.peer)
		if w.dup {
			dups++
			if !w.endgame {
				t.Errorf("duplicate want-block %s→%s at %v before the endgame", w.c, w.peer, w.at.Sub(simEpoch))
			}
		}
	}
	if dups == 0 {
		t.Fatal("no endgame duplicates with a slow peer holding tail blocks")
	}
	// Every block requested from two peers got a cancel to one of them.
	for c, ps := range holders {
		if len(ps) < 2 {
			continue
		}
		cancelled := false
		for _, p := range ps {
			cancelled = cancelled || slices.Contains(m.cancels[p], c)
		}
		if !cancelled {
			t.Errorf("block %s requested from %v but never cancelled", c, ps)
		}
	}
	t.Logf("%d endgame duplicates, dup ratio %.4f", dups, m.s.Progress().DuplicateRatio())
}

func TestSimWindowGrowsToBDP(t *testing.T) {
	// 400 Mbit/s × 2×25 ms ≈ 2.5 MB in flight ≈ 10 blocks of 256 KiB.
	d := makeDAG("bdp", 512, 256<<10, 1024)
	m := newSim(t, DefaultSchedulerConfig(), d)
	m.addPeer("far", 400*mbps, 25*time.Millisecond, 0)
	var windows []int
	m.onAction = func(Action) {
		if p := m.s.byID["far"]; p != nil {
			windows = append(windows, p.w.size())
		}
	}
	took := m.run(time.Hour)
	ideal := time.Duration(float64(512*256<<10)/(400*mbps)*float64(time.Second)) + 100*time.Millisecond
	maxW := slices.Max(windows)
	t.Logf("took %v (ideal ≈ %v), window %d → max %d → final %d", took, ideal, windows[0], maxW, windows[len(windows)-1])
	if maxW < 10 {
		t.Errorf("window peaked at %d, want ≥ 10 (the bandwidth-delay product)", maxW)
	}
	if took > ideal*12/10 {
		t.Errorf("took %v, want within 1.2× of %v", took, ideal)
	}
}

func TestSimPeerDiesMidFetch(t *testing.T) {
	d := makeDAG("dies", 128, 256<<10, 1024)
	m := newSim(t, DefaultSchedulerConfig(), d)
	m.addPeer("a", 50*mbps, 5*time.Millisecond, 0)
	victim := m.addPeer("b", 50*mbps, 5*time.Millisecond, 0)
	m.at(500*time.Millisecond, evCall, func(e *simEvent) { e.fn = func() { victim.dead = true } })
	m.run(time.Hour)
	if !m.s.Done() {
		t.Fatalf("fetch not done: %v", m.s.Err())
	}
	pr := m.s.Progress()
	if pr.BlocksDone != len(d.all) {
		t.Fatalf("BlocksDone %d, want %d", pr.BlocksDone, len(d.all))
	}
	if len(m.cancels["b"]) == 0 {
		t.Error("stalled requests to the dead peer were not cancelled")
	}
	t.Logf("a %.1f%%, b %.1f%%", 100*share(pr, "a"), 100*share(pr, "b"))
}

func TestSimCorruptPeerCutOff(t *testing.T) {
	d := makeDAG("corrupt", 64, 256<<10, 1024)
	scores := NewPeerScores(time.Hour)
	cfg := DefaultSchedulerConfig()
	cfg.Scores = scores
	m := newSim(t, cfg, d)
	m.addPeer("good", 50*mbps, 5*time.Millisecond, 0)
	bad := m.addPeer("bad", 50*mbps, 5*time.Millisecond, 0)
	bad.corrupt = true
	after := 0
	m.onAction = func(a Action) {
		if a.Peer == "bad" && a.Kind != ActCancel && m.s.banned["bad"] {
			after++
		}
	}
	m.run(time.Hour)
	if !m.s.Done() {
		t.Fatalf("fetch not done: %v", m.s.Err())
	}
	if after != 0 {
		t.Errorf("%d wants sent to the corrupt peer after it was cut off", after)
	}
	if !scores.Banned("bad", m.now) || scores.Score("bad") >= 0 {
		t.Errorf("corrupt peer not banned/scored down: banned=%v score=%v", scores.Banned("bad", m.now), scores.Score("bad"))
	}
	if m.s.AddPeer("bad", m.now) {
		t.Error("AddPeer accepted a banned peer")
	}
}

func TestSimPartialSeedersRarestFirst(t *testing.T) {
	// Two leechers each hold half the leaves and are not root holders; one
	// seeder has everything but is slow. Every peer holding blocks is used.
	d := makeDAG("partial", 64, 256<<10, 1024)
	m := newSim(t, DefaultSchedulerConfig(), d)
	half := map[cid.Cid]int{}
	for i, c := range d.leaves {
		half[c] = i % 2
	}
	for i := range 2 {
		p := m.addPeer(fmt.Sprintf("half%d", i), 50*mbps, 5*time.Millisecond, 0)
		p.has = func(c cid.Cid) bool { h, ok := half[c]; return ok && h == i }
	}
	m.addPeer("seed", 5*mbps, 5*time.Millisecond, 0)
	m.run(time.Hour)
	pr := m.s.Progress()
	for _, p := range []peer.ID{"half0", "half1"} {
		if sh := share(pr, p); sh < 0.25 {
			t.Errorf("partial peer %s served %.1f%%, want ≥ 25%%", p, 100*sh)
		}
	}
}

// TestSimMixedSwarms runs heterogeneous swarms (bandwidths, latencies, a
// two-level DAG) and checks the common-case waste and speed: duplicate
// ratio ≤ 1.05 and completion within 1.3× of the aggregate-bandwidth bound
// plus one round trip per DAG level.
func TestSimMixedSwarms(t *testing.T) {
	cases := []struct {
		name  string
		bw    []float64 // Mbit/s
		lat   []time.Duration
		leafs int
	}{
		{"8 mixed", []float64{10, 20, 50, 100, 100, 30, 5, 80}, []time.Duration{ms(1), ms(5), ms(20), ms(40), ms(2), ms(10), ms(30), ms(15)}, 400},
		{"2 far fast", []float64{200, 200}, []time.Duration{ms(80), ms(60)}, 300},
		{"1 fast 5 slow", []float64{200, 10, 10, 10, 10, 10}, []time.Duration{ms(10), ms(10), ms(10), ms(10), ms(10), ms(10)}, 300},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := makeDAG(tc.name, tc.leafs, 256<<10, 128)
			m := newSim(t, DefaultSchedulerConfig(), d)
			total := 0.0
			maxLat := time.Duration(0)
			for i, bw := range tc.bw {
				m.addPeer(fmt.Sprintf("p%d", i), bw*mbps, tc.lat[i], 0)
				total += bw * mbps
				maxLat = max(maxLat, tc.lat[i])
			}
			took := m.run(time.Hour)
			bytes := float64(tc.leafs) * (256 << 10)
			bound := time.Duration(bytes/total*float64(time.Second)) + 3*2*maxLat
			pr := m.s.Progress()
			t.Logf("took %v, bound %v (%.2f×), dup ratio %.4f", took, bound, float64(took)/float64(bound), pr.DuplicateRatio())
			if r := pr.DuplicateRatio(); r > 1.05 {
				t.Errorf("duplicate ratio %.3f > 1.05", r)
			}
			if took > bound*13/10 {
				t.Errorf("took %v, more than 1.3× the bound %v", took, bound)
			}
		})
	}
}

// TestSimNewSourceNotTakenForSlow: a seeder that has delivered nothing yet
// is not taken for slow. Two seeders (20 and 10 Mbit/s), eight 1 MiB
// leaves: when the fast one delivers its first leaf (0.5 s in), the slow
// one is sending its first. Taken for 2.5 s away (half the stall timeout),
// its blocks were asked again of the fast one — two of eight fetched
// twice, done at 3.0 s; as fast as the fastest until it shows otherwise,
// none twice, done at 2.6 s (each seeder's share at its own rate).
func TestSimNewSourceNotTakenForSlow(t *testing.T) {
	d := makeDAG("newsource", 8, 1<<20, 1024)
	m := newSim(t, DefaultSchedulerConfig(), d)
	m.addPeer("fast", 20*mbps, 20*time.Millisecond, 0)
	m.addPeer("slow", 10*mbps, 20*time.Millisecond, 0)
	took := m.run(time.Hour)
	pr := m.s.Progress()
	if r := pr.DuplicateRatio(); r != 1 {
		t.Errorf("duplicate ratio %.4f, want 1 (no leaf fetched twice)", r)
	}
	// 8 MiB over 30 Mbit/s is 2.24 s; the leaves are whole, so the fast
	// seeder's 5 and the slow one's 3 take 2.1 and 2.5 s plus latency.
	if took > 2700*time.Millisecond {
		t.Errorf("done in %v (virtual), want ≤ 2.7 s", took)
	}
}
