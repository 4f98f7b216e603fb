package protocol

import (
	"fmt"
	"slices"
	"testing"
)

// TestSchedulerInterest: the fetch is interested in a swarm peer exactly
// while the peer's map and HAVE deltas name a block not yet received
// here (BitTorrent's interest), and says so only when it changes: on the
// map, on a HAVE, when the last such block arrives from anyone, on leaving,
// and when the fetch completes. Choking does not change it.
func TestSchedulerInterest(t *testing.T) {
	d := makeDAG("interest", 16, 1000, 1024)
	leaf := d.leaves
	h := newHarness(t, d, DefaultSchedulerConfig())
	said := func(want ...string) {
		t.Helper()
		var got []string
		for _, pi := range h.s.Interest() {
			got = append(got, fmt.Sprintf("%s=%v", string(pi.Peer), pi.Interested))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("interest changes %v, want %v", got, want)
		}
	}
	h.run(step{kind: "add", peer: "A"}, step{kind: "swarm", peer: "P"}, step{kind: "add", peer: "P"})
	said() // no map from P yet: nothing known to need there; A is no swarm peer
	h.do(step{at: ms(1), kind: "block", peer: "A", c: d.root})
	said()

	h.s.PeerMap("P", PeerMap{Segments: []MapSegment{{Parent: d.root, Bits: bitsFor(16, 3)}}}, simEpoch.Add(ms(2)))
	h.s.Ready()
	said("P=true") // P holds leaf 3, needed here

	h.do(step{at: ms(3), kind: "choke", peer: "P"})
	said() // choked, still interested (that is how it gets unchoked)

	h.do(step{at: ms(4), kind: "block", peer: "A", c: leaf[3]})
	said("P=false") // the last block P has that this node lacked came from A

	h.do(step{at: ms(5), kind: "haves", peer: "P", c: leaf[3]})
	said() // a HAVE for a block already here changes nothing
	h.do(step{at: ms(6), kind: "haves", peer: "P", c: leaf[9]})
	said("P=true")

	// Q's map names only blocks held here: never interesting.
	h.run(step{at: ms(7), kind: "swarm", peer: "Q"}, step{at: ms(7), kind: "add", peer: "Q"})
	h.s.PeerMap("Q", PeerMap{Segments: []MapSegment{{Parent: d.root, Bits: bitsFor(16, 3)}}}, simEpoch.Add(ms(8)))
	h.s.Ready()
	said()

	// A complete peer is interesting until the fetch completes.
	h.run(step{at: ms(9), kind: "swarm", peer: "C"}, step{at: ms(9), kind: "add", peer: "C"}, step{at: ms(9), kind: "complete", peer: "C"})
	said("C=true")

	h.do(step{at: ms(10), kind: "remove", peer: "P"})
	said("P=false")

	for i, c := range leaf {
		if i != 3 {
			h.do(step{at: ms(11 + i), kind: "block", peer: "A", c: c})
		}
	}
	if !h.s.Done() {
		t.Fatal("fetch not done after every leaf")
	}
	said("C=false")
	if got := h.s.InterestedPeers(); len(got) != 0 {
		t.Fatalf("peers still marked interesting after the fetch: %v", got)
	}
}
