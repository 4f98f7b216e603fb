package protocol

import (
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestDecideChoke: the choke decision as a pure function of peers, rates,
// interest and time.
func TestDecideChoke(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	type c = chokeCandidate
	full := func(now time.Time, slots int) chokeParams {
		return chokeParams{Now: now, Slots: slots, Full: true, OptimisticInterval: 10 * time.Second}
	}
	fill := func(now time.Time, slots int) chokeParams {
		p := full(now, slots)
		p.Full = false
		return p
	}
	for _, tc := range []struct {
		name    string
		par     chokeParams
		st      chokeState
		peers   []c
		want    []peer.ID // in rank order
		wantOpt peer.ID
		optAt   time.Time
	}{
		{
			name: "tit-for-tat: the two best givers get the slots, the longest waiter of the rest the optimistic",
			par:  full(sec(100), 2),
			peers: []c{
				{ID: "a", Interested: true, Rate: 10, LastUnchoked: sec(50)},
				{ID: "b", Interested: true, Rate: 30, LastUnchoked: sec(50)},
				{ID: "c", Interested: true, Rate: 20, LastUnchoked: sec(50)},
				{ID: "d", Interested: true, Rate: 0, LastUnchoked: sec(40)},
				{ID: "e", Interested: true, Rate: 0, LastUnchoked: sec(60)},
			},
			want: []peer.ID{"b", "c", "d"}, wantOpt: "d", optAt: sec(100),
		},
		{
			name: "never-unchoked newcomer wins the optimistic slot",
			par:  full(sec(100), 1),
			peers: []c{
				{ID: "a", Interested: true, Rate: 5, Unchoked: true},
				{ID: "b", Interested: true, LastUnchoked: sec(10)},
				{ID: "new", Interested: true},
			},
			want: []peer.ID{"a", "new"}, wantOpt: "new", optAt: sec(100),
		},
		{
			name: "uninterested peers get nothing, however fast",
			par:  full(sec(100), 2),
			peers: []c{
				{ID: "fast", Rate: 1e9, Unchoked: true},
				{ID: "a", Interested: true, Rate: 1},
			},
			want: []peer.ID{"a"}, wantOpt: "",
		},
		{
			name: "the optimistic pick is kept until its interval is up",
			par:  full(sec(105), 1),
			st:   chokeState{Optimistic: "o", OptimisticSince: sec(100)},
			peers: []c{
				{ID: "a", Interested: true, Rate: 5, Unchoked: true},
				{ID: "o", Interested: true, Unchoked: true},
				{ID: "w", Interested: true, LastUnchoked: sec(1)},
			},
			want: []peer.ID{"a", "o"}, wantOpt: "o", optAt: sec(100),
		},
		{
			name: "and rotates to the longest waiter when it is",
			par:  full(sec(110), 1),
			st:   chokeState{Optimistic: "o", OptimisticSince: sec(100)},
			peers: []c{
				{ID: "a", Interested: true, Rate: 5, Unchoked: true},
				{ID: "o", Interested: true, Unchoked: true},
				{ID: "w", Interested: true, LastUnchoked: sec(1)},
			},
			want: []peer.ID{"a", "w"}, wantOpt: "w", optAt: sec(110),
		},
		{
			name: "an optimistic peer that gives most earns a regular slot when it rotates",
			par:  full(sec(110), 1),
			st:   chokeState{Optimistic: "o", OptimisticSince: sec(100)},
			peers: []c{
				{ID: "a", Interested: true, Rate: 5, Unchoked: true},
				{ID: "o", Interested: true, Rate: 50, Unchoked: true},
				{ID: "w", Interested: true, LastUnchoked: sec(1)},
			},
			want: []peer.ID{"o", "w"}, wantOpt: "w", optAt: sec(110),
		},
		{
			name: "equal rates: the peer already unchoked keeps its slot, then the tie decides",
			par:  full(sec(100), 2),
			peers: []c{
				{ID: "a", Interested: true, Tie: 3},
				{ID: "b", Interested: true, Unchoked: true, Tie: 9},
				{ID: "c", Interested: true, Tie: 1},
				{ID: "d", Interested: true, Tie: 2},
			},
			want: []peer.ID{"b", "c", "d"}, wantOpt: "d", optAt: sec(100),
		},
		{
			name: "round robin (seeding): the longest waiters take the slots, the served ones wait",
			par:  chokeParams{Now: sec(100), Slots: 2, Full: true, OptimisticInterval: 10 * time.Second, RoundRobin: true},
			peers: []c{
				{ID: "a", Interested: true, Rate: 99, Unchoked: true},
				{ID: "b", Interested: true, Rate: 99, Unchoked: true},
				{ID: "c", Interested: true, LastUnchoked: sec(90)},
				{ID: "d", Interested: true, LastUnchoked: sec(80)},
				{ID: "e", Interested: true, LastUnchoked: sec(95)},
			},
			want: []peer.ID{"d", "c", "e"}, wantOpt: "e", optAt: sec(100),
		},
		{
			name: "fill round: an idle regular is choked and the best waiting peer takes its slot",
			par:  fill(sec(103), 2),
			st:   chokeState{Optimistic: "o", OptimisticSince: sec(100)},
			peers: []c{
				{ID: "a", Interested: true, Rate: 1, Unchoked: true},
				{ID: "idle", Rate: 100, Unchoked: true},
				{ID: "o", Interested: true, Unchoked: true},
				{ID: "x", Interested: true, Rate: 3, LastUnchoked: sec(50)},
				{ID: "y", Interested: true, Rate: 7, LastUnchoked: sec(90)},
			},
			want: []peer.ID{"a", "y", "o"}, wantOpt: "o", optAt: sec(100),
		},
		{
			name: "fill round keeps regulars though a waiting peer gives more",
			par:  fill(sec(103), 1),
			peers: []c{
				{ID: "a", Interested: true, Rate: 1, Unchoked: true},
				{ID: "b", Interested: true, Rate: 100},
			},
			want: []peer.ID{"a", "b"}, wantOpt: "b", optAt: sec(103),
		},
		{
			name: "a choked peer still sending holds its slot: the newcomer waits",
			par:  full(sec(100), 1),
			peers: []c{
				{ID: "old", Interested: true, Rate: 1, Busy: true, LastUnchoked: sec(99)},
				{ID: "a", Interested: true, Rate: 9, Unchoked: true, Busy: true},
				{ID: "b", Interested: true, Rate: 5},
			},
			want: []peer.ID{"a"}, wantOpt: "b", optAt: sec(100),
		},
		{
			name: "a busy peer of the target that is not admitted still holds a slot: it is unchoked in it, the newcomer waits",
			par:  full(sec(100), 2),
			peers: []c{
				{ID: "a", Interested: true, Rate: 9, Unchoked: true},
				{ID: "y", Unchoked: true, Busy: true},
				{ID: "w", Interested: true, Rate: 5},
				{ID: "z", Interested: true, Busy: true, LastUnchoked: sec(1)},
			},
			want: []peer.ID{"a", "z"}, wantOpt: "z", optAt: sec(100),
		},
		{
			name: "nobody interested: everybody choked",
			par:  full(sec(100), 4),
			st:   chokeState{Optimistic: "a", OptimisticSince: sec(99)},
			peers: []c{
				{ID: "a", Unchoked: true},
				{ID: "b"},
			},
			want: []peer.ID{}, wantOpt: "",
		},
		{
			name:    "optimistic pick that left is replaced in a fill round",
			par:     fill(sec(101), 1),
			st:      chokeState{Optimistic: "gone", OptimisticSince: sec(100)},
			peers:   []c{{ID: "a", Interested: true, Unchoked: true}, {ID: "b", Interested: true}},
			want:    []peer.ID{"a", "b"},
			wantOpt: "b", optAt: sec(101),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.peers)
			got := decideChoke(tc.par, tc.st, tc.peers)
			if !slices.Equal(got.Unchoked, tc.want) && !(len(got.Unchoked) == 0 && len(tc.want) == 0) {
				t.Fatalf("unchoked %v, want %v", got.Unchoked, tc.want)
			}
			if got.State.Optimistic != tc.wantOpt {
				t.Fatalf("optimistic %q, want %q", got.State.Optimistic, tc.wantOpt)
			}
			if tc.wantOpt != "" && !got.State.OptimisticSince.Equal(tc.optAt) {
				t.Fatalf("optimistic since %v, want %v", got.State.OptimisticSince, tc.optAt)
			}
			if !slices.Equal(in, tc.peers) {
				t.Fatal("decideChoke changed its input")
			}
		})
	}
}

// TestDecideChokeRotation: with more interested peers than slots and no
// rates at all, repeated full rounds give every peer an unchoke: the two
// regulars stay, and the optimistic rotation reaches the four others.
func TestDecideChokeRotation(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	peers := make([]chokeCandidate, 6)
	for i := range peers {
		peers[i] = chokeCandidate{ID: peer.ID(rune('a' + i)), Interested: true, Tie: uint64(i)}
	}
	var st chokeState
	seen := map[peer.ID]bool{}
	for round := range 5 {
		now := t0.Add(time.Duration(round) * 10 * time.Second)
		res := decideChoke(chokeParams{Now: now, Slots: 2, Full: true, OptimisticInterval: 10 * time.Second}, st, peers)
		st = res.State
		if len(res.Unchoked) > 3 {
			t.Fatalf("round %d: %d unchoked, want at most 2+1", round, len(res.Unchoked))
		}
		in := map[peer.ID]bool{}
		for _, p := range res.Unchoked {
			in[p], seen[p] = true, true
		}
		for i := range peers {
			if peers[i].Unchoked && !in[peers[i].ID] {
				peers[i].LastUnchoked = now
			}
			peers[i].Unchoked = in[peers[i].ID]
		}
	}
	// Two sticky regulars + four optimistic turns reach all six.
	if len(seen) != 6 {
		t.Fatalf("%d of 6 peers unchoked in 5 rounds: %v", len(seen), seen)
	}
}
