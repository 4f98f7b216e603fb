package protocol

import (
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

// minTurnRate is the rate a turn's hold time is computed from until a
// faster one has been seen (2.5 Mbit/s: a 1 MiB block holds the turn for
// at most 6.7 s before the first measurement).
const minTurnRate = slotBytesPerSec / 2

// uploadTurn is one swarm block send's hold on the uplink. A nil turn is
// no turn: every method is a no-op.
type uploadTurn struct {
	s     *Server
	l     *ledger
	once  sync.Once
	ended bool // the send returned; guarded by s.mu
}

// takeTurn waits for an upload turn if l's next batch may carry blocks to
// a swarm peer; nil when it needs none or may have none (l stalled). ok
// is false when the server is closing.
func (s *Server) takeTurn(l *ledger) (t *uploadTurn, ok bool) {
	s.mu.Lock()
	need := s.turns != nil && l.swarm && !l.choked && len(l.blocks) > 0 && !l.stalled
	s.mu.Unlock()
	if !need {
		return nil, true
	}
	select {
	case s.turns <- struct{}{}:
	case <-s.ctx.Done():
		return nil, false
	}
	t = &uploadTurn{s: s, l: l}
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
	if t != nil {
		t.once.Do(func() { <-t.s.turns })
	}
}

// hold arms the turn's time limit for a send of size bytes starting now;
// the returned func, called when the send has returned, disarms it.
// Past the limit the peer is marked stalled and the turn is released.
func (t *uploadTurn) hold(size int) (ended func()) {
	if t == nil {
		return func() {}
	}
	s := t.s
	s.mu.Lock()
	d := turnHold(size, s.turnRate)
	s.mu.Unlock()
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
