package protocol

import (
	"time"
)

// schedule fills every peer's free window slots, then (at the tail) steals,
// then probes non-optimistic peers with want-have.
func (s *Scheduler) schedule(now time.Time) {
	defer s.updateInterest()
	if s.finished() || len(s.peers) == 0 {
		return
	}
	n := len(s.peers)
	s.rr = (s.rr + 1) % n
	stuck := make([]bool, n)
	// Round robin, one block per peer per round, so equal peers share the
	// front of the file instead of the first peer taking a whole window.
	for progress := true; progress && s.queued > 0; {
		progress = false
		for k := range n {
			i := (s.rr + k) % n
			p := s.peers[i]
			if stuck[i] || len(p.reqs) >= s.windowOf(p) {
				continue
			}
			b := s.pick(p)
			if b == nil {
				stuck[i] = true
				continue
			}
			s.request(p, b, now)
			progress = true
		}
	}
	if s.queued == 0 {
		s.endgame(now)
	}
	s.probe(now)
}

// windowOf is how many want-blocks p may have outstanding before the
// endgame: its window, or for a swarm peer that does not hold the whole
// DAG (another fetcher) only its pipe (window.pipe). The endgame keeps
// whole windows: it only duplicates what is in flight.
func (s *Scheduler) windowOf(p *peerState) int {
	if p.swarm && !p.complete {
		return p.w.pipe(s.stats.winBlock(), s.stats.minRTT)
	}
	return p.w.size()
}

// canServe reports whether p may be sent a want-block for b now.
func (s *Scheduler) canServe(p *peerState, b *block) bool {
	if b.done || p.choked || b.inflightAt(p) {
		return false
	}
	switch b.state(p) {
	case availDontHave:
		return false
	case availHave:
	default:
		if b != s.root && !p.complete && (!p.claimsRoot || p.swarm) {
			return false
		}
	}
	if b.timedOut[p.id] && s.otherSource(b, p) {
		return false
	}
	return true
}

// rarer orders candidates: fewer peers known to hold the block first —
// a block no peer has announced is held only by the optimistic sources
// (seeders), so those are asked for it and the blocks other peers hold are
// left to them. Equally rare blocks are taken in an order of this node's
// own (TieBreak; file order when it is zero): a crowd that starts together
// does not ask the seeder for the same first block, so each leecher soon
// holds something the others want, as BitTorrent's random first pieces.
func (s *Scheduler) rarer(a, b *block) bool {
	if a.haves != b.haves {
		return a.haves < b.haves
	}
	if s.cfg.TieBreak == 0 {
		return false // keep the earlier (file order)
	}
	return mix64(s.cfg.TieBreak^a.seq) < mix64(s.cfg.TieBreak^b.seq)
}

// mix64 is splitmix64's finaliser: a cheap, well-spread hash of x.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// pick chooses the next block to request from p, or nil.
func (s *Scheduler) pick(p *peerState) *block {
	for _, b := range s.urgent {
		if b.queued && s.canServe(p, b) {
			return b
		}
	}
	var best *block
	found, scanned := 0, 0
	for _, b := range s.order[s.head:] {
		if !b.queued {
			continue
		}
		if scanned++; scanned > s.cfg.MaxScan {
			break
		}
		if !s.canServe(p, b) {
			continue
		}
		if best == nil || s.rarer(b, best) {
			best = b
		}
		if found++; found >= s.cfg.Lookahead {
			break
		}
	}
	if best != nil {
		return best
	}
	// A partial source whose blocks lie beyond the scan: use its HAVE list.
	for _, b := range p.haves {
		if b.queued && s.canServe(p, b) {
			return b
		}
	}
	return nil
}

func (s *Scheduler) request(p *peerState, b *block, now time.Time) {
	if b.queued {
		b.queued = false
		s.queued--
	}
	b.inflight = append(b.inflight, p)
	p.reqs = append(p.reqs, req{b: b, sent: now, armed: now})
	if b.state(p) == availAsked {
		// The want-block supersedes the want-have.
		p.asks, _ = removeReq(p.asks, b)
		b.setState(p, availUnknown)
	}
	s.emit(ActWantBlock, p, b.c)
	if b.urgent {
		s.actions[len(s.actions)-1].Urgent = true
	}
}

// endgame lets peers with free slots duplicate blocks in flight elsewhere
// when they are expected to deliver them sooner. Only called when nothing is
// left unrequested.
//
// A block at the head of the other peer's queue is likely being sent: the
// cancel that follows the first copy comes too late to stop the other, so
// both cross the wire, and the estimate of its arrival ignores how much of
// it is already on its way. Such a block is asked again only when the
// second copy would still arrive a whole block's time sooner (in the
// flash-crowd-30 simulation, with expectedArrival's rule for new sources,
// wire bytes ÷ content went from 1.22 to 1.17 over 7 runs each, p50 no
// later: bench/sim.md, "endgame").
func (s *Scheduler) endgame(now time.Time) {
	for _, p := range s.peers {
		for len(p.reqs) < p.w.size() {
			b, due, head := s.stealCandidate(p, now)
			if b == nil {
				break
			}
			mine := now.Add(p.w.expectedLatency(len(p.reqs), s.stats.avgBlock))
			if head {
				mine = mine.Add(p.w.expectedLatency(0, s.stats.avgBlock))
			}
			if !due.After(mine) {
				break
			}
			s.request(p, b, now)
		}
	}
}

// stealCandidate returns the block in flight elsewhere that p could serve and
// that is expected to arrive last, with that expected arrival and whether
// it heads its peer's queue (likely being sent).
func (s *Scheduler) stealCandidate(p *peerState, now time.Time) (*block, time.Time, bool) {
	var best *block
	var bestDue time.Time
	var head bool
	for _, v := range s.peers {
		if v == p {
			continue
		}
		for i, r := range v.reqs {
			b := r.b
			if len(b.inflight) >= s.cfg.MaxCopies || !s.canServe(p, b) {
				continue
			}
			due := s.expectedArrival(v, i, r.sent, now)
			if best == nil || due.After(bestDue) {
				best, bestDue, head = b, due, i == 0
			}
		}
	}
	return best, bestDue, head
}

// expectedArrival estimates when the i-th outstanding request to v, sent at
// sent, will arrive: not before its usual latency, and not before the i
// blocks queued ahead of it and itself have been transmitted at v's rate.
//
// A peer that has delivered nothing yet is taken to be as fast as the
// fastest peer of the fetch until it shows otherwise (its first block, or
// its timeout): taken for slow (the stall timeout's half, 2.5 s), every
// new source had its first blocks asked again of the first peer to free a
// slot — copies that crossed the wire twice when the new source was as
// fast (bench/sim.md, "endgame").
func (s *Scheduler) expectedArrival(v *peerState, i int, sent, now time.Time) time.Time {
	rate, srtt := v.w.rate, v.w.srtt
	if v.w.samples == 0 || rate <= 0 {
		rate, srtt = s.fastestRate()
		if rate <= 0 {
			return sent.Add(v.w.cfg.InitialTimeout / 2)
		}
		srtt = max(srtt, time.Duration(s.stats.avgBlock/rate*float64(time.Second)))
	}
	byLatency := sent.Add(srtt)
	drain := time.Duration(float64(i+1) * s.stats.avgBlock / rate * float64(time.Second))
	byRate := now.Add(drain)
	if byRate.After(byLatency) {
		return byRate
	}
	return byLatency
}

// fastestRate is the highest delivery rate measured among the fetch's
// active peers and that peer's smoothed latency, or 0.
func (s *Scheduler) fastestRate() (float64, time.Duration) {
	var rate float64
	var srtt time.Duration
	for _, p := range s.peers {
		if p.w.samples > 0 && p.w.rate > rate {
			rate, srtt = p.w.rate, p.w.srtt
		}
	}
	return rate, srtt
}

// probe sends want-have for needed blocks, in file order, to peers that are
// not optimistic sources, keeping at most MaxWantHaves outstanding per peer.
// Probes are refilled in batches (when half the budget is free) so a long
// queue is not rescanned after every event.
func (s *Scheduler) probe(now time.Time) {
	if !s.root.done {
		return
	}
	for _, p := range s.peers {
		budget := s.cfg.MaxWantHaves - len(p.asks)
		if p.claimsRoot || p.swarm || budget < max(1, s.cfg.MaxWantHaves/2) || p.probedGen == s.gen {
			continue
		}
		scanned, sent := 0, 0
		for _, b := range s.order[s.head:] {
			if budget == 0 || scanned >= s.cfg.MaxScan {
				break
			}
			if b.done || b.inflightAt(p) {
				continue
			}
			scanned++
			if b.state(p) != availUnknown {
				continue
			}
			b.setState(p, availAsked)
			p.asks = append(p.asks, req{b: b, sent: now, armed: now})
			s.emit(ActWantHave, p, b.c)
			budget--
			sent++
		}
		if sent == 0 && scanned < s.cfg.MaxScan {
			// Nothing left to ask this peer until new blocks appear or an
			// answer is forgotten; skip the rescan until then.
			p.probedGen = s.gen
		}
	}
}
