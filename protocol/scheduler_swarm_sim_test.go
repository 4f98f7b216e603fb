package protocol

import (
	"fmt"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// addSwarmPeer joins a peer that speaks the swarm extension at `when`:
// its map (complete, or one segment naming the root's links it has)
// arrives one latency later.
func (m *sim) addSwarmPeer(name string, bw float64, lat, when time.Duration, has func(cid.Cid) bool, complete bool) *simPeer {
	p := &simPeer{id: peer.ID(name), bw: bw, lat: lat, has: has}
	m.peers[p.id] = p
	m.at(when, evCall, func(e *simEvent) {
		e.fn = func() {
			m.s.SetSwarmPeer(p.id, true, m.now)
			m.s.AddPeer(p.id, m.now)
		}
	})
	m.at(when+lat, evCall, func(e *simEvent) {
		e.fn = func() {
			pm := PeerMap{Complete: complete}
			if !complete {
				links := m.dag.links[m.dag.root]
				bits := make([]byte, (len(links)+7)/8)
				for i, c := range links {
					if has(c) {
						bits[i/8] |= 1 << (i % 8)
					}
				}
				pm.Segments = []MapSegment{{Parent: m.dag.root, Bits: bits}}
			}
			m.s.PeerMap(p.id, pm, m.now)
		}
	})
	return p
}

// TestSimSwarmMapsReplaceProbes: the partial-seeders swarm of
// TestSimPartialSeedersRarestFirst, once over Bitswap (probed) and once
// with every peer sending a map: with maps no want-have is sent, every
// holder is used, nothing is fetched twice outside the endgame, and the
// fetch is no slower.
func TestSimSwarmMapsReplaceProbes(t *testing.T) {
	d := makeDAG("swarm-partial", 64, 256<<10, 1024)
	half := map[cid.Cid]int{}
	for i, c := range d.leaves {
		half[c] = i % 2
	}
	holds := func(i int) func(cid.Cid) bool {
		return func(c cid.Cid) bool { h, ok := half[c]; return c == d.root || (ok && h == i) }
	}
	run := func(swarm bool) (time.Duration, Progress, int) {
		m := newSim(t, DefaultSchedulerConfig(), d)
		wantHaves := 0
		m.onAction = func(a Action) {
			if a.Kind == ActWantHave {
				wantHaves++
			}
		}
		for i := range 2 {
			name := fmt.Sprintf("half%d", i)
			if swarm {
				m.addSwarmPeer(name, 50*mbps, 5*time.Millisecond, 0, holds(i), false)
			} else {
				m.addPeer(name, 50*mbps, 5*time.Millisecond, 0).has = holds(i)
			}
		}
		if swarm {
			m.addSwarmPeer("seed", 5*mbps, 5*time.Millisecond, 0, func(cid.Cid) bool { return true }, true)
		} else {
			m.addPeer("seed", 5*mbps, 5*time.Millisecond, 0)
		}
		took := m.run(time.Hour)
		return took, m.s.Progress(), wantHaves
	}
	probed, _, probes := run(false)
	took, pr, wh := run(true)
	t.Logf("probed: %v, %d want-haves; maps: %v, %d want-haves, dup ratio %.4f", probed, probes, took, wh, pr.DuplicateRatio())
	if wh != 0 {
		t.Errorf("%d want-haves sent to swarm peers, want 0", wh)
	}
	if probes == 0 {
		t.Errorf("the Bitswap run sent no want-haves: the comparison is void")
	}
	for _, p := range []peer.ID{"half0", "half1"} {
		if sh := share(pr, p); sh < 0.25 {
			t.Errorf("partial peer %s served %.1f%%, want ≥ 25%%", p, 100*sh)
		}
	}
	if r := pr.DuplicateRatio(); r > 1.05 {
		t.Errorf("duplicate ratio %.3f > 1.05", r)
	}
	if took > probed*11/10 {
		t.Errorf("with maps took %v, more than 1.1× the probed %v", took, probed)
	}
}

// TestSimSwarmChokeMidFetch: one of two complete swarm peers chokes us for
// two seconds mid-fetch. Nothing is asked of it meanwhile, what it owed
// is fetched from the other, and the fetch completes.
func TestSimSwarmChokeMidFetch(t *testing.T) {
	d := makeDAG("swarm-choke", 128, 256<<10, 1024)
	m := newSim(t, DefaultSchedulerConfig(), d)
	all := func(cid.Cid) bool { return true }
	m.addSwarmPeer("a", 20*mbps, 5*time.Millisecond, 0, all, true)
	m.addSwarmPeer("b", 20*mbps, 5*time.Millisecond, 0, all, true)
	var chokedAt, unchokedAt time.Time
	m.at(time.Second, evCall, func(e *simEvent) {
		e.fn = func() { chokedAt = m.now; m.s.PeerChoked("a", true, m.now) }
	})
	m.at(3*time.Second, evCall, func(e *simEvent) {
		e.fn = func() { unchokedAt = m.now; m.s.PeerChoked("a", false, m.now) }
	})
	m.run(time.Hour)
	if !m.s.Done() {
		t.Fatal("fetch not done")
	}
	after := 0
	for _, w := range m.wantBlocks {
		if w.peer == "a" && !w.at.Before(chokedAt) && w.at.Before(unchokedAt) {
			t.Fatalf("want-block to a choking peer at %v: %s", w.at.Sub(simEpoch), w.c)
		}
		if w.peer == "a" && !w.at.Before(unchokedAt) {
			after++
		}
	}
	if len(m.cancels["a"]) == 0 {
		t.Error("the choke withdrew nothing from a")
	}
	if after == 0 && !unchokedAt.IsZero() {
		t.Error("a was asked nothing after it unchoked us")
	}
}
