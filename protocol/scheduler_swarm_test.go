package protocol

import (
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
)

// bitsFor sets the bits of the given link indices.
func bitsFor(n int, idx ...int) []byte {
	b := make([]byte, (n+7)/8)
	for _, i := range idx {
		b[i/8] |= 1 << (i % 8)
	}
	return b
}

// TestSchedulerSwarmTable: the scheduler's swarm inputs — maps, HAVE
// deltas, choking — decide whom it asks for what, without probes.
func TestSchedulerSwarmTable(t *testing.T) {
	d := makeDAG("swarm", 16, 1000, 1024)
	leaf := d.leaves
	tests := []struct {
		name  string
		check func(t *testing.T, h *tableHarness)
	}{
		{"a swarm peer is never probed; a complete one is asked everything", func(t *testing.T, h *tableHarness) {
			h.do(step{kind: "swarm", peer: "S"})
			a := h.do(step{kind: "add", peer: "S"})
			if got := filter(a, ActWantHave, ""); len(got) != 0 {
				t.Fatalf("want-haves to a swarm peer on add: %v", got)
			}
			a = h.do(step{kind: "complete", peer: "S"})
			a = append(a, h.do(step{at: ms(5), kind: "block", peer: "S", c: d.root})...)
			served := h.serveAll(a, ms(5))
			if !h.s.Done() || len(served["S"]) != len(leaf) {
				t.Fatalf("done=%v, served %d leaves by the complete swarm peer", h.s.Done(), len(served["S"]))
			}
			if got := filter(h.log, ActWantHave, ""); len(got) != 0 {
				t.Fatalf("want-haves sent: %v, want none", got)
			}
		}},
		{"a partial swarm peer is asked only what its map and deltas name", func(t *testing.T, h *tableHarness) {
			h.run(step{kind: "swarm", peer: "P"}, step{kind: "add", peer: "P"}, step{kind: "add", peer: "A"})
			h.do(step{at: ms(1), kind: "block", peer: "A", c: d.root})
			h.log = nil
			h.s.PeerMap("P", PeerMap{Segments: []MapSegment{{Parent: d.root, Bits: bitsFor(16, 3, 7)}}}, simEpoch.Add(ms(2)))
			a := h.s.Ready()
			a = append(a, h.do(step{at: ms(3), kind: "haves", peer: "P", c: leaf[9]})...)
			got := filter(a, ActWantBlock, "P")
			slices.SortFunc(got, func(x, y cid.Cid) int { return slices.Index(leaf, x) - slices.Index(leaf, y) })
			for _, c := range got {
				if !slices.Contains([]cid.Cid{leaf[3], leaf[7], leaf[9]}, c) {
					t.Fatalf("want-block to P for %s, which its map does not name", c)
				}
			}
			if len(got) == 0 {
				t.Fatal("P was asked nothing, though it holds leaves 3, 7 and 9")
			}
			if wh := filter(h.log, ActWantHave, "P"); len(wh) != 0 {
				t.Fatalf("want-haves to P: %v", wh)
			}
		}},
		{"rarest first from the maps: the seeder is asked what no leecher holds", func(t *testing.T, h *tableHarness) {
			// L's map (the first half of the leaves) arrives before the
			// root, so it is kept and applied when the root arrives.
			h.run(step{kind: "swarm", peer: "S"}, step{kind: "add", peer: "S"}, step{kind: "complete", peer: "S"},
				step{kind: "swarm", peer: "L"}, step{kind: "add", peer: "L"})
			var idx []int
			for i := range 8 {
				idx = append(idx, i)
			}
			h.s.PeerMap("L", PeerMap{Segments: []MapSegment{{Parent: d.root, Bits: bitsFor(16, idx...)}}}, simEpoch)
			h.s.Ready()
			a := h.do(step{at: ms(1), kind: "block", peer: "S", c: d.root})
			fromS, fromL := filter(a, ActWantBlock, "S"), filter(a, ActWantBlock, "L")
			if len(fromS) == 0 || len(fromL) == 0 {
				t.Fatalf("after the root: %d wants to the seeder, %d to L; want both used", len(fromS), len(fromL))
			}
			for _, c := range fromS {
				if i := slices.Index(leaf, c); i < 8 {
					t.Errorf("seeder asked for leaf %d, which L holds, while leaves 8–15 only it holds are unasked", i)
				}
			}
			for _, c := range fromL {
				if i := slices.Index(leaf, c); i >= 8 || i < 0 {
					t.Errorf("L asked for leaf %d, not in its map", i)
				}
			}
		}},
		{"a partial swarm holder gets its pipe, a complete one its window", func(t *testing.T, _ *tableHarness) {
			// P (another fetcher) holds every leaf but is not complete; S
			// is a seeder. P is asked for one block at a time: the round
			// trip (the root's 1 ms) is small beside the 99 ms its block
			// took. S keeps its window. Both serve the fetch to its end.
			d := makeDAG("pipe", 16, 256<<10, 1024) // leaves big enough for rate samples
			h := newHarness(t, d, DefaultSchedulerConfig())
			h.run(step{kind: "swarm", peer: "S"}, step{kind: "add", peer: "S"}, step{kind: "complete", peer: "S"},
				step{kind: "swarm", peer: "P"}, step{kind: "add", peer: "P"})
			all := make([]int, 16)
			for i := range all {
				all[i] = i
			}
			h.s.PeerMap("P", PeerMap{Segments: []MapSegment{{Parent: d.root, Bits: bitsFor(16, all...)}}}, simEpoch)
			h.s.Ready()
			h.do(step{at: ms(1), kind: "block", peer: "S", c: d.root})
			p, sp := h.s.byID["P"], h.s.byID["S"]
			if len(p.reqs) != 1 || len(sp.reqs) != sp.w.size() || sp.w.size() < 2 {
				t.Fatalf("after the root: %d wants at partial P (want 1), %d at seeder S (want its window %d)", len(p.reqs), len(sp.reqs), sp.w.size())
			}
			a := h.do(step{at: ms(100), kind: "block", peer: "P", c: p.reqs[0].b.c})
			if len(p.reqs) != 1 || len(filter(a, ActWantBlock, "P")) != 1 {
				t.Fatalf("after P's block: %d wants at P, %d new; want one at a time", len(p.reqs), len(filter(a, ActWantBlock, "P")))
			}
			served := h.serveAll(append(filter2(h.s, "S"), filter2(h.s, "P")...), ms(101))
			if !h.s.Done() || len(served["S"]) == 0 || len(served["P"]) == 0 {
				t.Fatalf("done=%v, served by S %d, by P %d; want the fetch to finish from both", h.s.Done(), len(served["S"]), len(served["P"]))
			}
		}},
		{"a map segment for a block not yet here waits for it", func(t *testing.T, h *tableHarness) {
			d2 := makeDAG("deep-swarm", 40, 1000, 8)
			h2 := newHarness(t, d2, DefaultSchedulerConfig())
			h2.run(step{kind: "add", peer: "A"}, step{kind: "swarm", peer: "P"}, step{kind: "add", peer: "P"})
			mid := d2.links[d2.root][2]
			h2.s.PeerMap("P", PeerMap{Segments: []MapSegment{{Parent: mid, Bits: bitsFor(8, 0, 1, 2, 3, 4, 5, 6, 7)}}}, simEpoch)
			h2.s.Ready()
			if len(h2.s.pendSeg[mid]) != 1 {
				t.Fatalf("segment under undiscovered %s not kept", mid)
			}
			h2.do(step{at: ms(1), kind: "block", peer: "A", c: d2.root})
			a := h2.do(step{at: ms(2), kind: "block", peer: "A", c: mid})
			kids := d2.links[mid]
			for _, k := range kids {
				if b := h2.s.blocks[k]; b.state(h2.s.byID["P"]) != availHave && !b.done && !b.inflightAt(h2.s.byID["P"]) {
					t.Fatalf("child %s of %s: P's kept segment not applied", k, mid)
				}
			}
			if len(filter(a, ActWantBlock, "P")) == 0 {
				t.Fatalf("P asked for nothing under %s once it arrived", mid)
			}
		}},
		{"choke moves P's wants elsewhere and asks it nothing until unchoke", func(t *testing.T, h *tableHarness) {
			h.run(step{kind: "swarm", peer: "P"}, step{kind: "add", peer: "P"}, step{kind: "complete", peer: "P"},
				step{kind: "swarm", peer: "Q"}, step{kind: "add", peer: "Q"}, step{kind: "complete", peer: "Q"})
			h.do(step{at: ms(1), kind: "block", peer: "P", c: d.root})
			owed := filter(filter2(h.s, "P"), ActWantBlock, "P")
			if len(owed) == 0 {
				t.Fatal("P was asked nothing before the choke")
			}
			a := h.do(step{at: ms(2), kind: "choke", peer: "P"})
			if got := filter(a, ActCancel, "P"); !slices.Equal(got, owed) {
				t.Fatalf("cancels to P on choke = %v, want its %d wants", got, len(owed))
			}
			if got := filter(a, ActWantBlock, "P"); len(got) != 0 {
				t.Fatalf("want-blocks to a choking peer: %v", got)
			}
			for _, c := range owed {
				if b := h.s.blocks[c]; b.inflightAt(h.s.byID["P"]) || (!b.queued && !b.inflightAt(h.s.byID["Q"])) {
					t.Fatalf("block %s still owed by the choking peer", c)
				}
			}
			served := h.serveAll(filter2(h.s, "Q"), ms(3))
			if !h.s.Done() || len(served["P"]) != 0 {
				t.Fatalf("done=%v, the choking peer served %d blocks", h.s.Done(), len(served["P"]))
			}
		}},
		{"unchoke: a choked peer is asked again", func(t *testing.T, h *tableHarness) {
			h.run(step{kind: "swarm", peer: "P"}, step{kind: "add", peer: "P"}, step{kind: "choke", peer: "P"})
			if got := filter(h.do(step{kind: "complete", peer: "P"}), ActWantBlock, "P"); len(got) != 0 {
				t.Fatalf("want-blocks to a choking peer: %v", got)
			}
			a := h.do(step{at: ms(10), kind: "unchoke", peer: "P"})
			if got := filter(a, ActWantBlock, "P"); !slices.Equal(got, []cid.Cid{d.root}) {
				t.Fatalf("after unchoke P was asked %v, want the root", got)
			}
		}},
		{"a swarm peer whose map is empty cannot keep a lost block's fetch alive", func(t *testing.T, h *tableHarness) {
			h.run(step{kind: "add", peer: "A"}, step{kind: "swarm", peer: "E"}, step{kind: "add", peer: "E"}, step{kind: "emptymap", peer: "E"})
			h.do(step{at: ms(1), kind: "block", peer: "A", c: d.root})
			h.do(step{at: ms(2), kind: "searching-off"})
			// A's DONT_HAVE comes after PartialPatience, so A no longer
			// keeps the fetch alive; E's empty map must not either.
			h.do(step{at: 31 * time.Second, kind: "donthave", peer: "A", c: leaf[5]})
			if h.s.Err() == nil {
				t.Fatal("fetch goes on though no peer can have leaf 5")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, newHarness(t, d, DefaultSchedulerConfig()))
		})
	}
}
