package protocol

import (
	"slices"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestSchedulerWants: the want list is the want-blocks in flight, in
// file order, with the peer asked and when; a block that arrives leaves it.
func TestSchedulerWants(t *testing.T) {
	d := makeDAG("wants", 16, 1000, 1024)
	h := newHarness(t, d, DefaultSchedulerConfig())
	if w := h.s.Wants(); len(w) != 0 {
		t.Fatalf("wants before any peer: %v", w)
	}
	h.do(step{kind: "add", peer: "A"})
	w := h.s.Wants()
	if len(w) != 1 || w[0].CID != d.root || !slices.Equal(w[0].Peers, []peer.ID{"A"}) || !w[0].Since.Equal(simEpoch) {
		t.Fatalf("wants after adding A = %+v, want the root asked of A at the epoch", w)
	}
	a := h.do(step{at: ms(10), kind: "block", peer: "A", c: d.root})
	sent := filter(a, ActWantBlock, "A")
	w = h.s.Wants()
	var got []cid.Cid
	for _, e := range w {
		got = append(got, e.CID)
		if !e.Since.Equal(simEpoch.Add(ms(10))) {
			t.Errorf("want %s since %v, want %v", e.CID, e.Since, simEpoch.Add(ms(10)))
		}
	}
	if len(sent) == 0 || !slices.Equal(got, sent) {
		t.Fatalf("wants after the root = %v, want the want-blocks sent %v", got, sent)
	}
	h.do(step{at: ms(11), kind: "block", peer: "A", c: sent[0]})
	if w := h.s.Wants(); len(w) == 0 || w[0].CID == sent[0] {
		t.Fatalf("wants after %s arrived still list it first: %v", sent[0], w)
	}
}
