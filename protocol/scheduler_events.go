package protocol

import (
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Have records that p answered HAVE for c.
func (s *Scheduler) Have(p peer.ID, c cid.Cid, now time.Time) {
	s.presence(p, c, true, now)
}

// DontHave records that p answered DONT_HAVE for c.
func (s *Scheduler) DontHave(p peer.ID, c cid.Cid, now time.Time) {
	s.presence(p, c, false, now)
}

func (s *Scheduler) presence(p peer.ID, c cid.Cid, have bool, now time.Time) {
	ps := s.byID[p]
	if ps == nil || !ps.active || s.finished() {
		return
	}
	ps.answered = true
	if c == s.root.c && have && !ps.revoked && !ps.swarm {
		ps.claimsRoot = true
	}
	b := s.blocks[c]
	if b == nil || b.done {
		s.schedule(now) // a root HAVE may have made the peer a source
		return
	}
	ps.asks, _ = removeReq(ps.asks, b)
	if have {
		ps.gained(now)
		b.setState(ps, availHave)
		s.schedule(now)
		return
	}
	s.dontHave(ps, b, now)
	var wasRequested bool
	ps.reqs, wasRequested = removeReq(ps.reqs, b)
	if wasRequested {
		b.dropInflight(ps)
		// The server may keep the want and send the block once it gets
		// it — by then fetched elsewhere: a duplicate. Withdraw it; a
		// partial holder is asked again at its recheck.
		s.emit(ActCancel, ps, b.c)
		s.requeue(b)
		if ps.claimsRoot && b != s.root {
			ps.misses++
			if ps.misses >= s.cfg.OptimisticMisses {
				ps.claimsRoot, ps.revoked = false, true
			}
		}
	}
	if b == s.root {
		ps.claimsRoot = false
	}
	s.checkSource(b, now)
	s.schedule(now)
}

// BlockReceived records a block p sent, already verified by the caller to
// hash to c, with its child links (nil for a leaf, or when only this block is
// wanted). It returns ErrUnwanted if c is not part of the fetch; the caller
// should then treat the peer as misbehaving (BadBlock) unless another fetch
// wanted the block.
func (s *Scheduler) BlockReceived(p peer.ID, c cid.Cid, size int, links []cid.Cid, now time.Time) error {
	if s.finished() {
		return ErrFetchClosed
	}
	b := s.blocks[c]
	if b == nil {
		return ErrUnwanted
	}
	ps := s.byID[p]
	s.stats.bytesReceived += int64(size)
	if ps != nil {
		ps.gained(now)
		ps.bytes += int64(size)
		if i := findReq(ps.reqs, b); i >= 0 {
			ps.w.delivered(size, ps.reqs[i].sent, now, s.stats.winBlock())
			if size < minRateSampleBytes {
				s.stats.minRTT = minNonZero(s.stats.minRTT, max(now.Sub(ps.reqs[i].sent), time.Microsecond))
			}
			if s.cfg.Scores != nil && !b.done {
				s.cfg.Scores.Delivered(p, size, now.Sub(ps.reqs[i].sent), ps.w.rate)
			}
			ps.reqs = slices.Delete(ps.reqs, i, i+1)
			b.dropInflight(ps)
		}
		if b == s.root && ps.active && !ps.revoked && !ps.swarm {
			ps.claimsRoot = true
		}
	}
	if b.done {
		if ps != nil {
			ps.dupBytes += int64(size)
		}
		s.schedule(now)
		return nil
	}
	if ps != nil {
		ps.blocks++
	}
	s.stats.bytesUseful += int64(size)
	s.stats.sized(size)
	s.finish(b, links)
	s.schedule(now)
	return nil
}

// MarkLocal records that the caller already holds block c (of size bytes,
// with the given child links): it is never requested. c may be a block not
// yet discovered; it is then skipped when it is.
func (s *Scheduler) MarkLocal(c cid.Cid, size int, links []cid.Cid, now time.Time) {
	if s.finished() {
		return
	}
	b := s.blocks[c]
	if b == nil {
		s.local[c] = localBlock{size: size, links: links}
		return
	}
	if b.done {
		return
	}
	s.stats.bytesLocal += int64(size)
	s.stats.blocksLocal++
	s.finish(b, links)
	s.schedule(now)
}

// finish marks b received, cancels its other wants and adds its children.
func (s *Scheduler) finish(b *block, links []cid.Cid) {
	b.done = true
	if b.queued {
		b.queued = false
		s.queued--
	}
	for _, q := range b.inflight {
		q.reqs, _ = removeReq(q.reqs, b)
		s.emit(ActCancel, q, b.c)
	}
	b.inflight = nil
	for _, q := range s.peers {
		var asked bool
		if q.asks, asked = removeReq(q.asks, b); asked {
			s.emit(ActCancel, q, b.c)
		}
	}
	if b.urgent {
		s.urgent = slices.DeleteFunc(s.urgent, func(x *block) bool { return x == b })
	}
	for id, a := range b.avail {
		if q := s.byID[id]; q != nil && a == availHave {
			q.needs--
		}
	}
	b.avail, b.timedOut = nil, nil
	s.remaining--
	s.stats.blocksDone++
	s.addChildren(b, links)
	if len(links) > 0 {
		b.kids = make([]*block, len(links))
		for i, c := range links {
			b.kids[i] = s.blocks[c]
		}
	}
	s.applyPendingSegments(b)
	s.advanceHead()
	if s.remaining == 0 && !s.open {
		s.done = true
	}
}

func (s *Scheduler) addChildren(parent *block, links []cid.Cid) {
	var fresh []*block
	for i, c := range links {
		if _, ok := s.blocks[c]; ok {
			continue
		}
		s.seq++
		b := &block{c: c, path: append(slices.Clip(parent.path), uint32(i)), queued: true, seq: s.seq}
		s.blocks[c] = b
		if s.wantUrgnt[c] {
			delete(s.wantUrgnt, c)
			b.urgent = true
			s.urgent = append(s.urgent, b)
		}
		fresh = append(fresh, b)
		s.applyPendingHaves(b)
	}
	s.queued += len(fresh)
	s.remaining += len(fresh)
	if len(fresh) > 0 {
		s.gen++
	}
	s.insertQueue(fresh)
	for _, b := range fresh {
		if l, ok := s.local[b.c]; ok {
			delete(s.local, b.c)
			s.stats.bytesLocal += int64(l.size)
			s.stats.blocksLocal++
			s.finish(b, l.links)
		}
	}
}

// Tick moves requests older than their peer's stall timeout to other peers.
func (s *Scheduler) Tick(now time.Time) {
	if s.finished() {
		return
	}
	lapsed := false
	for _, p := range slices.Clone(s.peers) {
		s.tickPeer(p, now)
		if p.partial && !p.lapsed && !s.hopeful(p, now) {
			// It gains nothing: its "don't have" answers now stand.
			p.lapsed, lapsed = true, true
			p.recheckAt = time.Time{}
		}
		if s.hopeful(p, now) && !p.recheckAt.IsZero() && !now.Before(p.recheckAt) {
			s.recheck(p)
		}
	}
	if lapsed {
		s.checkAll(now) // only that partial holder may have kept the fetch alive
	}
	s.schedule(now)
}

// hopeful reports whether p is a partial holder that has gained a block
// of the DAG within PartialPatience: its "don't have" may change soon.
func (s *Scheduler) hopeful(p *peerState, now time.Time) bool {
	return p.partial && now.Sub(p.gainedAt) < s.cfg.PartialPatience
}

// dontHave records that p lacks b; from a partial holder that is
// provisional, so a recheck is due.
func (s *Scheduler) dontHave(p *peerState, b *block, now time.Time) {
	b.setState(p, availDontHave)
	if s.hopeful(p, now) && p.recheckAt.IsZero() {
		p.recheckAt = now.Add(s.cfg.RecheckInterval)
	}
}

// recheck forgets p's "don't have" answers for the next needed blocks (in
// file order, at most MaxScan), so they are asked again.
func (s *Scheduler) recheck(p *peerState) {
	p.recheckAt = time.Time{}
	scanned := 0
	for _, b := range s.order[s.head:] {
		if scanned >= s.cfg.MaxScan {
			break
		}
		if b.done {
			continue
		}
		scanned++
		if b.state(p) == availDontHave {
			b.setState(p, availUnknown)
		}
	}
}

func (s *Scheduler) tickPeer(p *peerState, now time.Time) {
	rto := p.w.timeout()
	stalled := false
	for _, r := range slices.Clone(p.reqs) {
		// A peer that keeps delivering is slow, not stalled: its queued
		// requests wait their turn. Time from the later of the request
		// (or its re-arming) and the peer's last delivery.
		start := r.armed
		if p.w.lastSeen.After(start) {
			start = p.w.lastSeen
		}
		if now.Sub(start) <= rto {
			continue
		}
		if !stalled {
			stalled = true
			p.w.stalled() // once per tick: a dead peer is not halved to nothing at once
			if s.cfg.Scores != nil {
				s.cfg.Scores.Stalled(p.id)
			}
		}
		if !s.otherSource(r.b, p) {
			// Nobody else could serve it: keep waiting, with a longer
			// timer, and ask again. The want may be gone: a send that
			// failed under load, or a server that dropped its ledger for
			// us after failing to answer. Wants are idempotent, so a
			// repeat costs one entry.
			i := findReq(p.reqs, r.b)
			p.reqs[i].armed = now
			s.emit(ActWantBlock, p, r.b.c)
			continue
		}
		p.reqs, _ = removeReq(p.reqs, r.b)
		r.b.dropInflight(p)
		if r.b.timedOut == nil {
			r.b.timedOut = make(map[peer.ID]bool)
		}
		r.b.timedOut[p.id] = true
		s.emit(ActCancel, p, r.b.c)
		s.requeue(r.b)
	}
	for _, r := range slices.Clone(p.asks) {
		if now.Sub(r.sent) > rto {
			// An unanswered want-have (we always ask for DONT_HAVE) is a no.
			p.asks, _ = removeReq(p.asks, r.b)
			s.dontHave(p, r.b, now)
			s.checkSource(r.b, now)
		}
	}
}

// otherSource reports whether an active peer other than p could serve b.
func (s *Scheduler) otherSource(b *block, p *peerState) bool {
	for _, q := range s.peers {
		if q != p && !b.timedOut[q.id] && s.mayHave(q, b) {
			return true
		}
	}
	return false
}

// mayHave reports whether q might hold b: it said HAVE, or it is an
// optimistic source, or b is the root, or it was never asked.
func (s *Scheduler) mayHave(q *peerState, b *block) bool {
	if q.swarm {
		return s.swarmMayHave(q, b)
	}
	return b.state(q) != availDontHave
}

// checkSource fails the fetch if b is needed, not in flight, no search is
// running, and every remaining peer said it does not have b — unless one
// is a partial holder that gained blocks within PartialPatience: it may
// get b soon.
func (s *Scheduler) checkSource(b *block, now time.Time) {
	if s.searching || s.finished() || b.done || len(b.inflight) > 0 {
		return
	}
	for _, q := range s.peers {
		if s.mayHave(q, b) || s.hopeful(q, now) {
			return
		}
	}
	s.fail(b)
}

func (s *Scheduler) checkAll(now time.Time) {
	if s.searching || s.finished() {
		return
	}
	for _, b := range s.order[s.head:] {
		if b.queued {
			s.checkSource(b, now)
			if s.err != nil {
				return
			}
		}
	}
}

func (s *Scheduler) fail(b *block) {
	e := &FetchError{Root: s.root.c, Missing: b.c}
	for _, p := range s.all {
		reason := p.reason
		if p.active {
			reason = ErrDontHave
		}
		e.Peers = append(e.Peers, PeerError{Peer: p.id, Err: reason})
	}
	s.cancelAll()
	s.err = e
}

// KeepOpen makes the fetch a session's: it is never done (only closed or
// failed), and blocks are added to it with Want as a reader needs them.
// Call it before any block is reported.
func (s *Scheduler) KeepOpen() { s.open = true }

// Want adds c to a fetch kept open (KeepOpen) as a needed block of its
// own, after every block already known in file order (a reader asks in
// file order), and with urgent prioritises it (Prioritize). A block still
// needed is only prioritised; one received before is wanted again (the
// caller no longer holds it: a garbage collection dropped it). It returns
// false if the fetch has ended or is not kept open.
func (s *Scheduler) Want(c cid.Cid, urgent bool, now time.Time) bool {
	if s.finished() || !s.open {
		return false
	}
	if b := s.blocks[c]; b == nil || b.done {
		s.seq++
		b := &block{c: c, path: []uint32{uint32(s.seq)}, queued: true, seq: s.seq}
		s.blocks[c] = b
		s.queued++
		s.remaining++
		s.gen++
		s.insertQueue([]*block{b})
		s.applyPendingHaves(b)
		if l, ok := s.local[c]; ok {
			delete(s.local, c)
			s.stats.bytesLocal += int64(l.size)
			s.stats.blocksLocal++
			s.finish(b, nil)
		}
	}
	if urgent {
		s.Prioritize(c, now)
	} else {
		s.schedule(now)
	}
	return true
}
