package protocol

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// step is one event fed to the scheduler in a table test.
type step struct {
	at   time.Duration // since epoch
	kind string        // add, remove, have, donthave, block, local, bad, tick, searching-off, urgent, swarm, complete, emptymap, haves, choke, unchoke
	peer peer.ID
	c    cid.Cid
}

type tableHarness struct {
	t   *testing.T
	d   *testDAG
	s   *Scheduler
	log []Action
}

func newHarness(t *testing.T, d *testDAG, cfg SchedulerConfig) *tableHarness {
	t.Helper()
	s, err := NewScheduler(cfg, d.root)
	if err != nil {
		t.Fatal(err)
	}
	return &tableHarness{t: t, d: d, s: s}
}

func (h *tableHarness) do(st step) []Action {
	now := simEpoch.Add(st.at)
	s := h.s
	switch st.kind {
	case "add":
		s.AddPeer(st.peer, now)
	case "remove":
		s.RemovePeer(st.peer, now)
	case "have":
		s.Have(st.peer, st.c, now)
	case "donthave":
		s.DontHave(st.peer, st.c, now)
	case "block":
		if err := s.BlockReceived(st.peer, st.c, h.d.size[st.c], h.d.links[st.c], now); err != nil {
			h.t.Fatalf("BlockReceived(%s): %v", st.c, err)
		}
	case "local":
		s.MarkLocal(st.c, h.d.size[st.c], h.d.links[st.c], now)
	case "bad":
		s.BadBlock(st.peer, nil, now)
	case "tick":
		s.Tick(now)
	case "searching-off":
		s.SetSearching(false, now)
	case "urgent":
		s.Prioritize(st.c, now)
	case "swarm":
		s.SetSwarmPeer(st.peer, true, now)
	case "complete":
		s.PeerMap(st.peer, PeerMap{Complete: true}, now)
	case "emptymap":
		s.PeerMap(st.peer, PeerMap{}, now)
	case "haves":
		s.PeerHaves(st.peer, []cid.Cid{st.c}, now)
	case "choke":
		s.PeerChoked(st.peer, true, now)
	case "unchoke":
		s.PeerChoked(st.peer, false, now)
	default:
		h.t.Fatalf("unknown step %q", st.kind)
	}
	a := s.Ready()
	h.log = append(h.log, a...)
	return a
}

func (h *tableHarness) run(steps ...step) []Action {
	var out []Action
	for _, st := range steps {
		out = append(out, h.do(st)...)
	}
	return out
}

func filter(as []Action, k ActionKind, p peer.ID) []cid.Cid {
	var out []cid.Cid
	for _, a := range as {
		if a.Kind == k && (p == "" || a.Peer == p) {
			out = append(out, a.CID)
		}
	}
	return out
}

// serveAll answers every want-block in acts from the peer it went to, in
// order, until the fetch is done; it returns the CIDs served per peer.
func (h *tableHarness) serveAll(acts []Action, at time.Duration) map[peer.ID][]cid.Cid {
	served := map[peer.ID][]cid.Cid{}
	for len(acts) > 0 && !h.s.Done() {
		a := acts[0]
		acts = acts[1:]
		if a.Kind != ActWantBlock || !h.s.Wanted(a.CID) {
			continue
		}
		at += time.Millisecond
		served[a.Peer] = append(served[a.Peer], a.CID)
		acts = append(acts, h.do(step{at: at, kind: "block", peer: a.Peer, c: a.CID})...)
	}
	return served
}

func TestSchedulerTable(t *testing.T) {
	d := makeDAG("table", 16, 1000, 1024)
	leaf := d.leaves
	tests := []struct {
		name  string
		check func(t *testing.T, h *tableHarness)
	}{
		{"one peer: root first, then leaves in file order", func(t *testing.T, h *tableHarness) {
			a := h.do(step{kind: "add", peer: "A"})
			if got := filter(a, ActWantHave, "A"); !slices.Equal(got, []cid.Cid{d.root}) {
				t.Errorf("want-have on add = %v, want root", got)
			}
			if got := filter(a, ActWantBlock, "A"); !slices.Equal(got, []cid.Cid{d.root}) {
				t.Fatalf("want-block on add = %v, want root", got)
			}
			a = h.do(step{at: ms(10), kind: "block", peer: "A", c: d.root})
			got := filter(a, ActWantBlock, "A")
			if !slices.Equal(got, leaf[:len(got)]) || len(got) != DefaultWindowConfig().Initial+1 {
				t.Fatalf("after root: want-blocks %v, want the first %d leaves in order", got, DefaultWindowConfig().Initial+1)
			}
			served := h.serveAll(a, ms(10))
			if !h.s.Done() || !slices.Equal(served["A"], leaf) {
				t.Fatalf("done=%v served %d blocks in order %v", h.s.Done(), len(served["A"]), served["A"])
			}
		}},
		{"four peers share the front of the file", func(t *testing.T, h *tableHarness) {
			for _, p := range []peer.ID{"A", "B", "C", "D"} {
				h.do(step{kind: "add", peer: p})
				h.do(step{kind: "have", peer: p, c: d.root})
			}
			a := h.do(step{at: ms(5), kind: "block", peer: h.log[1].Peer, c: d.root})
			for _, p := range []peer.ID{"A", "B", "C", "D"} {
				if n := len(filter(a, ActWantBlock, p)); n < 2 {
					t.Errorf("peer %s got %d want-blocks, want ≥ 2 (windows are filled round robin)", p, n)
				}
			}
			if got := filter(a, ActWantBlock, ""); !slices.Equal(got[:4], leaf[:4]) {
				t.Errorf("first round %v, want leaves 0..3", got[:4])
			}
		}},
		{"peer without the content is never asked want-block", func(t *testing.T, h *tableHarness) {
			h.run(step{kind: "add", peer: "A"}, step{kind: "add", peer: "N"},
				step{kind: "donthave", peer: "N", c: d.root})
			a := h.do(step{at: ms(5), kind: "block", peer: "A", c: d.root})
			probes := filter(a, ActWantHave, "N")
			if len(probes) != len(leaf) {
				t.Fatalf("N probed for %d leaves, want %d", len(probes), len(leaf))
			}
			for _, c := range probes {
				a = append(a, h.do(step{at: ms(6), kind: "donthave", peer: "N", c: c})...)
			}
			h.serveAll(a, ms(6))
			if n := len(filter(h.log, ActWantBlock, "N")); n != 0 {
				t.Errorf("N got %d want-blocks, want 0", n)
			}
			if !h.s.Done() {
				t.Error("fetch not done")
			}
		}},
		{"removed peer's requests are reassigned", func(t *testing.T, h *tableHarness) {
			h.run(step{kind: "add", peer: "A"}, step{kind: "add", peer: "B"},
				step{kind: "have", peer: "A", c: d.root}, step{kind: "have", peer: "B", c: d.root})
			h.do(step{at: ms(5), kind: "block", peer: "A", c: d.root})
			onB := filter(h.log, ActWantBlock, "B")
			if len(onB) < 2 {
				t.Fatalf("B got %d requests, want ≥ 2", len(onB))
			}
			h.do(step{at: ms(6), kind: "remove", peer: "B"})
			for _, c := range onB {
				if c != d.root && !h.s.blocks[c].queued {
					t.Errorf("block %s of removed B not back in the queue", c)
				}
			}
			h.log = nil
			served := h.serveAll(filter2(h.s, "A"), ms(7))
			if !h.s.Done() {
				t.Fatal("not done after B left")
			}
			for _, c := range onB {
				if c != d.root && !slices.Contains(served["A"], c) {
					t.Errorf("block %s of removed B never served by A", c)
				}
			}
		}},
		{"corrupt block cuts the peer off", func(t *testing.T, h *tableHarness) {
			h.run(step{kind: "add", peer: "A"}, step{kind: "add", peer: "X"},
				step{kind: "have", peer: "X", c: d.root})
			h.do(step{at: ms(5), kind: "block", peer: "A", c: d.root})
			h.do(step{at: ms(6), kind: "bad", peer: "X"})
			h.log = nil
			h.run(step{at: ms(7), kind: "add", peer: "X"}, step{at: ms(8), kind: "have", peer: "X", c: leaf[3]},
				step{at: ms(60 * 1000), kind: "tick"})
			for _, a := range h.log {
				if a.Peer == "X" {
					t.Errorf("action %v for the banned peer", a)
				}
			}
			if pp := h.s.Progress().Peers[1]; pp.Active || !errors.Is(pp.Err, ErrBadBlock) {
				t.Errorf("X progress = %+v, want inactive with ErrBadBlock", pp)
			}
		}},
		{"resume: local blocks are never requested", func(t *testing.T, h *tableHarness) {
			for _, c := range leaf[:10] {
				h.do(step{kind: "local", c: c})
			}
			h.do(step{kind: "local", c: d.root})
			h.do(step{kind: "add", peer: "A"})
			h.serveAll(h.do(step{kind: "have", peer: "A", c: d.root}), 0)
			for _, c := range filter(h.log, ActWantBlock, "") {
				if c == d.root || slices.Contains(leaf[:10], c) {
					t.Errorf("local block %s requested", c)
				}
			}
			pr := h.s.Progress()
			if !h.s.Done() || pr.BlocksLocal != 11 || pr.BlocksDone != 17 {
				t.Errorf("done=%v local=%d done=%d, want true 11 17", h.s.Done(), pr.BlocksLocal, pr.BlocksDone)
			}
		}},
		{"everything local: done with no want-block", func(t *testing.T, h *tableHarness) {
			for _, c := range d.all {
				h.do(step{kind: "local", c: c})
			}
			h.do(step{kind: "add", peer: "A"})
			if !h.s.Done() || len(filter(h.log, ActWantBlock, "")) != 0 {
				t.Errorf("done=%v want-blocks=%v", h.s.Done(), filter(h.log, ActWantBlock, ""))
			}
		}},
		{"failure names the missing CID and the peers tried", func(t *testing.T, h *tableHarness) {
			h.run(step{kind: "add", peer: "A"}, step{kind: "add", peer: "B"},
				step{kind: "have", peer: "A", c: d.root})
			h.do(step{at: ms(5), kind: "block", peer: "A", c: d.root})
			h.run(step{at: ms(6), kind: "remove", peer: "B"}, step{at: ms(7), kind: "searching-off"})
			if h.s.Err() != nil {
				t.Fatalf("failed early: %v", h.s.Err())
			}
			h.do(step{at: ms(8), kind: "donthave", peer: "A", c: leaf[5]})
			// A holds part of the DAG (it sent the root), so its answer
			// may change: the fetch waits PartialPatience for it.
			if h.s.Err() != nil {
				t.Fatalf("failed while a partial holder was within its patience: %v", h.s.Err())
			}
			h.do(step{at: ms(5) + DefaultSchedulerConfig().PartialPatience, kind: "tick"})
			var fe *FetchError
			if !errors.As(h.s.Err(), &fe) {
				t.Fatalf("Err() = %v, want *FetchError", h.s.Err())
			}
			if fe.Missing != leaf[5] || fe.Root != d.root || len(fe.Peers) != 2 {
				t.Errorf("FetchError = %+v, want Missing leaf 5 and 2 peers", fe)
			}
			for _, want := range []error{ErrNoSource, ErrDontHave, ErrPeerGone} {
				if !errors.Is(fe, want) {
					t.Errorf("errors.Is(err, %v) = false", want)
				}
			}
			if cancels := filter(h.log, ActCancel, "A"); len(cancels) == 0 {
				t.Error("outstanding wants not cancelled on failure")
			}
		}},
		{"partial holder: DONT_HAVE is asked again after RecheckInterval", func(t *testing.T, h *tableHarness) {
			re := DefaultSchedulerConfig().RecheckInterval
			h.run(step{kind: "add", peer: "A"}, step{kind: "have", peer: "A", c: d.root},
				step{at: ms(1), kind: "block", peer: "A", c: d.root}, step{at: ms(2), kind: "searching-off"})
			// A (another leecher) has only leaf 0 so far.
			for i, l := range leaf {
				if i > 0 {
					h.do(step{at: ms(3), kind: "donthave", peer: "A", c: l})
				}
			}
			h.do(step{at: ms(4), kind: "block", peer: "A", c: leaf[0]})
			if h.s.Err() != nil {
				t.Fatalf("failed while the partial holder was fetching: %v", h.s.Err())
			}
			before := len(h.log)
			h.do(step{at: ms(3) + re/2, kind: "tick"})
			if asked := filter(h.log[before:], ActWantHave, "A"); len(asked) != 0 {
				t.Fatalf("re-asked %d blocks before RecheckInterval", len(asked))
			}
			h.do(step{at: ms(3) + re, kind: "tick"})
			asked := filter(h.log[before:], ActWantHave, "A")
			if !slices.Contains(asked, leaf[1]) {
				t.Fatalf("after RecheckInterval want-haves to A = %v, want leaf 1 among them", asked)
			}
			// A got leaf 1 meanwhile: it answers HAVE and is asked for it.
			h.do(step{at: ms(5) + re, kind: "have", peer: "A", c: leaf[1]})
			if !slices.Contains(filter(h.log, ActWantBlock, "A"), leaf[1]) {
				t.Error("HAVE after a recheck did not lead to a want-block")
			}
		}},
		{"no peers and no search: failure with no peers", func(t *testing.T, h *tableHarness) {
			h.do(step{kind: "searching-off"})
			var fe *FetchError
			if !errors.As(h.s.Err(), &fe) || fe.Missing != d.root || len(fe.Peers) != 0 {
				t.Errorf("Err() = %v, want FetchError for the root with no peers", h.s.Err())
			}
		}},
		{"stall: request moved, stalled peer's window shrinks", func(t *testing.T, h *tableHarness) {
			h.run(step{kind: "add", peer: "A"}, step{kind: "add", peer: "B"},
				step{kind: "have", peer: "A", c: d.root}, step{kind: "have", peer: "B", c: d.root})
			h.do(step{at: ms(5), kind: "block", peer: "A", c: d.root})
			onB := filter(h.log, ActWantBlock, "B")
			before := h.s.byID["B"].w.cwnd
			a := h.do(step{at: ms(5) + DefaultWindowConfig().InitialTimeout + ms(1), kind: "tick"})
			if got := filter(a, ActCancel, "B"); !slices.Equal(got, onB) {
				t.Errorf("cancels to B = %v, want %v", got, onB)
			}
			if after := h.s.byID["B"].w.cwnd; after >= before {
				t.Errorf("B window %v → %v, want shrink", before, after)
			}
			served := h.serveAll(filter2(h.s, "A"), ms(10000))
			for _, c := range onB {
				if !slices.Contains(served["A"], c) {
					t.Errorf("stalled %s not moved to A", c)
				}
			}
		}},
		{"stall with a single source: the wants are sent again, not dropped", func(t *testing.T, h *tableHarness) {
			h.run(step{kind: "add", peer: "A"}, step{kind: "have", peer: "A", c: d.root})
			h.do(step{at: ms(5), kind: "block", peer: "A", c: d.root})
			onA := filter(h.log, ActWantBlock, "A")
			if len(onA) == 0 {
				t.Fatal("no want-block sent to A")
			}
			a := h.do(step{at: ms(5) + DefaultWindowConfig().InitialTimeout + ms(1), kind: "tick"})
			if got := filter(a, ActCancel, "A"); len(got) != 0 {
				t.Errorf("cancelled %v at the only source", got)
			}
			again := filter(a, ActWantBlock, "A")
			for _, c := range onA {
				if c != d.root && !slices.Contains(again, c) {
					t.Errorf("stalled want %s was not sent to A again", c)
				}
			}
		}},
		{"urgent block jumps the queue", func(t *testing.T, h *tableHarness) {
			h.do(step{kind: "urgent", c: leaf[12]})
			h.do(step{kind: "add", peer: "A"})
			a := h.do(step{at: ms(5), kind: "block", peer: "A", c: d.root})
			if got := filter(a, ActWantBlock, "A"); got[0] != leaf[12] {
				t.Errorf("first want-block %s, want urgent leaf 12", got[0])
			}
			for _, x := range a {
				if x.Kind == ActWantBlock && x.Urgent != (x.CID == leaf[12]) {
					t.Errorf("%v: Urgent = %v", x, x.Urgent)
				}
			}
			if got := h.s.NextNeeded(3); !slices.Equal(got, leaf[:3]) {
				t.Errorf("NextNeeded(3) = %v, want leaves 0..2", got)
			}
		}},
		{"unwanted block is reported", func(t *testing.T, h *tableHarness) {
			h.do(step{kind: "add", peer: "A"})
			err := h.s.BlockReceived("A", testCID("stranger"), 10, nil, simEpoch)
			if !errors.Is(err, ErrUnwanted) {
				t.Errorf("BlockReceived(unknown) = %v, want ErrUnwanted", err)
			}
		}},
		{"optimism withdrawn after repeated DONT_HAVE", func(t *testing.T, h *tableHarness) {
			h.run(step{kind: "add", peer: "A"}, step{kind: "have", peer: "A", c: d.root})
			a := h.do(step{at: ms(5), kind: "block", peer: "A", c: d.root})
			for _, c := range filter(a, ActWantBlock, "A")[:DefaultSchedulerConfig().OptimisticMisses] {
				h.do(step{at: ms(6), kind: "donthave", peer: "A", c: c})
			}
			if h.s.byID["A"].claimsRoot {
				t.Fatal("A still treated as holding the whole DAG")
			}
			if n := len(filter(h.log, ActWantHave, "A")); n < 2 {
				t.Errorf("A probed with %d want-haves, want probing after optimism ends", n)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, newHarness(t, d, DefaultSchedulerConfig()))
		})
	}
}

// filter2 returns want-block actions for everything in flight to p, as if
// just sent, so serveAll can answer them.
func filter2(s *Scheduler, p peer.ID) []Action {
	var out []Action
	for _, r := range s.byID[p].reqs {
		out = append(out, Action{Kind: ActWantBlock, Peer: p, CID: r.b.c})
	}
	return out
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestSchedulerTwoLevelDAGInOrder(t *testing.T) {
	d := makeDAG("deep", 40, 1000, 8)
	h := newHarness(t, d, DefaultSchedulerConfig())
	served := h.serveAll(h.do(step{kind: "add", peer: "A"}), 0)
	if !h.s.Done() {
		t.Fatal("not done")
	}
	var leavesServed []cid.Cid
	for _, c := range served["A"] {
		if h.d.size[c] == 1000 {
			leavesServed = append(leavesServed, c)
		}
	}
	if !slices.Equal(leavesServed, d.leaves) {
		t.Errorf("leaves not served in file order")
	}
}

func TestSchedulerConfigValidate(t *testing.T) {
	bad := []func(*SchedulerConfig){
		func(c *SchedulerConfig) { c.Window.Min = 0 },
		func(c *SchedulerConfig) { c.Window.Max = 1 },
		func(c *SchedulerConfig) { c.Window.Initial = 1000 },
		func(c *SchedulerConfig) { c.Window.MinTimeout = 0 },
		func(c *SchedulerConfig) { c.Lookahead = 0 },
		func(c *SchedulerConfig) { c.MaxCopies = 0 },
	}
	for i, f := range bad {
		cfg := DefaultSchedulerConfig()
		f(&cfg)
		if _, err := NewScheduler(cfg, testCID("x")); !errors.Is(err, ErrFetchConfig) {
			t.Errorf("case %d: err = %v, want ErrFetchConfig", i, err)
		}
	}
	if _, err := NewScheduler(DefaultSchedulerConfig(), cid.Undef); !errors.Is(err, ErrFetchConfig) {
		t.Errorf("undefined root: err = %v", err)
	}
}

// TestWinBlockBytesWeighted: windows are sized for the block the average
// byte arrives in. After a root of 1 KiB, a short last leaf of 1000 bytes
// and one 1 MiB leaf that is near 1 MiB, where the plain mean (avgBlock,
// started at the same 256 KiB prior) is 0.29 MiB; a run of 64 KiB blocks
// brings it down to 64 KiB.
func TestWinBlockBytesWeighted(t *testing.T) {
	s, err := NewScheduler(DefaultSchedulerConfig(), testCID("winblock/root"))
	if err != nil {
		t.Fatal(err)
	}
	c := &s.stats
	for _, n := range []int{1024, 1000, 1 << 20} {
		c.sized(n)
	}
	if w := c.winBlock(); w < 0.85*(1<<20) || w > 1<<20 {
		t.Fatalf("after 1 KiB, 1000 B and 1 MiB blocks winBlock = %.0f bytes, want within [0.85, 1] MiB", c.winBlock())
	}
	if c.avgBlock > 0.3*(1<<20) {
		t.Fatalf("avgBlock = %.0f bytes, want the plain mean, under 0.3 MiB", c.avgBlock)
	}
	for range 60 {
		c.sized(64 << 10)
	}
	if w := c.winBlock(); w < 64<<10 || w > 66<<10 {
		t.Fatalf("after 60 blocks of 64 KiB winBlock = %.0f bytes, want about 64 KiB", c.winBlock())
	}
}
