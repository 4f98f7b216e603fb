package protocol

import (
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// The choke decision: which swarm peers this node uploads to. It is a pure
// function of its inputs (no clock, no I/O, no randomness of its own), so it
// is table-tested in choke_test.go; choker.go gathers the inputs from the
// server's ledgers and applies the result.
//
// The rules are BitTorrent's (mainline's choker, as BEP 3 describes it):
//   - Slots regular unchokes go to the interested peers that rank highest:
//     by Rate (the caller's tit-for-tat measure: bytes this node received
//     from the peer recently, or, when it receives from nobody, bytes the
//     peer took from it), then the peer already unchoked (no churn between
//     equals), then the one that waited longest, then Tie (a per-node hash,
//     so that a crowd of nodes with equal rates does not all pick the same
//     peers);
//   - one optimistic unchoke goes to an interested peer outside the regular
//     set, the one that waited longest (never-unchoked newcomers first), and
//     it is kept for OptimisticInterval;
//   - a full round (every ChokeInterval) re-ranks everybody; between rounds
//     a fill round only chokes peers that stopped being interested and fills
//     free slots, so an idle slot does not wait ten seconds;
//   - a peer just choked that still has a batch on its way (Busy) keeps its
//     slot until the batch is out: at no time do more than Slots+1 swarm
//     peers receive blocks.

// chokeCandidate is one swarm peer as the decision sees it.
type chokeCandidate struct {
	ID peer.ID
	// Interested: it has want-blocks queued here, or was served very recently.
	Interested bool
	// Rate ranks regular unchokes (bytes/s, higher first).
	Rate float64
	// Unchoked: this node uploads to it now (regular or optimistic).
	Unchoked bool
	// Busy: a batch of blocks for it is being built or sent.
	Busy bool
	// LastUnchoked is when it was last choked after an unchoke; zero if it
	// never was unchoked. Ignored while Unchoked (it waits from now).
	LastUnchoked time.Time
	// Tie breaks every other tie (a hash of this node's and the peer's ID).
	Tie uint64
}

// chokeParams are the decision's settings and clock.
type chokeParams struct {
	Now                time.Time
	Slots              int  // regular unchoke slots (the optimistic one is extra)
	Full               bool // a full round: re-rank, rotate the optimistic if due
	OptimisticInterval time.Duration
	// RoundRobin ranks regulars by waiting time instead of Rate (seeding
	// without any rate to go by); see choker.go.
	RoundRobin bool
}

// chokeState is what the decision carries from one round to the next.
type chokeState struct {
	Optimistic      peer.ID // "" when none
	OptimisticSince time.Time
}

// chokeResult is the decision: the peers to upload to now, and the state
// for the next round. Unchoked is in rank order (regulars, then the
// optimistic).
type chokeResult struct {
	Unchoked []peer.ID
	State    chokeState
}

// decideChoke returns the unchoked set for peers at par.Now.
func decideChoke(par chokeParams, st chokeState, peers []chokeCandidate) chokeResult {
	var opt *chokeCandidate
	for i := range peers {
		if peers[i].ID == st.Optimistic {
			opt = &peers[i]
		}
	}
	// The optimistic pick survives while it is interested and its time is
	// not up; a fill round never rotates it.
	if opt == nil || !opt.Interested || (par.Full && par.Now.Sub(st.OptimisticSince) >= par.OptimisticInterval) {
		opt = nil
	}
	kept := opt != nil
	var regular []*chokeCandidate
	if par.Full {
		regular = rankRegulars(par, peers, opt)
	} else {
		regular = fillRegulars(par, st, peers, opt)
	}
	if opt == nil {
		opt = pickOptimistic(par, peers, regular)
	}
	next := chokeState{}
	target := regular
	if opt != nil {
		next.Optimistic, next.OptimisticSince = opt.ID, par.Now
		if kept {
			next.OptimisticSince = st.OptimisticSince
		}
		target = append(regular, opt)
	}
	return chokeResult{Unchoked: admit(par, peers, target), State: next}
}

// waited is when c started waiting for an unchoke (now, if it has one).
func waited(par chokeParams, c *chokeCandidate) time.Time {
	if c.Unchoked {
		return par.Now
	}
	return c.LastUnchoked
}

// byRate orders by Rate, higher first, unless the round ranks by waiting
// alone; 0 means equal.
func byRate(par chokeParams, a, b *chokeCandidate) int {
	switch {
	case par.RoundRobin || a.Rate == b.Rate:
		return 0
	case a.Rate > b.Rate:
		return -1
	}
	return 1
}

// rankRegulars is a full round's regular set: the interested peers other
// than the optimistic pick, best first, cut to Slots.
func rankRegulars(par chokeParams, peers []chokeCandidate, opt *chokeCandidate) []*chokeCandidate {
	var regular []*chokeCandidate
	for i := range peers {
		if c := &peers[i]; c.Interested && c != opt {
			regular = append(regular, c)
		}
	}
	slices.SortFunc(regular, func(a, b *chokeCandidate) int {
		if r := byRate(par, a, b); r != 0 {
			return r
		}
		if !par.RoundRobin && a.Unchoked != b.Unchoked {
			if a.Unchoked {
				return -1
			}
			return 1
		}
		return compareWait(waited(par, a), waited(par, b), a.Tie, b.Tie)
	})
	return regular[:min(len(regular), par.Slots)]
}

// fillRegulars is a fill round's regular set: the interested regulars
// keep their slots, the best-ranked waiting peers take the free ones.
func fillRegulars(par chokeParams, st chokeState, peers []chokeCandidate, opt *chokeCandidate) []*chokeCandidate {
	var regular, waiting []*chokeCandidate
	for i := range peers {
		c := &peers[i]
		switch {
		case !c.Interested || c == opt:
		case c.Unchoked && c.ID != st.Optimistic:
			regular = append(regular, c)
		case !c.Unchoked:
			waiting = append(waiting, c)
		}
	}
	slices.SortFunc(waiting, func(a, b *chokeCandidate) int {
		if r := byRate(par, a, b); r != 0 {
			return r
		}
		return compareWait(a.LastUnchoked, b.LastUnchoked, a.Tie, b.Tie)
	})
	slices.SortFunc(regular, func(a, b *chokeCandidate) int { return compareWait(a.LastUnchoked, b.LastUnchoked, a.Tie, b.Tie) })
	regular = regular[:min(len(regular), par.Slots)]
	for _, c := range waiting {
		if len(regular) >= par.Slots {
			break
		}
		regular = append(regular, c)
	}
	return regular
}

// pickOptimistic is a new optimistic unchoke: the interested peer outside
// the regulars that waited longest, or nil.
func pickOptimistic(par chokeParams, peers []chokeCandidate, regular []*chokeCandidate) *chokeCandidate {
	var opt *chokeCandidate
	for i := range peers {
		c := &peers[i]
		if !c.Interested || slices.Contains(regular, c) {
			continue
		}
		if opt == nil || compareWait(waited(par, c), waited(par, opt), c.Tie, opt.Tie) < 0 {
			opt = c
		}
	}
	return opt
}

// admit returns the target peers that may upload now: peers that stay
// unchoked keep their slot; peers still sending (Busy) that do not stay
// unchoked hold one each — a busy peer of the target is unchoked again in
// the slot it holds; new ones fill what is left, in target order.
func admit(par chokeParams, peers []chokeCandidate, target []*chokeCandidate) []peer.ID {
	room := par.Slots + 1
	for i := range peers {
		c := &peers[i]
		if c.Unchoked && slices.Contains(target, c) || c.Busy {
			room--
		}
	}
	out := make([]peer.ID, 0, len(target))
	for _, c := range target {
		switch {
		case c.Unchoked || c.Busy:
			out = append(out, c.ID)
		case room > 0:
			out = append(out, c.ID)
			room--
		}
	}
	return out
}

// compareWait orders by waiting time (earlier = waited longer first; the
// zero time, never unchoked, first of all), then by tie.
func compareWait(a, b time.Time, ta, tb uint64) int {
	if c := a.Compare(b); c != 0 {
		return c
	}
	switch {
	case ta < tb:
		return -1
	case ta > tb:
		return 1
	}
	return 0
}
