package protocol

import (
	"slices"
	"sync"
	"time"
)

// Upload turns. A block can be passed on only once it is whole and
// verified, so in a swarm what counts is how soon each block reaches its
// next holder, not how evenly the uplink is split at every instant: with
// Slots+1 unchoked peers served at once, each gets a fifth of the uplink
// and a 1 MiB block takes five blocks' time to arrive (2.1 s at
// 20 Mbit/s) where one at a time it takes one (0.42 s) — same bytes per
// second, each block relayable sooner, and a flash crowd spreads by
// doubling per hop. So responses carrying blocks to swarm peers take
// turns: SwarmSendsAtOnce at a time (one by default), each at the full
// rate; the unchoked peers take turns in the ring's round-robin order,
// one batch (one 1 MiB block) per turn (fairness by turns, not by
// splitting). Peers without the extension never wait for a turn: a Kubo
// peer's share is its place in the ring, as before.
//
// Off by default (SwarmSendsAtOnce 0): measured on flash-crowd-30 (bench/
// sim.md, "Block hop latency"), one turn made the seeder send 1.9–2.0
// copies instead of 2.6–2.8 but p50 3.2 × T_min instead of 2.8–2.9: a
// single send does not fill the uplink (its receiver's downlink is most
// of the time shared with another sender, and its connection's window
// ramps per block), so the seeder's uplink was 60 % busy instead of
// 97 %; what leaves the leechers' uplinks idle is that their unchoked
// peers ask other holders, not how a send shares the uplink.
//
// A turn is held by the worker from before it builds the batch (so a
// batch is not read from the store and then left waiting while the peer
// gets the block elsewhere) until the send returns — or until the send
// has run twice as long as it would at the fastest rate a turn has been
// sent at (turnHold). A peer that stopped reading, or a path far slower
// than the uplink, so does not keep the node's swarm uploads waiting: the
// send goes on beside the next turn's, and the peer gets no other batch
// (and no turn) until it returns — its sends share one stream, so a
// second would only wait behind the first.

// Turn slices (ServerConfig.SwarmTurnSlices). One send fills the uplink
// only when nothing else slows it: a connection that has carried only
// small messages starts its congestion window small, and a receiver whose
// downlink another sender shares takes a block at half the rate — with
// one turn the simulated seeder's uplink was 60–72 % busy. With slices a
// turn lasts at most its send's time at the fastest rate a turn has gone
// at, plus a quarter (sliceSlack); a send still running then goes on
// beside the next turn's, up to SwarmSendsAtOnce at once, and its peer
// gets no new turn until it returns. A send at the uplink's rate has the
// uplink to itself; slow ones overlap. Off by default: in full QUIC
// simulations (bench/sim.md, "turns") three slices made the seeder send
// 2.0 copies instead of 2.3–2.9, but p50 was the same on flash-crowd-30
// and 7 % later on the 1 + 100 plan.

// sliceSlack is a slice's length over its send's time at the turn rate:
// a send within a quarter of the fastest has the uplink to itself.
const sliceSlack = 1.25

// minTurnRate is the rate a turn's hold time is computed from until a
// faster one has been seen (2.5 Mbit/s: a 1 MiB block holds the turn for
// at most 6.7 s before the first measurement).
const minTurnRate = 2.5e6 / 8

// turnGate admits turns, to waiters in the order they came (the ring's
// round-robin order). Guarded by the server's mu.
type turnGate struct {
	max     int  // sends at once at most
	slices  bool // a turn ends when its send has run its slice (hold)
	active  int  // turns held, their sends within their time
	overrun int  // sends past their slice (slices only), still running
	waiters []turnWaiter
	late    map[*ledger]int // its sends past their slice: it waits for them
}

type turnWaiter struct {
	l  *ledger
	ch chan struct{} // closed when the turn is granted
}

func newTurnGate(max int, slices bool) *turnGate {
	if max <= 0 {
		return nil
	}
	return &turnGate{max: max, slices: slices, late: make(map[*ledger]int)}
}

// admits reports whether a turn may start now.
func (g *turnGate) admits() bool {
	if g.slices {
		return g.active == 0 && g.overrun < g.max
	}
	return g.active < g.max
}

// grant hands free turns to the first waiters whose peer has no send past
// its slice (its sends share one stream: a second would wait behind it).
func (g *turnGate) grant() {
	for g.admits() {
		i := slices.IndexFunc(g.waiters, func(w turnWaiter) bool { return g.late[w.l] == 0 })
		if i < 0 {
			return
		}
		close(g.waiters[i].ch)
		g.waiters = slices.Delete(g.waiters, i, i+1)
		g.active++
	}
}

// uploadTurn is one swarm block send's hold on the uplink. A nil turn is
// no turn: every method is a no-op.
type uploadTurn struct {
	s       *Server
	l       *ledger
	once    sync.Once
	ended   bool // the send returned; guarded by s.mu
	overran bool // its slice ended before the send did; guarded by s.mu
}

// takeTurn waits for an upload turn if l's next batch may carry blocks to
// a swarm peer; nil when it needs none or may have none (l stalled). ok
// is false when the server is closing.
func (s *Server) takeTurn(l *ledger) (t *uploadTurn, ok bool) {
	s.mu.Lock()
	g := s.turns
	if g == nil || !l.swarm || l.choked || len(l.blocks) == 0 || l.stalled {
		s.mu.Unlock()
		return nil, true
	}
	ch := make(chan struct{})
	g.waiters = append(g.waiters, turnWaiter{l: l, ch: ch})
	g.grant()
	s.mu.Unlock()
	t = &uploadTurn{s: s, l: l}
	select {
	case <-ch:
	case <-s.ctx.Done():
		s.mu.Lock()
		i := slices.IndexFunc(g.waiters, func(w turnWaiter) bool { return w.ch == ch })
		if i >= 0 {
			g.waiters = slices.Delete(g.waiters, i, i+1)
		}
		s.mu.Unlock()
		if i < 0 { // granted meanwhile
			t.release()
		}
		return nil, false
	}
	s.mu.Lock()
	stalled := l.stalled // its earlier send overran its turn meanwhile
	s.mu.Unlock()
	if stalled {
		t.release()
		return nil, true
	}
	return t, true
}

// mayServeBlocks reports whether a batch for l may carry blocks: l is not
// a swarm peer, turns are off, or the batch holds turn t. Caller holds s.mu.
func (s *Server) mayServeBlocks(l *ledger, t *uploadTurn) bool {
	return t != nil || !l.swarm || s.turns == nil
}

// release gives the turn back; later calls do nothing.
func (t *uploadTurn) release() {
	if t == nil {
		return
	}
	t.once.Do(func() {
		t.s.mu.Lock()
		defer t.s.mu.Unlock()
		g := t.s.turns
		if t.overran {
			g.overrun--
			if g.late[t.l]--; g.late[t.l] <= 0 {
				delete(g.late, t.l)
			}
		} else {
			g.active--
		}
		g.grant()
	})
}

// hold arms the turn's time limits for a send of size bytes starting now;
// the returned func, called when the send has returned, disarms them.
// With slices, past the send's time at the turn rate the next turn may
// start beside it. Past twice that the peer is marked stalled and the
// turn is released.
func (t *uploadTurn) hold(size int) (ended func()) {
	if t == nil {
		return func() {}
	}
	s := t.s
	s.mu.Lock()
	d := turnHold(size, s.turnRate)
	sliced := s.turns.slices
	s.mu.Unlock()
	var slice *time.Timer
	if sliced {
		slice = time.AfterFunc(time.Duration(float64(d)*sliceSlack/2), func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if g := s.turns; !t.ended && !t.overran {
				t.overran = true
				g.active--
				g.overrun++
				g.late[t.l]++
				g.grant()
			}
		})
	}
	tm := time.AfterFunc(d, func() {
		s.mu.Lock()
		if !t.ended {
			t.l.stalled = true
			s.stalls++
		}
		s.mu.Unlock()
		t.release()
	})
	return func() {
		tm.Stop()
		if slice != nil {
			slice.Stop()
		}
		s.mu.Lock()
		t.ended = true
		t.l.stalled = false
		s.mu.Unlock()
	}
}

// turnHold is how long a send of size bytes keeps its turn: twice its
// time at rate (bytes/s, at least minTurnRate).
func turnHold(size int, rate float64) time.Duration {
	return time.Duration(2 * float64(size) / max(rate, minTurnRate) * float64(time.Second))
}

// turnSent records a turn's send of size bytes that took d. Caller holds s.mu.
func (s *Server) turnSent(size int, d time.Duration) {
	if d > 0 {
		s.turnRate = max(s.turnRate, float64(size)/d.Seconds())
	}
}
